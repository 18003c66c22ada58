//! snappy-java's own stream format, as Apache's `SnapStream` writes `.snappy` snapshots with
//! `org.xerial.snappy.SnappyOutputStream` and reads them with `SnappyInputStream`. This is **not**
//! the standard Snappy framing format:
//!
//! ```text
//! header: 82 'S' 'N' 'A' 'P' 'P' 'Y' 00 | int version = 1 | int compatibleVersion = 1   (16 bytes)
//! chunk*: int compressedLength (big-endian) | raw Snappy block of ≤ 32 KiB of input
//! ```
//! The reader also accepts what `SnappyInputStream` accepts: another header where a chunk length
//! would be (concatenated streams), and input without the magic header, which is one raw block.

use std::io::{self, Read, Write};

pub const MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
pub const HEADER_LEN: usize = 16;
/// snappy-java's `SnappyOutputStream.DEFAULT_BLOCK_SIZE`.
pub const BLOCK_SIZE: usize = 32 * 1024;

fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&1i32.to_be_bytes());
    h[12..16].copy_from_slice(&1i32.to_be_bytes());
    h
}

fn snappy_err(e: snap::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("snappy: {e}"))
}

pub struct SnappyJavaWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    out: Vec<u8>,
    enc: snap::raw::Encoder,
    header_written: bool,
}

impl<W: Write> SnappyJavaWriter<W> {
    pub fn new(inner: W) -> Self {
        SnappyJavaWriter { inner, buf: Vec::with_capacity(BLOCK_SIZE), out: Vec::new(), enc: snap::raw::Encoder::new(), header_written: false }
    }

    fn write_block(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.inner.write_all(&header())?;
            self.header_written = true;
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        self.out.resize(snap::raw::max_compress_len(self.buf.len()), 0);
        let n = self.enc.compress(&self.buf, &mut self.out).map_err(snappy_err)?;
        self.inner.write_all(&(n as i32).to_be_bytes())?;
        self.inner.write_all(&self.out[..n])?;
        self.buf.clear();
        Ok(())
    }

    /// Writes the last block and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_block()?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SnappyJavaWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(BLOCK_SIZE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == BLOCK_SIZE {
            self.write_block()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        // Like SnappyOutputStream.flush: the pending input becomes a (short) block.
        self.write_block()?;
        self.inner.flush()
    }
}

pub struct SnappyJavaReader<R: Read> {
    inner: R,
    data: Vec<u8>,
    pos: usize,
    started: bool,
    finished: bool,
    dec: snap::raw::Decoder,
}

impl<R: Read> SnappyJavaReader<R> {
    pub fn new(inner: R) -> Self {
        SnappyJavaReader { inner, data: Vec::new(), pos: 0, started: false, finished: false, dec: snap::raw::Decoder::new() }
    }

    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    fn start(&mut self) -> io::Result<()> {
        self.started = true;
        let mut h = [0u8; HEADER_LEN];
        let n = self.fill(&mut h)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "Cannot decompress empty stream"));
        }
        if n < HEADER_LEN || h[..8] != MAGIC {
            // No header: the whole input is one raw Snappy block (SnappyInputStream.readFully).
            let mut raw = h[..n].to_vec();
            self.inner.read_to_end(&mut raw)?;
            self.data = self.dec.decompress_vec(&raw).map_err(snappy_err)?;
            self.pos = 0;
            self.finished = true;
        }
        Ok(())
    }

    /// Decompresses the next chunk into `data`; false at the end.
    fn next_chunk(&mut self) -> io::Result<bool> {
        loop {
            let mut l = [0u8; 4];
            if self.fill(&mut l)? < 4 {
                self.finished = true;
                return Ok(false);
            }
            let len = i32::from_be_bytes(l);
            if l == MAGIC[..4] {
                // A concatenated stream's header.
                let mut rest = [0u8; HEADER_LEN - 4];
                if self.fill(&mut rest)? < rest.len() || rest[..4] != MAGIC[4..8] {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "Insufficient header size in a concatenated block"));
                }
                continue;
            }
            if len < 0 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("snappy: negative chunk length {len}")));
            }
            let mut comp = Vec::new();
            let got = (&mut self.inner).take(len as u64).read_to_end(&mut comp)?;
            if got < len as usize {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "failed to read chunk"));
            }
            self.data = self.dec.decompress_vec(&comp).map_err(snappy_err)?;
            self.pos = 0;
            if !self.data.is_empty() {
                return Ok(true);
            }
        }
    }
}

impl<R: Read> Read for SnappyJavaReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.started {
            self.start()?;
        }
        if self.pos >= self.data.len() && (self.finished || !self.next_chunk()?) {
            return Ok(0);
        }
        let n = buf.len().min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_across_blocks() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_be_bytes()).collect();
        let mut w = SnappyJavaWriter::new(Vec::new());
        w.write_all(&data).unwrap();
        let out = w.finish().unwrap();
        assert_eq!(&out[..8], &MAGIC);
        assert_eq!(&out[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);
        // The first chunk is a whole 32 KiB block.
        let first = i32::from_be_bytes(out[16..20].try_into().unwrap()) as usize;
        let block = snap::raw::Decoder::new().decompress_vec(&out[20..20 + first]).unwrap();
        assert_eq!(block.len(), BLOCK_SIZE);
        let mut back = Vec::new();
        SnappyJavaReader::new(&out[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        // Concatenated streams read as one.
        let mut two = out.clone();
        two.extend_from_slice(&out);
        let mut back = Vec::new();
        SnappyJavaReader::new(&two[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), 2 * data.len());
        // A headerless raw block.
        let raw = snap::raw::Encoder::new().compress_vec(b"hello hello hello").unwrap();
        let mut back = Vec::new();
        SnappyJavaReader::new(&raw[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, b"hello hello hello");
        // Truncated chunk.
        let mut back = Vec::new();
        assert!(SnappyJavaReader::new(&out[..out.len() - 3]).read_to_end(&mut back).is_err());
    }
}

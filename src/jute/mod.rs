//! Jute, ZooKeeper's binary record encoding: big-endian primitives, length-prefixed buffers and
//! strings (-1 = null), counted vectors. Records are their fields in declared order.
//!
//! Reading never trusts a length: every length is checked against the bytes actually present
//! (and the configured maximum) before anything is allocated.

pub mod opcode;
pub mod records;
pub mod txn;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum JuteError {
    #[error("unexpected end of record at offset {0}")]
    Eof(usize),
    #[error("unreasonable length {0} at offset {1}")]
    BadLength(i32, usize),
    #[error("null where a value is required at offset {0}")]
    UnexpectedNull(usize),
}

pub type Result<T> = std::result::Result<T, JuteError>;

/// A cursor over one received record.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }
    pub fn position(&self) -> usize {
        self.pos
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(JuteError::Eof(self.pos));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn read_u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn read_bool(&mut self) -> Result<bool> {
        Ok(self.read_u8()? != 0)
    }
    pub fn read_i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    pub fn read_i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
    /// A length field: -1 means null; any other negative value, or one larger than what is left,
    /// is malformed (checked before allocating).
    fn read_len(&mut self) -> Result<Option<usize>> {
        let at = self.pos;
        let n = self.read_i32()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 || n as usize > self.remaining() {
            return Err(JuteError::BadLength(n, at));
        }
        Ok(Some(n as usize))
    }
    pub fn read_buffer(&mut self) -> Result<Option<Vec<u8>>> {
        match self.read_len()? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?.to_vec())),
        }
    }
    pub fn read_ustring(&mut self) -> Result<Option<String>> {
        match self.read_len()? {
            None => Ok(None),
            Some(n) => Ok(Some(decode_jute_string(self.take(n)?))),
        }
    }
    pub fn read_string(&mut self) -> Result<String> {
        let at = self.pos;
        self.read_ustring()?.ok_or(JuteError::UnexpectedNull(at))
    }
    /// A vector's element count; -1 (null) reads as None. Each element takes at least one byte, so a
    /// count larger than the bytes left is malformed.
    pub fn read_count(&mut self) -> Result<Option<usize>> {
        self.read_len()
    }
}

/// Java decodes jute strings as UTF-8, replacing invalid sequences; CESU-8 surrogate pairs decode
/// to replacement characters, which path validation then rejects.
fn decode_jute_string(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// Appends jute-encoded values to a byte vector.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer { buf: Vec::new() }
    }
    pub fn with_capacity(n: usize) -> Writer {
        Writer { buf: Vec::with_capacity(n) }
    }
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub fn write_u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn write_bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }
    pub fn write_i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn write_i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn write_buffer(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.write_i32(-1),
            Some(b) => {
                self.write_i32(b.len() as i32);
                self.buf.extend_from_slice(b);
            }
        }
    }
    pub fn write_str(&mut self, s: &str) {
        self.write_i32(s.len() as i32);
        self.buf.extend_from_slice(s.as_bytes());
    }
    pub fn write_ustring(&mut self, s: Option<&str>) {
        match s {
            None => self.write_i32(-1),
            Some(s) => self.write_str(s),
        }
    }
    /// Start a length-prefixed frame; `finish_frame` fills the length in.
    pub fn begin_frame(&mut self) -> usize {
        let at = self.buf.len();
        self.write_i32(0);
        at
    }
    pub fn finish_frame(&mut self, at: usize) {
        let len = (self.buf.len() - at - 4) as i32;
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
}

/// A value with a jute encoding.
pub trait Jute: Sized {
    fn read(r: &mut Reader<'_>) -> Result<Self>;
    fn write(&self, w: &mut Writer);

    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.buf
    }
    fn from_bytes(b: &[u8]) -> Result<Self> {
        Self::read(&mut Reader::new(b))
    }
}

impl Jute for i32 {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_i32()
    }
    fn write(&self, w: &mut Writer) {
        w.write_i32(*self)
    }
}
impl Jute for i64 {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_i64()
    }
    fn write(&self, w: &mut Writer) {
        w.write_i64(*self)
    }
}
impl Jute for bool {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_bool()
    }
    fn write(&self, w: &mut Writer) {
        w.write_bool(*self)
    }
}
/// A non-null ustring. Null on the wire is a marshalling error.
impl Jute for String {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_string()
    }
    fn write(&self, w: &mut Writer) {
        w.write_str(self)
    }
}
impl Jute for Option<String> {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_ustring()
    }
    fn write(&self, w: &mut Writer) {
        w.write_ustring(self.as_deref())
    }
}
/// A jute `buffer`, where null and empty differ.
impl Jute for Option<Vec<u8>> {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_buffer()
    }
    fn write(&self, w: &mut Writer) {
        w.write_buffer(self.as_deref())
    }
}
/// A jute `vector`; null reads as empty and is never written.
impl<T: Jute> Jute for Vec<T> {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let Some(n) = r.read_count()? else {
            return Ok(Vec::new());
        };
        let mut v = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            v.push(T::read(r)?);
        }
        Ok(v)
    }
    fn write(&self, w: &mut Writer) {
        w.write_i32(self.len() as i32);
        for x in self {
            x.write(w);
        }
    }
}

/// Declares a jute record: a struct whose fields are encoded in order.
#[macro_export]
macro_rules! jute_record {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }
        impl $crate::jute::Jute for $name {
            #[allow(unused_variables)]
            fn read(r: &mut $crate::jute::Reader<'_>) -> $crate::jute::Result<Self> {
                Ok(Self { $($f: <$t as $crate::jute::Jute>::read(r)?),* })
            }
            #[allow(unused_variables)]
            fn write(&self, w: &mut $crate::jute::Writer) {
                $($crate::jute::Jute::write(&self.$f, w);)*
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_empty_buffers_differ() {
        let mut w = Writer::new();
        w.write_buffer(None);
        w.write_buffer(Some(b""));
        assert_eq!(w.buf, [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.read_buffer().unwrap(), None);
        assert_eq!(r.read_buffer().unwrap(), Some(vec![]));
    }

    #[test]
    fn lengths_are_checked_before_allocating() {
        let b = [0x7f, 0xff, 0xff, 0xff, 1, 2];
        assert_eq!(Reader::new(&b).read_buffer(), Err(JuteError::BadLength(0x7fffffff, 0)));
        let b = [0xff, 0xff, 0xff, 0xfe];
        assert_eq!(Reader::new(&b).read_ustring(), Err(JuteError::BadLength(-2, 0)));
        let b = [0x00, 0x00, 0x10, 0x00];
        assert!(Vec::<i64>::from_bytes(&b).is_err());
    }
}

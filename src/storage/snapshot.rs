//! Snapshots, Apache's `FileSnap` + `SnapStream` + `DataTree.serialize` (reference §6.4):
//!
//! ```text
//! FileHeader: int magic "ZKSN" (0x5A4B534E) | int version 2 | long dbid -1
//! Sessions:   int count, count × (long id, int timeoutMs)
//! ACL cache:  int count, count × (long id, vector<ACL>)
//! Nodes:      (ustring path, buffer data, long aclId, StatPersisted)*, root as "", parents first
//! End:        ustring "/"
//! Seal 1:     long adler32(everything so far), ustring "/"
//! Digest:     long zxid, int 2, long treeDigest
//! Seal 2:     long adler32(everything so far), ustring "/"
//! Trailer:    long lastProcessedZxid, seal 3                      (3.9+; 3.8 ignores it)
//! ```
//! With `.gz`/`.snappy` the whole stream is compressed; the Adler32 is over the uncompressed bytes.

use super::snappy::{self, SnappyJavaReader, SnappyJavaWriter};
use super::{Result, StorageError, io_err, list_files, sync_dir};
use crate::jute::records::{Acl, Id, StatPersisted};
use crate::jute::{Jute, Reader, Writer};
use crate::tree::DataTree;
use crate::tree::digest::DIGEST_VERSION;
use crate::tree::load::TreeLoader;
use crate::types::SessionId;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

pub const SNAP_MAGIC: i32 = 0x5A4B_534E;
pub const SNAP_VERSION: i32 = 2;
pub const SNAP_DBID: i64 = -1;
pub const SNAP_PREFIX: &str = "snapshot";

/// `snapshot.compression.method`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    #[default]
    None,
    Gz,
    Snappy,
}

impl Compression {
    /// The zoo.cfg value: `""`, `gz` or `snappy` (case-insensitive).
    pub fn from_config(s: &str) -> Result<Compression> {
        match s.to_ascii_lowercase().as_str() {
            "" => Ok(Compression::None),
            "gz" => Ok(Compression::Gz),
            "snappy" => Ok(Compression::Snappy),
            other => Err(StorageError::InvalidArgument(format!("Invalid snapshot compression method: {other}"))),
        }
    }

    /// The file-name extension, with its dot (`""`, `".gz"`, `".snappy"`).
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gz => ".gz",
            Compression::Snappy => ".snappy",
        }
    }

    /// Apache's `SnapStream.getStreamMode`: the part after the last '.' of the name.
    pub fn from_file_name(name: &str) -> Compression {
        match name.rsplit('.').next() {
            Some("gz") if name.contains('.') => Compression::Gz,
            Some("snappy") if name.contains('.') => Compression::Snappy,
            _ => Compression::None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SnapshotOptions {
    pub compression: Compression,
    /// Write the digest section + seal 2 (`zookeeper.digest.enabled`, default true).
    pub digest: bool,
    /// Write the 3.9 trailer `long lastProcessedZxid` + seal 3
    /// (`zookeeper.serializeLastProcessedZxid.enabled`, default true; 3.8 readers ignore it).
    pub last_processed_zxid: bool,
    /// fsync the file and its directory.
    pub fsync: bool,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions { compression: Compression::None, digest: true, last_processed_zxid: true, fsync: true }
    }
}

/// Apache's `ZxidDigest`, the snapshot's digest section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZxidDigest {
    pub zxid: i64,
    pub version: i32,
    pub digest: u64,
}

pub struct LoadedSnapshot {
    pub path: PathBuf,
    pub tree: DataTree,
    pub sessions: Vec<(SessionId, i32)>,
    /// From the file name (what replay starts after); also the tree's `last_processed_zxid`.
    pub zxid: i64,
    /// The digest section, if present (`zxid == 0` means "empty").
    pub digest: Option<ZxidDigest>,
    /// The 3.9 trailer, if present.
    pub trailer_zxid: Option<i64>,
    /// The FileHeader's version and dbid (Apache checks only the magic).
    pub version: i32,
    pub dbid: i64,
}

pub fn snapshot_file_name(zxid: i64, compression: Compression) -> String {
    format!("{SNAP_PREFIX}.{zxid:x}{}", compression.extension())
}

/// Adds an Adler32 over everything written through it.
struct Checked<W: Write> {
    inner: W,
    adler: simd_adler32::Adler32,
}

impl<W: Write> Write for Checked<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.adler.write(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn seal(out: &mut Checked<impl Write>) -> io::Result<()> {
    let mut w = Writer::with_capacity(13);
    w.write_i64(out.adler.finish() as i64);
    w.write_str("/");
    out.write_all(&w.buf)
}

/// The uncompressed snapshot stream of `tree` (named after `tree.last_processed_zxid`) to `out`.
pub fn serialize_snapshot(out: impl Write, tree: &DataTree, sessions: &[(SessionId, i32)], opts: &SnapshotOptions) -> io::Result<()> {
    let mut out = Checked { inner: out, adler: simd_adler32::Adler32::new() };
    let mut w = Writer::with_capacity(64 * 1024);
    write_head(&mut w, sessions, tree.acl_cache_entries().iter().map(|(id, l)| (*id, l.as_slice())));
    tree.for_each_snapshot_node(|path, data, acl, stat| {
        w.write_str(path);
        w.write_buffer(data);
        w.write_i64(acl);
        stat.write(&mut w);
        if w.buf.len() >= 60 * 1024 {
            out.write_all(&w.buf)?;
            w.buf.clear();
        }
        Ok::<(), io::Error>(())
    })?;
    out.write_all(&w.buf)?;
    write_tail(&mut out, tree.last_processed_zxid, tree.digest.value, opts)
}

/// FileHeader, sessions and the ACL cache: everything before the nodes.
fn write_head<'a>(w: &mut Writer, sessions: &[(SessionId, i32)], acls: impl ExactSizeIterator<Item = (i64, &'a [Acl])>) {
    w.write_i32(SNAP_MAGIC);
    w.write_i32(SNAP_VERSION);
    w.write_i64(SNAP_DBID);
    w.write_i32(sessions.len() as i32);
    for (id, timeout) in sessions {
        w.write_i64(id.0);
        w.write_i32(*timeout);
    }
    w.write_i32(acls.len() as i32);
    for (id, list) in acls {
        w.write_i64(id);
        w.write_i32(list.len() as i32);
        for a in list {
            a.write(w);
        }
    }
}

/// Everything after the nodes: the "/" terminator, seal 1, the digest section and seal 2, and
/// the 3.9 trailer (last processed zxid) with seal 3.
fn write_tail(out: &mut Checked<impl Write>, zxid: i64, digest: u64, opts: &SnapshotOptions) -> io::Result<()> {
    let mut w = Writer::with_capacity(32);
    w.write_str("/");
    out.write_all(&w.buf)?;
    seal(out)?;
    if opts.digest {
        // Apache writes its lastProcessedZxidDigest, empty (zxid 0, digest 0) before any txn.
        let (z, d) = if zxid > 0 { (zxid, digest) } else { (0, 0) };
        let mut w = Writer::with_capacity(20);
        w.write_i64(z);
        w.write_i32(DIGEST_VERSION);
        w.write_i64(d as i64);
        out.write_all(&w.buf)?;
        seal(out)?;
    }
    if opts.last_processed_zxid {
        out.write_all(&zxid.to_be_bytes())?;
        seal(out)?;
    }
    out.flush()
}

/// A fuzzy snapshot, as Apache takes them: the tree is walked a chunk of nodes at a time, taking
/// the lock (`lock()`) only for each chunk, so writes go on meanwhile. Each node is written as it
/// is when visited; replaying the log from `start_zxid` (the caller names the file after it)
/// brings the result up to date, which replay's idempotence guarantees (§6.3 replay notes). Nodes
/// deleted before they were reached are skipped. The ACL lists written are those of the nodes
/// written, captured when each node was. The digest section is the tree's at the end.
pub fn serialize_snapshot_fuzzy<G: std::ops::Deref<Target = DataTree>>(
    out: impl Write,
    sessions: &[(SessionId, i32)],
    mut lock: impl FnMut() -> G,
    opts: &SnapshotOptions,
    chunk: usize,
) -> io::Result<()> {
    use crate::tree::{NodeId, ROOT};
    use std::collections::BTreeMap;
    let mut nodes = Writer::with_capacity(1 << 20);
    let mut acls: BTreeMap<i64, Vec<Acl>> = BTreeMap::new();
    // (node, its parent, its name, its path); the root's path is "".
    let mut stack: Vec<(NodeId, Option<NodeId>, String, String)> = vec![(ROOT, None, String::new(), String::new())];
    let (zxid, digest) = loop {
        let tree = lock();
        let mut n = 0;
        while n < chunk {
            let Some((id, parent, name, path)) = stack.pop() else { break };
            if id != ROOT && (tree.parent(id) != parent || tree.node(id).name() != name) {
                continue; // deleted (and perhaps its slot reused) since it was queued
            }
            let node = tree.node(id);
            nodes.write_str(&path);
            nodes.write_buffer(node.data());
            nodes.write_i64(node.acl());
            node.stat.persisted().write(&mut nodes);
            if node.acl() != crate::tree::acl::OPEN_ACL_ID {
                acls.entry(node.acl()).or_insert_with(|| tree.acl(id).to_vec());
            }
            for c in tree.children(id) {
                let cname = tree.node(c).name().to_string();
                let cpath = format!("{path}/{cname}");
                stack.push((c, Some(id), cname, cpath));
            }
            n += 1;
        }
        if stack.is_empty() {
            break (tree.last_processed_zxid, tree.digest.value);
        }
    };
    let mut out = Checked { inner: out, adler: simd_adler32::Adler32::new() };
    let mut w = Writer::with_capacity(64 * 1024);
    write_head(&mut w, sessions, acls.iter().map(|(id, l)| (*id, l.as_slice())));
    out.write_all(&w.buf)?;
    out.write_all(&nodes.buf)?;
    write_tail(&mut out, zxid, digest, opts)
}

/// Writes `snapshot.<hex tree.last_processed_zxid>[.gz|.snappy]` in `dir` (created if missing)
/// atomically: a temp file `.snapshot.<hex>….tmp` (ignored by Apache and by us), fsync, rename,
/// fsync of the directory. Returns the snapshot's path.
pub fn write_snapshot(dir: &Path, tree: &DataTree, sessions: &[(SessionId, i32)], opts: &SnapshotOptions) -> Result<PathBuf> {
    write_snapshot_with(dir, tree.last_processed_zxid, opts, |out| serialize_snapshot(out, tree, sessions, opts))
}

/// Takes a fuzzy snapshot (`serialize_snapshot_fuzzy`) straight into
/// `snapshot.<hex start_zxid>[.gz|.snappy]`, atomically as `write_snapshot`.
pub fn write_snapshot_fuzzy<G: std::ops::Deref<Target = DataTree>>(
    dir: &Path,
    start_zxid: i64,
    sessions: &[(SessionId, i32)],
    lock: impl FnMut() -> G,
    opts: &SnapshotOptions,
    chunk: usize,
) -> Result<PathBuf> {
    write_snapshot_with(dir, start_zxid, opts, |out| serialize_snapshot_fuzzy(out, sessions, lock, opts, chunk))
}

fn write_snapshot_with(dir: &Path, zxid: i64, opts: &SnapshotOptions, body: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let name = snapshot_file_name(zxid, opts.compression);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let res = (|| -> io::Result<()> {
        let f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        let buf = BufWriter::with_capacity(256 * 1024, f);
        let buf = match opts.compression {
            Compression::None => {
                let mut b = buf;
                body(&mut b)?;
                b
            }
            Compression::Gz => {
                let mut g = GzEncoder::new(buf, flate2::Compression::default());
                body(&mut g)?;
                g.finish()?
            }
            Compression::Snappy => {
                let mut s = SnappyJavaWriter::new(buf);
                body(&mut s)?;
                s.finish()?
            }
        };
        let f = buf.into_inner().map_err(|e| e.into_error())?;
        if opts.fsync {
            f.sync_all()?;
        }
        Ok(())
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(&tmp)(e));
    }
    std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    if opts.fsync {
        sync_dir(dir)?;
    }
    tracing::info!("Snapshotting: 0x{:x} to {}", zxid, path.display());
    Ok(path)
}

/// Apache's `SnapStream.isValidSnapshot`: a snapshot name, and for a plain file length ≥ 10 with
/// the last 5 bytes `00000001 2f`; for `.gz` the gzip magic, for `.snappy` snappy-java's magic.
pub fn is_valid_snapshot(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
    if super::zxid_from_name(name, SNAP_PREFIX).is_none() {
        return false;
    }
    let Ok(mut f) = File::open(path) else { return false };
    let Ok(len) = f.metadata().map(|m| m.len()) else { return false };
    match Compression::from_file_name(name) {
        Compression::Gz => {
            let mut b = [0u8; 2];
            len > 0 && f.read_exact(&mut b).is_ok() && b == [0x1f, 0x8b]
        }
        Compression::Snappy => {
            let mut b = [0u8; 8];
            f.read_exact(&mut b).is_ok() && b == snappy::MAGIC
        }
        Compression::None => {
            let mut b = [0u8; 5];
            len >= 10 && f.read_exact_at_end(&mut b, len) && b == [0, 0, 0, 1, b'/']
        }
    }
}

trait ReadAt {
    fn read_exact_at_end(&mut self, b: &mut [u8], len: u64) -> bool;
}
impl ReadAt for File {
    fn read_exact_at_end(&mut self, b: &mut [u8], len: u64) -> bool {
        use std::os::unix::fs::FileExt;
        self.read_exact_at(b, len - b.len() as u64).is_ok()
    }
}

/// Snapshot files in `dir` sorted by zxid ascending (any that parse as `snapshot.<hex>…`).
pub fn list_snapshots(dir: &Path) -> Result<Vec<(i64, PathBuf)>> {
    list_files(dir, SNAP_PREFIX)
}

/// Apache's `FileSnap.findNValidSnapshots`: up to `n` snapshots passing `is_valid_snapshot`,
/// newest first.
pub fn find_valid_snapshots(dir: &Path, n: usize) -> Result<Vec<(i64, PathBuf)>> {
    let mut v = list_snapshots(dir)?;
    v.reverse();
    Ok(v.into_iter().filter(|(_, p)| is_valid_snapshot(p)).take(n).collect())
}

/// Reading with an Adler32 over every byte consumed (Apache's `CheckedInputStream`).
///
/// It keeps its own buffer and adds consumed bytes to the checksum a buffer at a time, not a
/// field at a time: a snapshot of 1M znodes has ~15M fields, and a checksum call per 4- or
/// 8-byte field cost more than the rest of the checksum. With `readahead` off (a SNAP arriving
/// on a quorum socket, followed by other packets) it never reads past the field it needs.
struct In<R: Read> {
    inner: R,
    adler: simd_adler32::Adler32,
    buf: Vec<u8>,
    /// `buf[start..end]` is read but not consumed; `buf[..summed]` is in `adler` already.
    start: usize,
    end: usize,
    summed: usize,
    /// Bytes consumed.
    pos: u64,
    /// Bytes left, when known (plain files): lengths beyond it are rejected before allocating.
    limit: Option<u64>,
    readahead: bool,
}

enum ReadErr {
    Eof(u64),
    Io(io::Error),
    Bad(u64, String),
}

impl From<io::Error> for ReadErr {
    fn from(e: io::Error) -> Self {
        ReadErr::Io(e)
    }
}

type R<T> = std::result::Result<T, ReadErr>;

const IN_BUF: usize = 256 * 1024;

impl<Rd: Read> In<Rd> {
    fn new(inner: Rd, limit: Option<u64>, readahead: bool) -> In<Rd> {
        In { inner, adler: simd_adler32::Adler32::new(), buf: vec![0; IN_BUF], start: 0, end: 0, summed: 0, pos: 0, limit, readahead }
    }

    /// Makes `want` (at most the buffer's size) bytes available unless the input ends first;
    /// returns how many are available.
    fn fill(&mut self, want: usize) -> io::Result<usize> {
        if self.end - self.start >= want {
            return Ok(self.end - self.start);
        }
        // Checksum what was consumed, then move the unconsumed rest to the front.
        self.adler.write(&self.buf[self.summed..self.start]);
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        self.summed = 0;
        let upto = if self.readahead { self.buf.len() } else { want };
        while self.end < want {
            match self.inner.read(&mut self.buf[self.end..upto]) {
                Ok(0) => break,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start)
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.pos += n as u64;
    }

    /// The Adler32 of everything consumed so far.
    fn checksum(&mut self) -> u32 {
        self.adler.write(&self.buf[self.summed..self.start]);
        self.summed = self.start;
        self.adler.finish()
    }

    fn exact<const N: usize>(&mut self) -> R<[u8; N]> {
        let avail = self.fill(N)?;
        if avail < N {
            self.consume(avail);
            return Err(ReadErr::Eof(self.pos));
        }
        let out: [u8; N] = self.buf[self.start..self.start + N].try_into().expect("N bytes");
        self.consume(N);
        Ok(out)
    }
    fn i32(&mut self) -> R<i32> {
        Ok(i32::from_be_bytes(self.exact::<4>()?))
    }
    fn i64(&mut self) -> R<i64> {
        Ok(i64::from_be_bytes(self.exact::<8>()?))
    }
    fn bytes(&mut self) -> R<Option<Vec<u8>>> {
        let at = self.pos;
        let n = self.i32()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 {
            return Err(ReadErr::Bad(at, format!("Unreasonable length = {n}")));
        }
        if let Some(limit) = self.limit
            && self.pos + n as u64 > limit
        {
            return Err(ReadErr::Eof(limit));
        }
        // A length the input may not back (a stream of unknown size): grow as bytes arrive.
        let mut v = Vec::with_capacity((n as usize).min(IN_BUF));
        let mut left = n as usize;
        while left > 0 {
            let avail = self.fill(left.min(IN_BUF))?;
            if avail == 0 {
                return Err(ReadErr::Eof(self.pos));
            }
            let k = avail.min(left);
            v.extend_from_slice(&self.buf[self.start..self.start + k]);
            self.consume(k);
            left -= k;
        }
        Ok(Some(v))
    }
    fn string(&mut self) -> R<String> {
        let at = self.pos;
        match self.bytes()? {
            Some(b) => Ok(String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())),
            None => Err(ReadErr::Bad(at, "null string".into())),
        }
    }
    fn ustring(&mut self) -> R<Option<String>> {
        Ok(self.bytes()?.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }
    /// Apache's `SnapStream.checkSealIntegrity`: the checksum so far must equal the stored long,
    /// followed by a string (not checked, as in Apache).
    fn check_seal(&mut self, which: u32) -> R<()> {
        let expected = self.checksum() as i64;
        let at = self.pos;
        let stored = self.i64()?;
        self.string()?;
        if stored != expected {
            return Err(ReadErr::Bad(at, format!("CRC corruption (seal {which}: stored 0x{stored:x}, computed 0x{expected:x})")));
        }
        Ok(())
    }
}

/// Loads and validates a snapshot file (Apache's `FileSnap.deserialize` for one file): magic,
/// every node's parent before it, ACL ids known, seal 1, then the optional digest section (EOF =
/// absent) with seal 2, then the optional 3.9 trailer with seal 3. The tree's quota usage and
/// digest are rebuilt; `last_processed_zxid` is the zxid in the file name.
pub fn read_snapshot(path: &Path, extended_types: bool) -> Result<LoadedSnapshot> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let Some(zxid) = super::zxid_from_name(name, SNAP_PREFIX) else {
        return Err(StorageError::InvalidArgument(format!("{} is not named snapshot.<hex zxid>", path.display())));
    };
    let f = File::open(path).map_err(io_err(path))?;
    let len = f.metadata().map_err(io_err(path))?.len();
    let comp = Compression::from_file_name(name);
    // `In` buffers: the plain file is read straight into its buffer.
    let (inner, limit): (Box<dyn Read>, _) = match comp {
        Compression::None => (Box::new(f), Some(len)),
        Compression::Gz => (Box::new(MultiGzDecoder::new(BufReader::with_capacity(64 * 1024, f))), None),
        Compression::Snappy => (Box::new(SnappyJavaReader::new(BufReader::with_capacity(64 * 1024, f))), None),
    };
    let mut input = In::new(inner, limit, true);
    match parse(&mut input, extended_types) {
        Ok((mut tree, sessions, version, dbid, digest, trailer_zxid)) => {
            tree.last_processed_zxid = zxid;
            Ok(LoadedSnapshot { path: path.to_path_buf(), tree, sessions, zxid, digest, trailer_zxid, version, dbid })
        }
        Err(e) => {
            let (offset, reason) = match e {
                ReadErr::Eof(at) => (at, "unexpected end of file".to_string()),
                ReadErr::Bad(at, r) => (at, r),
                ReadErr::Io(e) => (input.pos, format!("read error: {e}")),
            };
            Err(StorageError::Corrupt { file: path.to_path_buf(), offset, reason })
        }
    }
}

/// Sessions, the ACL cache and the nodes up to the "/" terminator: the part of a snapshot a
/// leader also sends a learner after SNAP.
fn parse_body<Rd: Read>(r: &mut In<Rd>, extended_types: bool) -> R<(DataTree, Vec<(SessionId, i32)>)> {
    let count = r.i32()?;
    let mut sessions = Vec::with_capacity(count.clamp(0, 1 << 16) as usize);
    for _ in 0..count.max(0) {
        let id = r.i64()?;
        let timeout = r.i32()?;
        sessions.push((SessionId(id), timeout));
    }
    let mut loader = TreeLoader::new(extended_types);
    let nacl = r.i32()?;
    for _ in 0..nacl.max(0) {
        let id = r.i64()?;
        let at = r.pos;
        let n = r.i32()?;
        if n < 0 {
            return Err(ReadErr::Bad(at, "Incorrect format of InputArchive when deserialize DataTree - missing acls".into()));
        }
        let mut list = Vec::with_capacity((n as usize).min(64));
        for _ in 0..n {
            let perms = r.i32()?;
            let scheme = r.string()?;
            let id = r.ustring()?.unwrap_or_default();
            list.push(Acl { perms, id: Id { scheme, id } });
        }
        loader.insert_acl(id, list);
    }
    loop {
        let at = r.pos;
        let path = r.string()?;
        if path == "/" {
            break;
        }
        let data = r.bytes()?;
        let acl = r.i64()?;
        let stat = r.exact::<60>()?;
        let s = StatPersisted::read(&mut Reader::new(&stat)).expect("60 bytes");
        loader.insert_node(&path, data, acl, (&s).into()).map_err(|e| ReadErr::Bad(at, e.to_string()))?;
    }
    let tree = loader.finish().map_err(|e| ReadErr::Bad(r.pos, e.to_string()))?;
    Ok((tree, sessions))
}

/// What a leader writes after a SNAP packet (Apache's `ZKDatabase.serializeSnapshot` + the
/// "BenWasHere" signature): sessions, ACL cache, nodes and "/", with no file header, seals or
/// digest.
pub fn write_snap_stream(out: &mut Vec<u8>, tree: &DataTree, sessions: &[(SessionId, i32)]) {
    let mut w = Writer { buf: std::mem::take(out) };
    let acls = tree.acl_cache_entries();
    w.write_i32(sessions.len() as i32);
    for (id, timeout) in sessions {
        w.write_i64(id.0);
        w.write_i32(*timeout);
    }
    w.write_i32(acls.len() as i32);
    for (id, list) in &acls {
        w.write_i64(*id);
        w.write_i32(list.len() as i32);
        for a in list {
            a.write(&mut w);
        }
    }
    let _ = tree.for_each_snapshot_node(|path, data, acl, stat| {
        w.write_str(path);
        w.write_buffer(data);
        w.write_i64(acl);
        stat.write(&mut w);
        Ok::<(), ()>(())
    });
    w.write_str("/");
    w.write_str("BenWasHere");
    *out = w.buf;
}

/// Reads the stream `write_snap_stream` writes (from a leader, Apache's or ours) and checks
/// the signature; the tree's last processed zxid is left for the caller (the SNAP's zxid).
pub fn read_snap_stream(r: &mut impl Read, extended_types: bool) -> std::result::Result<(DataTree, Vec<(SessionId, i32)>), String> {
    let mut input = In::new(r, None, false);
    let describe = |e: ReadErr| match e {
        ReadErr::Eof(at) => format!("unexpected end of stream at offset {at}"),
        ReadErr::Bad(at, why) => format!("{why} at offset {at}"),
        ReadErr::Io(e) => format!("read error: {e}"),
    };
    let (tree, sessions) = parse_body(&mut input, extended_types).map_err(describe)?;
    let sig = input.string().map_err(describe)?;
    if sig != "BenWasHere" {
        return Err(format!("Missing signature. Got {sig}"));
    }
    Ok((tree, sessions))
}

type Parsed = (DataTree, Vec<(SessionId, i32)>, i32, i64, Option<ZxidDigest>, Option<i64>);

fn parse<Rd: Read>(r: &mut In<Rd>, extended_types: bool) -> R<Parsed> {
    let magic = r.i32()?;
    let version = r.i32()?;
    let dbid = r.i64()?;
    if magic != SNAP_MAGIC {
        return Err(ReadErr::Bad(0, format!("mismatching magic headers {magic} != {SNAP_MAGIC}")));
    }
    let (tree, sessions) = parse_body(r, extended_types)?;
    r.check_seal(1)?;
    // Digest section: EOF means an older snapshot without one.
    let digest = match (|| -> R<ZxidDigest> { Ok(ZxidDigest { zxid: r.i64()?, version: r.i32()?, digest: r.i64()? as u64 }) })() {
        Ok(d) => d,
        Err(ReadErr::Eof(_)) => return Ok((tree, sessions, version, dbid, None, None)),
        Err(e) => return Err(e),
    };
    r.check_seal(2)?;
    // 3.9 trailer: EOF means a 3.8 snapshot.
    let trailer = match r.i64() {
        Ok(z) => z,
        Err(ReadErr::Eof(_)) => return Ok((tree, sessions, version, dbid, Some(digest), None)),
        Err(e) => return Err(e),
    };
    r.check_seal(3)?;
    Ok((tree, sessions, version, dbid, Some(digest), Some(trailer)))
}

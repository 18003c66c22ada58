//! The txn log, Apache's `FileTxnLog` (reference §6.2):
//!
//! ```text
//! FileHeader: int magic "ZKLG" (0x5A4B4C47) | int version 2 | long dbid 0
//! Entry*:     long adler32(txnBytes) | int len | byte[len] txnBytes | byte 'B'
//! Padding:    zeros up to the preallocated size
//! txnBytes  = TxnHeader | record | [TxnDigest{int 2, long treeDigest}]
//! ```
//!
//! A file is named `log.<hex zxid of its first txn>`. A reader stops a file at EOF or at an entry
//! whose length is 0 (the padding).

use super::{Result, StorageError, io_err, list_files, sync_dir};
use crate::jute::txn::{Txn, TxnHeader};
use crate::jute::{Jute, Reader, Writer};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const LOG_MAGIC: i32 = 0x5A4B_4C47;
pub const LOG_VERSION: i32 = 2;
pub const LOG_DBID: i64 = 0;
pub const LOG_PREFIX: &str = "log";
/// `preAllocSize` default: 64 MiB (zoo.cfg gives it in KB).
pub const DEFAULT_PREALLOC_SIZE: u64 = 64 * 1024 * 1024;
pub const FILE_HEADER_LEN: u64 = 16;
/// FilePadding grows the file when the write position gets this close to its end.
const PAD_THRESHOLD: u64 = 4096;
/// The byte after each entry.
pub const END_OF_ENTRY: u8 = b'B';

/// Apache's `TxnDigest`: the tree digest after the txn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnDigest {
    pub version: i32,
    pub tree_digest: u64,
}

pub fn log_file_name(zxid: i64) -> String {
    format!("{LOG_PREFIX}.{zxid:x}")
}

/// `txnBytes`: TxnHeader ‖ record ‖ TxnDigest (Apache's `Util.marshallTxnEntry`). An error txn
/// never carries a digest, whatever is passed.
pub fn txn_bytes(hdr: &TxnHeader, txn: &Txn, digest: Option<u64>) -> Vec<u8> {
    let mut w = Writer::with_capacity(64);
    write_txn_bytes(&mut w, hdr, txn, digest);
    w.buf
}

fn write_txn_bytes(w: &mut Writer, hdr: &TxnHeader, txn: &Txn, digest: Option<u64>) {
    let hdr = TxnHeader { txn_type: txn.type_code(), ..hdr.clone() };
    hdr.write(w);
    txn.write_record(w);
    if let (Some(d), false) = (digest, matches!(txn, Txn::Error { .. })) {
        w.write_i32(crate::tree::digest::DIGEST_VERSION);
        w.write_i64(d as i64);
    }
}

/// One whole log entry from txnBytes already encoded (a PROPOSAL's data).
fn append_raw_entry(out: &mut Vec<u8>, txn_bytes: &[u8]) {
    out.extend_from_slice(&(crate::storage::adler32(txn_bytes) as i64).to_be_bytes());
    out.extend_from_slice(&(txn_bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(txn_bytes);
    out.push(END_OF_ENTRY);
}

/// One whole log entry: `long adler32 | int len | txnBytes | 'B'`.
pub fn encode_entry(hdr: &TxnHeader, txn: &Txn, digest: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    append_entry(&mut out, hdr, txn, digest);
    out
}

fn append_entry(out: &mut Vec<u8>, hdr: &TxnHeader, txn: &Txn, digest: Option<u64>) {
    let start = out.len();
    let mut w = Writer { buf: std::mem::take(out) };
    w.write_i64(0);
    w.write_i32(0);
    write_txn_bytes(&mut w, hdr, txn, digest);
    let body = start + 12;
    let len = (w.buf.len() - body) as i32;
    let crc = crate::storage::adler32(&w.buf[body..]) as i64;
    w.buf[start..start + 8].copy_from_slice(&crc.to_be_bytes());
    w.buf[start + 8..body].copy_from_slice(&len.to_be_bytes());
    w.buf.push(END_OF_ENTRY);
    *out = w.buf;
}

/// Parses txnBytes as Apache's `SerializeUtils.deserializeTxn`: header, the record for its type,
/// then a TxnDigest if at least 12 bytes are left (fewer: no digest).
pub fn decode_txn_bytes(bytes: &[u8]) -> std::result::Result<(TxnHeader, Txn, Option<TxnDigest>), String> {
    let mut r = Reader::new(bytes);
    let hdr = TxnHeader::read(&mut r).map_err(|e| format!("bad TxnHeader: {e}"))?;
    let body = r.rest();
    let parse = |body: &[u8], skip_record: bool| -> std::result::Result<(Txn, Option<TxnDigest>), String> {
        let mut r = Reader::new(body);
        let txn = if skip_record {
            Txn::CloseSession { paths: Vec::new() }
        } else {
            Txn::read_record(hdr.txn_type, &mut r).map_err(|e| format!("bad record for txn type {}: {e}", hdr.txn_type))?
        };
        let digest = if r.remaining() >= 12 {
            let version = r.read_i32().unwrap();
            let d = r.read_i64().unwrap();
            Some(TxnDigest { version, tree_digest: d as u64 })
        } else {
            None
        };
        Ok((txn, digest))
    };
    // A closeSession written with closeSessionTxn disabled has no record; if a digest follows,
    // the body is exactly the 12-byte TxnDigest `00000002 <long>`. (Read as a record it would
    // almost always fail; the only paths it could decode to are two empty strings.)
    let bare_digest = hdr.txn_type == crate::jute::txn::types::CLOSE_SESSION
        && body.len() == 12
        && body[..4] == crate::tree::digest::DIGEST_VERSION.to_be_bytes();
    let (txn, digest) = match parse(body, false) {
        Ok((Txn::CloseSession { paths }, _)) if bare_digest && paths.iter().all(|p| p.is_empty()) => parse(body, true)?,
        Err(_) if bare_digest => parse(body, true)?,
        r => r?,
    };
    Ok((hdr, txn, digest))
}

fn file_header() -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..4].copy_from_slice(&LOG_MAGIC.to_be_bytes());
    b[4..8].copy_from_slice(&LOG_VERSION.to_be_bytes());
    b[8..16].copy_from_slice(&LOG_DBID.to_be_bytes());
    b
}

/// Apache's `FilePadding.calculateFileSizeWithPadding`.
pub fn padded_size(position: u64, file_size: u64, prealloc: u64) -> u64 {
    if prealloc > 0 && position + PAD_THRESHOLD >= file_size {
        if position > file_size {
            let s = position + prealloc;
            s - s % prealloc
        } else {
            file_size + prealloc
        }
    } else {
        file_size
    }
}

struct OpenLog {
    file: File,
    path: PathBuf,
    /// Bytes written to the file (header + entries), i.e. the write position.
    written: u64,
    /// The file's size including preallocated zeros.
    alloc_size: u64,
    dir_synced: bool,
}

/// Appends txns to `log.<hex>` files in one directory, as Apache's `FileTxnLog`: a new file for
/// the first append after creation or `roll()`, named after that txn's zxid; entries are buffered
/// until `flush()`/`sync()`; the file is preallocated in `prealloc_size` steps by writing one zero
/// byte at the new end.
///
/// After any write error the writer refuses further work (`StorageError::Poisoned`): the file may
/// end in a partial entry, which a restore reports as a torn tail.
pub struct TxnLogWriter {
    dir: PathBuf,
    prealloc: u64,
    cur: Option<OpenLog>,
    buf: Vec<u8>,
    last_zxid: Option<i64>,
    poisoned: Option<PathBuf>,
}

impl TxnLogWriter {
    /// A writer for `dir` (`<dataLogDir>/version-2`, created if missing) with 64 MiB preallocation.
    pub fn new(dir: impl Into<PathBuf>) -> TxnLogWriter {
        TxnLogWriter::with_prealloc(dir, DEFAULT_PREALLOC_SIZE)
    }

    /// `prealloc_size` in bytes; 0 turns preallocation off.
    pub fn with_prealloc(dir: impl Into<PathBuf>, prealloc_size: u64) -> TxnLogWriter {
        TxnLogWriter { dir: dir.into(), prealloc: prealloc_size, cur: None, buf: Vec::new(), last_zxid: None, poisoned: None }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file being written, if one is open.
    pub fn current_file(&self) -> Option<&Path> {
        self.cur.as_ref().map(|c| c.path.as_path())
    }

    /// Bytes of the current file once buffered entries are written (header + entries, not the
    /// preallocated zeros); 0 with no open file.
    pub fn current_size(&self) -> u64 {
        self.cur.as_ref().map_or(0, |c| c.written + self.buf.len() as u64)
    }

    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// The zxid of the last appended txn.
    pub fn last_zxid(&self) -> Option<i64> {
        self.last_zxid
    }

    fn check(&self) -> Result<()> {
        match &self.poisoned {
            Some(p) => Err(StorageError::Poisoned { file: p.clone() }),
            None => Ok(()),
        }
    }

    fn poison<T>(&mut self, path: &Path, e: io::Error) -> Result<T> {
        self.poisoned = Some(path.to_path_buf());
        Err(io_err(path)(e))
    }

    fn open_file(&mut self, zxid: i64) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let path = self.dir.join(log_file_name(zxid));
        if path.exists() {
            // Apache's FileOutputStream truncates too; this only happens when the old file held
            // nothing past the last good txn (e.g. a torn first entry that restore cut off).
            tracing::warn!("Overwriting existing txn log {}", path.display());
        }
        tracing::info!("Creating new log file: {}", path.display());
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&path).map_err(io_err(&path))?;
        if let Err(e) = file.write_all(&file_header()) {
            return self.poison(&path, e);
        }
        self.cur = Some(OpenLog { file, path, written: FILE_HEADER_LEN, alloc_size: FILE_HEADER_LEN, dir_synced: false });
        Ok(())
    }

    /// Buffers one entry. `digest` is the tree digest after this txn (written as
    /// `TxnDigest{2, digest}`; never for an error txn). The TxnHeader's type is taken from `txn`.
    pub fn append(&mut self, hdr: &TxnHeader, txn: &Txn, digest: Option<u64>) -> Result<()> {
        self.check()?;
        if let Some(last) = self.last_zxid
            && hdr.zxid <= last
        {
            tracing::warn!("Current zxid 0x{:x} is <= 0x{last:x} for type {}", hdr.zxid, txn.type_code());
        }
        if self.cur.is_none() {
            self.open_file(hdr.zxid)?;
        }
        append_entry(&mut self.buf, hdr, txn, digest);
        self.last_zxid = Some(hdr.zxid);
        Ok(())
    }

    /// Buffers one entry whose txnBytes (TxnHeader, record, TxnDigest) are already encoded, as
    /// a PROPOSAL carries them: an ensemble member logs what the leader proposed, byte for byte,
    /// without decoding and encoding it again.
    pub fn append_raw(&mut self, zxid: i64, txn_bytes: &[u8]) -> Result<()> {
        self.check()?;
        if let Some(last) = self.last_zxid
            && zxid <= last
        {
            tracing::warn!("Current zxid 0x{zxid:x} is <= 0x{last:x}");
        }
        if self.cur.is_none() {
            self.open_file(zxid)?;
        }
        append_raw_entry(&mut self.buf, txn_bytes);
        self.last_zxid = Some(zxid);
        Ok(())
    }

    /// Writes the buffered entries to the file (no fsync), preallocating first if the write
    /// position is within 4 KiB of the file's end (Apache's `FilePadding.padFile`).
    pub fn flush(&mut self) -> Result<()> {
        self.check()?;
        if self.buf.is_empty() {
            return Ok(());
        }
        let prealloc = self.prealloc;
        let cur = self.cur.as_mut().expect("buffered entries imply an open file");
        let new_size = padded_size(cur.written, cur.alloc_size, prealloc);
        if new_size != cur.alloc_size {
            if let Err(e) = cur.file.write_all_at(&[0], new_size - 1) {
                let p = cur.path.clone();
                return self.poison(&p, e);
            }
            cur.alloc_size = new_size;
        }
        if let Err(e) = cur.file.write_all(&self.buf) {
            let p = cur.path.clone();
            return self.poison(&p, e);
        }
        cur.written += self.buf.len() as u64;
        cur.alloc_size = cur.alloc_size.max(cur.written);
        self.buf.clear();
        Ok(())
    }

    /// `flush()` then fdatasync (Apache: `FileChannel.force(false)` with forceSync). The first sync
    /// of a new file also fsyncs the directory so the file's name survives a crash.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        let Some(cur) = self.cur.as_mut() else { return Ok(()) };
        if let Err(e) = cur.file.sync_data() {
            let p = cur.path.clone();
            return self.poison(&p, e);
        }
        if !cur.dir_synced {
            sync_dir(&self.dir)?;
            self.cur.as_mut().unwrap().dir_synced = true;
        }
        Ok(())
    }

    /// Ends the current file (flushed and synced); the next append starts `log.<its zxid>`.
    pub fn roll(&mut self) -> Result<()> {
        if self.cur.is_some() {
            self.sync()?;
            self.cur = None;
        }
        Ok(())
    }

    /// Same as `roll()`.
    pub fn close(&mut self) -> Result<()> {
        self.roll()
    }
}

impl Drop for TxnLogWriter {
    fn drop(&mut self) {
        if self.poisoned.is_none() && !self.buf.is_empty() {
            let _ = self.flush();
        }
    }
}

/// Why a log stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TornReason {
    /// Shorter than the 16-byte FileHeader.
    ShortHeader,
    /// Fewer bytes than the entry's length says (or a partial crc/length).
    ShortEntry,
    /// The byte after the entry is not 'B' ("Last transaction was partial").
    MissingEndMarker,
    /// Adler32 mismatch on the final entry, with nothing valid after it.
    BadChecksum,
    /// A negative length.
    BadLength,
}

impl fmt::Display for TornReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TornReason::ShortHeader => "file shorter than its 16-byte header",
            TornReason::ShortEntry => "partial entry (file ends inside it)",
            TornReason::MissingEndMarker => "entry not followed by 'B' (last transaction was partial)",
            TornReason::BadChecksum => "Adler32 mismatch on the last entry",
            TornReason::BadLength => "negative entry length",
        })
    }
}

/// Where a log file stops being readable: everything before `offset` is whole entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub file: PathBuf,
    pub offset: u64,
    pub reason: TornReason,
    /// The last txn read whole before the tear (in any file).
    pub last_good_zxid: Option<i64>,
}

impl fmt::Display for TornTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "torn txn log tail in {} at byte {}: {}", self.file.display(), self.offset, self.reason)?;
        if let Some(z) = self.last_good_zxid {
            write!(f, " (last good zxid 0x{z:x})")?;
        }
        Ok(())
    }
}

/// Cuts a log file to `offset` bytes (a torn tail's offset) and syncs it. An offset inside the
/// header removes the file, which then holds no entry.
pub fn truncate_at(file: &Path, offset: u64) -> Result<()> {
    if offset < FILE_HEADER_LEN {
        tracing::warn!("Removing txn log {} (torn inside its header)", file.display());
        std::fs::remove_file(file).map_err(io_err(file))?;
        if let Some(d) = file.parent() {
            sync_dir(d)?;
        }
        return Ok(());
    }
    tracing::warn!("Truncating txn log {} to {offset} bytes", file.display());
    let f = OpenOptions::new().write(true).open(file).map_err(io_err(file))?;
    f.set_len(offset).map_err(io_err(file))?;
    f.sync_all().map_err(io_err(file))
}

/// One entry read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub hdr: TxnHeader,
    pub txn: Txn,
    pub digest: Option<TxnDigest>,
    /// Where the entry starts (its crc field).
    pub offset: u64,
}

/// The files `TxnLogReader` reads for txns after `zxid` (Apache's `FileTxnLog.getLogFiles`):
/// the newest file starting at or before `zxid`, and every later one. `files` sorted ascending.
pub fn logs_from(files: &[(i64, PathBuf)], zxid: i64) -> Vec<(i64, PathBuf)> {
    let mut log_zxid = 0;
    for (z, _) in files {
        if *z <= zxid && *z > log_zxid {
            log_zxid = *z;
        }
    }
    files.iter().filter(|(z, _)| *z >= log_zxid).cloned().collect()
}

/// Apache's `getLastLoggedZxid`: None without log files; otherwise the zxid of the last txn in the
/// newest file, or that file's name zxid if it holds no txn.
pub fn last_logged_zxid(dir: &Path) -> Result<Option<i64>> {
    let files = list_files(dir, LOG_PREFIX)?;
    let Some((start, _)) = files.last().cloned() else { return Ok(None) };
    let mut r = TxnLogReader::with_files(logs_from(&files, start), i64::MIN);
    let mut last = start;
    while let Some(e) = r.next_entry()? {
        last = e.hdr.zxid;
    }
    Ok(Some(last))
}

struct Cursor {
    path: PathBuf,
    start_zxid: i64,
    rd: BufReader<File>,
    offset: u64,
    is_last: bool,
    /// The next file's start zxid, for the torn-tail-in-an-older-file rule.
    next_start: Option<i64>,
}

enum Step {
    Entry(LogEntry),
    EndOfFile,
    Torn(TornReason, u64),
}

/// Reads txns with zxid > `after` from a log directory, in file order (Apache's
/// `FileTxnIterator`). Every entry's 'B' and Adler32 are checked, including skipped ones.
///
/// Ends cleanly at EOF or a zero length in each file. A torn tail in the **last** file (partial
/// entry, missing 'B', or an Adler32 mismatch on the final entry with nothing valid after it) ends
/// the iteration; `torn_tail()` then says where, for `truncate_at`. In an **older** file, a torn
/// tail is skipped with a warning when the next file starts at or before the last good zxid + 1
/// (a crash Apache restarted from); otherwise, and for any Adler32 mismatch followed by valid
/// data, bad magic or an undecodable record, `next_entry` fails with `Corrupt` naming file and
/// offset.
pub struct TxnLogReader {
    files: Vec<(i64, PathBuf)>,
    next_file: usize,
    cur: Option<Cursor>,
    after: i64,
    last_zxid: Option<i64>,
    torn: Option<TornTail>,
    skipped: Vec<TornTail>,
    read: Vec<PathBuf>,
    done: bool,
}

impl TxnLogReader {
    /// The log files in `dir` needed for txns after `after_zxid`.
    pub fn open(dir: &Path, after_zxid: i64) -> Result<TxnLogReader> {
        let files = list_files(dir, LOG_PREFIX)?;
        Ok(TxnLogReader::with_files(logs_from(&files, after_zxid), after_zxid))
    }

    /// Reads exactly these files (sorted by start zxid) for txns after `after_zxid`.
    pub fn with_files(files: Vec<(i64, PathBuf)>, after_zxid: i64) -> TxnLogReader {
        TxnLogReader {
            files,
            next_file: 0,
            cur: None,
            after: after_zxid,
            last_zxid: None,
            torn: None,
            skipped: Vec::new(),
            read: Vec::new(),
            done: false,
        }
    }

    /// The files selected, ascending.
    pub fn files(&self) -> Vec<PathBuf> {
        self.files.iter().map(|(_, p)| p.clone()).collect()
    }

    /// The files opened so far.
    pub fn files_read(&self) -> &[PathBuf] {
        &self.read
    }

    /// Set once the iteration stopped at a torn tail in the last file.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn.as_ref()
    }

    /// Torn tails in older files that were skipped.
    pub fn skipped_torn_tails(&self) -> &[TornTail] {
        &self.skipped
    }

    fn corrupt(&self, c: &Cursor, offset: u64, reason: impl Into<String>) -> StorageError {
        StorageError::Corrupt { file: c.path.clone(), offset, reason: reason.into() }
    }

    /// The next txn after `after_zxid`, `Ok(None)` at the end (check `torn_tail()`).
    pub fn next_entry(&mut self) -> Result<Option<LogEntry>> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.cur.is_none() {
                if self.next_file >= self.files.len() {
                    self.done = true;
                    return Ok(None);
                }
                let (start_zxid, path) = self.files[self.next_file].clone();
                self.next_file += 1;
                let file = File::open(&path).map_err(io_err(&path))?;
                self.read.push(path.clone());
                let is_last = self.next_file == self.files.len();
                let next_start = self.files.get(self.next_file).map(|(z, _)| *z);
                let mut c = Cursor { path, start_zxid, rd: BufReader::with_capacity(256 * 1024, file), offset: 0, is_last, next_start };
                let mut h = [0u8; 16];
                let n = read_full(&mut c.rd, &mut h).map_err(io_err(&c.path))?;
                c.offset = n as u64;
                if n < 16 {
                    self.cur = Some(c);
                    self.torn_at(TornReason::ShortHeader, 0)?;
                    continue;
                }
                let magic = i32::from_be_bytes(h[0..4].try_into().unwrap());
                if magic != LOG_MAGIC {
                    return Err(self.corrupt(&c, 0, format!("Transaction log has invalid magic number 0x{magic:08x} (expected 0x{LOG_MAGIC:08x})")));
                }
                self.cur = Some(c);
            }
            match self.step()? {
                Step::Entry(e) => {
                    if let Some(last) = self.last_zxid
                        && e.hdr.zxid <= last
                    {
                        tracing::warn!("txn log zxids not increasing: 0x{:x} after 0x{last:x}", e.hdr.zxid);
                    }
                    self.last_zxid = Some(e.hdr.zxid);
                    if e.hdr.zxid > self.after {
                        return Ok(Some(e));
                    }
                }
                Step::EndOfFile => self.cur = None,
                Step::Torn(reason, offset) => self.torn_at(reason, offset)?,
            }
        }
    }

    /// Handles a tear in the current file: ends the iteration (last file), skips to the next file
    /// (older file, zxids continue) or fails.
    fn torn_at(&mut self, reason: TornReason, offset: u64) -> Result<()> {
        let c = self.cur.take().unwrap();
        let t = TornTail { file: c.path.clone(), offset, reason, last_good_zxid: self.last_zxid };
        if c.is_last {
            self.torn = Some(t);
            self.done = true;
            return Ok(());
        }
        let last_good = self.last_zxid.unwrap_or(c.start_zxid - 1);
        let next = c.next_start.unwrap_or(i64::MAX);
        if reason != TornReason::BadChecksum && next <= last_good.saturating_add(1) {
            tracing::warn!("{t}; skipped: the next log starts at 0x{next:x}");
            self.skipped.push(t);
            return Ok(());
        }
        Err(self.corrupt(&c, offset, format!("{reason} in an older log file (the next file starts at 0x{next:x})")))
    }

    fn step(&mut self) -> Result<Step> {
        let c = self.cur.as_mut().unwrap();
        let start = c.offset;
        let mut head = [0u8; 12];
        let n = read_full(&mut c.rd, &mut head).map_err(io_err(&c.path))?;
        c.offset += n as u64;
        if n == 0 {
            return Ok(Step::EndOfFile);
        }
        if n < 12 {
            // A few zero bytes of padding are the end too.
            if head[..n].iter().all(|b| *b == 0) {
                return Ok(Step::EndOfFile);
            }
            return Ok(Step::Torn(TornReason::ShortEntry, start));
        }
        let crc = i64::from_be_bytes(head[0..8].try_into().unwrap());
        let len = i32::from_be_bytes(head[8..12].try_into().unwrap());
        if len == 0 {
            return Ok(Step::EndOfFile);
        }
        if len < 0 {
            return Ok(Step::Torn(TornReason::BadLength, start));
        }
        let mut bytes = Vec::new();
        let got = (&mut c.rd).take(len as u64).read_to_end(&mut bytes).map_err(io_err(&c.path))?;
        c.offset += got as u64;
        if got < len as usize {
            return Ok(Step::Torn(TornReason::ShortEntry, start));
        }
        let mut b = [0u8; 1];
        if read_full(&mut c.rd, &mut b).map_err(io_err(&c.path))? == 0 {
            return Ok(Step::Torn(TornReason::ShortEntry, start));
        }
        c.offset += 1;
        if b[0] != END_OF_ENTRY {
            return Ok(Step::Torn(TornReason::MissingEndMarker, start));
        }
        let actual = crate::storage::adler32(&bytes) as i64;
        if actual != crc {
            let reason = format!("CRC check failed: stored 0x{crc:x}, computed 0x{actual:x}");
            if c.is_last && !valid_entry_follows(&mut c.rd)? {
                return Ok(Step::Torn(TornReason::BadChecksum, start));
            }
            let c = self.cur.as_ref().unwrap();
            return Err(self.corrupt(c, start, reason));
        }
        match decode_txn_bytes(&bytes) {
            Ok((hdr, txn, digest)) => Ok(Step::Entry(LogEntry { hdr, txn, digest, offset: start })),
            Err(e) => {
                let c = self.cur.as_ref().unwrap();
                Err(self.corrupt(c, start, e))
            }
        }
    }
}

/// After a bad checksum: does a whole, valid entry come next? (Then the bad one is not a tail.)
fn valid_entry_follows(rd: &mut impl Read) -> Result<bool> {
    let mut head = [0u8; 12];
    if read_full(rd, &mut head).unwrap_or(0) < 12 {
        return Ok(false);
    }
    let crc = i64::from_be_bytes(head[0..8].try_into().unwrap());
    let len = i32::from_be_bytes(head[8..12].try_into().unwrap());
    if len <= 0 {
        return Ok(false);
    }
    let mut bytes = Vec::new();
    if rd.take(len as u64 + 1).read_to_end(&mut bytes).unwrap_or(0) < len as usize + 1 {
        return Ok(false);
    }
    let marker = bytes.pop();
    Ok(marker == Some(END_OF_ENTRY) && crate::storage::adler32(&bytes) as i64 == crc)
}

impl Iterator for TxnLogReader {
    type Item = Result<LogEntry>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A learner's TRUNC (Apache's `FileTxnLog.truncate`): removes every txn after `zxid` — later
/// log files entirely, the rest of the file holding `zxid` from the first entry after it — and
/// every snapshot named after a later zxid (it may hold txns the leader never committed).
pub fn truncate_after(dir: &Path, snap_dir: &Path, zxid: i64) -> Result<()> {
    let files = list_files(dir, LOG_PREFIX)?;
    for (start, path) in &files {
        if *start > zxid {
            tracing::info!("TRUNC: removing {}", path.display());
            std::fs::remove_file(path).map_err(io_err(path))?;
        }
    }
    if let Some((start, path)) = files.iter().rev().find(|(s, _)| *s <= zxid) {
        let mut r = TxnLogReader::with_files(vec![(*start, path.clone())], i64::MIN);
        while let Some(e) = r.next_entry()? {
            if e.hdr.zxid > zxid {
                truncate_at(path, e.offset)?;
                break;
            }
        }
    }
    for (z, p) in list_files(snap_dir, "snapshot")? {
        if z > zxid {
            tracing::info!("TRUNC: removing {}", p.display());
            std::fs::remove_file(&p).map_err(io_err(&p))?;
        }
    }
    sync_dir(snap_dir)?;
    sync_dir(dir)
}

//! Apache ZooKeeper's on-disk formats (`version-2/`), byte for byte: the txn log (`log.<hex>`,
//! Apache's `FileTxnLog`), snapshots (`snapshot.<hex>[.gz|.snappy]`, `FileSnap` + `SnapStream`),
//! restore (`FileTxnSnapLog.restore`) and purge (`PurgeTxnLog`). See `docs/disk-format.md`.
//!
//! Every function here takes the directory that holds the files themselves, i.e.
//! `<dataDir>/version-2` and `<dataLogDir>/version-2` (`Config::snap_dir()` /
//! `Config::txn_log_dir()`), not the configured dataDir.
//!
//! No networking and no clocks: this is a library the engine calls. Replay goes through
//! `DataTree::apply`, the same function live commits use.

/// Adler32, as `java.util.zip.Adler32` (the txn log's per-entry checksum and the snapshot's
/// running one). simd-adler32 picks AVX2/SSSE3 at run time: a 1M-znode snapshot's checksum
/// takes a few ms instead of ~80.
pub fn adler32(bytes: &[u8]) -> u32 {
    let mut a = simd_adler32::Adler32::new();
    a.write(bytes);
    a.finish()
}

pub mod snapshot;
mod snappy;
pub mod txnlog;

use crate::jute::txn::{Txn, types as txn_types};
use crate::tree::DataTree;
use crate::types::SessionId;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

pub use snapshot::{Compression, LoadedSnapshot, SnapshotOptions, ZxidDigest, read_snapshot, write_snapshot};
pub use txnlog::{LogEntry, TornTail, TxnDigest, TxnLogReader, TxnLogWriter, truncate_at};

/// The directory Apache keeps its files in, under dataDir and dataLogDir.
pub const VERSION_DIR: &str = "version-2";

/// Apache tries at most this many of the newest snapshots (FileSnap.deserialize).
pub const MAX_SNAPSHOTS_TO_TRY: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file whose content cannot be used: names the file and the byte offset (for compressed
    /// snapshots, the offset in the uncompressed stream).
    #[error("{}: corrupt at byte {offset}: {reason}", file.display())]
    Corrupt { file: PathBuf, offset: u64, reason: String },
    /// Snapshots exist but none of them loads (Apache: "Not able to find valid snapshots in").
    #[error("Not able to find valid snapshots in {}: {}", dir.display(), describe_tried(tried))]
    NoValidSnapshot { dir: PathBuf, tried: Vec<(PathBuf, String)> },
    /// Txn logs but no snapshot, and `trust_empty_snapshot` is off (Apache's
    /// `zookeeper.snapshot.trust.empty`).
    #[error(
        "No snapshot found, but there are log entries (last zxid 0x{last_zxid:x}) in {}. Something is broken! \
         (set snapshot.trust.empty=true to start from the logs alone)",
        dir.display()
    )]
    LogsWithoutSnapshot { dir: PathBuf, last_zxid: i64 },
    #[error("{0}")]
    InvalidArgument(String),
    /// A write failed earlier; the file may end in a partial entry, so nothing more is written.
    #[error("{}: txn log writer is unusable after an earlier write error", file.display())]
    Poisoned { file: PathBuf },
}

fn describe_tried(tried: &[(PathBuf, String)]) -> String {
    tried.iter().map(|(p, r)| format!("{}: {r}", p.display())).collect::<Vec<_>>().join("; ")
}

pub type Result<T> = std::result::Result<T, StorageError>;

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io { path: path.to_path_buf(), source }
}

/// Apache's `Util.getZxidFromName`: `<prefix>.<hex zxid>[.anything]`, hex parsed as a signed
/// Java long; anything else is not a file of that kind.
pub fn zxid_from_name(name: &str, prefix: &str) -> Option<i64> {
    let mut parts = name.split('.');
    if parts.next()? != prefix {
        return None;
    }
    let hex = parts.next()?;
    if hex.is_empty() || hex.starts_with('+') {
        return None;
    }
    i64::from_str_radix(hex, 16).ok().filter(|z| *z != -1)
}

/// Files named `<prefix>.<hex>...` in `dir`, sorted by zxid ascending. A missing directory is empty.
pub fn list_files(dir: &Path, prefix: &str) -> Result<Vec<(i64, PathBuf)>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut v = Vec::new();
    for e in rd {
        let e = e.map_err(io_err(dir))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(z) = zxid_from_name(name, prefix)
            && e.file_type().map(|t| t.is_file()).unwrap_or(false)
        {
            v.push((z, e.path()));
        }
    }
    v.sort();
    Ok(v)
}

/// fsync a directory so that a create/rename in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|f| f.sync_all()).map_err(io_err(dir))
}

#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// `snapshot.trust.empty`: with txn logs but no snapshot, start from an empty tree and replay
    /// the logs instead of failing.
    pub trust_empty_snapshot: bool,
    /// `extendedTypesEnabled`: ephemeralOwner values with the TTL bits are TTL nodes.
    pub extended_types: bool,
    /// Cut a torn tail off the last log file (reported in `Restored::truncated`). Apache leaves it;
    /// cutting is safe because a restarted server always starts a new log file.
    pub truncate_torn_tail: bool,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions { trust_empty_snapshot: false, extended_types: false, truncate_torn_tail: true }
    }
}

/// What a dataDir restored to.
pub struct Restored {
    pub tree: DataTree,
    /// Sessions from the snapshot plus createSession/closeSession replayed from the logs, by id.
    pub sessions: Vec<(SessionId, i32)>,
    /// Highest zxid seen: the snapshot's (from its file name) or the last replayed txn's.
    pub last_zxid: i64,
    /// The snapshot the tree started from (None: empty tree).
    pub snapshot: Option<SnapshotSummary>,
    /// The snapshot file and every log file read, in the order used.
    pub files_used: Vec<PathBuf>,
    /// Newer snapshots that could not be used, with the reason (Apache logs and skips them).
    pub skipped_snapshots: Vec<(PathBuf, String)>,
    /// A torn tail found at the end of the last log file.
    pub torn_tail: Option<TornTail>,
    /// (file, new length) if the torn tail was cut off.
    pub truncated: Option<(PathBuf, u64)>,
    /// Torn tails in older log files that were skipped because the next file continues the zxids.
    pub skipped_torn_tails: Vec<TornTail>,
    pub txns_replayed: u64,
    /// Tree digests (snapshot digest section, per-txn TxnDigest) that did not match the tree, as
    /// Apache counts `zk_digest_mismatches_count`. Not fatal.
    pub digest_mismatches: u64,
    /// The zxid of the first mismatch.
    pub first_digest_mismatch: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotSummary {
    pub path: PathBuf,
    pub zxid: i64,
    pub digest: Option<ZxidDigest>,
    pub trailer_zxid: Option<i64>,
}

/// `restore_with` with the default options.
pub fn restore(snap_dir: &Path, log_dir: &Path) -> Result<Restored> {
    restore_with(snap_dir, log_dir, &RestoreOptions::default())
}

/// Apache's `FileTxnSnapLog.restore` (reference §6.5): the newest snapshot that loads (up to
/// 100 are tried; one that fails its quick check, parse or Adler seals is skipped and logged),
/// then every logged txn with a higher zxid applied with `DataTree::apply`.
///
/// No snapshot: an empty tree (`DataTree::new()`), but if txn logs exist this fails unless
/// `trust_empty_snapshot`. The caller should write a snapshot right after (Apache does).
pub fn restore_with(snap_dir: &Path, log_dir: &Path, opts: &RestoreOptions) -> Result<Restored> {
    let mut files_used = Vec::new();
    let mut skipped_snapshots = Vec::new();
    let candidates = snapshot::find_valid_snapshots(snap_dir, MAX_SNAPSHOTS_TO_TRY)?;
    let all_snaps = list_files(snap_dir, snapshot::SNAP_PREFIX)?;
    for (_, p) in all_snaps.iter().rev() {
        if !snapshot::is_valid_snapshot(p) {
            tracing::warn!("Invalid snapshot {} (quick check failed: too short or bad tail/magic)", p.display());
            skipped_snapshots.push((p.clone(), "quick check failed (length < 10, bad tail or bad magic)".to_string()));
        }
    }
    let mut loaded = None;
    for (_, path) in &candidates {
        tracing::info!("Reading snapshot {}", path.display());
        match read_snapshot(path, opts.extended_types) {
            Ok(s) => {
                loaded = Some(s);
                break;
            }
            Err(e) => {
                tracing::warn!("problem reading snap file {}: {e}", path.display());
                skipped_snapshots.push((path.clone(), e.to_string()));
            }
        }
    }

    let (mut tree, mut sessions, snap_summary) = match loaded {
        Some(s) => {
            files_used.push(s.path.clone());
            let sessions: HashMap<i64, i32> = s.sessions.iter().map(|(id, t)| (id.0, *t)).collect();
            let summary = SnapshotSummary { path: s.path, zxid: s.zxid, digest: s.digest, trailer_zxid: s.trailer_zxid };
            (s.tree, sessions, Some(summary))
        }
        None if !all_snaps.is_empty() => {
            return Err(StorageError::NoValidSnapshot { dir: snap_dir.to_path_buf(), tried: skipped_snapshots });
        }
        None => {
            if let Some(last) = txnlog::last_logged_zxid(log_dir)? {
                if !opts.trust_empty_snapshot {
                    return Err(StorageError::LogsWithoutSnapshot { dir: log_dir.to_path_buf(), last_zxid: last });
                }
                tracing::warn!(
                    "No snapshot found, but there are log entries. This should only be allowed during upgrading."
                );
            }
            let mut t = DataTree::new();
            t.extended_types = opts.extended_types;
            (t, HashMap::new(), None)
        }
    };
    let snap_zxid = snap_summary.as_ref().map_or(0, |s| s.zxid);
    tree.last_processed_zxid = snap_zxid;

    let mut mismatches = 0u64;
    let mut first_mismatch = None;
    let mut note_mismatch = |zxid: i64, expected: u64, actual: u64| {
        tracing::error!("Digests are not matching at zxid 0x{zxid:x}: expected {expected}, tree {actual}");
        mismatches += 1;
        first_mismatch.get_or_insert(zxid);
    };
    // Apache compares the snapshot's digest when the tree reaches its zxid, and only then the
    // per-txn digests (before that the tree is "fuzzy").
    let mut pending = snap_summary.as_ref().and_then(|s| s.digest).filter(|d| d.zxid > 0);
    if let Some(d) = pending {
        if d.zxid < snap_zxid {
            tracing::info!("The start zxid of snapshot 0x{snap_zxid:x} is larger than the digest zxid 0x{:x}, skip comparing the digest.", d.zxid);
            pending = None;
        } else if d.zxid == snap_zxid {
            if d.version == crate::tree::digest::DIGEST_VERSION && d.digest != tree.digest.value {
                note_mismatch(d.zxid, d.digest, tree.digest.value);
            }
            pending = None;
        }
    }

    let mut reader = TxnLogReader::open(log_dir, snap_zxid)?;
    let mut highest = snap_zxid;
    let mut replayed = 0u64;
    let mut triggers = Vec::new();
    while let Some(e) = reader.next_entry()? {
        let LogEntry { hdr, txn, digest, .. } = e;
        if hdr.zxid < highest && highest != 0 {
            tracing::error!("0x{highest:x}(highestZxid) > 0x{:x}(next log) for type {}", hdr.zxid, hdr.txn_type);
        } else {
            highest = hdr.zxid;
        }
        match &txn {
            Txn::CreateSession { timeout } => {
                sessions.insert(hdr.client_id, *timeout);
            }
            Txn::CloseSession { .. } => {
                sessions.remove(&hdr.client_id);
            }
            _ => {}
        }
        debug_assert!(hdr.txn_type != txn_types::MULTI || matches!(txn, Txn::Multi(_)));
        triggers.clear();
        let r = tree.apply(&hdr, &txn, &mut triggers);
        if r.err != 0 {
            tracing::debug!("Ignoring processTxn failure zxid 0x{:x}, error {}, path {}", hdr.zxid, r.err, r.path);
        }
        replayed += 1;
        if let Some(d) = pending {
            if hdr.zxid == d.zxid {
                if d.version == crate::tree::digest::DIGEST_VERSION && d.digest != tree.digest.value {
                    note_mismatch(d.zxid, d.digest, tree.digest.value);
                }
                pending = None;
            } else if hdr.zxid > d.zxid {
                tracing::warn!("The txn 0x{:x} of snapshot digest does not exist.", d.zxid);
                pending = None;
            }
            continue;
        }
        if let Some(d) = digest
            && d.version == crate::tree::digest::DIGEST_VERSION
            && d.tree_digest != tree.digest.value
        {
            note_mismatch(hdr.zxid, d.tree_digest, tree.digest.value);
        }
    }
    if let Some(d) = pending {
        tracing::warn!(
            "Highest txn zxid 0x{highest:x} is not covering the snapshot digest zxid 0x{:x}, which might lead to inconsistent state",
            d.zxid
        );
    }
    files_used.extend(reader.files_read().iter().cloned());
    let torn_tail = reader.torn_tail().cloned();
    let skipped_torn_tails = reader.skipped_torn_tails().to_vec();
    let mut truncated = None;
    if let Some(t) = &torn_tail {
        tracing::warn!("{t}");
        if opts.truncate_torn_tail {
            truncate_at(&t.file, t.offset)?;
            truncated = Some((t.file.clone(), t.offset));
        }
    }
    let mut sessions: Vec<(SessionId, i32)> = sessions.into_iter().map(|(id, t)| (SessionId(id), t)).collect();
    sessions.sort();
    Ok(Restored {
        tree,
        sessions,
        last_zxid: highest,
        snapshot: snap_summary,
        files_used,
        skipped_snapshots,
        torn_tail,
        truncated,
        skipped_torn_tails,
        txns_replayed: replayed,
        digest_mismatches: mismatches,
        first_digest_mismatch: first_mismatch,
    })
}

/// Apache's `PurgeTxnLog.purge`: keep the newest `retain_count` snapshots (that pass the quick
/// validity check) and every log file needed to replay from the oldest of them — all logs from
/// the newest one whose start zxid is ≤ that snapshot's zxid; delete older snapshots and logs.
/// `retain_count` must be at least 3, as in Apache. Returns the deleted files.
pub fn purge(snap_dir: &Path, log_dir: &Path, retain_count: usize) -> Result<Vec<PathBuf>> {
    if retain_count < 3 {
        return Err(StorageError::InvalidArgument("count should be greater than or equal to 3".into()));
    }
    let snaps = snapshot::find_valid_snapshots(snap_dir, retain_count)?;
    let Some((least, _)) = snaps.last() else { return Ok(Vec::new()) };
    let least = *least;
    let logs = list_files(log_dir, txnlog::LOG_PREFIX)?;
    let retained_logs = txnlog::logs_from(&logs, least);
    let mut doomed: Vec<PathBuf> = logs
        .iter()
        .filter(|(z, p)| *z < least && !retained_logs.iter().any(|(_, r)| r == p))
        .map(|(_, p)| p.clone())
        .collect();
    doomed.extend(list_files(snap_dir, snapshot::SNAP_PREFIX)?.into_iter().filter(|(z, _)| *z < least).map(|(_, p)| p));
    let mut deleted = Vec::new();
    for f in doomed {
        tracing::info!("Removing file: {}", f.display());
        match std::fs::remove_file(&f) {
            Ok(()) => deleted.push(f),
            Err(e) => tracing::warn!("Failed to remove {}: {e}", f.display()),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests;

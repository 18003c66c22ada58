//! Durability: restore at start-up, then one log thread that appends proposed txns to the txn
//! log, fsyncs, and only then lets the engine apply and answer them.
//!
//! Group commit: while an fsync is in flight, newly proposed txns queue in the channel; the next
//! round appends all of them and covers them with a single fsync. No reply leaves before the fsync
//! that covers its txn (with forceSync=yes, the default).

use super::config::ServerConfig;
use super::Shared;
use crate::engine::{Now, Proposal};
use crate::jute::txn::{Txn, TxnHeader};
use crate::storage::snapshot::{write_snapshot, write_snapshot_fuzzy, Compression, SnapshotOptions};
use crate::storage::txnlog::TxnLogWriter;
use crate::storage::{purge, restore_with, RestoreOptions};
use crate::tree::DataTree;
use crate::types::{SessionId, Zxid};
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type LogSender = Sender<LogMsg>;

/// One txn to log: prepared here (standalone) or already encoded (an ensemble's PROPOSAL).
pub enum LogRecord {
    Txn(Proposal),
    Encoded { zxid: i64, bytes: bytes::Bytes },
}

impl LogRecord {
    pub fn zxid(&self) -> i64 {
        match self {
            LogRecord::Txn(p) => p.hdr.zxid,
            LogRecord::Encoded { zxid, .. } => *zxid,
        }
    }
}

/// What the log thread is asked to do, in order.
pub enum LogMsg {
    Append(Vec<LogRecord>),
    /// End the current file (the next append starts a new one).
    Roll(Sender<()>),
    /// Drop every txn after this zxid (a learner told TRUNC); the generation is the one the
    /// reports after it must carry.
    Truncate(i64, u64, Sender<Result<(), String>>),
}

/// What start-up restored from the dataDir.
pub struct Loaded {
    pub tree: DataTree,
    pub sessions: Vec<(SessionId, i32)>,
}

pub fn snapshot_options(cfg: &ServerConfig) -> Result<SnapshotOptions, String> {
    let compression = Compression::from_config(&cfg.snapshot_compression_method).map_err(|e| e.to_string())?;
    // Without the digest section the 3.9 trailer is left out too: a reader cannot tell a trailer
    // from a digest section (Apache's readers decide by their own digest setting), while a file
    // that ends after seal 1 loads everywhere.
    Ok(SnapshotOptions { compression, digest: cfg.digest_enabled, last_processed_zxid: cfg.digest_enabled, ..Default::default() })
}

/// Apache's start-up: newest valid snapshot + log replay, sessions that own ephemerals but are
/// gone are killed, then a fresh snapshot is taken.
pub fn load(cfg: &ServerConfig) -> Result<Loaded, String> {
    let (snap_dir, log_dir) = (cfg.snap_dir(), cfg.txn_log_dir());
    for d in [&snap_dir, &log_dir] {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    // A snapshot cut short by a crash leaves its temp file (never renamed, so never used).
    if let Ok(entries) = std::fs::read_dir(&snap_dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".snapshot.") && name.ends_with(".tmp") {
                tracing::info!("removing {}, left by an interrupted snapshot", e.path().display());
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let started = Instant::now();
    let opts = RestoreOptions { trust_empty_snapshot: cfg.snapshot_trust_empty, extended_types: cfg.extended_types_enabled, ..Default::default() };
    let r = restore_with(&snap_dir, &log_dir, &opts).map_err(|e| e.to_string())?;
    for (path, why) in &r.skipped_snapshots {
        tracing::warn!("skipped snapshot {}: {why}", path.display());
    }
    if let Some((file, len)) = &r.truncated {
        tracing::warn!("truncated a torn txn log tail: {} cut at offset {len}", file.display());
    }
    if r.digest_mismatches > 0 {
        tracing::warn!("{} digest mismatches while restoring (first at zxid {:?})", r.digest_mismatches, r.first_digest_mismatch.map(Zxid));
    }
    let mut tree = r.tree;
    let live: HashSet<SessionId> = r.sessions.iter().map(|s| s.0).collect();
    let dead: Vec<SessionId> = tree.ephemeral_sessions().map(|(s, _)| s).filter(|s| !live.contains(s)).collect();
    let cleaned = !dead.is_empty();
    for sid in dead {
        // As Apache's ZKDatabase.loadData: applied directly at the last zxid, not logged.
        let paths = tree.ephemerals_of(sid);
        tracing::info!(session = %sid, "removing {} ephemerals of a session that no longer exists", paths.len());
        let hdr = TxnHeader { client_id: sid.0, cxid: 0, zxid: tree.last_processed_zxid, time: 0, txn_type: -11 };
        tree.apply(&hdr, &Txn::CloseSession { paths }, &mut Vec::new());
    }
    tracing::info!(
        "Loaded {} znodes and {} sessions up to zxid {} from {} files in {} ms ({} txns replayed)",
        tree.len(),
        r.sessions.len(),
        Zxid(tree.last_processed_zxid),
        r.files_used.len(),
        started.elapsed().as_millis(),
        r.txns_replayed
    );
    // A fresh server writes snapshot.0 (as Apache). Otherwise a standalone server snapshots what
    // it restored only when the restore changed the tree beyond replaying its own files: the
    // ephemerals of dead sessions removed above are not logged, and a later replay must not see
    // them again under txns logged after this start (Apache's ZooKeeperServer.loadData snapshots
    // every time). A tree that is exactly snapshot + log needs no new snapshot: the files give it
    // back, and start-up is not held up writing the whole tree. An ensemble member never
    // snapshots here: its log may end in txns no leader committed, which a TRUNC must be able to
    // take back (a TRUNC removes snapshots newer than its zxid).
    let had_snapshot = r.snapshot.is_some();
    if !had_snapshot || (!cfg.is_quorum() && cleaned) {
        write_snapshot(&snap_dir, &tree, &r.sessions, &snapshot_options(cfg)?).map_err(|e| e.to_string())?;
    }
    Ok(Loaded { tree, sessions: r.sessions })
}

/// Starts the log thread; returns the sender the engine's proposals go to and the log core it
/// shares with the inline path.
pub fn start(shared: Arc<Shared>) -> Result<(LogSender, Arc<parking_lot::Mutex<LogCore>>), String> {
    let cfg = &shared.config;
    let writer = TxnLogWriter::with_prealloc(cfg.txn_log_dir(), cfg.pre_alloc_size_kb * 1024);
    let (tx, rx) = std::sync::mpsc::channel();
    let snap_count = cfg.snap_count.max(2) as u64;
    let mut rng = rand::rngs::StdRng::from_entropy();
    let roll_at = snap_count / 2 + rng.gen_range(0..snap_count / 2 + 1);
    let core = Arc::new(parking_lot::Mutex::new(LogCore {
        writer,
        snap_count,
        rng,
        roll_at,
        since_snapshot: 0,
        warn_ms: fsync_warning_ms(cfg),
        snap_opts: snapshot_options(cfg)?,
        snapshot_running: Arc::new(AtomicBool::new(false)),
    }));
    let c = core.clone();
    std::thread::Builder::new().name("rzk-txnlog".into()).spawn(move || log_loop(shared, c, rx)).map_err(|e| e.to_string())?;
    Ok((tx, core))
}

/// The txn log and where the next snapshot falls. The log thread holds it while it writes a
/// batch; a standalone server's request path takes it instead when nothing else is being logged
/// or waiting to be (`log_inline`). Lock order: the log core before the state lock (the state
/// lock's holder only ever *tries* the core).
pub struct LogCore {
    writer: TxnLogWriter,
    snap_count: u64,
    rng: rand::rngs::StdRng,
    roll_at: u64,
    since_snapshot: u64,
    warn_ms: u64,
    snap_opts: SnapshotOptions,
    snapshot_running: Arc<AtomicBool>,
}

impl LogCore {
    /// Appends, flushes and (forceSync) fsyncs a batch; returns its last zxid and whether the
    /// log is due to roll (done after the batch is answered: `roll_and_snapshot`).
    fn write_batch(&mut self, shared: &Shared, batch: &[LogRecord]) -> (i64, bool) {
        for r in batch {
            let res = match r {
                LogRecord::Txn(p) => self.writer.append(&p.hdr, &p.txn, p.digest),
                LogRecord::Encoded { zxid, bytes } => self.writer.append_raw(*zxid, bytes),
            };
            if let Err(e) = res {
                fatal("appending to the txn log", e);
            }
        }
        if let Err(e) = self.writer.flush() {
            fatal("writing the txn log", e);
        }
        if shared.config.force_sync {
            let t = Instant::now();
            if let Err(e) = self.writer.sync() {
                fatal("fsync of the txn log", e);
            }
            let ms = t.elapsed().as_millis() as u64;
            if ms > self.warn_ms {
                tracing::warn!("fsync-ing the write ahead log took {ms}ms which will adversely effect operation latency");
            }
            shared.record_fsync(t.elapsed(), batch.len());
        }
        self.since_snapshot += batch.len() as u64;
        (batch.last().map(LogRecord::zxid).unwrap_or(0), self.since_snapshot > self.roll_at)
    }

    /// Ends the log file and starts a fuzzy snapshot (Apache's SyncRequestProcessor after
    /// ~snapCount txns, randomised).
    fn roll_and_snapshot(&mut self, shared: &Arc<Shared>) {
        self.since_snapshot = 0;
        let n = self.snap_count;
        self.roll_at = n / 2 + self.rng.gen_range(0..n / 2 + 1);
        if let Err(e) = self.writer.roll() {
            fatal("rolling the txn log", e);
        }
        // On its own thread, as Apache's "Snapshot Thread": logging goes on meanwhile. One
        // snapshot at a time; a trigger while one runs is skipped (Apache does the same).
        let flag = self.snapshot_running.clone();
        if flag.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
            tracing::warn!("Too busy to snap, skipping");
            return;
        }
        let (shared, opts) = (shared.clone(), self.snap_opts.clone());
        let spawned = std::thread::Builder::new().name("rzk-snapshot".into()).spawn(move || {
            take_snapshot(&shared, &opts);
            flag.store(false, Ordering::Release);
        });
        if let Err(e) = spawned {
            tracing::error!("cannot start the snapshot thread: {e}");
            self.snapshot_running.store(false, Ordering::Release);
        }
    }
}

/// Standalone: applies and answers every txn up to `last`, now durable.
fn answer_durable(shared: &Shared, last: i64) {
    let now: Now = shared.now();
    let mut st = shared.lock();
    let mut out = Vec::new();
    st.engine.committed(last, now, &mut out);
    st.dispatch(out);
}

/// A standalone server's lone write, logged by the thread that prepared it once the state lock is
/// released: nothing older was waiting to be logged or answered, and the log core was free, so
/// this saves waking the log thread (tens of µs on a virtual machine) on a lone write's latency.
/// Under load the core is busy and writes take the log thread's group commit.
pub fn log_inline(shared: &Arc<Shared>, mut core: parking_lot::ArcMutexGuard<parking_lot::RawMutex, LogCore>, props: Vec<Proposal>) {
    let batch: Vec<LogRecord> = props.into_iter().map(LogRecord::Txn).collect();
    let (last, roll) = core.write_batch(shared, &batch);
    answer_durable(shared, last);
    if roll {
        core.roll_and_snapshot(shared);
    }
}

fn fatal(what: &str, e: impl std::fmt::Display) -> ! {
    // A write that cannot be made durable must not be acknowledged; stopping is the only safe
    // answer (the txns already acknowledged are on disk).
    tracing::error!("Severe unrecoverable error: {what}: {e}; exiting");
    eprintln!("Severe unrecoverable error: {what}: {e}");
    std::process::exit(3);
}

/// Applies and answers txns once the log thread reports them durable, coalescing reports that
/// arrive while it is busy.
fn commit_loop(shared: Arc<Shared>, rx: Receiver<(i64, u64)>) {
    while let Ok((mut last, mut generation_)) = rx.recv() {
        while let Ok((more, g)) = rx.try_recv() {
            if g != generation_ {
                // Reports from before a truncation are stale: only the newest generation counts.
                last = more;
                generation_ = g;
            } else {
                last = last.max(more);
            }
        }
        let now: Now = shared.now();
        let mut st = shared.lock();
        if st.quorum.is_some() {
            // In an ensemble, durable is not committed: the peer ACKs (or, leading, counts its
            // own ACK) and commits when a quorum has logged it.
            super::quorum::logged(&shared, &mut st, last, generation_);
            continue;
        }
        let mut out = Vec::new();
        st.engine.committed(last, now, &mut out);
        st.dispatch(out);
    }
}

fn log_loop(shared: Arc<Shared>, core: Arc<parking_lot::Mutex<LogCore>>, rx: Receiver<LogMsg>) {
    let cfg = &shared.config;
    let quorum_mode = cfg.is_quorum();
    let mut generation = 0u64;
    let (commit_tx, commit_rx) = std::sync::mpsc::channel::<(i64, u64)>();
    let committer = {
        let shared = shared.clone();
        std::thread::Builder::new().name("rzk-commit".into()).spawn(move || commit_loop(shared, commit_rx))
    };
    if let Err(e) = committer {
        fatal("starting the commit thread", e);
    }
    // Proposals taken from the channel while deciding where to commit, for the next round.
    let mut carry: Option<LogMsg> = None;
    loop {
        let msg = match carry.take() {
            Some(m) => m,
            None => match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            },
        };
        let mut c = core.lock();
        let mut batch = match msg {
            LogMsg::Append(b) => b,
            LogMsg::Roll(done) => {
                if let Err(e) = c.writer.roll() {
                    fatal("rolling the txn log", e);
                }
                let _ = done.send(());
                continue;
            }
            LogMsg::Truncate(zxid, generation_, done) => {
                generation = generation_;
                let r = c.writer.close().map_err(|e| e.to_string()).and_then(|_| crate::storage::txnlog::truncate_after(&cfg.txn_log_dir(), &cfg.snap_dir(), zxid).map_err(|e| e.to_string()));
                c.writer = TxnLogWriter::with_prealloc(cfg.txn_log_dir(), cfg.pre_alloc_size_kb * 1024);
                let _ = done.send(r);
                continue;
            }
        };
        // Group commit: everything proposed while the previous fsync ran shares this one.
        // Anything else waits for the next round, in order.
        while let Ok(more) = rx.try_recv() {
            match more {
                LogMsg::Append(b) => batch.extend(b),
                other => {
                    carry = Some(other);
                    break;
                }
            }
        }
        let (last, roll) = c.write_batch(&shared, &batch);
        // Under load, applying and answering happens on the commit thread, so the next batch's
        // write and fsync overlap with this batch's replies. When nothing else is waiting to be
        // logged, answering here saves a thread hand-off on the latency of a lone write. Either
        // way `committed` applies everything up to `last` in zxid order, whoever gets there first.
        if carry.is_none() {
            carry = rx.try_recv().ok();
        }
        // In an ensemble the report always goes through the commit thread: this thread must
        // never wait for the state lock, which a TRUNC holds while it waits for this thread.
        if carry.is_some() || quorum_mode {
            if commit_tx.send((last, generation)).is_err() {
                fatal("handing committed txns over", "the commit thread is gone");
            }
        } else {
            answer_durable(&shared, last);
        }
        if roll {
            c.roll_and_snapshot(&shared);
        }
    }
    if let Err(e) = core.lock().writer.close() {
        tracing::warn!("closing the txn log: {e}");
    }
}

fn fsync_warning_ms(cfg: &ServerConfig) -> u64 {
    cfg.raw.get("fsync.warningthresholdms").or_else(|| cfg.raw.get("zookeeper.fsync.warningthresholdms")).and_then(|v| v.trim().parse().ok()).unwrap_or(1000)
}

/// A fuzzy snapshot (as Apache's): the tree is serialised a chunk of nodes at a time, holding
/// the engine lock only per chunk, so requests keep being served; then the file is written
/// outside the lock. It is named after the last zxid applied when it started: replaying the log
/// from there makes it exact.
pub fn take_snapshot(shared: &Shared, opts: &SnapshotOptions) {
    const CHUNK: usize = 2_000;
    let t = Instant::now();
    let (start_zxid, sessions) = {
        let st = shared.lock();
        let sessions: Vec<(SessionId, i32)> = st.engine.sessions.iter().map(|s| (s.id, s.timeout_ms)).collect();
        (st.engine.tree.last_processed_zxid, sessions)
    };
    // Straight to the file: only the node section is buffered (the ACL section before it is
    // known only once the walk is over).
    let res = write_snapshot_fuzzy(
        &shared.config.snap_dir(),
        start_zxid,
        &sessions,
        || shared.lock_tree(),
        opts,
        CHUNK,
    );
    match res {
        Ok(p) => tracing::info!("snapshot {} written in {} ms", p.display(), t.elapsed().as_millis()),
        Err(e) => tracing::error!("snapshot failed: {e}"),
    }
}

/// Autopurge: every `purgeInterval` hours keep the newest `snapRetainCount` snapshots and the
/// logs needed to replay from the oldest of them.
pub async fn purge_loop(shared: Arc<Shared>) {
    let hours = shared.config.purge_interval_hours();
    if hours == 0 {
        return;
    }
    let keep = shared.config.snap_retain_count().max(3) as usize;
    let mut iv = tokio::time::interval(Duration::from_secs(hours as u64 * 3600));
    loop {
        iv.tick().await;
        let (snap, log) = (shared.config.snap_dir(), shared.config.txn_log_dir());
        match tokio::task::spawn_blocking(move || purge(&snap, &log, keep)).await {
            Ok(Ok(deleted)) => tracing::info!("autopurge: removed {} files, keeping {keep} snapshots", deleted.len()),
            Ok(Err(e)) => tracing::warn!("autopurge failed: {e}"),
            Err(e) => tracing::warn!("autopurge task failed: {e}"),
        }
    }
}

/// `csnp` (ClickHouse Keeper's "create snapshot"): starts a snapshot now and answers the zxid it
/// is taken at, in decimal; or says why it could not.
pub fn csnp(shared: &Arc<Shared>) -> String {
    let opts = match snapshot_options(&shared.config) {
        Ok(o) => o,
        Err(e) => return format!("Failed to schedule snapshot creation task: {e}\n"),
    };
    let zxid = shared.lock().engine.tree.last_processed_zxid;
    let s = shared.clone();
    match std::thread::Builder::new().name("rzk-snapshot".into()).spawn(move || take_snapshot(&s, &opts)) {
        Ok(_) => format!("{zxid}\n"),
        Err(e) => format!("Failed to schedule snapshot creation task: {e}\n"),
    }
}

/// `lgif` (ClickHouse Keeper's log info), in its `key\tvalue` lines, with zxids for log indexes
/// and epochs for terms.
pub fn lgif(shared: &Arc<Shared>) -> String {
    let cfg = &shared.config;
    let logs = crate::storage::list_files(&cfg.txn_log_dir(), "log").unwrap_or_default();
    let snaps = crate::storage::snapshot::list_snapshots(&cfg.snap_dir()).unwrap_or_default();
    let first = logs.iter().map(|l| l.0).min().unwrap_or(0);
    let last_logged = crate::storage::txnlog::last_logged_zxid(&cfg.txn_log_dir()).ok().flatten().unwrap_or(0);
    let committed = shared.lock().engine.tree.last_processed_zxid;
    let last = last_logged.max(committed);
    let snap = snaps.iter().map(|s| s.0).max().unwrap_or(0);
    let term = |z: i64| z >> 32;
    format!(
        "first_log_idx\t{first}\nfirst_log_term\t{}\nlast_log_idx\t{last}\nlast_log_term\t{}\nlast_committed_log_idx\t{committed}\n\
         leader_committed_log_idx\t{committed}\ntarget_committed_log_idx\t{committed}\nlast_snapshot_idx\t{snap}\n",
        term(first),
        term(last)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::acl::open_acl_unsafe;

    fn snapshots(cfg: &ServerConfig) -> Vec<i64> {
        crate::storage::snapshot::list_snapshots(&cfg.snap_dir()).unwrap().into_iter().map(|s| s.0).collect()
    }

    fn create(zxid: i64, owner: i64, path: &str, ephemeral: bool) -> (TxnHeader, Txn) {
        let hdr = TxnHeader { client_id: owner, cxid: 1, zxid, time: 1, txn_type: 1 };
        let txn = Txn::Create { create2: false, path: path.into(), data: None, acl: open_acl_unsafe(), ephemeral, parent_cversion: -1 };
        (hdr, txn)
    }

    #[test]
    fn a_restart_snapshots_only_a_fresh_dir_or_a_tree_it_changed() {
        let dir = std::env::temp_dir().join(format!("rzk-durability-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = ServerConfig::default_standalone(dir.clone());
        // Fresh: snapshot.0, as Apache.
        load(&cfg).unwrap();
        assert_eq!(snapshots(&cfg), vec![0]);
        // One create logged, then a restart.
        let log_then_load = |zxid: i64, owner: i64, path: &str, ephemeral: bool| {
            let mut w = TxnLogWriter::new(cfg.txn_log_dir());
            let (h, t) = create(zxid, owner, path, ephemeral);
            w.append(&h, &t, None).unwrap();
            w.close().unwrap();
            load(&cfg).unwrap()
        };
        // A logged txn: the restart replays it and writes nothing (snapshot + log give it back).
        let l = log_then_load(1, 0, "/a", false);
        assert!(l.tree.lookup("/a").is_some());
        assert_eq!(snapshots(&cfg), vec![0]);
        // An ephemeral whose session is not live: removed at load, which is not logged, so the
        // changed tree is snapshotted before anything else is logged after it.
        let l = log_then_load(2, 0x77, "/eph", true);
        assert!(l.tree.lookup("/eph").is_none());
        assert_eq!(snapshots(&cfg), vec![0, 2]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

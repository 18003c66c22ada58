//! Crash tests: the real `rzk-server` binary is killed with SIGKILL at random moments while
//! several sessions pipeline writes, then restarted on the same dataDir. After every restart:
//! every acknowledged write is present (with its data and zxid), nothing unacknowledged is
//! half-applied (multis are all-or-nothing, failed writes change nothing, each session's effects
//! are a prefix of what it sent), zxids keep increasing, sessions and their ephemerals survive,
//! every snapshot the server wrote loads, restore finds no digest mismatch, and the server always
//! starts. Torn and bit-flipped txn-log tails and corrupt or empty snapshots are handled too.
//!
//! * `kill9_never_loses_acknowledged_writes`: the randomized kill -9 rounds (see its comments).
//! * `snapshots_load_after_kill9_with_every_format_option`: compression × digest section.
//! * `fuzzy_snapshot_then_replay_rebuilds_the_live_tree`: the same property without a process,
//!   deterministic: a write between two chunks of a fuzzy snapshot, then snapshot + replay.
//! * `sessions_and_ephemerals_survive_kill9`: reconnect, expiry on schedule, close.
//! * `torn_or_bit_flipped_log_tail_is_cut`, `empty_or_headerless_newest_log_is_removed`,
//!   `bit_flip_before_the_tail_refuses_to_start`: damaged txn logs.
//! * `corrupt_newest_snapshot_falls_back`, `zero_length_snapshot_is_skipped`: damaged snapshots.
//!
//! `RZK_CRASH_ROUNDS` (default 20) sets the number of kill -9 rounds; `RZK_CRASH_SEED` fixes the
//! seed (otherwise a random one is printed; re-run with it to get the same choices — the moment
//! of each kill still depends on timing). `RZK_KEEP_TEST_DIRS=1` keeps the dataDirs.

mod common;

use common::{DirWatch, PidFd, RzkServer, rzk_server_bin, try_four_letter, wait_readable};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rzk::jute::records::*;
use rzk::jute::txn::Txn;
use rzk::jute::{Jute, Reader, Writer};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// A small raw client
// ---------------------------------------------------------------------------------------------

const OP_CREATE: i32 = 1;
const OP_DELETE: i32 = 2;
const OP_EXISTS: i32 = 3;
const OP_GET_DATA: i32 = 4;
const OP_SET_DATA: i32 = 5;
const OP_GET_CHILDREN: i32 = 8;
const OP_PING: i32 = 11;
const OP_MULTI: i32 = 14;
const OP_CREATE2: i32 = 15;
const OP_CLOSE: i32 = -11;
const ERR_NONODE: i32 = -101;
const XID_WATCH: i32 = -1;
const XID_PING: i32 = -2;
const FLAG_EPHEMERAL: i32 = 1;
const EVENT_NODE_DELETED: i32 = 2;

fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn seed_from_env() -> u64 {
    match std::env::var("RZK_CRASH_SEED") {
        Ok(s) => s.trim().parse().expect("RZK_CRASH_SEED must be a u64"),
        Err(_) => rand::random(),
    }
}

struct Client {
    s: TcpStream,
    xid: i32,
    sid: i64,
    passwd: Vec<u8>,
    timeout: i32,
    /// Highest zxid in any reply header.
    last_zxid: i64,
    events: VecDeque<WatcherEvent>,
}

impl Client {
    /// A new session.
    fn connect(port: u16, timeout_ms: i32) -> io::Result<Client> {
        let (c, resp) = Client::handshake(port, timeout_ms, 0, vec![0; 16], 0)?;
        if resp.session_id == 0 {
            return Err(io::Error::other("server refused a new session"));
        }
        Ok(c)
    }

    /// Sends a ConnectRequest; returns the client and the server's ConnectResponse (session 0 =
    /// refused). An EOF instead of a response is an error.
    fn handshake(port: u16, timeout_ms: i32, sid: i64, passwd: Vec<u8>, last_zxid: i64) -> io::Result<(Client, ConnectResponse)> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        s.set_write_timeout(Some(Duration::from_secs(20)))?;
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: last_zxid,
            time_out: timeout_ms,
            session_id: sid,
            passwd: Some(passwd),
            read_only: Some(false),
        };
        let mut c = Client { s, xid: 0, sid: 0, passwd: Vec::new(), timeout: 0, last_zxid, events: VecDeque::new() };
        c.s.write_all(&framed(&req.to_bytes()))?;
        let f = c.read_frame()?;
        let resp = ConnectResponse::from_bytes(&f).map_err(|e| io::Error::other(format!("bad ConnectResponse: {e:?}")))?;
        c.sid = resp.session_id;
        c.passwd = resp.passwd.clone();
        c.timeout = resp.time_out;
        Ok((c, resp))
    }

    fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        let mut len = [0u8; 4];
        self.s.read_exact(&mut len)?;
        let n = i32::from_be_bytes(len);
        if !(0..=(16 << 20)).contains(&n) {
            return Err(io::Error::other(format!("bad frame length {n}")));
        }
        let mut b = vec![0; n as usize];
        self.s.read_exact(&mut b)?;
        Ok(b)
    }

    fn send_xid(&mut self, xid: i32, op: i32, body: &[u8]) -> io::Result<()> {
        let mut w = Writer::new();
        RequestHeader { xid, op }.write(&mut w);
        w.buf.extend_from_slice(body);
        self.s.write_all(&framed(&w.buf))
    }

    fn send(&mut self, op: i32, body: &[u8]) -> io::Result<i32> {
        self.xid += 1;
        let xid = self.xid;
        self.send_xid(xid, op, body)?;
        Ok(xid)
    }

    /// The next reply; watch events are queued in `events` instead.
    fn recv(&mut self) -> io::Result<(ReplyHeader, Vec<u8>)> {
        loop {
            let f = self.read_frame()?;
            let mut r = Reader::new(&f);
            let h = ReplyHeader::read(&mut r).map_err(|e| io::Error::other(format!("bad ReplyHeader: {e:?}")))?;
            if h.xid == XID_WATCH {
                let ev = WatcherEvent::read(&mut r).map_err(|e| io::Error::other(format!("bad WatcherEvent: {e:?}")))?;
                self.events.push_back(ev);
                continue;
            }
            self.last_zxid = self.last_zxid.max(h.zxid);
            return Ok((h, r.rest().to_vec()));
        }
    }

    fn call(&mut self, op: i32, body: &[u8]) -> io::Result<(ReplyHeader, Vec<u8>)> {
        let xid = self.send(op, body)?;
        loop {
            let (h, b) = self.recv()?;
            if h.xid == xid {
                return Ok((h, b));
            }
            if h.xid != XID_PING {
                return Err(io::Error::other(format!("reply for xid {} while waiting for {xid}", h.xid)));
            }
        }
    }

    fn ping(&mut self) -> io::Result<()> {
        self.send_xid(XID_PING, OP_PING, &[])?;
        loop {
            let (h, _) = self.recv()?;
            if h.xid == XID_PING {
                return Ok(());
            }
        }
    }

    /// Create2; Ok(Err(code)) on a ZooKeeper error.
    fn create(&mut self, path: &str, data: &[u8], flags: i32) -> io::Result<Result<(i64, Stat), i32>> {
        let req = CreateRequest { path: path.into(), data: Some(data.to_vec()), acl: rzk::tree::acl::open_acl_unsafe(), flags };
        let (h, b) = self.call(OP_CREATE2, &req.to_bytes())?;
        if h.err != 0 {
            return Ok(Err(h.err));
        }
        let r = Create2Response::from_bytes(&b).map_err(|e| io::Error::other(format!("{e:?}")))?;
        Ok(Ok((h.zxid, r.stat)))
    }

    fn must_create(&mut self, path: &str, data: &[u8], flags: i32) -> (i64, Stat) {
        match self.create(path, data, flags).unwrap_or_else(|e| panic!("create {path}: {e}")) {
            Ok(v) => v,
            Err(code) => panic!("create {path} failed with {code}"),
        }
    }

    fn get_data(&mut self, path: &str) -> Option<(Vec<u8>, Stat)> {
        let (h, b) = self.call(OP_GET_DATA, &PathWatchRequest { path: path.into(), watch: false }.to_bytes()).unwrap_or_else(|e| panic!("getData {path}: {e}"));
        match h.err {
            0 => {
                let r = GetDataResponse::from_bytes(&b).unwrap();
                Some((r.data.unwrap_or_default(), r.stat))
            }
            ERR_NONODE => None,
            e => panic!("getData {path} failed with {e}"),
        }
    }

    /// exists with a watch; Some(stat) if it exists.
    fn exists_watch(&mut self, path: &str) -> Option<Stat> {
        let (h, b) = self.call(OP_EXISTS, &PathWatchRequest { path: path.into(), watch: true }.to_bytes()).unwrap_or_else(|e| panic!("exists {path}: {e}"));
        match h.err {
            0 => Some(StatResponse::from_bytes(&b).unwrap().stat),
            ERR_NONODE => None,
            e => panic!("exists {path} failed with {e}"),
        }
    }

    fn children(&mut self, path: &str) -> Option<BTreeSet<String>> {
        let (h, b) = self.call(OP_GET_CHILDREN, &PathWatchRequest { path: path.into(), watch: false }.to_bytes()).unwrap_or_else(|e| panic!("getChildren {path}: {e}"));
        match h.err {
            0 => Some(GetChildrenResponse::from_bytes(&b).unwrap().children.into_iter().collect()),
            ERR_NONODE => None,
            e => panic!("getChildren {path} failed with {e}"),
        }
    }

    /// getData of many paths, pipelined.
    fn get_many(&mut self, paths: &[String]) -> Vec<Option<(Vec<u8>, Stat)>> {
        let mut out = Vec::with_capacity(paths.len());
        let mut inflight = VecDeque::new();
        let mut next = 0;
        while out.len() < paths.len() {
            while inflight.len() < 256 && next < paths.len() {
                let xid = self.send(OP_GET_DATA, &PathWatchRequest { path: paths[next].clone(), watch: false }.to_bytes()).expect("send getData");
                inflight.push_back((xid, next));
                next += 1;
            }
            let (h, b) = self.recv().expect("getData reply");
            let (xid, i) = inflight.pop_front().unwrap();
            assert_eq!(h.xid, xid, "replies out of order");
            out.push(match h.err {
                0 => {
                    let r = GetDataResponse::from_bytes(&b).unwrap();
                    Some((r.data.unwrap_or_default(), r.stat))
                }
                ERR_NONODE => None,
                e => panic!("getData {} failed with {e}", paths[i]),
            });
        }
        out
    }

    fn close_session(&mut self) {
        let (h, _) = self.call(OP_CLOSE, &[]).expect("closeSession");
        assert_eq!(h.err, 0, "closeSession");
    }
}

fn multi_create_body(nodes: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = Writer::new();
    for (p, d) in nodes {
        MultiHeader { op: OP_CREATE, done: false, err: -1 }.write(&mut w);
        CreateRequest { path: p.to_string(), data: Some(d.to_vec()), acl: rzk::tree::acl::open_acl_unsafe(), flags: 0 }.write(&mut w);
    }
    MultiHeader { op: -1, done: true, err: -1 }.write(&mut w);
    w.buf
}

/// The error codes in a multi reply's results (empty: every op succeeded). The reply header's err
/// stays 0 for a failed multi, as in Apache.
fn multi_errors(body: &[u8]) -> Vec<i32> {
    let mut r = Reader::new(body);
    let mut errs = Vec::new();
    loop {
        let Ok(h) = MultiHeader::read(&mut r) else {
            errs.push(i32::MIN); // unparsable
            return errs;
        };
        if h.done {
            return errs;
        }
        match h.op {
            -1 => {
                let e = ErrorResponse::read(&mut r).map(|e| e.err).unwrap_or(i32::MIN);
                if e != 0 {
                    errs.push(e);
                }
            }
            OP_CREATE => {
                if CreateResponse::read(&mut r).is_err() {
                    errs.push(i32::MIN);
                }
            }
            _ => {
                errs.push(i32::MIN);
                return errs;
            }
        }
    }
}

fn create2_body(path: &str, data: &[u8]) -> Vec<u8> {
    CreateRequest { path: path.into(), data: Some(data.to_vec()), acl: rzk::tree::acl::open_acl_unsafe(), flags: 0 }.to_bytes()
}

/// Random data tagged with `tag`, mostly small, sometimes a few KB (so that log entries cross
/// preallocation steps).
fn gen_data(rng: &mut StdRng, tag: &str) -> Vec<u8> {
    let len = match rng.gen_range(0..100) {
        0..=79 => rng.gen_range(0..64),
        80..=94 => rng.gen_range(64..1024),
        _ => rng.gen_range(1024..6000),
    };
    let mut d = tag.as_bytes().to_vec();
    d.push(b'|');
    d.extend((0..len).map(|_| rng.r#gen::<u8>()));
    d
}

/// The `Zxid: 0x..` line of `srvr`.
fn srvr_zxid(port: u16) -> i64 {
    let s = try_four_letter(port, "srvr").expect("srvr");
    let line = s.lines().find(|l| l.starts_with("Zxid: 0x")).unwrap_or_else(|| panic!("no Zxid in srvr: {s}"));
    i64::from_str_radix(&line["Zxid: 0x".len()..], 16).unwrap()
}

fn check_serving(server: &RzkServer) {
    assert_eq!(try_four_letter(server.port, "ruok").expect("ruok"), "imok");
    let s = try_four_letter(server.port, "srvr").expect("srvr");
    assert!(s.contains("Mode: standalone"), "srvr after restart: {s}");
}

/// Server output (stdout + stderr) written since `from` (a value of `output_mark`).
/// Starts the server and SIGKILLs it at a start-up stage picked at random: at once, or as soon
/// as its log shows it reading a snapshot, done restoring, writing a start-up snapshot, or
/// binding the client port (the last stage: a stage that does not happen ends there). Blocks on
/// the log (inotify) and the process, never sleeps.
fn kill_during_startup(server: &RzkServer, rng: &mut StdRng) {
    const STAGES: [Option<&str>; 5] = [None, Some("Reading snapshot"), Some("Loaded "), Some("Snapshotting"), Some("binding to port")];
    let stage = STAGES[rng.gen_range(0..STAGES.len())];
    let mark = output_mark(server);
    let watch = DirWatch::new(server.dir());
    let mut child = spawn_raw(server);
    if let Some(needle) = stage {
        let pid = PidFd::open(child.id()).expect("pidfd_open");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            watch.drain();
            let out = output_since(server, mark);
            if out.contains(needle) || out.contains("binding to port") || !matches!(child.try_wait(), Ok(None)) {
                break;
            }
            assert!(wait_readable(&[watch.fd(), pid.fd()], deadline), "start-up did not reach {needle:?} within 60 s:\n{out}");
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn output_mark(server: &RzkServer) -> (usize, usize) {
    let (o, e) = server.output();
    (o.len(), e.len())
}

fn output_since(server: &RzkServer, mark: (usize, usize)) -> String {
    let (o, e) = server.output();
    format!("{}{}", o.get(mark.0..).unwrap_or(""), e.get(mark.1..).unwrap_or(""))
}

fn version2(server: &RzkServer) -> PathBuf {
    server.data_dir().join("version-2")
}

/// Rewrites the server's zoo.cfg: drops lines with these keys, appends `key=value` lines.
fn rewrite_cfg(server: &RzkServer, set: &[(&str, String)]) {
    let text = fs::read_to_string(server.cfg_path()).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let key = line.split_once('=').map_or(line, |(k, _)| k).trim();
        if !set.iter().any(|(k, _)| *k == key) {
            out.push_str(line);
            out.push('\n');
        }
    }
    for (k, v) in set {
        out.push_str(&format!("{k}={v}\n"));
    }
    fs::write(server.cfg_path(), out).unwrap();
}

/// Spawns the server binary on the harness server's zoo.cfg (its logs appended to the same
/// files), without waiting for it; the harness's own child must be dead.
fn spawn_raw(server: &RzkServer) -> Child {
    let open = |n: &str| fs::OpenOptions::new().create(true).append(true).open(server.dir().join(n)).unwrap();
    Command::new(rzk_server_bin())
        .arg("start-foreground")
        .arg(server.cfg_path())
        .current_dir(server.dir())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(open("stdout.log"))
        .stderr(open("stderr.log"))
        .spawn()
        .expect("spawn rzk-server")
}

/// Restarts the server (the harness panics if it does not come up) and checks that it serves
/// and that restoring found no tree-digest mismatch (the snapshot's digest against the tree
/// rebuilt from it and the log: a fuzzy snapshot replayed into something else than the live
/// tree). With `logs_intact`, also that the logs covered the snapshot's digest zxid. Returns the
/// server's output during the restart.
/// Also that no snapshot was skipped as unreadable, except those in `may_skip` (the writer
/// renames complete files into place, so a crash never leaves a bad `snapshot.<zxid>`).
fn restart_checked(server: &mut RzkServer, logs_intact: bool, may_skip: &[PathBuf]) -> String {
    let (out, problems) = restart_collecting(server, logs_intact, may_skip);
    assert!(problems.is_empty(), "{}\n\nserver output during the restart:\n{out}", problems.join("\n"));
    out
}

/// `restart_checked` returning the problems instead of panicking.
fn restart_collecting(server: &mut RzkServer, logs_intact: bool, may_skip: &[PathBuf]) -> (String, Vec<String>) {
    let mark = output_mark(server);
    server.restart();
    check_serving(server);
    let out = output_since(server, mark);
    let mut problems = Vec::new();
    let mut bad = vec!["Digests are not matching", "digest mismatches"];
    if logs_intact {
        bad.extend(["is not covering the snapshot digest zxid", "of snapshot digest does not exist"]);
    }
    for line in out.lines() {
        if ["problem reading snap file", "Invalid snapshot", "skipped snapshot"].iter().any(|m| line.contains(m))
            && !may_skip.iter().any(|p| line.contains(&p.display().to_string()))
        {
            problems.push(format!("restore skipped a snapshot the server wrote itself: {line}"));
        }
        if bad.iter().any(|b| line.contains(b)) {
            problems.push(format!("restore reported: {line}"));
        }
    }
    (out, problems)
}

/// Every `snapshot.<zxid>` file the server left loads with the library's reader (a crash never
/// leaves a partial one: they are written to a temp file and renamed).
fn check_snapshots_readable(server: &RzkServer, what: &str, errors: &mut Vec<String>) -> usize {
    let snaps = rzk::storage::list_files(&version2(server), "snapshot").unwrap();
    for (_, p) in &snaps {
        if let Err(e) = rzk::storage::read_snapshot(p, false) {
            let len = fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            errors.push(format!("{what}: snapshot {} ({len} bytes) written by the server does not load: {e}", p.display()));
        }
    }
    snaps.len()
}

/// Kills the running server with SIGKILL; first checks that it had not died on its own.
fn kill9(server: &mut RzkServer, what: &str) {
    assert!(server.is_running(), "{what}: the server died on its own before the kill\n{}", server.logs_tail(60));
    server.kill();
}

// ---------------------------------------------------------------------------------------------
// 1. kill -9 under pipelined writes from several sessions
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    /// Create2 of a unique node.
    Create { path: String, data: Vec<u8> },
    /// setData of the session's counter with expected version `version - 1`.
    Set { version: i32, data: Vec<u8> },
    /// A multi creating two nodes.
    Multi { a: String, b: String, data: Vec<u8> },
    /// getData of the counter (no effect; its reply zxid counts as seen).
    Read,
    /// Create2 of an ephemeral node (in the session's `edir`).
    Ephemeral { path: String, data: Vec<u8> },
    /// Delete of a node this session created earlier and got the ack for (op `of`).
    Delete { path: String, of: usize },
    /// Create2 again of a node whose delete (op `of`) was acknowledged: the same name gets a new
    /// node, the classic trap for replaying a log over a fuzzy snapshot.
    Recreate { path: String, data: Vec<u8>, of: usize },
    /// setData of the counter with a wrong expected version: must fail (BadVersion), but the
    /// failure is a logged txn too; replaying it must change nothing.
    BadSet { data: Vec<u8> },
    /// A multi whose second op fails (NodeExists on the counter): must fail as a whole; the
    /// logged failed multi must not create `c` when replayed.
    FailMulti { c: String, data: Vec<u8> },
}

impl Op {
    /// Ops whose success changes the tree.
    fn is_write(&self) -> bool {
        matches!(self, Op::Create { .. } | Op::Set { .. } | Op::Multi { .. } | Op::Delete { .. } | Op::Ephemeral { .. } | Op::Recreate { .. })
    }
    /// Ops that must fail.
    fn must_fail(&self) -> bool {
        matches!(self, Op::BadSet { .. } | Op::FailMulti { .. })
    }
}

#[derive(Clone, Copy, Debug)]
struct Ack {
    zxid: i64,
    /// czxid (creates) or mzxid (setData) from the reply's Stat.
    stat_zxid: Option<i64>,
}

struct Worker {
    idx: usize,
    dir: String,
    /// Where its ephemerals go (not part of `Truth`: they vanish when the session is closed).
    edir: String,
    ctr: String,
    ctr_init: Vec<u8>,
    ops: Vec<Op>,
    /// Ops that may have reached the server (counted before the write is attempted).
    sent: usize,
    acked: Vec<Option<Ack>>,
    errors: Vec<String>,
    sid: i64,
    passwd: Vec<u8>,
    /// Highest zxid in any reply this session got.
    last_zxid: i64,
    timeout: i32,
}

/// (session id, password, its ephemerals dir, the ephemerals found there after the restart).
type SessionEphemerals = (i64, Vec<u8>, String, BTreeSet<String>);
/// The same and whether its close was acknowledged.
type Closed = (i64, Vec<u8>, String, BTreeSet<String>, bool);
/// (path, data).
type NodeData = (String, Vec<u8>);

#[derive(Default)]
struct Progress {
    acks: u64,
    /// Requests written to a socket, acknowledged or not.
    sent: u64,
    done: usize,
}

type Shared = Arc<(Mutex<Progress>, Condvar)>;

const MAX_OPS_PER_SESSION: usize = 20_000;

fn next_op(rng: &mut StdRng, w: &Worker, set_version: &mut i32, deletable: &mut Vec<usize>, recreatable: &mut Vec<usize>) -> Op {
    let k = w.ops.len();
    match rng.gen_range(0..100) {
        95..=99 if !recreatable.is_empty() => {
            let of = recreatable.swap_remove(rng.gen_range(0..recreatable.len()));
            let Op::Delete { path, .. } = &w.ops[of] else { unreachable!() };
            let data = gen_data(rng, &format!("{path} again"));
            Op::Recreate { path: path.clone(), data, of }
        }
        0..=7 if !deletable.is_empty() => {
            let of = deletable.swap_remove(rng.gen_range(0..deletable.len()));
            let Op::Create { path, .. } = &w.ops[of] else { unreachable!() };
            Op::Delete { path: path.clone(), of }
        }
        8..=10 => Op::BadSet { data: gen_data(rng, "bad setData") },
        15..=21 => {
            let path = format!("{}/x{k}", w.edir);
            let data = gen_data(rng, &path);
            Op::Ephemeral { path, data }
        }
        11..=14 => {
            let c = format!("{}/f{k}", w.dir);
            let data = gen_data(rng, &c);
            Op::FailMulti { c, data }
        }
        0..=44 => {
            let path = format!("{}/n{k}", w.dir);
            let data = gen_data(rng, &path);
            Op::Create { path, data }
        }
        45..=74 => {
            *set_version += 1;
            let data = gen_data(rng, &format!("{} v{}", w.ctr, *set_version));
            Op::Set { version: *set_version, data }
        }
        75..=91 => {
            let a = format!("{}/m{k}a", w.dir);
            let b = format!("{}/m{k}b", w.dir);
            let data = gen_data(rng, &a);
            Op::Multi { a, b, data }
        }
        _ => Op::Read,
    }
}

fn encode_op(op: &Op, ctr: &str) -> (i32, Vec<u8>) {
    match op {
        Op::Create { path, data } | Op::Recreate { path, data, .. } => (OP_CREATE2, create2_body(path, data)),
        Op::Ephemeral { path, data } => (
            OP_CREATE2,
            CreateRequest { path: path.clone(), data: Some(data.clone()), acl: rzk::tree::acl::open_acl_unsafe(), flags: FLAG_EPHEMERAL }.to_bytes(),
        ),
        Op::Set { version, data } => (OP_SET_DATA, SetDataRequest { path: ctr.into(), data: Some(data.clone()), version: version - 1 }.to_bytes()),
        Op::Multi { a, b, data } => (OP_MULTI, multi_create_body(&[(a, data), (b, data)])),
        Op::Read => (OP_GET_DATA, PathWatchRequest { path: ctr.into(), watch: false }.to_bytes()),
        Op::Delete { path, .. } => (OP_DELETE, PathVersionRequest { path: path.clone(), version: -1 }.to_bytes()),
        Op::BadSet { data } => (OP_SET_DATA, SetDataRequest { path: ctr.into(), data: Some(data.clone()), version: 1_000_000 }.to_bytes()),
        Op::FailMulti { c, data } => (OP_MULTI, multi_create_body(&[(c, data), (ctr, data)])),
    }
}

/// Pipelines ops until the connection dies, or, once `stop` is set, until every op sent is
/// answered.
fn run_worker(mut c: Client, mut w: Worker, seed: u64, window: usize, shared: Shared, stop: Arc<AtomicBool>) -> Worker {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut set_version = 0;
    let mut deletable = Vec::new(); // acknowledged creates not deleted yet
    let mut recreatable = Vec::new(); // acknowledged deletes whose name is free again
    let mut inflight: VecDeque<(i32, usize)> = VecDeque::new();
    'run: loop {
        while inflight.len() < window && w.ops.len() < MAX_OPS_PER_SESSION && !stop.load(Ordering::SeqCst) {
            let op = next_op(&mut rng, &w, &mut set_version, &mut deletable, &mut recreatable);
            let (code, body) = encode_op(&op, &w.ctr);
            let i = w.ops.len();
            w.ops.push(op);
            w.acked.push(None);
            w.sent = w.ops.len();
            match c.send(code, &body) {
                Ok(xid) => inflight.push_back((xid, i)),
                Err(_) => break 'run,
            }
            let (m, cv) = &*shared;
            m.lock().unwrap().sent += 1;
            cv.notify_all();
        }
        let Some(&(xid, i)) = inflight.front() else { break };
        let (h, body) = match c.recv() {
            Ok(r) => r,
            Err(_) => break,
        };
        if h.xid == XID_PING {
            continue;
        }
        if h.xid != xid {
            w.errors.push(format!("session {}: reply xid {} while expecting {xid}", w.idx, h.xid));
            break;
        }
        inflight.pop_front();
        if w.ops[i].must_fail() {
            let failed = h.err != 0 || (matches!(w.ops[i], Op::FailMulti { .. }) && !multi_errors(&body).is_empty());
            if !failed {
                w.errors.push(format!("session {}: op #{i} {} succeeded", w.idx, op_name(&w.ops[i])));
            }
            w.acked[i] = Some(Ack { zxid: h.zxid, stat_zxid: None });
            continue;
        }
        let multi_errs = if matches!(w.ops[i], Op::Multi { .. }) { multi_errors(&body) } else { Vec::new() };
        if h.err != 0 || !multi_errs.is_empty() {
            w.errors.push(format!("session {}: op #{i} {} failed with error {} {multi_errs:?}", w.idx, op_name(&w.ops[i]), h.err));
            continue;
        }
        match w.ops[i] {
            Op::Create { .. } => deletable.push(i),
            Op::Delete { .. } => recreatable.push(i),
            _ => {}
        }
        let stat_zxid = match &w.ops[i] {
            Op::Create { .. } | Op::Ephemeral { .. } | Op::Recreate { .. } => Create2Response::from_bytes(&body).ok().map(|r| r.stat.czxid),
            Op::Set { version, .. } => {
                let st = StatResponse::from_bytes(&body).map(|r| r.stat).ok();
                if st.as_ref().map(|s| s.version) != Some(*version) {
                    w.errors.push(format!("session {}: setData #{i} acked with stat {st:?}, expected version {version}", w.idx));
                }
                st.map(|s| s.mzxid)
            }
            _ => None,
        };
        w.acked[i] = Some(Ack { zxid: h.zxid, stat_zxid });
        if w.ops[i].is_write() {
            let (m, cv) = &*shared;
            m.lock().unwrap().acks += 1;
            cv.notify_all();
        }
    }
    w.last_zxid = c.last_zxid;
    let (m, cv) = &*shared;
    m.lock().unwrap().done += 1;
    cv.notify_all();
    w
}

/// What the test knows must stay forever: every node of a finished round as observed at the
/// first restart after it (data and full Stat), and the children of every directory.
#[derive(Default)]
struct Truth {
    nodes: BTreeMap<String, (Vec<u8>, Stat)>,
    children: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Default, Debug)]
struct RoundStats {
    acked: usize,
    sent: usize,
    applied_unacked: usize,
    lost_unacked: usize,
}

/// Checks one finished round against the restarted server; adds what it saw to `truth`.
/// Also returns, per worker, the ephemerals it has after the restart.
fn verify_round(
    c: &mut Client,
    round: usize,
    workers: &[Worker],
    truth: &mut Truth,
    max_seen: &mut i64,
    errors: &mut Vec<String>,
) -> (RoundStats, Vec<BTreeSet<String>>) {
    let mut st = RoundStats::default();
    let mut ephemerals = Vec::new();
    let rdir = format!("/c/r{round}");
    match c.children(&rdir) {
        Some(ch) => {
            let want: BTreeSet<String> = workers.iter().flat_map(|w| [format!("s{}", w.idx), format!("e{}", w.idx)]).collect();
            if ch != want {
                errors.push(format!("round {round}: children of {rdir} are {ch:?}, expected {want:?}"));
            }
            truth.children.insert(rdir.clone(), ch);
        }
        None => errors.push(format!("round {round}: {rdir} (acknowledged) is missing")),
    }
    if let Some(v) = c.get_data(&rdir) {
        truth.nodes.insert(rdir.clone(), v);
    }
    for w in workers {
        errors.extend(w.errors.iter().map(|e| format!("round {round}: {e}")));
        let mut paths = vec![w.dir.clone(), w.ctr.clone()];
        for op in &w.ops[..w.sent] {
            match op {
                Op::Create { path, .. } | Op::Recreate { path, .. } => paths.push(path.clone()),
                Op::Multi { a, b, .. } => {
                    paths.push(a.clone());
                    paths.push(b.clone());
                }
                Op::FailMulti { c, .. } => paths.push(c.clone()),
                _ => {}
            }
        }
        let eph_paths: Vec<String> = w.ops[..w.sent].iter().filter_map(|o| if let Op::Ephemeral { path, .. } = o { Some(path.clone()) } else { None }).collect();
        let got = c.get_many(&paths);
        let eph_got = c.get_many(&eph_paths);
        let mut seen: BTreeMap<&str, &(Vec<u8>, Stat)> = paths.iter().zip(got.iter()).filter_map(|(p, g)| g.as_ref().map(|g| (p.as_str(), g))).collect();
        let tag = format!("round {round} session {} (0x{:x})", w.idx, w.sid);
        for (p, (_, s)) in &seen {
            *max_seen = (*max_seen).max(s.czxid).max(s.mzxid);
            truth.nodes.insert(p.to_string(), (seen[p].0.clone(), s.clone()));
        }
        // Ephemerals: the session was alive at the kill and is restored, so they are there iff
        // their create was applied; each belongs to the session.
        let mut present_eph = BTreeSet::new();
        for (p, g) in eph_paths.iter().zip(eph_got.iter()) {
            if let Some((_, s)) = g {
                *max_seen = (*max_seen).max(s.czxid);
                if s.ephemeral_owner != w.sid {
                    errors.push(format!("{tag}: ephemeral {p} has owner 0x{:x}", s.ephemeral_owner));
                }
                present_eph.insert(p.rsplit('/').next().unwrap().to_string());
                seen.insert(p.as_str(), g.as_ref().unwrap());
            }
        }
        match c.children(&w.edir) {
            Some(ch) if ch == present_eph => {}
            other => errors.push(format!("{tag}: children of {} are {other:?}, but the ephemerals found are {present_eph:?}", w.edir)),
        }
        ephemerals.push(present_eph);
        if !seen.contains_key(w.dir.as_str()) {
            errors.push(format!("{tag}: directory {} (acknowledged) is missing", w.dir));
            continue;
        }
        let Some((ctr_data, ctr_stat)) = seen.get(w.ctr.as_str()).map(|v| (v.0.clone(), v.1.clone())) else {
            errors.push(format!("{tag}: counter {} (acknowledged) is missing", w.ctr));
            continue;
        };
        // The counter: its version is that of one setData that was sent, at least the last
        // acknowledged one, and its data is exactly what that setData wrote.
        let sets: Vec<(usize, i32, &Vec<u8>)> =
            w.ops[..w.sent].iter().enumerate().filter_map(|(i, o)| if let Op::Set { version, data } = o { Some((i, *version, data)) } else { None }).collect();
        let v = ctr_stat.version;
        let last_acked_set = sets.iter().filter(|(i, _, _)| w.acked[*i].is_some()).map(|(_, v, _)| *v).max().unwrap_or(0);
        if v < last_acked_set {
            errors.push(format!("{tag}: counter at version {v} but setData to version {last_acked_set} was acknowledged"));
        }
        if v as usize > sets.len() {
            errors.push(format!("{tag}: counter at version {v} but only {} setData were sent", sets.len()));
        }
        let want_data = if v == 0 { Some(&w.ctr_init) } else { sets.iter().find(|(_, sv, _)| *sv == v).map(|(_, _, d)| *d) };
        if want_data != Some(&ctr_data) {
            errors.push(format!("{tag}: counter data at version {v} is not what setData #{v} wrote (half-applied or torn value)"));
        }
        if let Some((i, _, _)) = sets.iter().find(|(_, sv, _)| *sv == v)
            && let Some(a) = w.acked[*i]
            && a.zxid != ctr_stat.mzxid
        {
            errors.push(format!("{tag}: counter mzxid 0x{:x} != zxid 0x{:x} acknowledged for setData #{v}", ctr_stat.mzxid, a.zxid));
        }
        // Every sent op: acknowledged ones applied exactly as replied; the applied ones form a
        // prefix of what the session sent (a log is a prefix; one session's txns are in order).
        let mut first_missing: Option<usize> = None;
        // Sent deletes, by the index of the create they undo.
        let deletes: BTreeMap<usize, usize> =
            w.ops[..w.sent].iter().enumerate().filter_map(|(j, o)| if let Op::Delete { of, .. } = o { Some((*of, j)) } else { None }).collect();
        // Sent re-creates, by the index of the delete they follow.
        let recreates: BTreeMap<usize, usize> =
            w.ops[..w.sent].iter().enumerate().filter_map(|(k, o)| if let Op::Recreate { of, .. } = o { Some((*of, k)) } else { None }).collect();
        let mut expected_children: BTreeSet<String> = BTreeSet::from(["ctr".to_string()]);
        let base = |p: &str| p.rsplit('/').next().unwrap().to_string();
        for (i, op) in w.ops[..w.sent].iter().enumerate() {
            let ack = w.acked[i];
            if ack.is_some() && op.is_write() {
                st.acked += 1;
            }
            let applied = match op {
                Op::Read | Op::BadSet { .. } => continue,
                Op::FailMulti { c, .. } => {
                    if seen.contains_key(c.as_str()) {
                        errors.push(format!("{tag}: {c}, created only by a FAILED multi #{i} (acked={}), exists", ack.is_some()));
                    }
                    continue;
                }
                // A delete followed by a re-create was acknowledged (the re-create was sent after
                // its ack); otherwise it is applied iff its node is gone.
                Op::Delete { .. } if recreates.contains_key(&i) => {
                    if ack.is_none() {
                        errors.push(format!("{tag}: delete #{i} was followed by a re-create but never acknowledged"));
                    }
                    true
                }
                Op::Delete { path, .. } => !seen.contains_key(path.as_str()),
                Op::Set { version, .. } => v >= *version,
                Op::Create { path, .. } if deletes.contains_key(&i) && (!seen.contains_key(path.as_str()) || recreates.contains_key(&deletes[&i])) => {
                    if ack.is_none() {
                        errors.push(format!("{tag}: create #{i} {path} was deleted but never acknowledged"));
                    }
                    true
                }
                Op::Create { path, data } | Op::Ephemeral { path, data } | Op::Recreate { path, data, .. } => match seen.get(path.as_str()) {
                    Some((d, s)) => {
                        if !matches!(op, Op::Ephemeral { .. }) {
                            expected_children.insert(base(path));
                        }
                        if d != data {
                            errors.push(format!("{tag}: {path} exists with wrong data ({} bytes, expected {})", d.len(), data.len()));
                        }
                        if let Some(a) = ack
                            && (s.czxid != a.zxid || a.stat_zxid != Some(a.zxid))
                        {
                            errors.push(format!("{tag}: {path} czxid 0x{:x}, reply zxid 0x{:x}, reply stat {:?}", s.czxid, a.zxid, a.stat_zxid));
                        }
                        true
                    }
                    None => false,
                },
                Op::Multi { a, b, data } => {
                    let (sa, sb) = (seen.get(a.as_str()), seen.get(b.as_str()));
                    match (sa, sb) {
                        (Some((da, sa)), Some((db, sb))) => {
                            expected_children.insert(base(a));
                            expected_children.insert(base(b));
                            if da != data || db != data {
                                errors.push(format!("{tag}: multi {a}+{b} applied with wrong data"));
                            }
                            if sa.czxid != sb.czxid {
                                errors.push(format!("{tag}: multi {a}+{b} nodes have different czxids 0x{:x}/0x{:x}", sa.czxid, sb.czxid));
                            }
                            if let Some(k) = ack
                                && sa.czxid != k.zxid
                            {
                                errors.push(format!("{tag}: multi {a} czxid 0x{:x} != reply zxid 0x{:x}", sa.czxid, k.zxid));
                            }
                            true
                        }
                        (None, None) => false,
                        _ => {
                            errors.push(format!("{tag}: HALF-APPLIED multi #{i}: {a} exists={} {b} exists={} (acked={})", sa.is_some(), sb.is_some(), ack.is_some()));
                            true
                        }
                    }
                }
            };
            if applied {
                if ack.is_none() {
                    st.applied_unacked += 1;
                }
                if let Some(m) = first_missing {
                    errors.push(format!("{tag}: op #{i} {} is applied but earlier op #{m} is not (a hole in the session's history)", op_name(op)));
                }
            } else {
                if let Some(a) = ack {
                    errors.push(format!("{tag}: ACKNOWLEDGED op #{i} {} (zxid 0x{:x}) is LOST", op_name(op), a.zxid));
                } else {
                    st.lost_unacked += 1;
                }
                first_missing.get_or_insert(i);
            }
        }
        st.sent += w.ops[..w.sent].iter().filter(|o| o.is_write()).count();
        match c.children(&w.dir) {
            Some(ch) => {
                if ch != expected_children {
                    let extra: Vec<_> = ch.difference(&expected_children).collect();
                    let missing: Vec<_> = expected_children.difference(&ch).collect();
                    errors.push(format!("{tag}: children of {} differ from the nodes found: unexpected {extra:?}, missing {missing:?}", w.dir));
                }
                truth.children.insert(w.dir.clone(), ch);
            }
            None => errors.push(format!("{tag}: {} vanished", w.dir)),
        }
    }
    (st, ephemerals)
}

fn op_name(op: &Op) -> String {
    match op {
        Op::Create { path, .. } => format!("create {path}"),
        Op::Set { version, .. } => format!("setData v{version}"),
        Op::Multi { a, b, .. } => format!("multi {a}+{b}"),
        Op::Read => "read".into(),
        Op::Delete { path, .. } => format!("delete {path}"),
        Op::Ephemeral { path, .. } => format!("create ephemeral {path}"),
        Op::Recreate { path, .. } => format!("re-create {path}"),
        Op::BadSet { .. } => "setData with a wrong version".into(),
        Op::FailMulti { c, .. } => format!("failing multi creating {c}"),
    }
}

/// Every node under `root` (included) with its data and Stat, read level by level.
fn dump_tree(c: &mut Client, root: &str) -> BTreeMap<String, (Vec<u8>, Stat)> {
    let mut out = BTreeMap::new();
    let mut level = vec![root.to_string()];
    while !level.is_empty() {
        let got = c.get_many(&level);
        let mut next = Vec::new();
        for (p, g) in level.iter().zip(got) {
            let Some(g) = g else { continue };
            if g.1.num_children > 0 {
                for ch in c.children(p).unwrap_or_default() {
                    next.push(format!("{p}/{ch}"));
                }
            }
            out.insert(p.clone(), g);
        }
        level = next;
    }
    out
}

fn compare_trees(before: &BTreeMap<String, (Vec<u8>, Stat)>, after: &BTreeMap<String, (Vec<u8>, Stat)>, errors: &mut Vec<String>) {
    for (p, (d, st)) in before {
        match after.get(p) {
            None => errors.push(format!("{p}, present (and acknowledged) when the server was killed with no write in flight, is gone")),
            Some((d2, st2)) if d2 != d || st2 != st => {
                errors.push(format!("{p} differs from the live tree before the kill: data equal {}, stat {st:?} -> {st2:?}", d == d2))
            }
            _ => {}
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        errors.push(format!("{p} exists after the restart but not in the live tree before the kill (no write was in flight)"));
    }
}

/// Everything seen at earlier restarts is still there, byte for byte and stat for stat.
fn verify_truth(c: &mut Client, truth: &Truth, errors: &mut Vec<String>) {
    let paths: Vec<String> = truth.nodes.keys().cloned().collect();
    let got = c.get_many(&paths);
    for (p, g) in paths.iter().zip(got) {
        let want = &truth.nodes[p];
        match g {
            None => errors.push(format!("{p}, present at an earlier restart, is gone")),
            Some(g) if g != *want => errors.push(format!("{p} changed since an earlier restart: {:?} -> {:?}", want.1, g.1)),
            Some(_) => {}
        }
    }
    for (dir, want) in &truth.children {
        let got = c.children(dir);
        if got.as_ref() != Some(want) {
            errors.push(format!("children of {dir} changed since an earlier restart: {want:?} -> {got:?}"));
        }
    }
}

#[test]
fn kill9_never_loses_acknowledged_writes() {
    let rounds: usize = std::env::var("RZK_CRASH_ROUNDS").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(20);
    let seed = seed_from_env();
    println!("kill9_never_loses_acknowledged_writes: seed {seed} (RZK_CRASH_SEED), {rounds} rounds (RZK_CRASH_ROUNDS)");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut server = RzkServer::start_with(&["snapCount=50", "preAllocSize=4"]);
    let port = server.port;
    let mut truth = Truth::default();
    let mut max_seen: i64 = 0; // highest zxid in any reply or stat seen so far
    let mut last_marker: i64 = 0;
    let mut prev: Option<(usize, Vec<Worker>)> = None;
    let mut live: Option<BTreeMap<String, (Vec<u8>, Stat)>> = None;
    let mut exact_rounds = 0;
    // Sessions of the last round, reconnected after the restart, to be closed during this round.
    let mut reconnected: Vec<Client> = Vec::new();
    // Sessions closed (or being closed when the server was killed) during the last round:
    // (session, password, its ephemerals dir, the ephemerals it had, close acknowledged).
    let mut closing: Vec<Closed> = Vec::new();
    // Ephemeral dirs of closed sessions: empty forever.
    let mut empty_dirs: Vec<String> = Vec::new();
    let mut closes = (0, 0); // (acknowledged, interrupted by the kill)
    let mut totals = RoundStats::default();
    let mut restarts = Duration::ZERO;
    let mut startup_kills = 0;
    {
        let mut c = Client::connect(port, 30000).unwrap();
        c.must_create("/c", b"", 0);
    }
    for round in 0..=rounds {
        let mut errors = Vec::new();
        if round > 0 {
            // Vary snapCount, preAllocSize, snapshot compression, forceSync and the snapshot digest
            // from round to round (zoo.cfg is read at each start).
            let snap = [50, 7, 100_000, 300][rng.gen_range(0..4)];
            let prealloc = [65_536, 1, 4, 64][rng.gen_range(0..4)];
            let comp = ["", "", "gz", "snappy"][rng.gen_range(0..4)];
            // forceSync=no still writes every txn before acknowledging it: enough for kill -9
            // (not for power loss).
            let force_sync = if rng.gen_bool(0.2) { "no" } else { "yes" };
            let digest = if rng.gen_bool(0.2) { "false" } else { "true" };
            rewrite_cfg(
                &server,
                &[
                    ("snapCount", snap.to_string()),
                    ("preAllocSize", prealloc.to_string()),
                    ("snapshot.compression.method", comp.to_string()),
                    ("forceSync", force_sync.to_string()),
                    ("digest.enabled", digest.to_string()),
                ],
            );
            // Sometimes also kill a start-up midway (during restore / the start-up snapshot).
            if rng.gen_bool(0.25) {
                kill_during_startup(&server, &mut rng);
                startup_kills += 1;
            }
            let t = Instant::now();
            let (_, problems) = restart_collecting(&mut server, true, &[]);
            errors.extend(problems.into_iter().map(|p| format!("round {round}: {p}")));
            restarts += t.elapsed();
            let z = srvr_zxid(port);
            let acked_max = prev.as_ref().map_or(0, |(_, ws)| ws.iter().flat_map(|w| w.acked.iter().flatten().map(|a| a.zxid)).max().unwrap_or(0));
            if z < acked_max {
                errors.push(format!("round {round}: srvr Zxid 0x{z:x} after restart is below the highest acknowledged zxid 0x{acked_max:x}"));
            }
            // The sessions of the killed round reconnect with the zxid they last saw (they are
            // closed during the next round, racing with its writes and its kill).
            if let Some((_, ws)) = &prev {
                for w in ws {
                    match Client::handshake(port, w.timeout, w.sid, w.passwd.clone(), w.last_zxid) {
                        Ok((rc, resp)) if resp.session_id == w.sid && resp.time_out > 0 => reconnected.push(rc),
                        Ok((_, resp)) => errors.push(format!(
                            "round {round}: session 0x{:x} (last zxid seen 0x{:x}) could not reconnect after restart: {resp:?} (srvr Zxid 0x{z:x})",
                            w.sid, w.last_zxid
                        )),
                        Err(e) => errors.push(format!(
                            "round {round}: session 0x{:x} (last zxid seen 0x{:x}) could not reconnect after restart: {e} (srvr Zxid 0x{z:x})",
                            w.sid, w.last_zxid
                        )),
                    }
                }
            }
        }
        let mut ctl = Client::connect(port, 30000).expect("control session");
        if let Some(before) = live.take() {
            let after = dump_tree(&mut ctl, "/c");
            compare_trees(&before, &after, &mut errors);
            exact_rounds += 1;
        }
        // Everything seen before is re-read at every restart (every 10th with many rounds: the
        // cost grows with the square of the rounds).
        if rounds <= 50 || round % 10 == 0 || round == rounds {
            verify_truth(&mut ctl, &truth, &mut errors);
        }
        // Sessions closed during the last round: a close removes all of a session's ephemerals
        // or none (the close was not durable: the session is back, then closed now).
        for (sid, pw, edir, had, acked) in closing.drain(..) {
            let now = ctl.children(&edir).unwrap_or_default();
            if acked && !now.is_empty() {
                errors.push(format!("round {round}: session 0x{sid:x} was closed (acknowledged) but its ephemerals {now:?} are back"));
            } else if !now.is_empty() && now != had {
                errors.push(format!("round {round}: session 0x{sid:x}'s close is HALF-APPLIED: ephemerals {had:?} became {now:?}"));
            }
            if !now.is_empty() {
                match Client::handshake(port, 30000, sid, pw, 0) {
                    Ok((mut rc, resp)) if resp.session_id == sid => rc.close_session(),
                    other => errors.push(format!(
                        "round {round}: session 0x{sid:x} still owns {now:?} but cannot reconnect: {:?}",
                        other.map(|(_, r)| r)
                    )),
                }
            }
            empty_dirs.push(edir);
        }
        for d in &empty_dirs {
            match ctl.children(d) {
                Some(ch) if ch.is_empty() => {}
                other => errors.push(format!("round {round}: {d} of a closed session has children {other:?}")),
            }
        }
        let mut prev_ephemerals = Vec::new();
        if let Some((r, ws)) = prev.take() {
            for w in &ws {
                max_seen = max_seen.max(w.last_zxid);
            }
            let (st, eph) = verify_round(&mut ctl, r, &ws, &mut truth, &mut max_seen, &mut errors);
            prev_ephemerals = ws.iter().zip(eph).map(|(w, e)| (w.sid, w.passwd.clone(), w.edir.clone(), e)).collect();
            println!(
                "round {r}: sent {} writes, {} acknowledged, {} applied without an ack, {} not applied",
                st.sent, st.acked, st.applied_unacked, st.lost_unacked
            );
            totals.sent += st.sent;
            totals.acked += st.acked;
            totals.applied_unacked += st.applied_unacked;
            totals.lost_unacked += st.lost_unacked;
        }
        if !errors.is_empty() {
            panic!(
                "seed {seed}, after round {round}'s restart: {} problems:\n{}\n{}",
                errors.len(),
                errors.iter().take(40).cloned().collect::<Vec<_>>().join("\n"),
                server.logs_tail(60)
            );
        }
        if round == rounds {
            break;
        }

        // The round's marker: zxids keep growing across restarts.
        let rdir = format!("/c/r{round}");
        let (z, stat) = ctl.must_create(&rdir, b"", 0);
        assert!(
            stat.czxid > max_seen && stat.czxid > last_marker,
            "seed {seed} round {round}: czxid 0x{:x} of a node created after the restart is not above every zxid seen before (0x{max_seen:x}, marker 0x{last_marker:x})",
            stat.czxid
        );
        assert_eq!(z, stat.czxid);
        last_marker = stat.czxid;
        let nsess = rng.gen_range(3..=4);
        let window = [1, 4, 16, 64][rng.gen_range(0..4)];
        let mut workers = Vec::new();
        for s in 0..nsess {
            let dir = format!("{rdir}/s{s}");
            ctl.must_create(&dir, b"", 0);
            let edir = format!("{rdir}/e{s}");
            ctl.must_create(&edir, b"", 0);
            let ctr = format!("{dir}/ctr");
            let ctr_init = gen_data(&mut rng, &ctr);
            ctl.must_create(&ctr, &ctr_init, 0);
            let c = Client::connect(port, 30000).expect("worker session");
            let w = Worker {
                idx: s,
                dir,
                edir,
                ctr,
                ctr_init,
                ops: Vec::new(),
                sent: 0,
                acked: Vec::new(),
                errors: Vec::new(),
                sid: c.sid,
                passwd: c.passwd.clone(),
                last_zxid: c.last_zxid,
                timeout: c.timeout,
            };
            workers.push((c, w, rng.r#gen::<u64>()));
        }
        max_seen = max_seen.max(ctl.last_zxid);
        drop(ctl);
        // When to kill: after a random number of acknowledged writes (sometimes very early), or
        // after a random number of requests sent, acknowledged or not (a moment that need not
        // follow a reply: writes in the log's buffer, mid-fsync, being applied).
        let by_sent = rng.gen_bool(0.15);
        let target: u64 = if rng.gen_bool(0.1) { rng.gen_range(0..5) } else { rng.gen_range(5..600) };
        let shared: Shared = Arc::new((Mutex::new(Progress::default()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = workers
            .into_iter()
            .map(|(c, w, s)| {
                let (sh, st) = (shared.clone(), stop.clone());
                std::thread::spawn(move || run_worker(c, w, s, window, sh, st))
            })
            .collect();
        // Close the last round's sessions meanwhile; the kill may come before, during or after.
        let to_close: Vec<(Client, SessionEphemerals)> = std::mem::take(&mut reconnected)
            .into_iter()
            .map(|c| {
                let info = prev_ephemerals.iter().find(|e| e.0 == c.sid).cloned().expect("reconnected session info");
                (c, info)
            })
            .collect();
        let closer = std::thread::spawn(move || {
            to_close
                .into_iter()
                .map(|(mut c, (sid, pw, edir, had))| {
                    let acked = matches!(c.call(OP_CLOSE, &[]), Ok((h, _)) if h.err == 0);
                    (sid, pw, edir, had, acked)
                })
                .collect::<Vec<_>>()
        });
        // Some rounds stop the writers and wait for every reply before the kill, so that the
        // whole tree can be read live and compared exactly (data and every Stat field) with the
        // restored one: fuzzy snapshots + replay must rebuild exactly the live tree.
        let quiesce = rng.gen_bool(0.3);
        if by_sent {
            let (m, cv) = &*shared;
            let (g, to) = cv.wait_timeout_while(m.lock().unwrap(), Duration::from_secs(60), |p| p.sent < target && p.done < nsess).unwrap();
            assert!(!to.timed_out(), "seed {seed} round {round}: only {} requests sent in 60 s", g.sent);
        } else {
            let (m, cv) = &*shared;
            let (g, to) = cv.wait_timeout_while(m.lock().unwrap(), Duration::from_secs(60), |p| p.acks < target && p.done < nsess).unwrap();
            assert!(!to.timed_out(), "seed {seed} round {round}: only {} writes acknowledged in 60 s", g.acks);
            assert!(g.acks >= target, "seed {seed} round {round}: every session stopped after {} acks (target {target})\n{}", g.acks, server.logs_tail(40));
        }
        if quiesce {
            stop.store(true, Ordering::SeqCst);
        }
        let mut handles = Some(handles);
        let join = |h: &mut Option<Vec<std::thread::JoinHandle<Worker>>>| -> Vec<Worker> {
            h.take().unwrap().into_iter().map(|h| h.join().expect("worker panicked")).collect()
        };
        let ws: Vec<Worker> = if quiesce { join(&mut handles) } else { Vec::new() };
        let mut closer = Some(closer);
        if quiesce {
            closing = closer.take().unwrap().join().expect("closer panicked");
        }
        live = if quiesce {
            let mut c = Client::connect(port, 30000).expect("dump session");
            let t = dump_tree(&mut c, "/c");
            max_seen = max_seen.max(c.last_zxid);
            Some(t)
        } else {
            None
        };
        kill9(&mut server, &format!("seed {seed} round {round}"));
        let mut snap_errors = Vec::new();
        check_snapshots_readable(&server, &format!("seed {seed} round {round}, after the kill"), &mut snap_errors);
        assert!(snap_errors.is_empty(), "{}\nzoo.cfg:\n{}", snap_errors.join("\n"), fs::read_to_string(server.cfg_path()).unwrap());
        let ws: Vec<Worker> = if quiesce { ws } else { join(&mut handles) };
        if let Some(h) = closer.take() {
            closing = h.join().expect("closer panicked");
        }
        closes.0 += closing.iter().filter(|c| c.4).count();
        closes.1 += closing.iter().filter(|c| !c.4).count();
        let acks: usize = ws.iter().map(|w| w.acked.iter().flatten().count()).sum();
        let count = |f: &dyn Fn(&Op) -> bool| ws.iter().map(|w| w.ops.iter().zip(&w.acked).filter(|(o, a)| a.is_some() && f(o)).count()).sum::<usize>();
        println!(
            "round {round}: {nsess} sessions, window {window}, killed {}{} ({acks} replies before the kill: {} deletes, {} re-creates, {} failed setData, {} failed multis)",
            if by_sent { format!("after {target} requests sent") } else { format!("after {target} acks") },
            if quiesce { ", writers stopped and tree read first" } else { "" },
            count(&|o| matches!(o, Op::Delete { .. })),
            count(&|o| matches!(o, Op::Recreate { .. })),
            count(&|o| matches!(o, Op::BadSet { .. })),
            count(&|o| matches!(o, Op::FailMulti { .. })),
        );
        prev = Some((round, ws));
    }
    println!(
        "{rounds} kill -9 rounds ({startup_kills} extra kills during start-up, {exact_rounds} with an exact live/restored tree comparison, \
         {} session closes acknowledged, {} cut by the kill) in {:?} \
         (restarts {:?}): {} writes sent, {} acknowledged (all present), {} applied without an ack, {} not applied; {} nodes checked at the end",
        closes.0,
        closes.1,
        started.elapsed(),
        restarts,
        totals.sent,
        totals.acked,
        totals.applied_unacked,
        totals.lost_unacked,
        truth.nodes.len()
    );
    // Temp files of snapshots cut by a kill are not cleaned up by the server (neither at start-up
    // nor by autopurge); not a correctness problem, so only reported.
    let tmps: Vec<String> = fs::read_dir(version2(&server))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with(".snapshot.") && n.ends_with(".tmp"))
        .collect();
    println!("{} leftover snapshot temp files in the dataDir: {tmps:?}", tmps.len());
}

/// The snapshot options the zoo.cfg can change (compression, the digest section) still give
/// snapshots that load after a kill -9.
#[test]
fn snapshots_load_after_kill9_with_every_format_option() {
    let seed = seed_from_env();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut failures = Vec::new();
    for comp in ["", "gz", "snappy"] {
        for digest in ["true", "false"] {
            let lines = [format!("snapshot.compression.method={comp}"), format!("digest.enabled={digest}"), "snapCount=10".to_string()];
            let lines: Vec<&str> = lines.iter().map(|s| s.as_str()).collect();
            let mut server = RzkServer::start_with(&lines);
            let mut c = Client::connect(server.port, 30000).unwrap();
            let written = write_nodes(&mut c, "/t", 60, 4, &mut rng);
            kill9(&mut server, "format options");
            let what = format!("compression {comp:?}, digest.enabled={digest}");
            let before = failures.len();
            let n = check_snapshots_readable(&server, &what, &mut failures);
            if failures.len() > before {
                continue; // the restart would fail or fall back: reported above
            }
            restart_checked(&mut server, true, &[]);
            let mut c = Client::connect(server.port, 30000).unwrap();
            check_nodes(&mut c, &written.iter().collect::<Vec<_>>(), &[], &what);
            println!("{what}: {n} snapshots load, {} nodes restored", written.len());
        }
    }
    assert!(failures.is_empty(), "{} snapshot files do not load:\n{}", failures.len(), failures.join("\n"));
}

/// The restore path without a process: a fuzzy snapshot (the server's own
/// `serialize_snapshot_fuzzy`, one node per chunk) with a write applied between two chunks, then
/// `read_snapshot` + replay of the log after its zxid (as `restore_with` does), must give exactly
/// the live tree: every node's data and Stat, and the digest. Deterministic: every interleaving
/// point and several writes are tried.
#[test]
fn fuzzy_snapshot_then_replay_rebuilds_the_live_tree() {
    use rzk::jute::txn::TxnHeader;
    use rzk::storage::snapshot::{SnapshotOptions, serialize_snapshot_fuzzy};
    use rzk::tree::DataTree;

    struct Live {
        tree: DataTree,
        log: Vec<(TxnHeader, Txn)>,
    }
    impl Live {
        fn apply(&mut self, txn: Txn) {
            let zxid = self.tree.last_processed_zxid + 1;
            let hdr = TxnHeader { client_id: 1, cxid: 0, zxid, time: 1_000_000 + zxid, txn_type: txn.type_code() };
            let r = self.tree.apply(&hdr, &txn, &mut Vec::new());
            assert_eq!(r.err, 0, "live txn {txn:?}");
            self.log.push((hdr, txn));
        }
        fn create(&mut self, path: &str) {
            let parent = &path[..path.rfind('/').unwrap().max(1)];
            let pid = self.tree.lookup(parent).unwrap();
            let parent_cversion = self.tree.node(pid).stat.cversion + 1;
            let acl = rzk::tree::acl::open_acl_unsafe();
            self.apply(Txn::Create { create2: false, path: path.into(), data: Some(path.as_bytes().to_vec()), acl, ephemeral: false, parent_cversion });
        }
        fn delete(&mut self, path: &str) {
            self.apply(Txn::Delete { container: false, path: path.into() });
        }
        fn set(&mut self, path: &str) {
            let id = self.tree.lookup(path).unwrap();
            let version = self.tree.node(id).stat.version + 1;
            self.apply(Txn::SetData { reconfig: false, path: path.into(), data: Some(b"new".to_vec()), version });
        }
    }
    fn dump(t: &DataTree) -> BTreeMap<String, (Option<Vec<u8>>, Stat)> {
        t.walk().into_iter().map(|id| (t.path_of(id), (t.node(id).data().map(|d| d.to_vec()), t.stat(id)))).collect()
    }

    // What happens between two chunks of the walk.
    type Scenario = (&'static str, fn(&mut Live));
    let scenarios: Vec<Scenario> = vec![
        ("delete /p/b", |l| l.delete("/p/b")),
        ("create /p/d", |l| l.create("/p/d")),
        ("delete and re-create /p/a", |l| {
            l.delete("/p/a");
            l.create("/p/a");
        }),
        ("setData /p/c", |l| l.set("/p/c")),
        ("create /p/d, delete /p/b", |l| {
            l.create("/p/d");
            l.delete("/p/b");
        }),
        ("delete /p/q/x then /p/q", |l| {
            l.delete("/p/q/x");
            l.delete("/p/q");
        }),
    ];
    let dir = common::TestDir::new("fuzzy");
    let mut failures = Vec::new();
    for (name, write) in &scenarios {
        for at in 1..=12 {
            let mut live = Live { tree: DataTree::new(), log: Vec::new() };
            for p in ["/p", "/p/a", "/p/b", "/p/c", "/p/q", "/p/q/x"] {
                live.create(p);
            }
            let start_zxid = live.tree.last_processed_zxid;
            let live = parking_lot::Mutex::new(live);
            let mut calls = 0;
            let mut buf = Vec::new();
            serialize_snapshot_fuzzy(
                &mut buf,
                &[],
                || {
                    calls += 1;
                    let mut g = live.lock();
                    if calls == at {
                        write(&mut g);
                    }
                    parking_lot::MutexGuard::map(g, |l| &mut l.tree)
                },
                &SnapshotOptions::default(),
                1,
            )
            .unwrap();
            let live = live.into_inner();
            // Restore: the snapshot named after the zxid the walk started at, then the log after it.
            let path = dir.path().join(format!("snapshot.{start_zxid:x}"));
            fs::write(&path, &buf).unwrap();
            let mut restored = rzk::storage::read_snapshot(&path, false).unwrap().tree;
            for (hdr, txn) in live.log.iter().filter(|(h, _)| h.zxid > start_zxid) {
                restored.apply(hdr, txn, &mut Vec::new());
            }
            let (want, got) = (dump(&live.tree), dump(&restored));
            let mut diffs: Vec<String> = want
                .iter()
                .filter(|(p, v)| got.get(*p) != Some(v))
                .map(|(p, v)| format!("{p}: live {:?} restored {:?}", v.1, got.get(p).map(|g| &g.1)))
                .collect();
            diffs.extend(got.keys().filter(|p| !want.contains_key(*p)).map(|p| format!("{p}: only in the restored tree")));
            if live.tree.digest != restored.digest {
                diffs.push(format!("digest: live {} restored {}", live.tree.digest.value, restored.digest.value));
            }
            if !diffs.is_empty() {
                failures.push(format!("`{name}` before chunk {at}: {}", diffs.join("; ")));
            }
        }
    }
    assert!(failures.is_empty(), "fuzzy snapshot + replay differs from the live tree in {} cases:\n{}", failures.len(), failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// 2. Sessions and ephemerals across kill -9
// ---------------------------------------------------------------------------------------------

/// Waits for a NodeDeleted event on `path` on `watcher`, pinging it and `keep_alive` meanwhile.
fn wait_deleted(watcher: &mut Client, keep_alive: &mut Client, path: &str, deadline: Instant) -> bool {
    watcher.s.set_read_timeout(Some(Duration::from_millis(150))).unwrap();
    let found = loop {
        if let Some(i) = watcher.events.iter().position(|e| e.event_type == EVENT_NODE_DELETED && e.path == path) {
            watcher.events.remove(i);
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        match watcher.read_frame() {
            Ok(f) => {
                let mut r = Reader::new(&f);
                let h = ReplyHeader::read(&mut r).unwrap();
                if h.xid == XID_WATCH {
                    watcher.events.push_back(WatcherEvent::read(&mut r).unwrap());
                }
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                // Keep both sessions alive while waiting (liveness, not synchronisation).
                keep_alive.ping().expect("ping keep-alive session");
                watcher.send_xid(XID_PING, OP_PING, &[]).expect("ping watcher");
            }
            Err(e) => panic!("watcher connection failed: {e}"),
        }
    };
    watcher.s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    found
}

#[test]
fn sessions_and_ephemerals_survive_kill9() {
    // tickTime 200: session timeouts between 400 and 4000 ms.
    let mut server = RzkServer::start_with(&["tickTime=200", "snapCount=20"]);
    let port = server.port;
    const KEEP_MS: i32 = 4000;
    const EXPIRE_MS: i32 = 2000;
    let mut a = Client::connect(port, KEEP_MS).unwrap();
    let mut b = Client::connect(port, EXPIRE_MS).unwrap();
    assert_eq!((a.timeout, b.timeout), (KEEP_MS, EXPIRE_MS));
    {
        let mut c = Client::connect(port, KEEP_MS).unwrap();
        c.must_create("/eph", b"", 0);
    }
    a.must_create("/eph/a", b"owned by a", FLAG_EPHEMERAL);
    b.must_create("/eph/b", b"owned by b", FLAG_EPHEMERAL);
    // Some more traffic so that the log rolls and snapshots happen in between.
    for i in 0..30 {
        a.must_create(&format!("/eph/p{i}"), b"x", 0);
    }
    let (a_sid, a_pw, a_zxid) = (a.sid, a.passwd.clone(), a.last_zxid);
    let (b_sid, b_pw) = (b.sid, b.passwd.clone());
    kill9(&mut server, "sessions");
    drop((a, b));

    let t0 = Instant::now();
    restart_checked(&mut server, true, &[]);
    let mut c = Client::connect(port, KEEP_MS).unwrap();
    let ea = c.get_data("/eph/a").expect("ephemeral of session a survives kill -9");
    let eb = c.get_data("/eph/b").expect("ephemeral of session b survives kill -9 (before its timeout)");
    assert_eq!((ea.0.as_slice(), ea.1.ephemeral_owner), (&b"owned by a"[..], a_sid));
    assert_eq!((eb.0.as_slice(), eb.1.ephemeral_owner), (&b"owned by b"[..], b_sid));
    let restored_at = t0.elapsed();

    // a reconnects with its id, password and last seen zxid: same session, ephemeral kept.
    let (mut a, resp) = Client::handshake(port, KEEP_MS, a_sid, a_pw.clone(), a_zxid).expect("reconnect a");
    assert_eq!(resp.session_id, a_sid, "reconnect of session a after restart refused: {resp:?}");
    assert!(resp.time_out > 0);
    assert_eq!(a.get_data("/eph/a").map(|v| v.1.ephemeral_owner), Some(a_sid));
    // A wrong password is refused.
    let mut bad_pw = a_pw.clone();
    bad_pw[0] ^= 1;
    if let Ok((_, r)) = Client::handshake(port, KEEP_MS, a_sid, bad_pw, 0) {
        assert_eq!(r.session_id, 0, "reconnect with a wrong password accepted");
    }

    // b does not come back: it expires EXPIRE_MS after the restart and its ephemeral goes.
    assert!(c.exists_watch("/eph/b").is_some(), "/eph/b vanished already {restored_at:?} after the restart");
    let deleted = wait_deleted(&mut c, &mut a, "/eph/b", t0 + Duration::from_secs(15));
    let gone_after = t0.elapsed();
    assert!(deleted, "session b's ephemeral still there {gone_after:?} after the restart\n{}", server.logs_tail(40));
    println!("unreconnected session (timeout {EXPIRE_MS} ms) expired {gone_after:?} after the restart began");
    assert!(gone_after >= Duration::from_millis(EXPIRE_MS as u64), "session b expired early: {gone_after:?} after the restart (timeout {EXPIRE_MS} ms)");
    assert!(
        gone_after <= Duration::from_millis(EXPIRE_MS as u64 + 2500),
        "session b expired late: {gone_after:?} after the restart (timeout {EXPIRE_MS} ms, tick 200 ms)"
    );
    assert!(c.get_data("/eph/b").is_none());
    // a kept its session (it was pinging) and its ephemeral.
    assert_eq!(a.get_data("/eph/a").map(|v| v.1.ephemeral_owner), Some(a_sid));
    // b cannot come back now.
    if let Ok((_, r)) = Client::handshake(port, EXPIRE_MS, b_sid, b_pw, 0) {
        assert_eq!(r.session_id, 0, "expired session b could reconnect: {r:?}");
    }

    // Second kill -9: the expiry is durable, a's session and ephemeral are restored again.
    let a_zxid = a.last_zxid.max(c.last_zxid);
    kill9(&mut server, "sessions (2nd)");
    drop((a, c));
    restart_checked(&mut server, true, &[]);
    let mut c = Client::connect(port, KEEP_MS).unwrap();
    assert!(c.get_data("/eph/b").is_none(), "expired session's ephemeral came back after a restart");
    assert_eq!(c.get_data("/eph/a").map(|v| v.1.ephemeral_owner), Some(a_sid));
    let (mut a, resp) = Client::handshake(port, KEEP_MS, a_sid, a_pw.clone(), a_zxid).expect("reconnect a");
    assert_eq!(resp.session_id, a_sid, "second reconnect of session a refused: {resp:?}");
    // Closing a removes its ephemeral, and that stays so after another kill -9.
    a.close_session();
    assert!(c.get_data("/eph/a").is_none());
    kill9(&mut server, "sessions (3rd)");
    restart_checked(&mut server, true, &[]);
    let mut c = Client::connect(port, KEEP_MS).unwrap();
    assert!(c.get_data("/eph/a").is_none(), "closed session's ephemeral came back after a restart");
    assert_eq!(c.children("/eph").map(|s| s.len()), Some(30));
    if let Ok((_, r)) = Client::handshake(port, KEEP_MS, a_sid, a_pw, 0) {
        assert_eq!(r.session_id, 0, "closed session a could reconnect: {r:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Torn and corrupt files
// ---------------------------------------------------------------------------------------------

/// A node the test wrote, with the zxid of its (acknowledged) txn.
#[derive(Clone, Debug)]
struct Written {
    path: String,
    data: Vec<u8>,
    zxid: i64,
}

/// Pipelines `n` writes under `prefix` (created first): creates, and every 7th a multi creating
/// two nodes. Every one must be acknowledged.
fn write_nodes(c: &mut Client, prefix: &str, n: usize, window: usize, rng: &mut StdRng) -> Vec<Written> {
    c.must_create(prefix, b"", 0);
    let mut out = Vec::new();
    let mut inflight: VecDeque<(i32, Vec<NodeData>)> = VecDeque::new();
    let mut next = 0;
    while next < n || !inflight.is_empty() {
        while inflight.len() < window && next < n {
            let path = format!("{prefix}/n{next}");
            let data = gen_data(rng, &path);
            let (op, body, nodes) = if next % 7 == 6 {
                let b = format!("{path}b");
                (OP_MULTI, multi_create_body(&[(&path, &data), (&b, &data)]), vec![(path, data.clone()), (b, data)])
            } else {
                (OP_CREATE2, create2_body(&path, &data), vec![(path, data)])
            };
            let xid = c.send(op, &body).expect("send");
            inflight.push_back((xid, nodes));
            next += 1;
        }
        let (h, _) = c.recv().expect("reply");
        let (xid, nodes) = inflight.pop_front().unwrap();
        assert_eq!(h.xid, xid);
        assert_eq!(h.err, 0, "write of {:?} failed", nodes[0].0);
        out.extend(nodes.into_iter().map(|(path, data)| Written { path, data, zxid: h.zxid }));
    }
    out
}

/// Every node in `present` exists with its data and czxid; none in `absent` exists.
fn check_nodes(c: &mut Client, present: &[&Written], absent: &[&Written], what: &str) {
    let paths: Vec<String> = present.iter().chain(absent).map(|w| w.path.clone()).collect();
    let got = c.get_many(&paths);
    let mut errors = Vec::new();
    for (w, g) in present.iter().chain(absent).zip(got.iter()) {
        let want = present.iter().any(|p| std::ptr::eq(*p, *w));
        match (want, g) {
            (true, None) => errors.push(format!("{} (zxid 0x{:x}) is missing", w.path, w.zxid)),
            (true, Some((d, s))) if *d != w.data || s.czxid != w.zxid => {
                errors.push(format!("{} differs: czxid 0x{:x} vs 0x{:x}, data equal {}", w.path, s.czxid, w.zxid, *d == w.data))
            }
            (false, Some((_, s))) => errors.push(format!("{} (zxid 0x{:x}, after the cut) exists with czxid 0x{:x}", w.path, w.zxid, s.czxid)),
            _ => {}
        }
    }
    assert!(errors.is_empty(), "{what}: {} problems:\n{}", errors.len(), errors.iter().take(30).cloned().collect::<Vec<_>>().join("\n"));
}

#[derive(Debug)]
struct EntryPos {
    start: u64,
    /// One past the 'B'.
    end: u64,
    zxid: i64,
    txn: Txn,
}

/// The entries of a txn log file, parsed independently of the server's reader.
fn parse_log(path: &Path) -> Vec<EntryPos> {
    let b = fs::read(path).unwrap();
    assert!(b.len() >= 16 && b[0..4] == *b"ZKLG", "{} is not a txn log", path.display());
    let mut pos = 16usize;
    let mut out = Vec::new();
    while pos + 12 <= b.len() {
        let crc = i64::from_be_bytes(b[pos..pos + 8].try_into().unwrap());
        let len = i32::from_be_bytes(b[pos + 8..pos + 12].try_into().unwrap());
        if len <= 0 {
            break;
        }
        let body = &b[pos + 12..pos + 12 + len as usize];
        assert_eq!(rzk::storage::adler32(body) as i64, crc, "entry at {pos} of {}", path.display());
        assert_eq!(b[pos + 12 + len as usize], b'B');
        let (hdr, txn, _) = rzk::storage::txnlog::decode_txn_bytes(body).unwrap();
        let end = pos + 12 + len as usize + 1;
        out.push(EntryPos { start: pos as u64, end: end as u64, zxid: hdr.zxid, txn });
        pos = end;
    }
    out
}

fn newest_file(dir: &Path, prefix: &str) -> PathBuf {
    rzk::storage::list_files(dir, prefix).unwrap().pop().unwrap_or_else(|| panic!("no {prefix} files in {}", dir.display())).1
}

fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let mut b = fs::read(path).unwrap();
    b[offset as usize] ^= 1 << bit;
    fs::write(path, b).unwrap();
}

/// After a recovery: more writes, kill -9, restart; everything expected is there.
fn crash_again_and_check(server: &mut RzkServer, rng: &mut StdRng, before: &[&Written], prefix: &str, what: &str, may_skip: &[PathBuf]) {
    let mut c = Client::connect(server.port, 30000).unwrap();
    let more = write_nodes(&mut c, prefix, 40, 8, rng);
    let max_before = before.iter().map(|w| w.zxid).max().unwrap_or(0);
    assert!(more[0].zxid > max_before, "{what}: zxid 0x{:x} after recovery not above 0x{max_before:x}", more[0].zxid);
    kill9(server, what);
    restart_checked(server, true, may_skip);
    let mut c = Client::connect(server.port, 30000).unwrap();
    let all: Vec<&Written> = before.iter().copied().chain(more.iter()).collect();
    check_nodes(&mut c, &all, &[], &format!("{what}, after a second kill -9"));
}

/// (a) A txn log cut at a random offset inside one of its last entries; (b) a bit flipped in its
/// last entry. The restart cuts the torn tail, says which file and offset, and keeps every txn
/// before the cut.
#[test]
fn torn_or_bit_flipped_log_tail_is_cut() {
    let seed = seed_from_env();
    println!("torn_or_bit_flipped_log_tail_is_cut: seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    for iter in 0..6 {
        let flip = iter % 2 == 1;
        let prealloc = ["65536", "1", "16"][rng.gen_range(0..3)];
        let pa = format!("preAllocSize={prealloc}");
        let mut server = RzkServer::start_with(&[pa.as_str()]);
        let mut c = Client::connect(server.port, 30000).unwrap();
        let n = rng.gen_range(30..120);
        let window = rng.gen_range(1..32);
        let written = write_nodes(&mut c, "/t", n, window, &mut rng);
        kill9(&mut server, "torn tail");
        let v2 = version2(&server);
        let log = newest_file(&v2, "log");
        let entries = parse_log(&log);
        assert!(entries.len() >= 6, "{} has only {} entries", log.display(), entries.len());
        let (k, detectable, how) = if flip {
            let k = entries.len() - 1;
            let e = &entries[k];
            let off = rng.gen_range(e.start..e.end);
            let bit = rng.gen_range(0..8u8);
            flip_bit(&log, off, bit);
            // A length flipped to 0 reads as the end of the file (as the preallocated zeros do).
            let b = fs::read(&log).unwrap();
            let len = i32::from_be_bytes(b[e.start as usize + 8..e.start as usize + 12].try_into().unwrap());
            (k, len != 0, format!("bit {bit} of byte {off} flipped (entry {}..{})", e.start, e.end))
        } else {
            let k = rng.gen_range(entries.len() - 5..entries.len());
            let e = &entries[k];
            let cut = rng.gen_range(e.start + 1..e.end);
            let b = fs::read(&log).unwrap();
            // A fragment of only zero bytes (the high half of the crc) is the end of the file.
            let detectable = b[e.start as usize..cut as usize].iter().any(|x| *x != 0);
            fs::OpenOptions::new().write(true).open(&log).unwrap().set_len(cut).unwrap();
            (k, detectable, format!("cut at {cut} (entry {}..{})", e.start, e.end))
        };
        let cut_zxid = entries[k].zxid;
        let out = restart_checked(&mut server, false, &[]);
        let what = format!("seed {seed} iteration {iter}: {} {how}", log.display());
        let want_line = format!("{} cut at offset {}", log.display(), entries[k].start);
        if detectable {
            assert!(out.contains(&want_line), "{what}: the restart did not report `{want_line}`:\n{out}");
        }
        assert_eq!(
            fs::metadata(&log).map(|m| m.len()).unwrap_or(0),
            if detectable { entries[k].start } else { fs::metadata(&log).unwrap().len() },
            "{what}: log not truncated at the entry start"
        );
        let mut c = Client::connect(server.port, 30000).unwrap();
        let present: Vec<&Written> = written.iter().filter(|w| w.zxid < cut_zxid).collect();
        let absent: Vec<&Written> = written.iter().filter(|w| w.zxid >= cut_zxid).collect();
        assert!(!absent.is_empty(), "{what}: the cut entry {:?} is not one of the test's writes", entries[k].txn);
        check_nodes(&mut c, &present, &absent, &what);
        println!("{what}: {} txns kept, {} dropped, reported: {detectable}", present.len(), absent.len());
        drop(c);
        crash_again_and_check(&mut server, &mut rng, &present, "/u", &what, &[]);
    }
}

/// A crash right after a new log file was created leaves it empty or with part of its 16-byte
/// header: the restart removes it and keeps everything.
#[test]
fn empty_or_headerless_newest_log_is_removed() {
    let seed = seed_from_env();
    println!("empty_or_headerless_newest_log_is_removed: seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    for len in [0usize, rng.gen_range(1..16)] {
        let mut server = RzkServer::start();
        let mut c = Client::connect(server.port, 30000).unwrap();
        let written = write_nodes(&mut c, "/t", 30, 4, &mut rng);
        kill9(&mut server, "headerless log");
        let v2 = version2(&server);
        let last = written.iter().map(|w| w.zxid).max().unwrap();
        let stub = v2.join(format!("log.{:x}", last + 1));
        let header = [0x5a, 0x4b, 0x4c, 0x47, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0];
        fs::write(&stub, &header[..len]).unwrap();
        restart_checked(&mut server, true, &[]);
        let mut c = Client::connect(server.port, 30000).unwrap();
        let all: Vec<&Written> = written.iter().collect();
        let what = format!("seed {seed}: newest log {} with {len} bytes", stub.display());
        check_nodes(&mut c, &all, &[], &what);
        drop(c);
        crash_again_and_check(&mut server, &mut rng, &all, "/u", &what, &[]);
    }
}

/// A bit flipped in an entry that valid entries follow is not a torn tail: the server refuses to
/// start, naming the file and offset, instead of silently dropping the acknowledged txns after it.
#[test]
fn bit_flip_before_the_tail_refuses_to_start() {
    let seed = seed_from_env();
    println!("bit_flip_before_the_tail_refuses_to_start: seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut server = RzkServer::start();
    let mut c = Client::connect(server.port, 30000).unwrap();
    let written = write_nodes(&mut c, "/t", 50, 4, &mut rng);
    kill9(&mut server, "mid-log flip");
    let log = newest_file(&version2(&server), "log");
    let entries = parse_log(&log);
    let k = rng.gen_range(entries.len() - 10..entries.len() - 2);
    let e = &entries[k];
    // Inside the txn bytes (not the length or the 'B').
    let off = rng.gen_range(e.start + 12..e.end - 1);
    let bit = rng.gen_range(0..8u8);
    flip_bit(&log, off, bit);
    let mark = output_mark(&server);
    let mut child = spawn_raw(&server);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = common::wait_exit(&mut child, deadline);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = output_since(&server, mark);
    let what = format!("seed {seed}: bit {bit} of byte {off} flipped in entry {}..{} of {}", e.start, e.end, log.display());
    assert!(status.is_some_and(|s| !s.success()), "{what}: the server did not refuse to start ({status:?}):\n{out}");
    let want = format!("{}: corrupt at byte {}", log.display(), e.start);
    assert!(out.contains(&want), "{what}: the error does not say `{want}`:\n{out}");
    // Repaired, it starts with everything.
    flip_bit(&log, off, bit);
    restart_checked(&mut server, true, &[]);
    let mut c = Client::connect(server.port, 30000).unwrap();
    check_nodes(&mut c, &written.iter().collect::<Vec<_>>(), &[], &what);
}

/// (c) Bits flipped in the newest snapshot(s): the server falls back to an older snapshot and the
/// logs after it, with all data.
#[test]
fn corrupt_newest_snapshot_falls_back() {
    let seed = seed_from_env();
    println!("corrupt_newest_snapshot_falls_back: seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    for (iter, comp) in ["", "gz", "snappy", ""].into_iter().enumerate() {
        let ncorrupt = if iter == 3 { 2 } else { 1 };
        let snap = format!("snapCount={}", rng.gen_range(8..20));
        let compl = format!("snapshot.compression.method={comp}");
        let mut server = RzkServer::start_with(&[snap.as_str(), compl.as_str(), "preAllocSize=8"]);
        let mut c = Client::connect(server.port, 30000).unwrap();
        let v2 = version2(&server);
        let mut written = write_nodes(&mut c, "/t", rng.gen_range(100..200), 4, &mut rng);
        // Snapshots run on their own thread and are skipped while one runs: write until there
        // are enough.
        for more in 0..20 {
            if rzk::storage::list_files(&v2, "snapshot").unwrap().len() > ncorrupt + 1 {
                break;
            }
            written.extend(write_nodes(&mut c, &format!("/t{more}"), 50, 4, &mut rng));
        }
        kill9(&mut server, "snapshot flip");
        let snaps = rzk::storage::list_files(&v2, "snapshot").unwrap();
        assert!(snaps.len() > ncorrupt + 1, "only {} snapshots: {snaps:?}", snaps.len());
        let mut what = format!("seed {seed} iteration {iter} ({comp:?}):");
        let victims: Vec<PathBuf> = snaps.iter().rev().take(ncorrupt).map(|(_, p)| p.clone()).collect();
        for p in &victims {
            let len = fs::metadata(p).unwrap().len();
            let off = rng.gen_range(0..len);
            let bit = rng.gen_range(0..8u8);
            flip_bit(p, off, bit);
            what.push_str(&format!(" {} bit {bit} of byte {off}/{len};", p.display()));
        }
        let out = restart_checked(&mut server, true, &victims);
        if comp.is_empty() {
            for p in &victims {
                assert!(out.contains(&p.display().to_string()), "{what} the restart does not mention the skipped snapshot {}:\n{out}", p.display());
            }
        }
        let mut c = Client::connect(server.port, 30000).unwrap();
        let all: Vec<&Written> = written.iter().collect();
        check_nodes(&mut c, &all, &[], &what);
        println!("{what} {} snapshots, all {} nodes restored", snaps.len(), all.len());
        drop(c);
        crash_again_and_check(&mut server, &mut rng, &all, "/u", &what, &victims);
    }
}

/// (d) A zero-length snapshot (as a crash in the middle of writing one leaves with a
/// non-atomic writer such as Apache's), a zero-length one with a higher zxid, and a leftover temp
/// file are skipped.
#[test]
fn zero_length_snapshot_is_skipped() {
    let seed = seed_from_env();
    println!("zero_length_snapshot_is_skipped: seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut server = RzkServer::start_with(&["snapCount=10"]);
    let mut c = Client::connect(server.port, 30000).unwrap();
    let v2 = version2(&server);
    let mut written = write_nodes(&mut c, "/t", 120, 4, &mut rng);
    for more in 0..20 {
        if rzk::storage::list_files(&v2, "snapshot").unwrap().len() >= 3 {
            break;
        }
        written.extend(write_nodes(&mut c, &format!("/t{more}"), 50, 4, &mut rng));
    }
    kill9(&mut server, "zero-length snapshot");
    let snaps = rzk::storage::list_files(&v2, "snapshot").unwrap();
    assert!(snaps.len() >= 3, "{snaps:?}");
    let (newest_zxid, newest) = snaps.last().unwrap().clone();
    fs::OpenOptions::new().write(true).open(&newest).unwrap().set_len(0).unwrap();
    let higher = v2.join(format!("snapshot.{:x}", newest_zxid + 0x10000));
    fs::write(&higher, b"").unwrap();
    let tmp = v2.join(format!(".snapshot.{:x}.tmp", newest_zxid + 1));
    fs::write(&tmp, b"ZKSN\0\0\0\x02garbage").unwrap();
    let out = restart_checked(&mut server, true, &[newest.clone(), higher.clone()]);
    for p in [&newest, &higher] {
        assert!(out.contains(&p.display().to_string()), "the restart does not mention the skipped snapshot {}:\n{out}", p.display());
    }
    let mut c = Client::connect(server.port, 30000).unwrap();
    let all: Vec<&Written> = written.iter().collect();
    check_nodes(&mut c, &all, &[], "zero-length snapshot");
    drop(c);
    crash_again_and_check(&mut server, &mut rng, &all, "/u", "zero-length snapshot", &[newest.clone(), higher.clone()]);
}

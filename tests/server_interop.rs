//! Server-level interop with a real Apache ZooKeeper 3.8 (Debian's `zookeeper` package), both
//! ways, through a shared dataDir:
//!
//! 1. `rzk_data_dir_serves_the_same_in_apache`: rzk builds a varied tree over the wire, is
//!    SIGKILLed, and Apache started on a copy of its dataDir must serve the same tree (data, every
//!    Stat field, ACLs), the same ephemerals for the same session (`dump`), the same last zxid
//!    (`srvr`), and accept the session that was left open (id + password). Apache's
//!    `TxnLogToolkit -d` and `SnapshotFormatter` read every file rzk wrote without error.
//! 2. `apache_data_dir_serves_the_same_in_rzk`: the same script against Apache, SIGKILL, rzk on a
//!    copy, same comparisons.
//! 3. `round_trip_rzk_apache_rzk`: rzk → Apache (more writes) → rzk (more writes, restart): all
//!    writes of both servers are there, zxids keep increasing, the open session survives both hops.
//!
//! The client here is our own small blocking client on `rzk::jute` records, so the same bytes go
//! to both servers. Both run with `snapCount=40`, so snapshots (fuzzy ones included) and rolled
//! logs are read across, not just one log; the round trip also uses gz (rzk) and snappy (Apache)
//! snapshots. Skips (printing why) when Apache is not installed, unless `RZK_REQUIRE_APACHE=1`.
//!
//! Seen live (3.8.0), and worth knowing when reading the assertions:
//! * A sequential suffix is the parent's *stored* cversion (number of child creates); clients see
//!   `stored * 2 - numChildren` (`DataNode.copyStat`), so after deletes the two differ.
//! * Apache's txn log entries carry a TxnDigest (all but error txns); rzk's server writes none
//!   (printed, not asserted: Apache accepts that, it just cannot check per-txn digests).
//! * rzk purges at start-up by default (keeps 3 snapshots), Apache does not (`purgeInterval=0`),
//!   so rzk started on Apache's dataDir removes Apache's older snapshots and logs.

mod common;

use base64::Engine as _;
use common::{copy_dir, four_letter, ApacheZk, RzkServer, TestDir, APACHE_JAR};
use rzk::jute::records::{
    Acl, AuthPacket, ConnectRequest, ConnectResponse, Create2Response, CreateRequest, CreateResponse, CreateTtlRequest,
    ErrorResponse, GetAclResponse, GetChildrenResponse, GetDataResponse, Id, MultiHeader, PathRequest,
    PathVersionRequest, PathWatchRequest, ReplyHeader, RequestHeader, SetAclRequest, SetDataRequest, Stat,
    StatResponse,
};
use rzk::jute::{Jute, Reader, Writer};
use sha1::{Digest, Sha1};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Both servers get the same tickTime and TTL support. A small snapCount makes both take
/// snapshots (and roll logs) in the middle of the script, so each side reads the other's
/// snapshots of the varied tree (sessions, ephemerals, TTL and container nodes, ACLs, quota),
/// fuzzy ones included, not only txn logs.
const CFG: &[&str] = &["tickTime=2000", "extendedTypesEnabled=true", "snapCount=40"];
const SESSION_TIMEOUT: i32 = 30_000;
const TTL_MS: i64 = 3_600_000;

const OP_CREATE: i32 = 1;
const OP_DELETE: i32 = 2;
const OP_GET_DATA: i32 = 4;
const OP_SET_DATA: i32 = 5;
const OP_GET_ACL: i32 = 6;
const OP_SET_ACL: i32 = 7;
const OP_GET_CHILDREN: i32 = 8;
const OP_PING: i32 = 11;
const OP_CHECK: i32 = 13;
const OP_MULTI: i32 = 14;
const OP_CREATE2: i32 = 15;
const OP_CREATE_CONTAINER: i32 = 19;
const OP_CREATE_TTL: i32 = 21;
const OP_AUTH: i32 = 100;
const OP_CLOSE: i32 = -11;

const PERSISTENT: i32 = 0;
const EPHEMERAL: i32 = 1;
const SEQUENTIAL: i32 = 2;
const EPHEMERAL_SEQUENTIAL: i32 = 3;
const CONTAINER: i32 = 4;
const PERSISTENT_WITH_TTL: i32 = 5;
const PERSISTENT_SEQUENTIAL_WITH_TTL: i32 = 6;

const NO_NODE: i32 = -101;
const BAD_VERSION: i32 = -103;
const NODE_EXISTS: i32 = -110;

const ALL: i32 = 31;
const READ: i32 = 1;
const WRITE: i32 = 2;
const ADMIN: i32 = 16;

// ---------------------------------------------------------------------------------------------
// Skips and Apache's tools
// ---------------------------------------------------------------------------------------------

fn env_flag(name: &str) -> bool {
    matches!(std::env::var(name).as_deref(), Ok("1") | Ok("true") | Ok("yes"))
}

fn java() -> String {
    std::env::var("JAVA").unwrap_or_else(|_| "java".to_string())
}

/// Apache's jar and a JVM, or a skip (panic under RZK_REQUIRE_APACHE=1).
fn apache_available() -> bool {
    let java_ok = Command::new(java()).arg("-version").output().map(|o| o.status.success()).unwrap_or(false);
    if ApacheZk::available() && java_ok {
        return true;
    }
    let why = if java_ok { format!("{APACHE_JAR} missing") } else { "no java".to_string() };
    if env_flag("RZK_REQUIRE_APACHE") {
        panic!("RZK_REQUIRE_APACHE=1 but Apache ZooKeeper is unavailable ({why}; apt-get install zookeeper)");
    }
    println!("skipping: Apache ZooKeeper unavailable ({why})");
    false
}

/// `java -cp zookeeper.jar:slf4j-nop.jar <args>`: (exit ok, stdout, stderr).
fn run_apache_tool(args: &[&str]) -> (bool, String, String) {
    let nop = "/usr/share/java/slf4j-nop.jar";
    let cp = if Path::new(nop).exists() { format!("{APACHE_JAR}:{nop}") } else { APACHE_JAR.to_string() };
    let out = Command::new(java()).arg("-cp").arg(cp).arg("-Xmx256m").args(args).output().expect("run java");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn files_in(v2: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(v2)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", v2.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    v.sort();
    v
}

/// Runs `TxnLogToolkit -d` on every log and `SnapshotFormatter` on every snapshot in
/// `<data_dir>/version-2`; asserts no CRC error and no exception. Returns the zxids of all logged
/// txns (in file order) and the number of files checked.
fn apache_tools_read(data_dir: &Path) -> (Vec<i64>, usize) {
    let v2 = data_dir.join("version-2");
    let logs = files_in(&v2, "log.");
    let snaps = files_in(&v2, "snapshot.");
    assert!(!logs.is_empty() && !snaps.is_empty(), "no logs/snapshots in {}", v2.display());
    let mut zxids = Vec::new();
    for l in &logs {
        let (ok, out, err) = run_apache_tool(&["org.apache.zookeeper.server.persistence.TxnLogToolkit", "-d", l.to_str().unwrap()]);
        let name = l.file_name().unwrap().to_string_lossy();
        assert!(ok, "TxnLogToolkit failed on {name}\n{out}\n{err}");
        assert!(out.contains("ZooKeeper Transactional Log File with dbid 0 txnlog format version 2"), "{name}: {out}");
        for bad in ["CRC ERROR", "Exception", "exception"] {
            assert!(!out.contains(bad) && !err.contains(bad), "TxnLogToolkit on {name}: {bad}\n{out}\n{err}");
        }
        for line in out.lines() {
            if let Some(i) = line.find(" zxid 0x") {
                let hex: String = line[i + 8..].chars().take_while(|c| c.is_ascii_hexdigit()).collect();
                zxids.push(i64::from_str_radix(&hex, 16).unwrap());
            }
        }
    }
    for s in &snaps {
        let name = s.file_name().unwrap().to_string_lossy();
        let (ok, out, err) = run_apache_tool(&["org.apache.zookeeper.server.SnapshotFormatter", s.to_str().unwrap()]);
        assert!(ok, "SnapshotFormatter failed on {name}\n{out}\n{err}");
        assert!(out.contains("ZNode Details (count="), "{name}: {out}");
        assert!(out.contains("Session Details (sid, timeout, ephemeralCount):"), "{name}: {out}");
        for bad in ["CRC", "Exception", "exception"] {
            assert!(!out.contains(bad) && !err.contains(bad), "SnapshotFormatter on {name}: {bad}\n{out}\n{err}");
        }
    }
    (zxids, logs.len() + snaps.len())
}

// ---------------------------------------------------------------------------------------------
// A compact client on rzk::jute records
// ---------------------------------------------------------------------------------------------

fn write_frame(s: &mut TcpStream, body: &[u8]) -> io::Result<()> {
    let mut b = Vec::with_capacity(body.len() + 4);
    b.extend_from_slice(&(body.len() as i32).to_be_bytes());
    b.extend_from_slice(body);
    s.write_all(&b)
}

fn read_frame(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let n = i32::from_be_bytes(len);
    assert!((0..16 << 20).contains(&n), "bad frame length {n}");
    let mut b = vec![0u8; n as usize];
    s.read_exact(&mut b)?;
    Ok(b)
}

struct Zk {
    stream: TcpStream,
    xid: i32,
    session_id: i64,
    passwd: Vec<u8>,
    timeout: i32,
    /// Highest zxid seen in any reply header.
    last_zxid: i64,
    /// Zxids of the successful writes made on this handle, in order.
    write_zxids: Vec<i64>,
}

enum MultiOp<'a> {
    Create(&'a str, Option<&'a [u8]>),
    SetData(&'a str, Option<&'a [u8]>, i32),
    Check(&'a str, i32),
    Delete(&'a str, i32),
}

fn open() -> Vec<Acl> {
    vec![world(ALL)]
}
fn world(perms: i32) -> Acl {
    Acl { perms, id: Id { scheme: "world".into(), id: "anyone".into() } }
}
/// `user:BASE64(SHA1("user:password"))`, as DigestAuthenticationProvider.generateDigest.
fn digest_acl(user_password: &str, perms: i32) -> Acl {
    let user = user_password.split(':').next().unwrap();
    let hash = Sha1::digest(user_password.as_bytes());
    let id = format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash));
    Acl { perms, id: Id { scheme: "digest".into(), id } }
}

impl Zk {
    fn connect(port: u16) -> Zk {
        Zk::resume(port, 0, &[0; 16], 0).unwrap_or_else(|e| panic!("new session on port {port}: {e}"))
    }

    /// A ConnectRequest for `session_id` (0 = new) with `passwd`; Err if the server refuses it
    /// (expired/unknown session: timeout 0 in the reply, or the connection is closed).
    fn resume(port: u16, session_id: i64, passwd: &[u8], last_zxid: i64) -> Result<Zk, String> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_nodelay(true).unwrap();
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: last_zxid,
            time_out: SESSION_TIMEOUT,
            session_id,
            passwd: Some(passwd.to_vec()),
            read_only: Some(false),
        };
        write_frame(&mut s, &req.to_bytes()).map_err(|e| format!("send ConnectRequest: {e}"))?;
        let body = read_frame(&mut s).map_err(|e| format!("no ConnectResponse (connection closed: {e})"))?;
        let resp = ConnectResponse::from_bytes(&body).map_err(|e| format!("bad ConnectResponse: {e}"))?;
        if resp.time_out <= 0 || resp.session_id == 0 {
            return Err(format!("session 0x{session_id:x} refused: {resp:?}"));
        }
        if session_id != 0 && resp.session_id != session_id {
            return Err(format!("asked for session 0x{session_id:x}, got {resp:?}"));
        }
        Ok(Zk {
            stream: s,
            xid: 0,
            session_id: resp.session_id,
            passwd: resp.passwd,
            timeout: resp.time_out,
            last_zxid,
            write_zxids: Vec::new(),
        })
    }

    fn send(&mut self, xid: i32, op: i32, body: &[u8]) {
        let mut w = Writer::new();
        RequestHeader { xid, op }.write(&mut w);
        w.buf.extend_from_slice(body);
        write_frame(&mut self.stream, &w.buf).unwrap_or_else(|e| panic!("send op {op}: {e}"));
    }

    /// The reply to `xid` (watch events and pings in between are skipped): (err, zxid, body).
    fn recv(&mut self, xid: i32) -> (i32, i64, Vec<u8>) {
        loop {
            let f = read_frame(&mut self.stream).unwrap_or_else(|e| panic!("reading reply to xid {xid}: {e}"));
            let mut r = Reader::new(&f);
            let h = ReplyHeader::read(&mut r).unwrap();
            if h.xid != xid && (h.xid == -1 || h.xid == -2) {
                continue;
            }
            assert_eq!(h.xid, xid, "out-of-order reply");
            if h.zxid > 0 {
                self.last_zxid = self.last_zxid.max(h.zxid);
            }
            return (h.err, h.zxid, r.rest().to_vec());
        }
    }

    fn call(&mut self, op: i32, body: &[u8]) -> (i32, i64, Vec<u8>) {
        self.xid += 1;
        let xid = self.xid;
        self.send(xid, op, body);
        self.recv(xid)
    }

    fn write_op<T>(&mut self, op: i32, body: &[u8], parse: impl FnOnce(&[u8]) -> T) -> Result<T, i32> {
        let (err, zxid, b) = self.call(op, body);
        if err != 0 {
            return Err(err);
        }
        if let Some(&prev) = self.write_zxids.last() {
            assert!(zxid > prev, "write zxid 0x{zxid:x} not above the previous write's 0x{prev:x}");
        }
        self.write_zxids.push(zxid);
        Ok(parse(&b))
    }

    fn read_op<T: Jute>(&mut self, op: i32, body: &[u8]) -> Result<T, i32> {
        let (err, _, b) = self.call(op, body);
        if err != 0 {
            return Err(err);
        }
        Ok(T::from_bytes(&b).unwrap_or_else(|e| panic!("bad reply to op {op}: {e}")))
    }

    fn auth(&mut self, user_password: &str) {
        let p = AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Some(user_password.as_bytes().to_vec()) };
        self.send(-4, OP_AUTH, &p.to_bytes());
        let (err, _, _) = self.recv(-4);
        assert_eq!(err, 0, "addauth digest {user_password}");
    }

    fn ping(&mut self) {
        self.send(-2, OP_PING, &[]);
        self.recv(-2);
    }

    /// create2 (or createContainer for CONTAINER); the created path and its Stat.
    fn create_acl(&mut self, path: &str, data: Option<&[u8]>, acl: Vec<Acl>, flags: i32) -> Result<(String, Stat), i32> {
        let op = if flags == CONTAINER { OP_CREATE_CONTAINER } else { OP_CREATE2 };
        let req = CreateRequest { path: path.into(), data: data.map(|d| d.to_vec()), acl, flags };
        self.write_op(op, &req.to_bytes(), |b| {
            let r = Create2Response::from_bytes(b).unwrap();
            (r.path, r.stat)
        })
    }

    fn create(&mut self, path: &str, data: Option<&[u8]>, flags: i32) -> String {
        self.create_acl(path, data, open(), flags).unwrap_or_else(|e| panic!("create {path}: error {e}")).0
    }

    fn create_ttl(&mut self, path: &str, data: &[u8], flags: i32, ttl: i64) -> String {
        let req = CreateTtlRequest { path: path.into(), data: Some(data.to_vec()), acl: open(), flags, ttl };
        self.write_op(OP_CREATE_TTL, &req.to_bytes(), |b| Create2Response::from_bytes(b).unwrap().path)
            .unwrap_or_else(|e| panic!("createTTL {path}: error {e}"))
    }

    fn set_data(&mut self, path: &str, data: Option<&[u8]>, version: i32) -> Result<Stat, i32> {
        let req = SetDataRequest { path: path.into(), data: data.map(|d| d.to_vec()), version };
        self.write_op(OP_SET_DATA, &req.to_bytes(), |b| StatResponse::from_bytes(b).unwrap().stat)
    }

    fn delete(&mut self, path: &str, version: i32) -> Result<(), i32> {
        let req = PathVersionRequest { path: path.into(), version };
        self.write_op(OP_DELETE, &req.to_bytes(), |_| ())
    }

    fn set_acl(&mut self, path: &str, acl: Vec<Acl>, version: i32) -> Result<Stat, i32> {
        let req = SetAclRequest { path: path.into(), acl, version };
        self.write_op(OP_SET_ACL, &req.to_bytes(), |b| StatResponse::from_bytes(b).unwrap().stat)
    }

    fn get_data(&mut self, path: &str) -> Result<GetDataResponse, i32> {
        self.read_op(OP_GET_DATA, &PathWatchRequest { path: path.into(), watch: false }.to_bytes())
    }

    fn get_acl(&mut self, path: &str) -> Result<GetAclResponse, i32> {
        self.read_op(OP_GET_ACL, &PathRequest { path: path.into() }.to_bytes())
    }

    fn get_children(&mut self, path: &str) -> Result<Vec<String>, i32> {
        self.read_op::<GetChildrenResponse>(OP_GET_CHILDREN, &PathWatchRequest { path: path.into(), watch: false }.to_bytes())
            .map(|r| r.children)
    }

    fn stat(&mut self, path: &str) -> Stat {
        self.get_data(path).unwrap_or_else(|e| panic!("getData {path}: {e}")).stat
    }

    /// (reply header err, per-op (op, err)).
    fn multi(&mut self, ops: &[MultiOp<'_>]) -> (i32, Vec<(i32, i32)>) {
        let mut w = Writer::new();
        for op in ops {
            match op {
                MultiOp::Create(p, d) => {
                    MultiHeader { op: OP_CREATE, done: false, err: -1 }.write(&mut w);
                    CreateRequest { path: p.to_string(), data: d.map(|d| d.to_vec()), acl: open(), flags: 0 }.write(&mut w);
                }
                MultiOp::SetData(p, d, v) => {
                    MultiHeader { op: OP_SET_DATA, done: false, err: -1 }.write(&mut w);
                    SetDataRequest { path: p.to_string(), data: d.map(|d| d.to_vec()), version: *v }.write(&mut w);
                }
                MultiOp::Check(p, v) => {
                    MultiHeader { op: OP_CHECK, done: false, err: -1 }.write(&mut w);
                    PathVersionRequest { path: p.to_string(), version: *v }.write(&mut w);
                }
                MultiOp::Delete(p, v) => {
                    MultiHeader { op: OP_DELETE, done: false, err: -1 }.write(&mut w);
                    PathVersionRequest { path: p.to_string(), version: *v }.write(&mut w);
                }
            }
        }
        MultiHeader { op: -1, done: true, err: -1 }.write(&mut w);
        let (err, zxid, body) = self.call(OP_MULTI, &w.buf);
        let mut r = Reader::new(&body);
        let mut results = Vec::new();
        while r.remaining() > 0 {
            let h = MultiHeader::read(&mut r).unwrap();
            if h.done {
                break;
            }
            let e = match h.op {
                OP_CREATE => {
                    CreateResponse::read(&mut r).unwrap();
                    0
                }
                OP_CREATE2 => {
                    Create2Response::read(&mut r).unwrap();
                    0
                }
                OP_SET_DATA => {
                    StatResponse::read(&mut r).unwrap();
                    0
                }
                OP_DELETE | OP_CHECK => 0,
                -1 => ErrorResponse::read(&mut r).unwrap().err,
                o => panic!("unexpected op {o} in a multi reply"),
            };
            results.push((h.op, e));
        }
        if err == 0 && results.iter().all(|(_, e)| *e == 0) {
            self.write_zxids.push(zxid);
        }
        (err, results)
    }

    fn close(mut self) {
        let (err, _, _) = self.call(OP_CLOSE, &[]);
        assert_eq!(err, 0, "closeSession");
    }
}

// ---------------------------------------------------------------------------------------------
// The script both servers run
// ---------------------------------------------------------------------------------------------

const BOB: &str = "bob:bob-secret";
const ALICE: &str = "alice:alice-secret";

/// What the script leaves behind: the keeper session (open, owns ephemerals).
struct Built {
    keeper: Zk,
}

/// Builds the same varied tree on whichever server listens on `port`. A "builder" session
/// (authenticated as bob) writes and then closes; a "keeper" session creates ephemerals and is
/// left open.
fn build_tree(port: u16) -> Built {
    let mut b = Zk::connect(port);
    b.auth(BOB);
    let mut k = Zk::connect(port);

    // Persistent nodes, null vs empty vs binary data, a big one, a non-ASCII name.
    b.create("/app", Some(b"root-data"), PERSISTENT);
    b.create("/app/nulldata", None, PERSISTENT);
    b.create("/app/empty", Some(b""), PERSISTENT);
    b.create("/app/bin", Some(&[0, 1, 2, 0x7f, 0x80, 0xfe, 0xff]), PERSISTENT);
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    b.create("/app/big", Some(&big), PERSISTENT);
    b.create("/app/ünï-☃", Some("ďàtá ✓".as_bytes()), PERSISTENT);
    b.create("/app/many", None, PERSISTENT);
    for i in 0..40 {
        b.create(&format!("/app/many/n{i:02}"), Some(format!("value {i}").as_bytes()), PERSISTENT);
    }

    // Sequential nodes: the suffix is the parent's stored cversion (no deletes yet, so the
    // client-visible cversion equals it).
    for i in 0..3 {
        let cv = b.stat("/app").cversion;
        let p = b.create("/app/seq-", Some(format!("s{i}").as_bytes()), SEQUENTIAL);
        assert_eq!(p, format!("/app/seq-{cv:010}"));
    }

    // setData: null vs empty, with and without a version, twice on /app.
    b.create("/app/sd-null", Some(b"x"), PERSISTENT);
    b.create("/app/sd-empty", Some(b"x"), PERSISTENT);
    assert_eq!(b.set_data("/app/sd-null", None, 0).unwrap().data_length, 0);
    assert_eq!(b.set_data("/app/sd-empty", Some(b""), -1).unwrap().version, 1);
    b.set_data("/app", Some(b"root-data-2"), 0).unwrap();
    b.set_data("/app", Some(b"root-data-3"), -1).unwrap();
    assert_eq!(b.set_data("/app", Some(b"nope"), 0), Err(BAD_VERSION));

    // Ephemerals of the keeper, one sequential, one deeper down.
    b.create("/app/deep", Some(b"d"), PERSISTENT);
    k.create("/app/eph", Some(b"keeper's"), EPHEMERAL);
    let es = k.create("/app/eph-seq-", Some(b"es"), EPHEMERAL_SEQUENTIAL);
    assert!(es.starts_with("/app/eph-seq-00000000"), "{es}");
    k.create("/app/deep/eph2", None, EPHEMERAL);
    // The builder's own ephemeral goes away when it closes its session.
    b.create("/app/builder-eph", Some(b"gone"), EPHEMERAL);

    // Containers: one with a child, one never used (neither is reaped).
    b.create("/app/cont", Some(b"container"), CONTAINER);
    b.create("/app/cont/c1", Some(b"in container"), PERSISTENT);
    b.create("/app/cont-empty", None, CONTAINER);

    // TTL nodes (one hour: not reaped during the test).
    b.create_ttl("/app/ttl", b"ttl", PERSISTENT_WITH_TTL, TTL_MS);
    let ts = b.create_ttl("/app/ttl-seq-", b"ttl-seq", PERSISTENT_SEQUENTIAL_WITH_TTL, 2 * TTL_MS);
    assert!(ts.starts_with("/app/ttl-seq-"), "{ts}");

    // ACLs: digest (bob only; bob + world read; alice read+admin), `auth` (expands to bob's
    // digest id), ip.
    b.create_acl("/app/secret", Some(b"s3cr3t"), vec![digest_acl(BOB, ALL)], PERSISTENT).unwrap();
    b.create_acl("/app/shared", Some(b"shared"), vec![digest_acl(BOB, ALL), world(READ)], PERSISTENT).unwrap();
    b.create_acl("/app/alice", Some(b"alice's"), vec![digest_acl(ALICE, READ | ADMIN)], PERSISTENT).unwrap();
    let auth = Acl { perms: READ | WRITE | ADMIN, id: Id { scheme: "auth".into(), id: "".into() } };
    b.create_acl("/app/authacl", Some(b"auth"), vec![auth], PERSISTENT).unwrap();
    let ip = Acl { perms: ALL, id: Id { scheme: "ip".into(), id: "127.0.0.1".into() } };
    b.create_acl("/app/ipacl", Some(b"ip"), vec![ip, world(READ)], PERSISTENT).unwrap();
    assert_eq!(k.set_data("/app/secret", Some(b"x"), -1), Err(-102), "keeper has no auth");

    // Failed create; deletes (with and without version); delete + re-create.
    assert_eq!(b.create_acl("/app", None, open(), PERSISTENT).map(|_| ()), Err(NODE_EXISTS));
    assert_eq!(b.delete("/app/absent", -1), Err(NO_NODE));
    b.create("/app/gone", Some(b"g"), PERSISTENT);
    b.create("/app/gone/child", Some(b"gc"), PERSISTENT);
    b.delete("/app/gone/child", -1).unwrap();
    b.delete("/app/gone", 0).unwrap();
    b.create("/app/again", Some(b"first"), PERSISTENT);
    b.delete("/app/again", -1).unwrap();
    b.create("/app/again", Some(b"second"), PERSISTENT);
    b.create("/app/del-v", Some(b"v0"), PERSISTENT);
    b.set_data("/app/del-v", Some(b"v1"), 0).unwrap();
    assert_eq!(b.delete("/app/del-v", 0), Err(BAD_VERSION));
    b.delete("/app/del-v", 1).unwrap();

    // A failed multi (nothing applied) and a successful one.
    let (err, res) = b.multi(&[MultiOp::Create("/app/mf", Some(b"never")), MultiOp::Check("/app", 999)]);
    assert!(err != 0 || res.iter().any(|(_, e)| *e != 0), "failed multi: {err} {res:?}");
    assert_eq!(res.last().map(|r| r.1), Some(BAD_VERSION), "{res:?}");
    assert_eq!(b.get_data("/app/mf").map(|_| ()), Err(NO_NODE));
    let (err, res) = b.multi(&[
        MultiOp::Create("/app/m1", Some(b"m1")),
        MultiOp::Create("/app/m2", None),
        MultiOp::SetData("/app/m1", Some(b"m1-b"), 0),
        MultiOp::Check("/app/m1", 1),
        MultiOp::Delete("/app/m2", 0),
    ]);
    assert_eq!(err, 0, "{res:?}");
    assert!(res.iter().all(|(_, e)| *e == 0), "{res:?}");
    assert_eq!(res.len(), 5);

    // setACL (aversion moves).
    assert_eq!(b.set_acl("/app/shared", open(), 0).unwrap().aversion, 1);
    b.set_acl("/app/bin", vec![world(READ | WRITE | ADMIN)], -1).unwrap();
    assert_eq!(b.set_acl("/app/bin", open(), 0), Err(BAD_VERSION));

    // A quota as zkCli's `setquota -n 10 /app/q` makes it: the path's ancestors under
    // /zookeeper/quota with null data, zookeeper_limits, then zookeeper_stats "count=0,bytes=0"
    // (the server keeps the latter's data live). Then writes under the quota'd subtree.
    b.create("/app/q", Some(b"quota root"), PERSISTENT);
    b.create("/app/q/x", Some(b"12345"), PERSISTENT);
    b.create("/zookeeper/quota/app", None, PERSISTENT);
    b.create("/zookeeper/quota/app/q", None, PERSISTENT);
    b.create("/zookeeper/quota/app/q/zookeeper_limits", Some(b"count=10,bytes=-1"), PERSISTENT);
    b.create("/zookeeper/quota/app/q/zookeeper_stats", Some(b"count=0,bytes=0"), PERSISTENT);
    b.create("/app/q/y", Some(b"abc"), PERSISTENT);
    b.create("/app/q/y/z", None, PERSISTENT);
    b.set_data("/app/q/x", Some(b"1234567"), -1).unwrap();
    b.create("/app/q/tmp", Some(b"tmp"), PERSISTENT);
    b.delete("/app/q/tmp", -1).unwrap();

    b.close();
    k.ping();
    Built { keeper: k }
}

/// More writes, on whichever server; every zxid must be above `after`. `tag` keeps names apart.
fn more_writes(port: u16, keeper: &mut Zk, tag: &str, after: i64) {
    let mut b = Zk::connect(port);
    b.auth(BOB);
    // The suffix is the stored cversion (the number of child creates); a client sees
    // `stored * 2 - numChildren` (DataNode.copyStat), i.e. creates + deletes.
    let st = b.stat("/app");
    let stored = (st.cversion + st.num_children) / 2;
    let p = b.create("/app/seq-", Some(tag.as_bytes()), SEQUENTIAL);
    assert_eq!(p, format!("/app/seq-{stored:010}"), "sequential numbering continues from the loaded cversion ({st:?})");
    b.create(&format!("/app/{tag}"), Some(format!("written by {tag}").as_bytes()), PERSISTENT);
    b.create(&format!("/app/{tag}/child"), None, PERSISTENT);
    let v = b.stat("/app").version;
    b.set_data("/app", Some(format!("root by {tag}").as_bytes()), v).unwrap();
    b.set_data("/app/secret", Some(tag.as_bytes()), -1).unwrap();
    b.create(&format!("/app/q/{tag}"), Some(b"+1"), PERSISTENT);
    b.create(&format!("/app/cont/{tag}"), None, PERSISTENT);
    b.create_ttl(&format!("/app/ttl-{tag}"), tag.as_bytes(), PERSISTENT_WITH_TTL, TTL_MS);
    let a = b.stat("/app/empty").aversion;
    b.set_acl("/app/empty", vec![world(READ | WRITE | ADMIN), digest_acl(ALICE, READ)], a).unwrap();
    b.delete(&format!("/app/many/n{:02}", tag.len()), -1).unwrap();
    let (err, res) = b.multi(&[
        MultiOp::Create(&format!("/app/{tag}/m"), Some(b"m")),
        MultiOp::SetData(&format!("/app/{tag}"), Some(b"multi"), 0),
    ]);
    assert!(err == 0 && res.iter().all(|r| r.1 == 0), "{err} {res:?}");
    keeper.create(&format!("/app/eph-{tag}"), Some(tag.as_bytes()), EPHEMERAL);
    let first = b.write_zxids[0].min(keeper.write_zxids.last().copied().unwrap_or(i64::MAX));
    assert!(first > after, "{tag}: new zxid 0x{first:x} is not above 0x{after:x}");
    b.close();
}

// ---------------------------------------------------------------------------------------------
// Walking and comparing
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    data: Option<Vec<u8>>,
    stat: Stat,
    acl: Vec<Acl>,
}

type Tree = BTreeMap<String, Node>;

fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" { format!("/{name}") } else { format!("{parent}/{name}") }
}

/// Every node's data, Stat and ACL (authenticated as bob and alice, so everything is readable).
fn walk(port: u16) -> Tree {
    let mut zk = Zk::connect(port);
    zk.auth(BOB);
    zk.auth(ALICE);
    let mut tree = Tree::new();
    let mut stack = vec!["/".to_string()];
    while let Some(p) = stack.pop() {
        let d = zk.get_data(&p).unwrap_or_else(|e| panic!("getData {p}: {e}"));
        let a = zk.get_acl(&p).unwrap_or_else(|e| panic!("getACL {p}: {e}"));
        let kids = zk.get_children(&p).unwrap_or_else(|e| panic!("getChildren {p}: {e}"));
        assert_eq!(a.stat, d.stat, "{p}: getACL and getData disagree on the Stat");
        assert_eq!(kids.len() as i32, d.stat.num_children, "{p}: numChildren vs getChildren {kids:?}");
        stack.extend(kids.iter().map(|k| child_path(&p, k)));
        tree.insert(p, Node { data: d.data, stat: d.stat, acl: a.acl });
    }
    zk.close();
    tree
}

fn show(d: &Option<Vec<u8>>) -> String {
    match d {
        None => "null".into(),
        Some(b) if b.len() > 64 => format!("<{} bytes>", b.len()),
        Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
    }
}

fn stat_fields(s: &Stat) -> [(&'static str, i64); 11] {
    [
        ("czxid", s.czxid),
        ("mzxid", s.mzxid),
        ("ctime", s.ctime),
        ("mtime", s.mtime),
        ("version", s.version as i64),
        ("cversion", s.cversion as i64),
        ("aversion", s.aversion as i64),
        ("ephemeralOwner", s.ephemeral_owner),
        ("dataLength", s.data_length as i64),
        ("numChildren", s.num_children as i64),
        ("pzxid", s.pzxid),
    ]
}

/// Every difference between two walks, one line each.
fn diff(want_name: &str, want: &Tree, got_name: &str, got: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    for p in want.keys().filter(|p| !got.contains_key(*p)) {
        out.push(format!("{p}: only in {want_name}"));
    }
    for p in got.keys().filter(|p| !want.contains_key(*p)) {
        out.push(format!("{p}: only in {got_name}"));
    }
    for (p, w) in want {
        let Some(g) = got.get(p) else { continue };
        if w.data != g.data {
            out.push(format!("{p}: data {want_name}={} {got_name}={}", show(&w.data), show(&g.data)));
        }
        for ((name, a), (_, b)) in stat_fields(&w.stat).iter().zip(stat_fields(&g.stat).iter()) {
            if a != b {
                out.push(format!("{p}: stat.{name} {want_name}=0x{a:x} ({a}) {got_name}=0x{b:x} ({b})"));
            }
        }
        if w.acl != g.acl {
            out.push(format!("{p}: acl {want_name}={:?} {got_name}={:?}", w.acl, g.acl));
        }
    }
    out
}

fn assert_same(want_name: &str, want: &Tree, got_name: &str, got: &Tree) {
    let d = diff(want_name, want, got_name, got);
    assert!(d.is_empty(), "{} differences between {want_name} and {got_name}:\n{}", d.len(), d.join("\n"));
}

/// Every `/zookeeper/quota<P>/zookeeper_stats` holds the live count and bytes of `<P>`'s subtree.
fn check_quota_stats(name: &str, t: &Tree) -> usize {
    let mut n = 0;
    for (p, node) in t {
        let Some(q) = p.strip_prefix("/zookeeper/quota").and_then(|r| r.strip_suffix("/zookeeper_stats")) else { continue };
        let sub: Vec<&Node> = t.iter().filter(|(k, _)| *k == q || k.starts_with(&format!("{q}/"))).map(|(_, v)| v).collect();
        let bytes: i64 = sub.iter().map(|v| v.stat.data_length as i64).sum();
        let want = format!("count={},bytes={bytes}", sub.len());
        assert_eq!(show(&node.data), show(&Some(want.into_bytes())), "{name}: {p}");
        n += 1;
    }
    n
}

/// session → ephemeral paths, from the walk's ephemeralOwner fields.
fn ephemerals_in(t: &Tree) -> BTreeMap<i64, BTreeSet<String>> {
    let mut m: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for (p, n) in t {
        if n.stat.ephemeral_owner != 0 {
            m.entry(n.stat.ephemeral_owner).or_default().insert(p.clone());
        }
    }
    m
}

/// session → ephemeral paths, from the `dump` four-letter word ("Sessions with Ephemerals").
fn ephemerals_in_dump(dump: &str) -> BTreeMap<i64, BTreeSet<String>> {
    let mut m: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    let start = dump.find("Sessions with Ephemerals").unwrap_or_else(|| panic!("no ephemerals section in dump:\n{dump}"));
    let mut cur = None;
    for line in dump[start..].lines().skip(1) {
        if let Some(path) = line.strip_prefix('\t') {
            m.entry(cur.expect("path before session")).or_default().insert(path.to_string());
        } else if let Some(hex) = line.strip_prefix("0x").and_then(|l| l.strip_suffix(':')) {
            let sid = u64::from_str_radix(hex, 16).unwrap() as i64;
            m.entry(sid).or_default();
            cur = Some(sid);
        } else {
            break;
        }
    }
    m
}

/// The `Zxid: 0x...` line of `srvr`.
fn srvr_zxid(port: u16) -> i64 {
    let out = four_letter(port, "srvr");
    let line = out.lines().find_map(|l| l.strip_prefix("Zxid: 0x")).unwrap_or_else(|| panic!("srvr:\n{out}"));
    i64::from_str_radix(line.trim(), 16).unwrap()
}

/// The keeper's session comes back on the server at `port` (same id, same password); its
/// ephemerals are there and owned by it.
fn resume_keeper(port: u16, keeper: &Zk, what: &str) -> Zk {
    let t = Instant::now();
    // Negative controls: a wrong password and an unknown session are refused.
    let mut wrong = keeper.passwd.clone();
    wrong[0] ^= 0x5a;
    let r = Zk::resume(port, keeper.session_id, &wrong, keeper.last_zxid);
    assert!(r.is_err(), "{what}: a wrong password was accepted");
    let r = Zk::resume(port, keeper.session_id ^ 0x7777, &keeper.passwd, 0);
    assert!(r.is_err(), "{what}: an unknown session was accepted");
    let mut k = Zk::resume(port, keeper.session_id, &keeper.passwd, keeper.last_zxid)
        .unwrap_or_else(|e| panic!("{what}: the restored session 0x{:x} is not accepted: {e}", keeper.session_id));
    assert!(k.timeout > 0);
    k.write_zxids = keeper.write_zxids.clone();
    k.ping();
    let s = k.stat("/app/eph");
    assert_eq!(s.ephemeral_owner, keeper.session_id, "{what}: /app/eph's owner");
    println!(
        "{what}: session 0x{:x} resumed (negotiated timeout {} ms) in {:?}",
        k.session_id,
        k.timeout,
        t.elapsed()
    );
    k
}

/// `dump`'s ephemerals equal the walk's, and the keeper's set is as expected.
fn check_dump(what: &str, port: u16, tree: &Tree, keeper_sid: i64) -> BTreeMap<i64, BTreeSet<String>> {
    let dump = four_letter(port, "dump");
    let from_dump = ephemerals_in_dump(&dump);
    assert_eq!(from_dump, ephemerals_in(tree), "{what}: dump vs the tree's ephemeralOwner fields\n{dump}");
    let mine = from_dump.get(&keeper_sid).unwrap_or_else(|| panic!("{what}: keeper 0x{keeper_sid:x} not in dump:\n{dump}"));
    for p in ["/app/eph", "/app/deep/eph2"] {
        assert!(mine.contains(p), "{what}: {p} not in the keeper's ephemerals {mine:?}");
    }
    assert_eq!(from_dump.len(), 1, "{what}: only the keeper owns ephemerals: {from_dump:?}");
    from_dump
}

fn max_zxid(t: &Tree) -> i64 {
    t.values().map(|n| n.stat.czxid.max(n.stat.mzxid).max(n.stat.pzxid)).max().unwrap()
}

/// Sanity of one walk of the script's tree.
fn check_tree(name: &str, t: &Tree) {
    let n = |p: &str| t.get(p).unwrap_or_else(|| panic!("{name}: {p} missing"));
    assert_eq!(n("/app/nulldata").data, None, "{name}");
    assert_eq!(n("/app/empty").data, Some(vec![]), "{name}");
    assert_eq!(n("/app/sd-null").data, None, "{name}: setData(null)");
    assert_eq!(n("/app/sd-empty").data, Some(vec![]), "{name}: setData(empty)");
    assert_eq!(n("/app/big").stat.data_length, 200_000, "{name}");
    assert!(!t.contains_key("/app/builder-eph"), "{name}: the closed session's ephemeral");
    assert!(!t.contains_key("/app/mf") && !t.contains_key("/app/m2") && !t.contains_key("/app/gone"), "{name}");
    assert_eq!(n("/app/m1").data.as_deref(), Some(&b"m1-b"[..]), "{name}");
    assert_eq!(n("/app/m1").stat.version, 1, "{name}");
    assert_eq!(n("/app/authacl").acl, vec![digest_acl(BOB, READ | WRITE | ADMIN)], "{name}: auth ACL expanded");
    assert_eq!(n("/app/alice").acl, vec![digest_acl(ALICE, READ | ADMIN)], "{name}");
    assert_eq!(n("/app/again").data.as_deref(), Some(&b"second"[..]), "{name}: deleted and re-created");
    assert!(n("/app").stat.pzxid >= n("/app/again").stat.czxid, "{name}: /app's pzxid");
    assert_eq!(check_quota_stats(name, t), 1, "{name}: one quota");
    assert!(t.contains_key("/app/cont-empty") && t.contains_key("/app/cont/c1"), "{name}: containers");
}

fn elapsed(t: Instant) -> String {
    format!("{:.1}s", t.elapsed().as_secs_f64())
}

fn data_dir_line(p: &Path) -> String {
    format!("dataDir={}", p.display())
}

fn cfg_with(data_dir: &str) -> Vec<&str> {
    let mut v: Vec<&str> = CFG.to_vec();
    v.push(data_dir);
    v
}

/// Lines of Apache's zookeeper.log that suggest it did not like the data (digest mismatch, CRC,
/// corruption, any ERROR).
fn apache_complaints(zk: &ApacheZk) -> Vec<String> {
    let log = fs::read_to_string(zk.log_path()).unwrap_or_default();
    log.lines()
        .filter(|l| {
            let l2 = l.to_ascii_lowercase();
            l2.contains("mismatch") || l2.contains("crc") || l2.contains("corrupt") || l.contains("- ERROR [")
        })
        // Apache logs this at ERROR when a four-letter-word client (this test's `srvr` polls)
        // has closed its end before Apache closes the socket (ServerCnxn.cleanupWriterSocket);
        // it says nothing about the data.
        .filter(|l| !l.contains("Error closing a command socket"))
        .map(|s| s.to_string())
        .collect()
}

/// Lines of rzk's output that suggest it did not like the data (digest mismatches, skipped
/// snapshots, torn or corrupt logs, any ERROR, storage/durability warnings).
fn rzk_complaints(s: &RzkServer) -> Vec<String> {
    let (out, err) = s.output();
    format!("{out}\n{err}")
        .lines()
        .filter(|l| {
            let l2 = l.to_ascii_lowercase();
            l2.contains("mismatch")
                || l2.contains("skipped snapshot")
                || l2.contains("torn")
                || l2.contains("corrupt")
                || l.contains(" ERROR ")
                || l.contains(" WARN ") && (l.contains("rzk::storage") || l.contains("rzk::server::durability"))
        })
        .map(|s| s.to_string())
        .collect()
}

/// (entries, entries carrying a TxnDigest) over every txn log in `<data_dir>/version-2`.
fn txn_digest_count(data_dir: &Path) -> (usize, usize) {
    let v2 = data_dir.join("version-2");
    let mut r = rzk::storage::txnlog::TxnLogReader::open(&v2, 0).unwrap();
    let (mut n, mut d) = (0, 0);
    while let Some(e) = r.next_entry().unwrap() {
        n += 1;
        d += e.digest.is_some() as usize;
    }
    (n, d)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn rzk_data_dir_serves_the_same_in_apache() {
    if !apache_available() {
        return;
    }
    let t0 = Instant::now();
    let mut rzk = RzkServer::start_with(CFG);
    let built = build_tree(rzk.port);
    let keeper = built.keeper;
    let want = walk(rzk.port);
    check_tree("rzk", &want);
    let eph = check_dump("rzk", rzk.port, &want, keeper.session_id);
    let zxid = srvr_zxid(rzk.port);
    assert!(zxid >= max_zxid(&want));
    println!("rzk built {} nodes up to zxid 0x{zxid:x} in {}; keeper 0x{:x} owns {:?}", want.len(), elapsed(t0), keeper.session_id, eph);

    // SIGKILL: everything acknowledged must already be on disk.
    rzk.kill();
    let copy = TestDir::new("interop-rzk2apache");
    copy_dir(rzk.data_dir(), copy.path()).unwrap();

    // Apache's tools on every file rzk wrote.
    let t1 = Instant::now();
    let (logged, nfiles) = apache_tools_read(rzk.data_dir());
    assert_eq!(logged, (1..=zxid).collect::<Vec<_>>(), "TxnLogToolkit lists every zxid once, in order");
    println!("Apache's TxnLogToolkit/SnapshotFormatter read {nfiles} rzk files ({} txns) cleanly in {}", logged.len(), elapsed(t1));
    let (n, d) = txn_digest_count(rzk.data_dir());
    println!("rzk's txn logs: {n} entries, {d} with a TxnDigest (Apache writes one per non-error txn)");

    // Apache on the copy.
    let t2 = Instant::now();
    let dd = data_dir_line(copy.path());
    let apache = ApacheZk::start_with(&cfg_with(&dd)).expect("apache");
    println!("Apache started on rzk's dataDir in {:?}", apache.startup);
    assert_eq!(srvr_zxid(apache.port), zxid, "Apache's last zxid after loading rzk's files");
    let keeper = resume_keeper(apache.port, &keeper, "Apache");
    let got = walk(apache.port);
    assert_same("rzk", &want, "apache", &got);
    check_tree("apache", &got);
    assert_eq!(check_dump("apache", apache.port, &got, keeper.session_id), eph);
    let complaints = apache_complaints(&apache);
    assert!(complaints.is_empty(), "Apache's log:\n{}", complaints.join("\n"));
    keeper.close();
    println!("Apache serves the same {} nodes, stats, ACLs and ephemerals ({}); total {}", got.len(), elapsed(t2), elapsed(t0));
}

#[test]
fn apache_data_dir_serves_the_same_in_rzk() {
    if !apache_available() {
        return;
    }
    let t0 = Instant::now();
    let Some(mut apache) = ApacheZk::start_with(CFG) else { return };
    let built = build_tree(apache.port);
    let keeper = built.keeper;
    let want = walk(apache.port);
    check_tree("apache", &want);
    let eph = check_dump("apache", apache.port, &want, keeper.session_id);
    let zxid = srvr_zxid(apache.port);
    assert!(zxid >= max_zxid(&want));
    println!("Apache built {} nodes up to zxid 0x{zxid:x} in {}; keeper 0x{:x} owns {:?}", want.len(), elapsed(t0), keeper.session_id, eph);

    apache.kill();
    let copy = TestDir::new("interop-apache2rzk");
    copy_dir(apache.data_dir(), copy.path()).unwrap();
    let v2 = copy.path().join("version-2");
    println!("Apache wrote {:?}", fs::read_dir(&v2).unwrap().map(|e| e.unwrap().file_name()).collect::<BTreeSet<_>>());
    let (n, d) = txn_digest_count(copy.path());
    println!("Apache's txn logs: {n} entries, {d} with a TxnDigest");

    let t1 = Instant::now();
    let dd = data_dir_line(copy.path());
    let rzk = RzkServer::start_with(&cfg_with(&dd));
    println!("rzk started on Apache's dataDir in {:?}", rzk.startup);
    assert_eq!(srvr_zxid(rzk.port), zxid, "rzk's last zxid after loading Apache's files");
    let keeper = resume_keeper(rzk.port, &keeper, "rzk");
    let got = walk(rzk.port);
    assert_same("apache", &want, "rzk", &got);
    check_tree("rzk", &got);
    assert_eq!(check_dump("rzk", rzk.port, &got, keeper.session_id), eph);
    let complaints = rzk_complaints(&rzk);
    assert!(complaints.is_empty(), "rzk's output:\n{}", complaints.join("\n"));
    keeper.close();
    println!("rzk serves the same {} nodes, stats, ACLs and ephemerals ({}); total {}", got.len(), elapsed(t1), elapsed(t0));
}

#[test]
fn round_trip_rzk_apache_rzk() {
    if !apache_available() {
        return;
    }
    let t0 = Instant::now();
    // Snapshots are gz from rzk1, snappy from Apache and plain from rzk2, so each side also
    // reads the other's compressed snapshots.
    // Hop 0: rzk writes.
    let mut rzk1 = RzkServer::start_with(&[CFG, &["snapshot.compression.method=gz"]].concat());
    let keeper = build_tree(rzk1.port).keeper;
    let tree_a = walk(rzk1.port);
    let zxid_a = srvr_zxid(rzk1.port);
    rzk1.kill();
    let dir_b = TestDir::new("interop-rt-apache");
    copy_dir(rzk1.data_dir(), dir_b.path()).unwrap();

    // Hop 1: Apache loads it, serves it, writes more.
    let dd_b = data_dir_line(dir_b.path());
    let mut apache = ApacheZk::start_with(&[cfg_with(&dd_b), vec!["snapshot.compression.method=snappy"]].concat()).expect("apache");
    assert_eq!(srvr_zxid(apache.port), zxid_a);
    let mut keeper = resume_keeper(apache.port, &keeper, "hop 1 (Apache)");
    assert_same("rzk", &tree_a, "apache", &walk(apache.port));
    more_writes(apache.port, &mut keeper, "apache", zxid_a);
    let tree_b = walk(apache.port);
    check_tree("apache (after its writes)", &tree_b);
    let eph_b = check_dump("apache", apache.port, &tree_b, keeper.session_id);
    let zxid_b = srvr_zxid(apache.port);
    assert!(zxid_b > zxid_a);
    for p in ["/app/apache", "/app/apache/child", "/app/apache/m", "/app/q/apache", "/app/ttl-apache", "/app/eph-apache"] {
        let s = &tree_b[p].stat;
        assert!(s.czxid > zxid_a && s.czxid <= zxid_b, "{p}: czxid 0x{:x} not in (0x{zxid_a:x}, 0x{zxid_b:x}]", s.czxid);
    }
    apache.kill();
    let snaps_b: Vec<String> = files_in(&dir_b.path().join("version-2"), "snapshot.").iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    println!("after hop 1: snapshots {snaps_b:?}");
    assert!(snaps_b.iter().any(|n| n.ends_with(".gz")) && snaps_b.iter().any(|n| n.ends_with(".snappy")), "{snaps_b:?}");
    let dir_c = TestDir::new("interop-rt-rzk");
    copy_dir(apache.data_dir(), dir_c.path()).unwrap();

    // Hop 2: rzk loads Apache's dir (which holds rzk's files too), serves it, writes more.
    let dd_c = data_dir_line(dir_c.path());
    let mut rzk2 = RzkServer::start_with(&cfg_with(&dd_c));
    assert_eq!(srvr_zxid(rzk2.port), zxid_b);
    let mut keeper = resume_keeper(rzk2.port, &keeper, "hop 2 (rzk)");
    assert_same("apache", &tree_b, "rzk", &walk(rzk2.port));
    assert_eq!(check_dump("rzk", rzk2.port, &tree_b, keeper.session_id), eph_b);
    more_writes(rzk2.port, &mut keeper, "rzk", zxid_b);
    let tree_c = walk(rzk2.port);
    check_tree("rzk (after its writes)", &tree_c);
    let zxid_c = srvr_zxid(rzk2.port);
    assert!(zxid_c > zxid_b);
    for p in ["/app/rzk", "/app/rzk/m", "/app/q/rzk", "/app/eph-rzk"] {
        assert!(tree_c[p].stat.czxid > zxid_b, "{p}");
    }
    // Everything written by both is there: rzk's first nodes, Apache's, rzk's again.
    for p in ["/app/secret", "/app/eph", "/app/apache/m", "/app/eph-apache", "/app/rzk/m", "/app/eph-rzk"] {
        assert!(tree_c.contains_key(p), "{p} missing at the end");
    }
    assert_eq!(tree_c["/app/secret"].data.as_deref(), Some(&b"rzk"[..]));
    assert!(tree_c["/app/secret"].stat.version == 2, "{:?}", tree_c["/app/secret"].stat);
    assert_eq!(tree_c["/app"].data.as_deref(), Some(&b"root by rzk"[..]));
    // The keeper's writes on all three servers: strictly increasing zxids.
    assert!(keeper.write_zxids.windows(2).all(|w| w[0] < w[1]), "{:?}", keeper.write_zxids);

    // And once more from rzk's own restart of the mixed dir.
    let keeper_sid = keeper.session_id;
    rzk2.kill();
    rzk2.restart();
    assert_eq!(srvr_zxid(rzk2.port), zxid_c);
    let keeper = resume_keeper(rzk2.port, &keeper, "rzk restart");
    assert_same("rzk before restart", &tree_c, "rzk after restart", &walk(rzk2.port));
    check_dump("rzk restart", rzk2.port, &tree_c, keeper_sid);
    keeper.close();
    let complaints = rzk_complaints(&rzk2);
    assert!(complaints.is_empty(), "rzk's output:\n{}", complaints.join("\n"));
    rzk2.kill();

    // Apache's tools read the mixed dir (Apache's and rzk's files) cleanly.
    let names: BTreeSet<String> = fs::read_dir(dir_c.path().join("version-2")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    println!("final mixed dataDir: {names:?}");
    let (logged, nfiles) = apache_tools_read(dir_c.path());
    assert!(logged.contains(&zxid_c) && logged.contains(&(zxid_a + 1)), "{logged:?}");
    println!(
        "round trip: zxids 0x{zxid_a:x} (rzk) → 0x{zxid_b:x} (Apache) → 0x{zxid_c:x} (rzk); {} nodes; Apache's tools read {nfiles} files; {}",
        tree_c.len(),
        elapsed(t0)
    );
}

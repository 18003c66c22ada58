//! rzk-bench: a load generator for any ZooKeeper-protocol server, and a side-by-side comparison
//! of rzk with Apache ZooKeeper 3.8.
//!
//! Subcommands:
//!
//! * `populate --server 127.0.0.1:2181 --count 1000000 --size 100` creates znodes under /bench
//!   (1000 per parent, /bench/pNNNNN/nNNNNNN), pipelining `--window` requests, and reports the rate.
//! * `load --server H:P --sessions N --inflight M --op get|exists|set|create|mixed --size 100
//!   (--duration SECS | --requests N)`: a closed loop. Each session is one TCP connection driven by
//!   its own thread that keeps M requests in flight. Latency is measured per request from the
//!   write to the reply with a monotonic clock. get/exists/set/mixed use the key space
//!   /bench-load/k0..k{keys-1} (created if missing); create makes unique znodes under a fresh
//!   parent and deletes them (and the parent) after the measurement. mixed = 80% get, 20% set.
//!   Prints one JSON line and a human summary. With `--server-pid` it also reports the server's CPU
//!   time per op (utime+stime from /proc/<pid>/stat).
//! * `compare`: starts rzk-server and Apache ZooKeeper (forceSync=yes for both) in temp dirs, runs
//!   every workload against each server alternately, populates both with `BENCH_ZNODES` znodes,
//!   reports RSS and restart-to-serving time, and prints the rzk/Apache ratio for every figure.
//!   `make bench` runs it; see bench/README.md for the knobs (flags or BENCH_* env variables).
//!
//! The client speaks the wire protocol itself (no dependency on the rzk library), so it measures
//! any server the same way.

mod ensemble;

use clap::{Args, Parser, Subcommand};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// =============================================================================================
// CLI
// =============================================================================================

#[derive(Parser)]
#[command(
    name = "rzk-bench",
    about = "Load generator for ZooKeeper-protocol servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create `count` znodes of `size` bytes under /bench.
    Populate {
        #[arg(long, default_value = "127.0.0.1:2181")]
        server: String,
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        #[arg(long, default_value_t = 100)]
        size: usize,
        /// Requests in flight.
        #[arg(long, default_value_t = 1000)]
        window: u64,
    },
    /// Closed-loop load: N sessions x M requests in flight.
    Load(LoadArgs),
    /// 3-member ensembles of rzk and Apache: pipelined set throughput and leader failover time.
    Ensemble(ensemble::EnsembleArgs),
    /// Start rzk-server and Apache ZooKeeper, run the workloads alternately, print ratios.
    Compare(CompareArgs),
}

#[derive(Args)]
struct LoadArgs {
    #[arg(long, default_value = "127.0.0.1:2181")]
    server: String,
    /// Sessions (one TCP connection and one thread each).
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Requests in flight per session.
    #[arg(long, default_value_t = 1)]
    inflight: usize,
    /// get | exists | set | create | mixed (80% get / 20% set)
    #[arg(long, default_value = "get")]
    op: String,
    /// Data size in bytes for set/create (and for the key space).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Run time in seconds (default 10 unless --requests is given).
    #[arg(long)]
    duration: Option<f64>,
    /// Total number of requests (split over the sessions) instead of a duration.
    #[arg(long)]
    requests: Option<u64>,
    /// Keys in /bench-load.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// Server process id: report its CPU time per op from /proc/<pid>/stat.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Do not create/refresh /bench-load/k* first.
    #[arg(long)]
    no_setup: bool,
    /// Label written into the JSON line.
    #[arg(long, default_value = "")]
    label: String,
}

/// Every option also has a BENCH_* environment variable (the flag wins).
#[derive(Args)]
struct CompareArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Seconds per measured run [BENCH_DURATION; default 10]
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds of warm-up per workload and server before the measured rounds [BENCH_WARMUP; default 3]
    #[arg(long)]
    warmup: Option<f64>,
    /// Measured rounds (each round: every workload on rzk, then on Apache) [BENCH_ROUNDS; default 3]
    #[arg(long)]
    rounds: Option<u32>,
    /// Znodes for the populate/RSS/restart phase; 0 skips it [BENCH_ZNODES; default 1000000]
    #[arg(long)]
    znodes: Option<u64>,
    /// Creates in flight while populating [BENCH_POPULATE_WINDOW; default 500: Apache throttles a
    /// connection at its globalOutstandingLimit of 1000]
    #[arg(long)]
    populate_window: Option<u64>,
    /// Data size in bytes [BENCH_SIZE; default 100]
    #[arg(long)]
    size: Option<usize>,
    /// Workloads op:SESSIONSxINFLIGHT, comma separated [BENCH_WORKLOADS; default set:8x16,get:8x16,set:1x1]
    #[arg(long)]
    workloads: Option<String>,
    /// Which servers: rzk,apache [BENCH_SERVERS; default both]
    #[arg(long)]
    servers: Option<String>,
    /// JSON lines file [BENCH_OUT; default target/bench/compare-<unix time>.jsonl]
    #[arg(long)]
    out: Option<PathBuf>,
}

/// How the servers are run, for `compare` and `ensemble` alike.
#[derive(Args)]
struct ServerArgs {
    /// rzk-server binary [BENCH_RZK_BIN; default: next to rzk-bench]
    #[arg(long)]
    rzk_bin: Option<PathBuf>,
    /// java executable [JAVA; default java]
    #[arg(long)]
    java: Option<String>,
    /// Apache's -Xmx per server [BENCH_APACHE_HEAP; default 2g for compare, 1g for ensemble]
    #[arg(long)]
    apache_heap: Option<String>,
    /// Apache's GC flag [BENCH_APACHE_GC; default -XX:+UseSerialGC, as in tests/common]
    #[arg(long)]
    apache_gc: Option<String>,
    /// Extra JVM options, space separated [BENCH_JVM_OPTS]
    #[arg(long)]
    jvm_opts: Option<String>,
    /// Keep the servers' temp dirs [BENCH_KEEP_DIRS=1]
    #[arg(long)]
    keep_dirs: bool,
}

impl ServerArgs {
    fn opts(self, default_heap: &str) -> Result<ServerOpts, String> {
        let keep = self.keep_dirs || matches!(std::env::var("BENCH_KEEP_DIRS").as_deref(), Ok("1") | Ok("true") | Ok("yes"));
        let rzk_bin = match self.rzk_bin.or_else(|| std::env::var_os("BENCH_RZK_BIN").map(PathBuf::from)) {
            Some(p) => p,
            None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("rzk-server"),
        };
        Ok(ServerOpts {
            rzk_bin,
            java: env_or(self.java, "JAVA", "java".to_string())?,
            heap: env_or(self.apache_heap, "BENCH_APACHE_HEAP", default_heap.to_string())?,
            gc: env_or(self.apache_gc, "BENCH_APACHE_GC", "-XX:+UseSerialGC".to_string())?,
            jvm_opts: env_or(self.jvm_opts, "BENCH_JVM_OPTS", String::new())?.split_whitespace().map(String::from).collect(),
            keep,
        })
    }
}

// =============================================================================================
// Wire protocol (just what the benchmark needs)
// =============================================================================================

const OP_CREATE: i32 = 1;
const OP_DELETE: i32 = 2;
const OP_EXISTS: i32 = 3;
const OP_GET_DATA: i32 = 4;
const OP_SET_DATA: i32 = 5;
const OP_CLOSE: i32 = -11;
const ERR_NO_NODE: i32 = -101;
const ERR_NODE_EXISTS: i32 = -110;

#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn bool(&mut self, v: bool) -> &mut Self {
        self.0.push(v as u8);
        self
    }
    fn buf(&mut self, v: &[u8]) -> &mut Self {
        self.i32(v.len() as i32);
        self.0.extend_from_slice(v);
        self
    }
    fn str(&mut self, v: &str) -> &mut Self {
        self.buf(v.as_bytes())
    }
    /// world:anyone, all permissions.
    fn open_acl(&mut self) -> &mut Self {
        self.i32(1).i32(31).str("world").str("anyone")
    }
}

/// A whole request frame `[len][xid][op][body]` with xid 0; `Conn::push` patches the xid.
fn request_frame(op: i32, body: &[u8]) -> Vec<u8> {
    let mut e = Enc::default();
    e.i32((8 + body.len()) as i32).i32(0).i32(op);
    e.0.extend_from_slice(body);
    e.0
}

fn create_body(path: &str, data: &[u8]) -> Vec<u8> {
    let mut e = Enc::default();
    e.str(path).buf(data).open_acl().i32(0);
    e.0
}
fn path_watch_body(path: &str) -> Vec<u8> {
    let mut e = Enc::default();
    e.str(path).bool(false);
    e.0
}
fn set_body(path: &str, data: &[u8]) -> Vec<u8> {
    let mut e = Enc::default();
    e.str(path).buf(data).i32(-1);
    e.0
}
fn delete_body(path: &str) -> Vec<u8> {
    let mut e = Enc::default();
    e.str(path).i32(-1);
    e.0
}

#[derive(Clone, Copy, Debug)]
struct Reply {
    xid: i32,
    err: i32,
}

/// One client session on one TCP connection, with hand-rolled buffering so that the closed loop
/// can take every reply already received before writing the next batch.
struct Conn {
    s: TcpStream,
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
    xid: i32,
    /// Byte range of the last frame returned by `read_frame` (valid until the next read).
    last: (usize, usize),
}

impl Conn {
    fn connect(addr: &str, timeout: Duration) -> io::Result<Conn> {
        let sa = resolve(addr)?;
        let s = TcpStream::connect_timeout(&sa, timeout)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(timeout))?;
        let mut c = Conn {
            s,
            rbuf: Vec::with_capacity(1 << 16),
            rpos: 0,
            wbuf: Vec::with_capacity(1 << 16),
            xid: 0,
            last: (0, 0),
        };
        // ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly
        // (sent like the Java client; without it Apache logs a warning per connection).
        let mut e = Enc::default();
        e.i32(0)
            .i64(0)
            .i32(30000)
            .i64(0)
            .buf(&[0u8; 16])
            .bool(false);
        let mut f = Enc::default();
        f.i32(e.0.len() as i32);
        f.0.extend_from_slice(&e.0);
        c.s.write_all(&f.0)?;
        let (a, b) = c.read_frame(true)?.expect("blocking read");
        let body = &c.rbuf[a..b];
        if body.len() < 16 {
            return Err(io::Error::other("short ConnectResponse"));
        }
        let timeout_ms = i32::from_be_bytes(body[4..8].try_into().unwrap());
        let sid = i64::from_be_bytes(body[8..16].try_into().unwrap());
        if timeout_ms <= 0 || sid == 0 {
            return Err(io::Error::other("session refused by the server"));
        }
        Ok(c)
    }

    fn set_read_timeout(&self, t: Duration) -> io::Result<()> {
        self.s.set_read_timeout(Some(t))
    }

    /// Appends a pre-encoded request frame with the next xid; returns the xid.
    fn push(&mut self, frame: &[u8]) -> i32 {
        self.xid = self.xid.wrapping_add(1);
        if self.xid <= 0 {
            self.xid = 1;
        }
        let at = self.wbuf.len();
        self.wbuf.extend_from_slice(frame);
        self.wbuf[at + 4..at + 8].copy_from_slice(&self.xid.to_be_bytes());
        self.xid
    }

    fn push_req(&mut self, op: i32, body: &[u8]) -> i32 {
        self.xid = self.xid.wrapping_add(1);
        if self.xid <= 0 {
            self.xid = 1;
        }
        let mut e = Enc::default();
        e.i32((8 + body.len()) as i32).i32(self.xid).i32(op);
        self.wbuf.extend_from_slice(&e.0);
        self.wbuf.extend_from_slice(body);
        self.xid
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.s.write_all(&self.wbuf)?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// The next frame body (without its length) as a range of `rbuf`; `None` if `block` is false
    /// and no whole frame is buffered.
    fn read_frame(&mut self, block: bool) -> io::Result<Option<(usize, usize)>> {
        loop {
            let avail = self.rbuf.len() - self.rpos;
            if avail >= 4 {
                let len =
                    i32::from_be_bytes(self.rbuf[self.rpos..self.rpos + 4].try_into().unwrap());
                if !(0..=64 << 20).contains(&len) {
                    return Err(io::Error::other(format!("bad frame length {len}")));
                }
                let len = len as usize;
                if avail >= 4 + len {
                    let a = self.rpos + 4;
                    self.rpos = a + len;
                    self.last = (a, a + len);
                    return Ok(Some(self.last));
                }
            }
            if !block {
                return Ok(None);
            }
            // Compact, then read more.
            if self.rpos > 0 {
                self.rbuf.drain(..self.rpos);
                self.rpos = 0;
            }
            let old = self.rbuf.len();
            let want = (old + (1 << 16)).max(self.rbuf.capacity());
            self.rbuf.resize(want, 0);
            let n = match self.s.read(&mut self.rbuf[old..]) {
                Ok(n) => n,
                Err(e) => {
                    self.rbuf.truncate(old);
                    return Err(e);
                }
            };
            self.rbuf.truncate(old + n);
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed the connection",
                ));
            }
        }
    }

    /// The next reply to a request (notifications and pings skipped).
    fn read_reply(&mut self, block: bool) -> io::Result<Option<Reply>> {
        loop {
            let Some((a, b)) = self.read_frame(block)? else {
                return Ok(None);
            };
            if b - a < 16 {
                return Err(io::Error::other("short reply header"));
            }
            let f = &self.rbuf[a..b];
            let xid = i32::from_be_bytes(f[0..4].try_into().unwrap());
            let err = i32::from_be_bytes(f[12..16].try_into().unwrap());
            if xid == -1 || xid == -2 {
                continue;
            }
            return Ok(Some(Reply { xid, err }));
        }
    }

    /// The body (after the reply header) of the frame returned last.
    fn last_body(&self) -> &[u8] {
        &self.rbuf[self.last.0 + 16..self.last.1]
    }

    /// One request, one reply.
    fn call(&mut self, op: i32, body: &[u8]) -> io::Result<Reply> {
        let xid = self.push_req(op, body);
        self.flush()?;
        let r = self.read_reply(true)?.expect("blocking read");
        if r.xid != xid {
            return Err(io::Error::other(format!(
                "reply xid {} for request {xid}",
                r.xid
            )));
        }
        Ok(r)
    }

    /// closeSession, then wait for the server to close the socket (so that it does not log an
    /// unexpected EOF); errors are ignored.
    fn close(mut self) {
        let _ = self.set_read_timeout(Duration::from_secs(5));
        if self.call(OP_CLOSE, &[]).is_ok() {
            let _ = self.set_read_timeout(Duration::from_secs(1));
            let mut sink = [0u8; 512];
            while matches!(self.s.read(&mut sink), Ok(n) if n > 0) {}
        }
    }
}

fn resolve(addr: &str) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other(format!("cannot resolve {addr}")))
}

/// Sends a pipeline of requests (at most `window` outstanding); returns the error codes in order.
fn pipeline(
    c: &mut Conn,
    reqs: impl Iterator<Item = (i32, Vec<u8>)>,
    window: usize,
) -> io::Result<Vec<i32>> {
    let mut out = Vec::new();
    let mut outstanding = 0usize;
    let mut reqs = reqs.peekable();
    loop {
        while outstanding < window {
            let Some((op, body)) = reqs.next() else { break };
            c.push_req(op, &body);
            outstanding += 1;
        }
        c.flush()?;
        if outstanding == 0 {
            return Ok(out);
        }
        let r = c.read_reply(true)?.expect("blocking read");
        out.push(r.err);
        outstanding -= 1;
        while let Some(r) = c.read_reply(false)? {
            out.push(r.err);
            outstanding -= 1;
        }
    }
}

// =============================================================================================
// Four-letter words, /proc
// =============================================================================================

fn four_letter(addr: &str, cmd: &str, timeout: Duration) -> io::Result<String> {
    let sa = resolve(addr)?;
    let mut s = TcpStream::connect_timeout(&sa, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(cmd.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `key\tvalue` lines of `mntr` (empty if the server does not answer).
fn mntr(addr: &str) -> Vec<(String, String)> {
    four_letter(addr, "mntr", Duration::from_secs(5))
        .map(|t| {
            t.lines()
                .filter_map(|l| {
                    l.split_once('\t')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn mntr_num(m: &[(String, String)], key: &str) -> Option<f64> {
    m.iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.parse().ok())
}

fn srvr_field(srvr: &str, key: &str) -> Option<String> {
    srvr.lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
}

fn clk_tck() -> f64 {
    Proc::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime+stime of a process (all threads) in µs.
fn proc_cpu_us(pid: &str, tck: f64) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 1e6 / tck)
}

/// (VmRSS, VmHWM) in kB.
fn proc_rss_kb(pid: u32) -> Option<(u64, u64)> {
    let st = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let get = |k: &str| -> Option<u64> {
        st.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Some((get("VmRSS:")?, get("VmHWM:")?))
}

/// Bytes allocated on disk (Apache's preallocated txn logs are sparse: count blocks, not lengths).
fn dir_size(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut n = 0;
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => n += dir_size(&e.path()),
                Ok(m) => n += m.blocks() * 512,
                Err(_) => {}
            }
        }
    }
    n
}

// =============================================================================================
// JSON lines (hand-rolled: no serde in this crate)
// =============================================================================================

#[derive(Default)]
struct Json(Vec<(String, String)>);

impl Json {
    fn s(mut self, k: &str, v: &str) -> Self {
        let mut q = String::from("\"");
        for ch in v.chars() {
            match ch {
                '"' => q.push_str("\\\""),
                '\\' => q.push_str("\\\\"),
                '\n' => q.push_str("\\n"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(q, "\\u{:04x}", c as u32);
                }
                c => q.push(c),
            }
        }
        q.push('"');
        self.0.push((k.into(), q));
        self
    }
    fn n(mut self, k: &str, v: f64) -> Self {
        let t = if v.is_finite() {
            if v.fract() == 0.0 && v.abs() < 1e15 {
                format!("{}", v as i64)
            } else {
                format!("{v:.3}")
            }
        } else {
            "null".into()
        };
        self.0.push((k.into(), t));
        self
    }
    fn on(self, k: &str, v: Option<f64>) -> Self {
        match v {
            Some(v) => self.n(k, v),
            None => self.raw(k, "null"),
        }
    }
    fn b(self, k: &str, v: bool) -> Self {
        self.raw(k, if v { "true" } else { "false" })
    }
    fn raw(mut self, k: &str, v: &str) -> Self {
        self.0.push((k.into(), v.into()));
        self
    }
    fn render(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", parts.join(","))
    }
}

// =============================================================================================
// populate
// =============================================================================================

struct PopulateResult {
    secs: f64,
    errors: u64,
}

fn populate_path(i: u64) -> String {
    format!("/bench/p{:05}/n{:06}", i / 1000, i % 1000)
}

fn populate(server: &str, count: u64, size: usize, window: u64) -> io::Result<PopulateResult> {
    let mut c = Conn::connect(server, Duration::from_secs(120))?;
    let data = vec![b'x'; size];
    c.call(OP_CREATE, &create_body("/bench", b""))?;
    let parents = count.div_ceil(1000);
    pipeline(
        &mut c,
        (0..parents).map(|p| (OP_CREATE, create_body(&format!("/bench/p{p:05}"), b""))),
        1000,
    )?;
    let start = Instant::now();
    let (mut sent, mut done, mut errors) = (0u64, 0u64, 0u64);
    while done < count {
        while sent < count && sent - done < window {
            c.push_req(OP_CREATE, &create_body(&populate_path(sent), &data));
            sent += 1;
        }
        c.flush()?;
        let r = c.read_reply(true)?.expect("blocking read");
        errors += (r.err != 0) as u64;
        done += 1;
        while let Some(r) = c.read_reply(false)? {
            errors += (r.err != 0) as u64;
            done += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    c.close();
    Ok(PopulateResult { secs, errors })
}

// =============================================================================================
// load
// =============================================================================================

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Get,
    Exists,
    Set,
    Create,
    Mixed,
}

impl Op {
    fn parse(s: &str) -> Result<Op, String> {
        Ok(match s {
            "get" => Op::Get,
            "exists" => Op::Exists,
            "set" => Op::Set,
            "create" => Op::Create,
            "mixed" => Op::Mixed,
            _ => {
                return Err(format!(
                    "unknown op {s:?} (get, exists, set, create, mixed)"
                ));
            }
        })
    }
    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Exists => "exists",
            Op::Set => "set",
            Op::Create => "create",
            Op::Mixed => "mixed",
        }
    }
}

#[derive(Clone)]
struct LoadSpec {
    op: Op,
    sessions: usize,
    inflight: usize,
    size: usize,
    keys: usize,
    duration: Option<Duration>,
    requests: Option<u64>,
}

impl LoadSpec {
    fn label(&self) -> String {
        format!(
            "{} {}B {}x{}",
            self.op.name(),
            self.size,
            self.sessions,
            self.inflight
        )
    }
}

const LOAD_ROOT: &str = "/bench-load";

fn key_path(k: usize) -> String {
    format!("{LOAD_ROOT}/k{k}")
}

/// Creates /bench-load/k0..k{keys-1} with `size` bytes; if some already existed, rewrites all.
fn ensure_keyspace(addr: &str, keys: usize, size: usize) -> io::Result<()> {
    let mut c = Conn::connect(addr, Duration::from_secs(60))?;
    let data = vec![b'k'; size];
    let r = c.call(OP_CREATE, &create_body(LOAD_ROOT, b""))?;
    if r.err != 0 && r.err != ERR_NODE_EXISTS {
        return Err(io::Error::other(format!(
            "create {LOAD_ROOT}: error {}",
            r.err
        )));
    }
    let errs = pipeline(
        &mut c,
        (0..keys).map(|k| (OP_CREATE, create_body(&key_path(k), &data))),
        256,
    )?;
    if let Some(e) = errs.iter().find(|&&e| e != 0 && e != ERR_NODE_EXISTS) {
        return Err(io::Error::other(format!(
            "creating the key space: error {e}"
        )));
    }
    if errs.contains(&ERR_NODE_EXISTS) {
        let errs = pipeline(
            &mut c,
            (0..keys).map(|k| (OP_SET_DATA, set_body(&key_path(k), &data))),
            256,
        )?;
        if let Some(e) = errs.iter().find(|&&e| e != 0) {
            return Err(io::Error::other(format!(
                "refreshing the key space: error {e}"
            )));
        }
    }
    c.close();
    Ok(())
}

/// Pre-encoded request frames for the key space.
struct Templates {
    get: Vec<Vec<u8>>,
    exists: Vec<Vec<u8>>,
    set: Vec<Vec<u8>>,
    data: Vec<u8>,
    create_parent: String,
}

impl Templates {
    fn new(spec: &LoadSpec, create_parent: String) -> Templates {
        let data = vec![b'v'; spec.size];
        let (mut get, mut exists, mut set) = (Vec::new(), Vec::new(), Vec::new());
        for k in 0..spec.keys {
            let p = key_path(k);
            match spec.op {
                Op::Get => get.push(request_frame(OP_GET_DATA, &path_watch_body(&p))),
                Op::Exists => exists.push(request_frame(OP_EXISTS, &path_watch_body(&p))),
                Op::Set => set.push(request_frame(OP_SET_DATA, &set_body(&p, &data))),
                Op::Mixed => {
                    get.push(request_frame(OP_GET_DATA, &path_watch_body(&p)));
                    set.push(request_frame(OP_SET_DATA, &set_body(&p, &data)));
                }
                Op::Create => {}
            }
        }
        Templates {
            get,
            exists,
            set,
            data,
            create_parent,
        }
    }
}

/// xorshift64*: cheap and good enough to pick keys.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
}

/// A figure of a load run for the summary table: (name, decimals, getter).
type Metric = (&'static str, usize, Box<dyn Fn(&LoadResult) -> Option<f64>>);

struct SessionOut {
    lat_ns: Vec<u64>,
    errors: u64,
    first_error: Option<i32>,
    /// Sequence numbers of znodes this session created (create workload).
    created: Vec<u64>,
    finished: Instant,
}

fn session_loop(
    addr: &str,
    spec: &LoadSpec,
    idx: usize,
    t: &Templates,
    barrier: &Barrier,
    quota: Option<u64>,
) -> io::Result<SessionOut> {
    let conn = Conn::connect(addr, Duration::from_secs(60));
    // Everybody passes the barrier even if the connect failed, so nobody waits forever.
    barrier.wait();
    let mut c = conn?;
    let deadline = spec.duration.map(|d| Instant::now() + d);
    let m = spec.inflight.max(1);
    let mut sent_at: VecDeque<(i32, Instant, u64)> = VecDeque::with_capacity(m);
    let mut lat_ns = Vec::with_capacity(1 << 16);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((idx as u64 + 1) * 0x1000_0000_01B3));
    let (mut sent, mut errors, mut first_error) = (0u64, 0u64, None);
    let mut created = Vec::new();
    let mut create_seq = 0u64;
    let mut new_xids: Vec<(i32, u64)> = Vec::with_capacity(m);
    loop {
        let now = Instant::now();
        let may_send = quota.is_none_or(|q| sent < q) && deadline.is_none_or(|d| now < d);
        if may_send {
            while sent_at.len() + new_xids.len() < m && quota.is_none_or(|q| sent < q) {
                let (xid, seq) = match spec.op {
                    Op::Get => (c.push(&t.get[rng.below(t.get.len())]), 0),
                    Op::Exists => (c.push(&t.exists[rng.below(t.exists.len())]), 0),
                    Op::Set => (c.push(&t.set[rng.below(t.set.len())]), 0),
                    Op::Mixed => {
                        let k = rng.below(t.get.len());
                        if rng.below(100) < 80 {
                            (c.push(&t.get[k]), 0)
                        } else {
                            (c.push(&t.set[k]), 0)
                        }
                    }
                    Op::Create => {
                        create_seq += 1;
                        let p = format!("{}/s{idx}-{create_seq}", t.create_parent);
                        (c.push_req(OP_CREATE, &create_body(&p, &t.data)), create_seq)
                    }
                };
                new_xids.push((xid, seq));
                sent += 1;
            }
        }
        if !new_xids.is_empty() {
            let ts = Instant::now();
            c.flush()?;
            for (xid, seq) in new_xids.drain(..) {
                sent_at.push_back((xid, ts, seq));
            }
        }
        if sent_at.is_empty() {
            break;
        }
        let mut got = c.read_reply(true)?;
        let ts = Instant::now();
        while let Some(r) = got {
            let (xid, t0, seq) = sent_at
                .pop_front()
                .ok_or_else(|| io::Error::other("reply without a request"))?;
            if r.xid != xid {
                return Err(io::Error::other(format!(
                    "reply xid {} while waiting for {xid}",
                    r.xid
                )));
            }
            lat_ns.push(ts.duration_since(t0).as_nanos() as u64);
            if r.err != 0 {
                errors += 1;
                first_error.get_or_insert(r.err);
            } else if spec.op == Op::Create {
                created.push(seq);
            }
            got = c.read_reply(false)?;
        }
    }
    let finished = Instant::now();
    c.close();
    Ok(SessionOut {
        lat_ns,
        errors,
        first_error,
        created,
        finished,
    })
}

struct LoadResult {
    spec: LoadSpec,
    ops: u64,
    errors: u64,
    first_error: Option<i32>,
    secs: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    mean: f64,
    server_cpu_us_per_op: Option<f64>,
    client_cpu_pct: Option<f64>,
    /// Apache mntr fsync counters over the run, when the server exposes them.
    fsyncs: Option<f64>,
    fsync_avg_ms: Option<f64>,
    /// (session, seq) of znodes left by a create run; `cleanup_created` removes them.
    created: Vec<(usize, Vec<u64>)>,
    create_parent: String,
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx] as f64 / 1000.0
}

fn run_load(
    addr: &str,
    spec: &LoadSpec,
    server_pid: Option<u32>,
    tck: f64,
) -> io::Result<LoadResult> {
    static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let create_parent = format!("/bench-create-{}-{run}", std::process::id());
    if spec.op == Op::Create {
        let mut c = Conn::connect(addr, Duration::from_secs(60))?;
        let r = c.call(OP_CREATE, &create_body(&create_parent, b""))?;
        c.close();
        if r.err != 0 {
            return Err(io::Error::other(format!(
                "create {create_parent}: error {}",
                r.err
            )));
        }
    }
    let t = Templates::new(spec, create_parent.clone());
    let n = spec.sessions.max(1);
    let quotas: Vec<Option<u64>> = (0..n)
        .map(|i| {
            spec.requests
                .map(|r| r / n as u64 + ((i as u64) < r % n as u64) as u64)
        })
        .collect();
    let barrier = Barrier::new(n + 1);
    // Several servers (an ensemble): session i talks to the i-th address, round robin.
    let addrs: Vec<&str> = addr.split(',').collect();
    let addr = addrs[0];
    let want_fsync = server_pid.is_some();
    let m0 = if want_fsync { mntr(addr) } else { Vec::new() };
    let (outs, t0, cpu0, self0) = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (t, barrier, q) = (&t, &barrier, quotas[i]);
                let a = addrs[i % addrs.len()];
                sc.spawn(move || session_loop(a, spec, i, t, barrier, q))
            })
            .collect();
        let cpu0 = server_pid.and_then(|p| proc_cpu_us(&p.to_string(), tck));
        let self0 = proc_cpu_us("self", tck);
        barrier.wait();
        let t0 = Instant::now();
        let outs: Vec<io::Result<SessionOut>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("session thread panicked")))
            })
            .collect();
        (outs, t0, cpu0, self0)
    });
    let cpu1 = server_pid.and_then(|p| proc_cpu_us(&p.to_string(), tck));
    let self1 = proc_cpu_us("self", tck);
    let m1 = if want_fsync { mntr(addr) } else { Vec::new() };
    let mut lat = Vec::new();
    let (mut errors, mut first_error, mut end) = (0u64, None, t0);
    let mut created = Vec::new();
    let mut failure = None;
    for (i, o) in outs.into_iter().enumerate() {
        match o {
            Ok(o) => {
                lat.extend_from_slice(&o.lat_ns);
                errors += o.errors;
                if first_error.is_none() {
                    first_error = o.first_error;
                }
                end = end.max(o.finished);
                created.push((i, o.created));
            }
            Err(e) => failure = Some(io::Error::other(format!("session {i}: {e}"))),
        }
    }
    let res_created = LoadResult {
        spec: spec.clone(),
        ops: 0,
        errors: 0,
        first_error: None,
        secs: 0.0,
        p50: 0.0,
        p99: 0.0,
        p999: 0.0,
        max: 0.0,
        mean: 0.0,
        server_cpu_us_per_op: None,
        client_cpu_pct: None,
        fsyncs: None,
        fsync_avg_ms: None,
        created,
        create_parent,
    };
    if let Some(e) = failure {
        let _ = cleanup_created(addr, &res_created);
        return Err(e);
    }
    lat.sort_unstable();
    let ops = lat.len() as u64;
    let secs = end.duration_since(t0).as_secs_f64();
    let mean = if ops > 0 {
        lat.iter().sum::<u64>() as f64 / ops as f64 / 1000.0
    } else {
        f64::NAN
    };
    let server_cpu_us_per_op = match (cpu0, cpu1) {
        (Some(a), Some(b)) if ops > 0 => Some((b - a) / ops as f64),
        _ => None,
    };
    let client_cpu_pct = match (self0, self1) {
        (Some(a), Some(b)) if secs > 0.0 => Some((b - a) / (secs * 1e6) * 100.0),
        _ => None,
    };
    let cnt = |m: &[(String, String)]| mntr_num(m, "zk_cnt_fsynctime");
    let sum = |m: &[(String, String)]| mntr_num(m, "zk_sum_fsynctime");
    let (fsyncs, fsync_avg_ms) = match (cnt(&m0), cnt(&m1), sum(&m0), sum(&m1)) {
        (Some(c0), Some(c1), Some(s0), Some(s1)) => {
            let d = c1 - c0;
            (Some(d), if d > 0.0 { Some((s1 - s0) / d) } else { None })
        }
        _ => (None, None),
    };
    Ok(LoadResult {
        ops,
        errors,
        first_error,
        secs,
        p50: percentile(&lat, 0.50),
        p99: percentile(&lat, 0.99),
        p999: percentile(&lat, 0.999),
        max: lat.last().map_or(f64::NAN, |&v| v as f64 / 1000.0),
        mean,
        server_cpu_us_per_op,
        client_cpu_pct,
        fsyncs,
        fsync_avg_ms,
        ..res_created
    })
}

/// Deletes what a create run made (outside the measurement).
fn cleanup_created(addr: &str, r: &LoadResult) -> io::Result<()> {
    if r.spec.op != Op::Create {
        return Ok(());
    }
    let mut c = Conn::connect(addr, Duration::from_secs(120))?;
    let parent = r.create_parent.clone();
    let reqs = r
        .created
        .iter()
        .flat_map(|(s, seqs)| seqs.iter().map(move |q| (*s, *q)))
        .map(|(s, q)| (OP_DELETE, delete_body(&format!("{parent}/s{s}-{q}"))));
    pipeline(&mut c, reqs, 1000)?;
    let d = c.call(OP_DELETE, &delete_body(&r.create_parent))?;
    c.close();
    if d.err != 0 && d.err != ERR_NO_NODE {
        return Err(io::Error::other(format!(
            "delete {}: error {} (children left?)",
            r.create_parent, d.err
        )));
    }
    Ok(())
}

fn load_json(server: &str, r: &LoadResult) -> Json {
    Json::default()
        .s("server", server)
        .s("workload", &r.spec.label())
        .s("op", r.spec.op.name())
        .n("sessions", r.spec.sessions as f64)
        .n("inflight", r.spec.inflight as f64)
        .n("size", r.spec.size as f64)
        .n("secs", r.secs)
        .n("ops", r.ops as f64)
        .n("errors", r.errors as f64)
        .on("first_error", r.first_error.map(|e| e as f64))
        .n("ops_per_s", r.ops as f64 / r.secs)
        .n("mean_us", r.mean)
        .n("p50_us", r.p50)
        .n("p99_us", r.p99)
        .n("p999_us", r.p999)
        .n("max_us", r.max)
        .on("server_cpu_us_per_op", r.server_cpu_us_per_op)
        .on("client_cpu_pct", r.client_cpu_pct)
        .on("fsyncs", r.fsyncs)
        .on("fsync_avg_ms", r.fsync_avg_ms)
}

fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    v.filter(|v| v.is_finite())
        .map_or("-".into(), |v| format!("{v:.prec$}"))
}

fn load_cmd(a: LoadArgs) -> Result<(), String> {
    let op = Op::parse(&a.op)?;
    let duration = match (a.duration, a.requests) {
        (Some(d), _) => Some(Duration::from_secs_f64(d)),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(10)),
    };
    let spec = LoadSpec {
        op,
        sessions: a.sessions.max(1),
        inflight: a.inflight.max(1),
        size: a.size,
        keys: a.keys.max(1),
        duration,
        requests: a.requests,
    };
    if !a.no_setup && op != Op::Create {
        ensure_keyspace(&a.server, spec.keys, spec.size)
            .map_err(|e| format!("setting up {LOAD_ROOT}: {e}"))?;
    }
    let r = run_load(&a.server, &spec, a.server_pid, clk_tck()).map_err(|e| e.to_string())?;
    if let Err(e) = cleanup_created(&a.server, &r) {
        eprintln!("rzk-bench: cleanup after create: {e}");
    }
    let mut j = load_json(&a.label, &r).s("addr", &a.server);
    j = j.s("kind", "load");
    println!("{}", j.render());
    println!(
        "{:<22} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>7}",
        "workload",
        "ops/s",
        "mean µs",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "max µs",
        "srv CPU µs/op",
        "errors"
    );
    println!(
        "{:<22} {:>10.0} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>12} {:>7}",
        r.spec.label(),
        r.ops as f64 / r.secs,
        r.mean,
        r.p50,
        r.p99,
        r.p999,
        r.max,
        fmt_opt(r.server_cpu_us_per_op, 1),
        r.errors
    );
    if r.errors > 0 {
        eprintln!(
            "rzk-bench: {} requests failed (first error code {:?})",
            r.errors, r.first_error
        );
    }
    Ok(())
}

// =============================================================================================
// compare: server processes
// =============================================================================================

const APACHE_JAR: &str = "/usr/share/java/zookeeper.jar";
const APACHE_EXTRA_JARS: &[&str] = &[
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
    "/usr/share/java/servlet-api.jar",
];
const NOT_SERVING: &str = "not currently serving requests";

const LOG4J_PROPERTIES: &str = "\
log4j.rootLogger=${zookeeper.root.logger}
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File=${zookeeper.log.dir}/${zookeeper.log.file}
log4j.appender.FILE.Append=true
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rzk,
    Apache,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Rzk => "rzk",
            Kind::Apache => "apache",
        }
    }
}

struct Server {
    kind: Kind,
    argv: Vec<String>,
    dir: PathBuf,
    data_dir: PathBuf,
    port: u16,
    child: Option<Child>,
    keep: bool,
    /// Spawn to ready (ruok/srvr) of the first, empty start.
    startup: Duration,
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn temp_dir(kind: &str) -> io::Result<PathBuf> {
    let base = std::env::temp_dir();
    for n in 0.. {
        let p = base.join(format!("rzk-bench-{kind}-{}-{n}", std::process::id()));
        match fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!()
}

/// The command line that runs a server of this kind on `cfg_path` (in `dir`).
fn server_argv(kind: Kind, o: &ServerOpts, dir: &Path, cfg_path: &Path) -> Result<Vec<String>, String> {
    Ok(match kind {
        Kind::Rzk => vec![
            o.rzk_bin.display().to_string(),
            "start-foreground".into(),
            cfg_path.display().to_string(),
        ],
        Kind::Apache => {
            fs::write(dir.join("log4j.properties"), LOG4J_PROPERTIES)
                .map_err(|e| e.to_string())?;
            let mut cp = vec![APACHE_JAR];
            cp.extend(APACHE_EXTRA_JARS.iter().filter(|j| Path::new(j).exists()));
            let mut v = vec![o.java.clone(), "-cp".into(), cp.join(":")];
            if !o.gc.is_empty() {
                v.push(o.gc.clone());
            }
            v.push(format!("-Xmx{}", o.heap));
            v.push(format!(
                "-Dlog4j.configuration=file:{}",
                dir.join("log4j.properties").display()
            ));
            v.push(format!("-Dzookeeper.log.dir={}", dir.display()));
            v.push("-Dzookeeper.log.file=zookeeper.log".into());
            v.push("-Dzookeeper.root.logger=INFO,FILE".into());
            v.push("-Dzookeeper.jmx.log4j.disable=true".into());
            v.extend(o.jvm_opts.iter().cloned());
            v.push("org.apache.zookeeper.server.quorum.QuorumPeerMain".into());
            v.push(cfg_path.display().to_string());
            v
        }
    })
}

struct ServerOpts {
    rzk_bin: PathBuf,
    java: String,
    heap: String,
    gc: String,
    jvm_opts: Vec<String>,
    keep: bool,
}

impl Server {
    fn start(kind: Kind, o: &ServerOpts) -> Result<Server, String> {
        let mut last = String::new();
        for _ in 0..3 {
            let dir = temp_dir(kind.name()).map_err(|e| format!("temp dir: {e}"))?;
            let port = free_port().map_err(|e| e.to_string())?;
            let data_dir = dir.join("data");
            let cfg = format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n4lw.commands.whitelist=*\nmaxClientCnxns=0\nforceSync=yes\n",
                data_dir.display()
            );
            let cfg_path = dir.join("zoo.cfg");
            fs::write(&cfg_path, cfg).map_err(|e| e.to_string())?;
            let argv = server_argv(kind, o, &dir, &cfg_path)?;
            let mut s = Server {
                kind,
                argv,
                dir,
                data_dir,
                port,
                child: None,
                keep: o.keep,
                startup: Duration::ZERO,
            };
            s.spawn()?;
            match s.wait_ready(Duration::from_secs(120)) {
                Ok(d) => {
                    s.startup = d;
                    return Ok(s);
                }
                Err(e) => {
                    let retry = e.to_ascii_lowercase().contains("address already in use");
                    last = e;
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let open = |n: &str| {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(n))
        };
        let out = open("stdout.log").map_err(|e| e.to_string())?;
        let err = open("stderr.log").map_err(|e| e.to_string())?;
        let child = Proc::new(&self.argv[0])
            .args(&self.argv[1..])
            .current_dir(&self.dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.argv[0]))?;
        self.child = Some(child);
        Ok(())
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(st))) => Some(format!("{st}")),
            Some(Ok(None)) => None,
            Some(Err(e)) => Some(e.to_string()),
            None => Some("not running".into()),
        }
    }

    fn logs_tail(&self) -> String {
        let mut s = String::new();
        for f in ["zookeeper.log", "stdout.log", "stderr.log"] {
            if let Ok(t) = fs::read_to_string(self.dir.join(f)) {
                let lines: Vec<&str> = t.lines().collect();
                let _ = writeln!(
                    s,
                    "--- {f} ---\n{}",
                    lines[lines.len().saturating_sub(20)..].join("\n")
                );
            }
        }
        s
    }

    /// ruok → imok and srvr not "not currently serving".
    fn wait_ready(&mut self, timeout: Duration) -> Result<Duration, String> {
        let t0 = Instant::now();
        let addr = self.addr();
        while t0.elapsed() < timeout {
            if let Some(st) = self.exited() {
                return Err(format!(
                    "{} exited early ({st})\n{}",
                    self.kind.name(),
                    self.logs_tail()
                ));
            }
            if four_letter(&addr, "ruok", Duration::from_secs(2)).is_ok_and(|r| r == "imok")
                && four_letter(&addr, "srvr", Duration::from_secs(2))
                    .is_ok_and(|s| !s.contains(NOT_SERVING) && s.contains("Mode:"))
            {
                return Ok(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(format!(
            "{} not ready within {timeout:?}\n{}",
            self.kind.name(),
            self.logs_tail()
        ))
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if self.keep {
            eprintln!("keeping {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Waits (at most `max`) until every server used under 10% of a core over 300 ms, so that one
/// server's background work (Apache's asynchronous snapshots, GC) does not spill into the next
/// measurement. Returns how long it waited.
fn wait_quiet(servers: &[Server], tck: f64, max: Duration) -> Duration {
    let t0 = Instant::now();
    let window = Duration::from_millis(300);
    while t0.elapsed() < max {
        let a: Vec<Option<f64>> = servers
            .iter()
            .map(|s| proc_cpu_us(&s.pid().to_string(), tck))
            .collect();
        std::thread::sleep(window);
        let busy = servers.iter().zip(&a).any(|(s, a)| {
            match (a, proc_cpu_us(&s.pid().to_string(), tck)) {
                (Some(a), Some(b)) => b - a > 0.10 * window.as_micros() as f64,
                _ => false,
            }
        });
        if !busy {
            break;
        }
    }
    t0.elapsed()
}

struct RestartResult {
    ms: f64,
    data_survived: bool,
    node_count: Option<String>,
    rss_kb: Option<u64>,
}

/// SIGKILL, start again on the same dataDir, time until srvr reports a Mode and a getData gets
/// an answer (the data itself may be gone: `data_survived` says whether it came back).
fn restart_to_serving(s: &mut Server, probe: &str, size: usize) -> Result<RestartResult, String> {
    s.kill();
    let t0 = Instant::now();
    s.spawn()?;
    let addr = s.addr();
    let timeout = Duration::from_secs(600);
    while t0.elapsed() < timeout {
        if let Some(st) = s.exited() {
            return Err(format!(
                "{} exited during restart ({st})\n{}",
                s.kind.name(),
                s.logs_tail()
            ));
        }
        if four_letter(&addr, "srvr", Duration::from_secs(2))
            .is_ok_and(|t| t.contains("Mode:") && !t.contains(NOT_SERVING))
        {
            let probe_res = (|| -> io::Result<(i32, usize)> {
                let mut c = Conn::connect(&addr, Duration::from_secs(10))?;
                let r = c.call(OP_GET_DATA, &path_watch_body(probe))?;
                let body = c.last_body();
                let len = if r.err == 0 && body.len() >= 4 {
                    i32::from_be_bytes(body[0..4].try_into().unwrap()).max(0) as usize
                } else {
                    0
                };
                c.close();
                Ok((r.err, len))
            })();
            if let Ok((err, len)) = probe_res {
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                let srvr = four_letter(&addr, "srvr", Duration::from_secs(5)).unwrap_or_default();
                return Ok(RestartResult {
                    ms,
                    data_survived: err == 0 && len == size,
                    node_count: srvr_field(&srvr, "Node count:"),
                    rss_kb: proc_rss_kb(s.pid()).map(|r| r.0),
                });
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(format!(
        "{} did not serve within {timeout:?} after restart",
        s.kind.name()
    ))
}

// =============================================================================================
// compare
// =============================================================================================

fn env_or<T: std::str::FromStr>(flag: Option<T>, var: &str, default: T) -> Result<T, String> {
    if let Some(v) = flag {
        return Ok(v);
    }
    match std::env::var(var) {
        Ok(s) if !s.trim().is_empty() => s
            .trim()
            .parse()
            .map_err(|_| format!("bad value {s:?} for {var}")),
        _ => Ok(default),
    }
}

fn parse_workloads(s: &str, size: usize, d: Duration) -> Result<Vec<LoadSpec>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| {
            let (op, shape) = w.split_once(':').unwrap_or((w, "1x1"));
            let (n, m) = shape
                .split_once('x')
                .ok_or_else(|| format!("workload {w:?}: want op:SESSIONSxINFLIGHT"))?;
            Ok(LoadSpec {
                op: Op::parse(op)?,
                sessions: n
                    .parse()
                    .map_err(|_| format!("workload {w:?}: bad session count"))?,
                inflight: m
                    .parse()
                    .map_err(|_| format!("workload {w:?}: bad in-flight count"))?,
                size,
                keys: 1000,
                duration: Some(d),
                requests: None,
            })
        })
        .collect()
}

fn median(v: &mut [f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// One row of the final table: a figure for rzk and Apache.
struct Row {
    group: String,
    metric: String,
    rzk: Option<f64>,
    apache: Option<f64>,
    prec: usize,
    note: String,
    /// Print the rzk/apache ratio (not for counts like errors).
    ratio: bool,
}

struct Out {
    file: Option<fs::File>,
}

impl Out {
    fn emit(&mut self, j: Json) {
        let line = j.render();
        println!("{line}");
        if let Some(f) = self.file.as_mut() {
            let _ = writeln!(f, "{line}");
        }
    }
}

fn progress(msg: &str) {
    eprintln!("[rzk-bench {}] {msg}", chrono_now());
}

fn chrono_now() -> String {
    let s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

fn compare(a: CompareArgs) -> Result<(), String> {
    let t_start = Instant::now();
    let duration = env_or(a.duration, "BENCH_DURATION", 10.0)?;
    let warmup = env_or(a.warmup, "BENCH_WARMUP", 3.0)?;
    let rounds = env_or(a.rounds, "BENCH_ROUNDS", 3)?.max(1);
    let znodes = env_or(a.znodes, "BENCH_ZNODES", 1_000_000)?;
    let size = env_or(a.size, "BENCH_SIZE", 100)?;
    let pop_window = env_or(a.populate_window, "BENCH_POPULATE_WINDOW", 500)?.max(1);
    let workloads_s = env_or(
        a.workloads,
        "BENCH_WORKLOADS",
        "set:8x16,get:8x16,set:1x1".to_string(),
    )?;
    let servers_s = env_or(a.servers, "BENCH_SERVERS", "rzk,apache".to_string())?;
    let opts = a.server.opts("2g")?;
    let workloads = parse_workloads(&workloads_s, size, Duration::from_secs_f64(duration))?;
    let mut kinds = Vec::new();
    for s in servers_s.split(',').map(str::trim) {
        match s {
            "rzk" => kinds.push(Kind::Rzk),
            "apache" if Path::new(APACHE_JAR).exists() => kinds.push(Kind::Apache),
            "apache" => progress(&format!(
                "Apache ZooKeeper not installed ({APACHE_JAR} missing): rzk only"
            )),
            "" => {}
            _ => return Err(format!("unknown server {s:?} (rzk, apache)")),
        }
    }
    if kinds.is_empty() {
        return Err("no servers to run".into());
    }
    if kinds.contains(&Kind::Rzk) && !opts.rzk_bin.exists() {
        return Err(format!(
            "{} not found (cargo build --release --bins, or BENCH_RZK_BIN)",
            opts.rzk_bin.display()
        ));
    }
    let out_path = match a
        .out
        .or_else(|| std::env::var_os("BENCH_OUT").map(PathBuf::from))
    {
        Some(p) => p,
        None => PathBuf::from(format!(
            "target/bench/compare-{}.jsonl",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        )),
    };
    if let Some(d) = out_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = fs::create_dir_all(d);
    }
    let mut out = Out {
        file: fs::File::create(&out_path).ok(),
    };
    let tck = clk_tck();
    let java_version = if kinds.contains(&Kind::Apache) {
        Proc::new(&opts.java)
            .arg("-version")
            .output()
            .ok()
            .map(|o| {
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default()
    } else {
        String::new()
    };
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    out.emit(
        Json::default()
            .s("kind", "config")
            .n("cpus", ncpu as f64)
            .n("duration_s", duration)
            .n("warmup_s", warmup)
            .n("rounds", rounds as f64)
            .n("znodes", znodes as f64)
            .n("size", size as f64)
            .n("populate_window", pop_window as f64)
            .s("workloads", &workloads_s)
            .s("apache_heap", &opts.heap)
            .s("apache_gc", &opts.gc)
            .s("jvm_opts", &opts.jvm_opts.join(" "))
            .s("java", &java_version)
            .s("rzk_bin", &opts.rzk_bin.display().to_string())
            .s("tmp", &std::env::temp_dir().display().to_string()),
    );

    // ---- start both servers
    let mut servers: Vec<Server> = Vec::new();
    for &k in &kinds {
        progress(&format!("starting {}", k.name()));
        let s = Server::start(k, &opts)?;
        progress(&format!(
            "{} ready on {} (pid {}, dir {})",
            k.name(),
            s.addr(),
            s.pid(),
            s.dir.display()
        ));
        if k == Kind::Apache {
            progress(&format!("apache: {}", s.argv.join(" ")));
        }
        servers.push(s);
    }
    let mut rows: Vec<Row> = Vec::new();
    let get = |servers: &[Server], k: Kind| servers.iter().position(|s| s.kind == k);
    let pick =
        |vals: &[(Kind, f64)], k: Kind| vals.iter().find(|(kk, _)| *kk == k).map(|(_, v)| *v);
    {
        let rss: Vec<(Kind, f64)> = servers
            .iter()
            .filter_map(|s| proc_rss_kb(s.pid()).map(|r| (s.kind, r.0 as f64 / 1024.0)))
            .collect();
        rows.push(Row {
            group: "empty server".into(),
            metric: "RSS MB".into(),
            rzk: pick(&rss, Kind::Rzk),
            apache: pick(&rss, Kind::Apache),
            prec: 1,
            note: String::new(),
            ratio: true,
        });
        let st: Vec<(Kind, f64)> = servers
            .iter()
            .map(|s| (s.kind, s.startup.as_secs_f64() * 1000.0))
            .collect();
        rows.push(Row {
            group: "empty server".into(),
            metric: "start-to-serving ms".into(),
            rzk: pick(&st, Kind::Rzk),
            apache: pick(&st, Kind::Apache),
            prec: 0,
            note: "spawn until ruok=imok and srvr serving (10 ms polls)".into(),
            ratio: true,
        });
    }
    for s in &servers {
        ensure_keyspace(&s.addr(), 1000, size)
            .map_err(|e| format!("{}: setting up {LOAD_ROOT}: {e}", s.kind.name()))?;
    }

    // ---- load workloads, alternating servers
    let mut results: Vec<(usize, Kind, LoadResult)> = Vec::new();
    let phases: Vec<(u32, f64)> = if warmup > 0.0 {
        std::iter::once((0, warmup))
            .chain((1..=rounds).map(|r| (r, duration)))
            .collect()
    } else {
        (1..=rounds).map(|r| (r, duration)).collect()
    };
    for (round, secs) in phases {
        for (wi, w) in workloads.iter().enumerate() {
            for s in servers.iter() {
                let mut spec = w.clone();
                spec.duration = Some(Duration::from_secs_f64(secs));
                let what = if round == 0 {
                    "warm-up".to_string()
                } else {
                    format!("round {round}/{rounds}")
                };
                wait_quiet(&servers, tck, Duration::from_secs(30));
                let r = run_load(&s.addr(), &spec, Some(s.pid()), tck)
                    .map_err(|e| format!("{} {}: {e}", s.kind.name(), spec.label()))?;
                if let Err(e) = cleanup_created(&s.addr(), &r) {
                    progress(&format!("{}: cleanup after create: {e}", s.kind.name()));
                }
                progress(&format!(
                    "{what:<11} {:<18} {:<6} {:>9.0} ops/s  p50 {:>8.1}µs  p99 {:>8.1}µs  max {:>9.1}µs  srv CPU {:>6} µs/op  client CPU {:>4}%{}{}",
                    spec.label(),
                    s.kind.name(),
                    r.ops as f64 / r.secs,
                    r.p50,
                    r.p99,
                    r.max,
                    fmt_opt(r.server_cpu_us_per_op, 1),
                    fmt_opt(r.client_cpu_pct, 0),
                    r.fsyncs.map_or(String::new(), |f| format!(
                        "  fsyncs {f:.0} (avg {} ms)",
                        fmt_opt(r.fsync_avg_ms, 2)
                    )),
                    if r.errors > 0 {
                        format!("  ERRORS {} (first {:?})", r.errors, r.first_error)
                    } else {
                        String::new()
                    }
                ));
                out.emit(
                    load_json(s.kind.name(), &r)
                        .s("kind", "load")
                        .n("round", round as f64)
                        .b("warmup", round == 0),
                );
                if round > 0 {
                    results.push((wi, s.kind, r));
                }
            }
        }
    }
    for (wi, w) in workloads.iter().enumerate() {
        let fig = |k: Kind, f: &dyn Fn(&LoadResult) -> Option<f64>| -> Option<f64> {
            let mut v: Vec<f64> = results
                .iter()
                .filter(|(i, kk, _)| *i == wi && *kk == k)
                .filter_map(|(_, _, r)| f(r))
                .collect();
            median(&mut v)
        };
        let metrics: Vec<Metric> = vec![
            ("ops/s", 0, Box::new(|r| Some(r.ops as f64 / r.secs))),
            ("p50 µs", 1, Box::new(|r| Some(r.p50))),
            ("p99 µs", 1, Box::new(|r| Some(r.p99))),
            ("p99.9 µs", 1, Box::new(|r| Some(r.p999))),
            ("max µs", 1, Box::new(|r| Some(r.max))),
            ("server CPU µs/op", 1, Box::new(|r| r.server_cpu_us_per_op)),
            (
                "fsyncs / 1000 ops",
                1,
                Box::new(|r| r.fsyncs.map(|f| f * 1000.0 / r.ops.max(1) as f64)),
            ),
            ("client CPU %", 0, Box::new(|r| r.client_cpu_pct)),
            ("errors", 0, Box::new(|r| Some(r.errors as f64))),
        ];
        for (name, prec, f) in metrics.iter() {
            let (rz, ap) = (fig(Kind::Rzk, f.as_ref()), fig(Kind::Apache, f.as_ref()));
            if rz.is_none() && ap.is_none() {
                continue;
            }
            rows.push(Row {
                group: w.label(),
                metric: name.to_string(),
                rzk: rz,
                apache: ap,
                prec: *prec,
                note: match *name {
                    "client CPU %" => "rzk-bench itself (100 = one core)".into(),
                    _ => String::new(),
                },
                ratio: !matches!(*name, "errors" | "client CPU %"),
            });
        }
    }

    // ---- populate, RSS, restart-to-serving
    if znodes > 0 {
        let mut pop: Vec<(Kind, f64, f64)> = Vec::new(); // (kind, secs, cpu µs/op)
        let mut rss: Vec<(Kind, f64)> = Vec::new();
        let mut hwm: Vec<(Kind, f64)> = Vec::new();
        let mut disk: Vec<(Kind, f64)> = Vec::new();
        for s in servers.iter() {
            progress(&format!(
                "populating {} with {znodes} znodes of {size} B",
                s.kind.name()
            ));
            wait_quiet(&servers, tck, Duration::from_secs(60));
            let c0 = proc_cpu_us(&s.pid().to_string(), tck);
            let r = populate(&s.addr(), znodes, size, pop_window)
                .map_err(|e| format!("{} populate: {e}", s.kind.name()))?;
            // Include the server's background work (snapshots) in its CPU per create.
            let quiet = wait_quiet(&servers, tck, Duration::from_secs(120));
            let c1 = proc_cpu_us(&s.pid().to_string(), tck);
            if quiet > Duration::from_secs(1) {
                progress(&format!(
                    "{} busy for {:.1}s after the last create reply (background work)",
                    s.kind.name(),
                    quiet.as_secs_f64()
                ));
            }
            let cpu = match (c0, c1) {
                (Some(a), Some(b)) => (b - a) / znodes as f64,
                _ => f64::NAN,
            };
            let (vm_rss, vm_hwm) = proc_rss_kb(s.pid()).unwrap_or((0, 0));
            let srvr = four_letter(&s.addr(), "srvr", Duration::from_secs(10)).unwrap_or_default();
            let du = dir_size(&s.data_dir) as f64 / 1048576.0;
            progress(&format!(
                "{}: {znodes} creates in {:.1}s ({:.0}/s, {} errors), CPU {cpu:.1} µs/op, RSS {:.1} MB (peak {:.1} MB), node count {}, dataDir {du:.1} MB",
                s.kind.name(),
                r.secs,
                znodes as f64 / r.secs,
                r.errors,
                vm_rss as f64 / 1024.0,
                vm_hwm as f64 / 1024.0,
                srvr_field(&srvr, "Node count:").unwrap_or_default()
            ));
            out.emit(
                Json::default()
                    .s("kind", "populate")
                    .s("server", s.kind.name())
                    .n("znodes", znodes as f64)
                    .n("size", size as f64)
                    .n("secs", r.secs)
                    .n("creates_per_s", znodes as f64 / r.secs)
                    .n("errors", r.errors as f64)
                    .n("server_cpu_us_per_op", cpu)
                    .n("rss_kb", vm_rss as f64)
                    .n("hwm_kb", vm_hwm as f64)
                    .n("data_dir_bytes", dir_size(&s.data_dir) as f64)
                    .s(
                        "node_count",
                        &srvr_field(&srvr, "Node count:").unwrap_or_default(),
                    ),
            );
            pop.push((s.kind, r.secs, cpu));
            rss.push((s.kind, vm_rss as f64 / 1024.0));
            hwm.push((s.kind, vm_hwm as f64 / 1024.0));
            disk.push((s.kind, du));
        }
        let g = format!("populate {}k x {size}B", znodes / 1000);
        let p =
            |k: Kind, f: &dyn Fn(&(Kind, f64, f64)) -> f64| pop.iter().find(|x| x.0 == k).map(f);
        rows.push(Row {
            group: g.clone(),
            metric: "creates/s".into(),
            rzk: p(Kind::Rzk, &|x| znodes as f64 / x.1),
            apache: p(Kind::Apache, &|x| znodes as f64 / x.1),
            prec: 0,
            note: format!("1 session, {pop_window} in flight"),
            ratio: true,
        });
        rows.push(Row {
            group: g.clone(),
            metric: "server CPU µs/op".into(),
            rzk: p(Kind::Rzk, &|x| x.2),
            apache: p(Kind::Apache, &|x| x.2),
            prec: 1,
            note: "incl. background work until idle".into(),
            ratio: true,
        });
        rows.push(Row {
            group: g.clone(),
            metric: "RSS MB".into(),
            rzk: pick(&rss, Kind::Rzk),
            apache: pick(&rss, Kind::Apache),
            prec: 1,
            note: format!("Apache -Xmx{}", opts.heap),
            ratio: true,
        });
        rows.push(Row {
            group: g.clone(),
            metric: "peak RSS MB".into(),
            rzk: pick(&hwm, Kind::Rzk),
            apache: pick(&hwm, Kind::Apache),
            prec: 1,
            note: String::new(),
            ratio: true,
        });
        rows.push(Row {
            group: g.clone(),
            metric: "dataDir MB".into(),
            rzk: pick(&disk, Kind::Rzk),
            apache: pick(&disk, Kind::Apache),
            prec: 1,
            note: String::new(),
            ratio: true,
        });

        let mut rst: Vec<(Kind, RestartResult)> = Vec::new();
        let probe = populate_path(0);
        for k in kinds.iter().copied() {
            let i = get(&servers, k).unwrap();
            wait_quiet(&servers, tck, Duration::from_secs(120));
            // Write back every dirty page first (the other server's populate leaves gigabytes
            // of them), so that neither restart is timed against the kernel flushing them.
            // SAFETY: sync(2) takes no arguments.
            unsafe { libc::sync() };
            progress(&format!("restarting {} (SIGKILL, same dataDir)", k.name()));
            let r = restart_to_serving(&mut servers[i], &probe, size)?;
            progress(&format!(
                "{}: serving {:.0} ms after restart; data {}; node count {}; RSS {:.1} MB",
                k.name(),
                r.ms,
                if r.data_survived {
                    "recovered"
                } else {
                    "NOT recovered (empty server)"
                },
                r.node_count.clone().unwrap_or_default(),
                r.rss_kb.unwrap_or(0) as f64 / 1024.0
            ));
            out.emit(
                Json::default()
                    .s("kind", "restart")
                    .s("server", k.name())
                    .n("znodes", znodes as f64)
                    .n("restart_ms", r.ms)
                    .b("data_survived", r.data_survived)
                    .s("node_count", &r.node_count.clone().unwrap_or_default())
                    .on("rss_kb", r.rss_kb.map(|v| v as f64)),
            );
            rst.push((k, r));
        }
        let rr = |k: Kind| rst.iter().find(|x| x.0 == k).map(|x| &x.1);
        let mut note = String::new();
        for (k, r) in &rst {
            if !r.data_survived {
                let _ = write!(
                    note,
                    "{}{}: data not recovered, restart of an EMPTY server",
                    if note.is_empty() { "" } else { "; " },
                    k.name()
                );
            }
        }
        rows.push(Row {
            group: "restart-to-serving".into(),
            metric: "ms".into(),
            rzk: rr(Kind::Rzk).map(|r| r.ms),
            apache: rr(Kind::Apache).map(|r| r.ms),
            prec: 0,
            note,
            ratio: true,
        });
        rows.push(Row {
            group: "restart-to-serving".into(),
            metric: "RSS after restart MB".into(),
            rzk: rr(Kind::Rzk)
                .and_then(|r| r.rss_kb)
                .map(|v| v as f64 / 1024.0),
            apache: rr(Kind::Apache)
                .and_then(|r| r.rss_kb)
                .map(|v| v as f64 / 1024.0),
            prec: 1,
            note: String::new(),
            ratio: true,
        });
    }

    // ---- Apache log: fsync warnings and errors
    let mut notes = Vec::new();
    if let Some(i) = get(&servers, Kind::Apache) {
        let log = fs::read_to_string(servers[i].dir.join("zookeeper.log")).unwrap_or_default();
        let fsync_warn = log
            .lines()
            .filter(|l| l.contains("fsync-ing the write ahead log"))
            .count();
        let errors = log.lines().filter(|l| l.contains(" ERROR ")).count();
        let warns = log.lines().filter(|l| l.contains(" WARN ")).count();
        notes.push(format!(
            "apache log: {fsync_warn} slow-fsync warnings, {warns} WARN, {errors} ERROR lines"
        ));
        for l in log.lines().filter(|l| l.contains(" ERROR ")).take(3) {
            notes.push(format!("  {}", l.chars().take(200).collect::<String>()));
        }
        // What the last start did (restart-to-serving): snapshot load, replay, startup snapshot.
        let last_start = log
            .rfind("QuorumPeerMain")
            .map_or(0, |i| log[..i].rfind('\n').map_or(0, |j| j + 1));
        for l in log[last_start..].lines().filter(|l| {
            l.contains("Snapshot loaded in")
                || l.contains("Snapshot taken in")
                || l.contains("Invalid snapshot")
                || l.contains("txns loaded in")
        }) {
            let msg = l.split(" - ").skip(2).collect::<Vec<_>>().join(" - ");
            notes.push(format!(
                "apache last start: {}",
                msg.chars().take(160).collect::<String>()
            ));
        }
    }

    // ---- rzk's log: what its last start did (restore time, txns replayed).
    if let Some(i) = get(&servers, Kind::Rzk) {
        let log = fs::read_to_string(servers[i].dir.join("stderr.log")).unwrap_or_default();
        if let Some(l) = log.lines().rev().find(|l| l.contains("Loaded ") && l.contains("txns replayed")) {
            let msg = l.split("durability: ").nth(1).unwrap_or(l);
            notes.push(format!("rzk last start: {}", msg.chars().take(160).collect::<String>()));
        }
    }

    // ---- the table
    let mut t = String::new();
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "rzk vs Apache ZooKeeper 3.8 — {ncpu} CPUs, {duration}s x {rounds} rounds per workload (median), warm-up {warmup}s, forceSync=yes, Apache -Xmx{} {}",
        opts.heap, opts.gc
    );
    let _ = writeln!(
        t,
        "{:<22} {:<20} {:>12} {:>12} {:>10}  note",
        "workload", "figure", "rzk", "apache", "rzk/apache"
    );
    let _ = writeln!(t, "{}", "-".repeat(84));
    let mut prev_group = "";
    for r in &rows {
        let f = |v: Option<f64>| fmt_opt(v, r.prec);
        let group = if r.group == prev_group {
            ""
        } else {
            r.group.as_str()
        };
        prev_group = &r.group;
        let ratio = match (r.rzk, r.apache) {
            (Some(a), Some(b)) if r.ratio && b != 0.0 && a.is_finite() && b.is_finite() => {
                format!("{:.2}", a / b)
            }
            _ => "-".into(),
        };
        let _ = writeln!(
            t,
            "{:<22} {:<20} {:>12} {:>12} {:>10}  {}",
            group,
            r.metric,
            f(r.rzk),
            f(r.apache),
            ratio,
            r.note
        );
    }
    let _ = writeln!(t, "{}", "-".repeat(84));
    let _ = writeln!(
        t,
        "ratio = rzk/apache: above 1 is better for ops/s and creates/s, below 1 is better for latency, CPU, memory and time."
    );
    for n in &notes {
        let _ = writeln!(t, "{n}");
    }
    let _ = writeln!(
        t,
        "JSON lines: {}   total time {:.0}s",
        out_path.display(),
        t_start.elapsed().as_secs_f64()
    );
    print!("{t}");
    for r in &rows {
        out.emit(
            Json::default()
                .s("kind", "summary")
                .s("group", &r.group)
                .s("figure", &r.metric)
                .on("rzk", r.rzk)
                .on("apache", r.apache)
                .on(
                    "ratio",
                    match (r.rzk, r.apache) {
                        (Some(a), Some(b)) if r.ratio && b != 0.0 => Some(a / b),
                        _ => None,
                    },
                )
                .s("note", &r.note),
        );
    }
    drop(servers);
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let res: Result<(), String> = match cli.command {
        Command::Populate {
            server,
            count,
            size,
            window,
        } => populate(&server, count, size, window)
            .map(|r| {
                println!(
                    "created {count} znodes of {size} B in {:.2}s ({:.0}/s), {} errors",
                    r.secs,
                    count as f64 / r.secs,
                    r.errors
                )
            })
            .map_err(|e| e.to_string()),
        Command::Load(a) => load_cmd(a),
        Command::Compare(a) => compare(a),
        Command::Ensemble(a) => ensemble::run(a),
    };
    if let Err(e) = res {
        eprintln!("rzk-bench: {e}");
        std::process::exit(1);
    }
}

//! Four-letter words (`ruok`, `srvr`, `stat`, `mntr`, ...): recognition, whitelist and the exact
//! text Apache ZooKeeper prints (reference §4). Pure apart from reading `/proc` and the data
//! directories for `envi`, `mntr`, `conf` and `dirs`: no sockets, no clocks (time is passed in).
//!
//! How the connection handler uses it (Apache's `NIOServerCnxn.checkFourLetterWord`):
//! 1. The first 4 bytes of a brand-new connection go to [`command_code`]. `None`: they are a frame
//!    length, carry on with the client protocol.
//! 2. `Some(cmd)`: with the engine locked, build a [`Context`] and call [`handle`] (for `stmk`, first
//!    call [`check_whitelist`]; only if it passes read 8 more bytes, the big-endian mask, and pass
//!    it to `handle`). Write the returned text, then close the connection. An empty string (from
//!    `telnet close`) means: write nothing, just close.
//!
//! `handle` counts the command as a received packet, as Apache does, checks the whitelist, and runs
//! the command. [`run`] runs a command without those two steps (for the AdminServer or tests).

use crate::engine::{Conn, Engine, Now};
use crate::server::config::ServerConfig;
use crate::types::SessionId;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// The version string printed by `srvr`, `stat`, `mntr` (`zk_version`) and `envi`
/// (`zookeeper.version`). Apache prints `<version>-<git commit>, built on <yyyy-MM-dd HH:mm> UTC`.
/// Tools take the leading `x.y.z` as the protocol level (rzk speaks 3.9's protocol), so that
/// comes first; `rzk-<crate version>` stands where Apache puts its commit id. rzk records no
/// build time, so the date is the epoch: a placeholder, not a real build date.
pub const ZK_VERSION: &str = concat!("3.9.3-rzk-", env!("CARGO_PKG_VERSION"), ", built on 1970-01-01 00:00 UTC");

/// Apache's text for commands that need a running server when none is (without the newline).
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// The name Apache gives the telnet "interrupt process / do" sequence `ff f4 ff fd`.
pub const TELNET_CLOSE: &str = "telnet close";

/// ZooTrace's default text trace mask (`gtmk` on a fresh server).
pub const DEFAULT_TRACE_MASK: i64 = 306;

/// Apache's connection expiry interval and the timeout of connections without a session
/// (`zookeeper.nio.sessionlessCnxnTimeout`, 10 s); used by `dump`'s connection sets.
const SESSIONLESS_CNXN_TIMEOUT_MS: u64 = 10_000;

/// The commands, as the big-endian int of their 4 bytes (Apache's `FourLetterCommands`).
/// `csnp` and `lgif` are ClickHouse Keeper's (snapshot now, log info); the shell answers them
/// (`server::durability`), since they touch the disk.
const COMMANDS: [&str; 20] = [
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "hash", "isro", "mntr", "ruok", "srst", "srvr",
    "stat", "stmk", "wchc", "wchp", "wchs", "csnp", "lgif",
];

/// The command named by the first 4 bytes of a connection, or `None` when they are an ordinary
/// frame length. `ff f4 ff fd` gives [`TELNET_CLOSE`]. Matching is exact (lower case), as in Apache.
pub fn command_code(first4: [u8; 4]) -> Option<&'static str> {
    if first4 == [0xff, 0xf4, 0xff, 0xfd] {
        return Some(TELNET_CLOSE);
    }
    COMMANDS.iter().copied().find(|c| c.as_bytes() == first4)
}

/// `Err(text)` with Apache's exact rejection text (newline included) when the whitelist does not
/// allow `cmd`. `srvr` is always allowed. `telnet close` is allowed only by `*`, as in Apache.
pub fn check_whitelist(cmd: &str, config: &ServerConfig) -> Result<(), String> {
    if config.four_letter_whitelist.is_allowed(cmd) {
        Ok(())
    } else {
        Err(format!("{cmd} is not executed because it is not in the whitelist.\n"))
    }
}

/// How many more bytes to read after the command before running it: 8 (the mask) for `stmk`,
/// 0 otherwise. Read them only once [`check_whitelist`] has passed.
pub fn extra_bytes(cmd: &str) -> usize {
    if cmd == "stmk" { 8 } else { 0 }
}

/// What a command needs to run. The shell builds one while it holds the engine lock.
pub struct Context<'a> {
    pub engine: &'a mut Engine,
    pub config: &'a ServerConfig,
    pub now: Now,
    /// Monotonic ms when the server started serving (`zk_uptime`).
    pub start_mono_ms: u64,
    /// The remote address of the connection that sent the command. Apache lists it among the
    /// connections (`stat`, `cons`, `dump`, `Connections:`) with interest ops 0 and `recved=1`.
    /// If the shell also registered it with `Engine::open`, that entry (no session, same address)
    /// is shown only once, as this one.
    pub requester: Option<SocketAddr>,
    /// The port the client listener is bound to (`conf`'s `clientPort`); `None` uses the config's
    /// `clientPort`, or -1 when there is none.
    pub listen_port: Option<u16>,
    /// The server's trace mask (`gtmk` prints it, `stmk` sets it; start at [`DEFAULT_TRACE_MASK`]).
    /// rzk keeps it only for these commands: it does not change what is logged.
    pub trace_mask: &'a mut i64,
    /// Recorded tree digests `(zxid, digest)` for `hash`, oldest first. Apache keeps one every 128
    /// zxids, at most 1024; pass `&[]` when none are kept.
    pub digest_log: &'a [(i64, u64)],
    /// The server's place in its ensemble (None: standalone).
    pub quorum: Option<QuorumInfo>,
    /// Txn log syncs so far (None: not tracked, e.g. in unit tests).
    pub fsync: Option<super::FsyncStats>,
}

/// What srvr/stat/mntr show about an ensemble member.
#[derive(Clone, Copy, Debug, Default)]
pub struct QuorumInfo {
    /// `leader`, `follower`, `observer` (or `looking`).
    pub mode: &'static str,
    /// mntr's `zk_peer_state`, e.g. `leading - broadcast`.
    pub peer_state: &'static str,
    pub serving: bool,
    pub quorum_size: usize,
    /// Leader only: (learners, synced followers, synced observers, pending syncs).
    pub leader: Option<(usize, usize, usize, usize)>,
    /// Leader only: proposal sizes last/min/max (-1 before any).
    pub proposal_sizes: (i64, i64, i64),
}

/// The full Apache flow for a command received on a new connection: counts it as a received
/// packet, applies the whitelist, runs it. `stmk_mask` is the long that followed `stmk` (ignored
/// for other commands; `None` leaves the mask unchanged). Returns the text to write before closing.
pub fn handle(cmd: &str, stmk_mask: Option<i64>, ctx: &mut Context<'_>) -> String {
    ctx.engine.stats.packets_received += 1;
    if let Err(text) = check_whitelist(cmd, ctx.config) {
        return text;
    }
    if ctx.quorum.is_some_and(|q| !q.serving) {
        // An ensemble member without an established leader answers like Apache while LOOKING.
        return not_serving(cmd, *ctx.trace_mask);
    }
    let text = if cmd == "stmk" { run_stmk(stmk_mask.unwrap_or(*ctx.trace_mask), ctx) } else { run(cmd, ctx) };
    // Apache counts each 8192-char buffer it writes for a command as a packet sent.
    ctx.engine.stats.packets_sent += text.len().div_ceil(8192) as u64;
    text
}

/// Runs a command (no whitelist check, no packet count). Unknown names give an empty string.
/// `stmk` needs its mask: use [`run_stmk`].
pub fn run(cmd: &str, ctx: &mut Context<'_>) -> String {
    match cmd {
        "ruok" => "imok".to_string(),
        "isro" => "rw".to_string(),
        "gtmk" | "stmk" => ctx.trace_mask.to_string(),
        "srvr" => stat(ctx, false),
        "stat" => stat(ctx, true),
        "cons" => cons(ctx),
        "conf" => conf(ctx),
        "envi" => envi(),
        "mntr" => mntr(ctx),
        "wchs" => wchs(ctx),
        "wchc" => wchc(ctx),
        "wchp" => wchp(ctx),
        "dump" => dump(ctx),
        "dirs" => dirs(ctx.config),
        "hash" => hash(ctx.digest_log),
        "crst" => {
            for c in ctx.engine.conns.values_mut() {
                reset_conn_stats(c);
            }
            "Connection stats reset.\n".to_string()
        }
        "srst" => {
            ctx.engine.stats.reset();
            "Server stats reset.\n".to_string()
        }
        // TELNET_CLOSE and anything unknown: Apache runs nothing and closes the connection.
        _ => String::new(),
    }
}

/// `stmk`: sets the trace mask and prints it in decimal, no newline.
pub fn run_stmk(mask: i64, ctx: &mut Context<'_>) -> String {
    *ctx.trace_mask = mask;
    mask.to_string()
}

/// The output when no server is serving yet (engine not loaded): what Apache prints while it is
/// not running. `ruok`, `envi`, `gtmk`/`stmk` work anyway; `isro` says `null`.
pub fn not_serving(cmd: &str, trace_mask: i64) -> String {
    match cmd {
        "ruok" => "imok".to_string(),
        "isro" => "null".to_string(),
        "envi" => envi(),
        "gtmk" | "stmk" => trace_mask.to_string(),
        "hash" => NOT_SERVING.to_string(),
        TELNET_CLOSE => String::new(),
        c if COMMANDS.contains(&c) => format!("{NOT_SERVING}\n"),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting helpers

/// Java's `InetSocketAddress.toString()` for an unresolved-name address: `/127.0.0.1:59502`,
/// `/[0:0:0:0:0:0:0:1]:2181`.
pub fn java_socket_addr(a: &SocketAddr) -> String {
    let ip = match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        ip => ip,
    };
    match ip {
        IpAddr::V4(v4) => format!("/{}:{}", v4, a.port()),
        IpAddr::V6(v6) => {
            let groups: Vec<String> = v6.segments().iter().map(|s| format!("{s:x}")).collect();
            format!("/[{}]:{}", groups.join(":"), a.port())
        }
    }
}

/// Java's `Double.toString` for the values printed here (non-negative, at most 4 decimals):
/// `0.0`, `3.0833`, `1.0E-4`, `1.2345678E7`.
pub fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e7).contains(&a) {
        let s = format!("{v:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = if m.contains('.') { m.to_string() } else { format!("{m}.0") };
        return format!("{m}E{e}");
    }
    let s = format!("{v}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// Apache's average latency: total/count rounded HALF_UP to 4 decimals, 0.0 without data.
fn avg_latency(total: u64, count: u64) -> f64 {
    if count == 0 {
        return 0.0;
    }
    let q = ((total as u128) * 20_000 + count as u128) / (2 * count as u128);
    q as f64 / 10_000.0
}

/// Java's `Date.toString()` in UTC: `Sun Nov 22 17:33:00 UTC 2026`.
pub fn java_date(wall_ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = wall_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {:04}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        year
    )
}

fn mono_to_wall(now: Now, mono_ms: u64) -> i64 {
    now.wall_ms + (mono_ms as i64 - now.mono_ms as i64)
}

// ---------------------------------------------------------------------------------------------
// Connections

/// One connection as the 4lw commands see it.
struct ConnView<'a> {
    remote: SocketAddr,
    /// `None` for the requesting (4lw) connection itself.
    conn: Option<&'a Conn>,
}

/// Engine connections in id order, then the requester (Apache's set order is arbitrary).
fn connections<'a>(engine: &'a Engine, requester: Option<SocketAddr>) -> Vec<ConnView<'a>> {
    let mut v: Vec<ConnView<'a>> = engine
        .conns
        .values()
        .filter(|c| !(c.session.is_none() && Some(c.remote) == requester))
        .map(|c| ConnView { remote: c.remote, conn: Some(c) })
        .collect();
    if let Some(r) = requester {
        v.push(ConnView { remote: r, conn: None });
    }
    v
}

fn num_connections(ctx: &Context<'_>) -> usize {
    connections(ctx.engine, ctx.requester).len()
}

/// Apache's `ServerCnxn.dumpConnectionInfo` (without the newline).
fn conn_info(out: &mut String, engine: &Engine, v: &ConnView<'_>, brief: bool) {
    let addr = java_socket_addr(&v.remote);
    let Some(c) = v.conn else {
        // The 4lw connection: deselected (interest 0), its command counted as one packet.
        let _ = write!(out, " {addr}[0](queued=0,recved=1,sent=0)");
        return;
    };
    let s = &c.stats;
    let _ = write!(out, " {addr}[1](queued={},recved={},sent={}", c.queued(), s.received, s.sent);
    if !brief && let Some(sid) = c.session.filter(|s| s.0 != 0) {
        let timeout = engine.sessions.get(sid).map_or(0, |x| x.timeout_ms);
        let _ = write!(
            out,
            ",sid=0x{:x},lop={},est={},to={}",
            sid.0,
            s.last_op.unwrap_or("NA"),
            s.established_wall_ms,
            timeout
        );
        if s.last_cxid >= 0 {
            let _ = write!(out, ",lcxid=0x{:x}", s.last_cxid);
        }
        let avg = s.total_latency.checked_div(s.count).unwrap_or(0);
        let min = if s.count == 0 { 0 } else { s.min_latency };
        let _ = write!(
            out,
            ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            s.last_zxid, s.last_response_ms, s.last_latency, min, avg, s.max_latency
        );
    }
    out.push(')');
}

/// Apache's `ServerCnxn.resetStats`: counters to zero, last op `NA`, last cxid/zxid -1.
fn reset_conn_stats(c: &mut Conn) {
    c.stats.reset();
    c.stats.last_op = None;
    c.stats.last_cxid = -1;
    c.stats.last_zxid = -1;
}

fn cons(ctx: &Context<'_>) -> String {
    let mut out = String::new();
    for v in connections(ctx.engine, ctx.requester) {
        conn_info(&mut out, ctx.engine, &v, false);
        out.push('\n');
    }
    out.push('\n');
    out
}

// ---------------------------------------------------------------------------------------------
// srvr / stat / mntr

fn server_latency(ctx: &Context<'_>) -> (u64, f64, u64) {
    let st = &ctx.engine.stats;
    if st.latency_count == 0 {
        (0, 0.0, 0)
    } else {
        (st.min_latency, avg_latency(st.total_latency, st.latency_count), st.max_latency)
    }
}

fn stat(ctx: &Context<'_>, with_clients: bool) -> String {
    let mut out = format!("Zookeeper version: {ZK_VERSION}\n");
    if with_clients {
        out.push_str("Clients:\n");
        for v in connections(ctx.engine, ctx.requester) {
            conn_info(&mut out, ctx.engine, &v, true);
            out.push('\n');
        }
        out.push('\n');
    }
    let (min, avg, max) = server_latency(ctx);
    let st = &ctx.engine.stats;
    let _ = write!(
        out,
        "Latency min/avg/max: {}/{}/{}\nReceived: {}\nSent: {}\nConnections: {}\nOutstanding: {}\nZxid: 0x{:x}\nMode: {}\nNode count: {}\n",
        min,
        java_double(avg),
        max,
        st.packets_received,
        st.packets_sent,
        num_connections(ctx),
        ctx.engine.outstanding_requests(),
        ctx.engine.tree.last_processed_zxid,
        ctx.quorum.map_or("standalone", |q| q.mode),
        ctx.engine.tree.reported_node_count()
    );
    if let Some(q) = ctx.quorum.filter(|q| q.leader.is_some()) {
        let (l, mn, mx) = q.proposal_sizes;
        let _ = writeln!(out, "Proposal sizes last/min/max: {l}/{mn}/{mx}");
    }
    out
}

fn mntr(ctx: &Context<'_>) -> String {
    let e = &*ctx.engine;
    let (min, avg, max) = server_latency(ctx);
    let (open_fds, max_fds) = fd_counts();
    let uptime = ctx.now.mono_ms.saturating_sub(ctx.start_mono_ms);
    // Apache 3.9's dumpMonitorValues, then its always-registered gauges in registration order.
    // Response sizes are not tracked by rzk: -1 is Apache's "no data" value for them.
    let rows: Vec<(&str, String)> = vec![
        ("version", ZK_VERSION.to_string()),
        ("server_state", ctx.quorum.map_or("standalone", |q| q.mode).to_string()),
        ("avg_latency", java_double(avg)),
        ("max_latency", max.to_string()),
        ("min_latency", min.to_string()),
        ("packets_received", e.stats.packets_received.to_string()),
        ("packets_sent", e.stats.packets_sent.to_string()),
        ("num_alive_connections", num_connections(ctx).to_string()),
        ("outstanding_requests", e.outstanding_requests().to_string()),
        ("uptime", uptime.to_string()),
        ("znode_count", e.tree.reported_node_count().to_string()),
        ("watch_count", e.watches.total().to_string()),
        ("ephemerals_count", e.tree.ephemeral_count().to_string()),
        ("approximate_data_size", e.tree.approximate_data_size().to_string()),
        ("global_sessions", e.sessions.len().to_string()),
        ("local_sessions", "0".to_string()),
        ("open_file_descriptor_count", open_fds.to_string()),
        ("max_file_descriptor_count", max_fds.to_string()),
        ("connection_drop_probability", java_double(0.0)),
        ("last_client_response_size", e.stats.response_sizes.last.to_string()),
        ("max_client_response_size", e.stats.response_sizes.max.to_string()),
        ("min_client_response_size", e.stats.response_sizes.min.to_string()),
        ("outstanding_tls_handshake", "0".to_string()),
        ("auth_failed_count", e.stats.auth_failed.to_string()),
        ("non_mtls_remote_conn_count", "0".to_string()),
        ("non_mtls_local_conn_count", "0".to_string()),
    ];
    let mut rows = rows;
    if let Some(q) = ctx.quorum {
        rows.insert(2, ("peer_state", q.peer_state.to_string()));
        rows.push(("quorum_size", q.quorum_size.to_string()));
        if let Some((learners, synced, observers, pending)) = q.leader {
            let (l, mn, mx) = q.proposal_sizes;
            rows.push(("learners", learners.to_string()));
            // Older Apache releases' name for the learner count; monitoring scripts still ask.
            rows.push(("followers", learners.to_string()));
            rows.push(("synced_followers", synced.to_string()));
            rows.push(("synced_non_voting_followers", "0".to_string()));
            rows.push(("synced_observers", observers.to_string()));
            rows.push(("pending_syncs", pending.to_string()));
            rows.push(("last_proposal_size", l.to_string()));
            rows.push(("min_proposal_size", mn.to_string()));
            rows.push(("max_proposal_size", mx.to_string()));
        }
    }
    if let Some(f) = &ctx.fsync {
        // Apache's summaries: avg (decimal), min, max, cnt, sum. fsynctime is in ms as Apache's;
        // rzk measures µs, so avg and sum keep the sub-millisecond part (avg as a fraction).
        let avg = |sum: f64, n: u64| if n == 0 { 0.0 } else { sum / n as f64 };
        rows.push(("avg_fsynctime", java_double(avg(f.total_us as f64 / 1000.0, f.count))));
        rows.push(("min_fsynctime", (f.min_us / 1000).to_string()));
        rows.push(("max_fsynctime", (f.max_us / 1000).to_string()));
        rows.push(("cnt_fsynctime", f.count.to_string()));
        rows.push(("sum_fsynctime", (f.total_us / 1000).to_string()));
        rows.push(("avg_sync_processor_batch_size", java_double(avg(f.txns as f64, f.count))));
        rows.push(("min_sync_processor_batch_size", f.min_batch.to_string()));
        rows.push(("max_sync_processor_batch_size", f.max_batch.to_string()));
        rows.push(("cnt_sync_processor_batch_size", f.count.to_string()));
        rows.push(("sum_sync_processor_batch_size", f.txns.to_string()));
    }
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "zk_{k}\t{v}");
    }
    out
}

/// Open file descriptors (`/proc/self/fd`, not counting the one used to list it) and the soft
/// limit (`/proc/self/limits`; -1 when unlimited or unknown, as Java reports RLIM_INFINITY).
fn fd_counts() -> (i64, i64) {
    let open = match std::fs::read_dir("/proc/self/fd") {
        Ok(d) => d.count() as i64 - 1,
        Err(_) => -1,
    };
    let max = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("Max open files")).and_then(|l| {
                l["Max open files".len()..].split_whitespace().next().map(|v| v.parse::<i64>().unwrap_or(-1))
            })
        })
        .unwrap_or(-1);
    (open, max)
}

// ---------------------------------------------------------------------------------------------
// conf / dirs / envi / hash

pub(crate) fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Total size of the files under `p` (recursive); 0 when missing. Like Java's `getDirSize`.
pub(crate) fn dir_size(p: &Path) -> u64 {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| dir_size(&e.path())).sum())
            .unwrap_or(0),
        Ok(_) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
        Err(_) => 0,
    }
}

fn conf(ctx: &Context<'_>) -> String {
    let c = ctx.config;
    let port: i64 = ctx.listen_port.or(c.client_port).map_or(-1, i64::from);
    let snap = c.snap_dir();
    let log = c.txn_log_dir();
    format!(
        "clientPort={port}\nsecureClientPort=-1\ndataDir={}\ndataDirSize={}\ndataLogDir={}\ndataLogSize={}\n\
         tickTime={}\nmaxClientCnxns={}\nminSessionTimeout={}\nmaxSessionTimeout={}\n\
         clientPortListenBacklog={}\nserverId={}\n",
        absolute(&snap).display(),
        dir_size(&snap),
        absolute(&log).display(),
        dir_size(&log),
        c.tick_time_ms,
        c.max_client_cnxns,
        c.min_session_timeout_ms,
        c.max_session_timeout_ms,
        c.client_port_listen_backlog,
        c.server_id
    )
}

fn dirs(c: &ServerConfig) -> String {
    format!("datadir_size: {}\nlogdir_size: {}\n", dir_size(&c.snap_dir()), dir_size(&c.txn_log_dir()))
}

fn hash(log: &[(i64, u64)]) -> String {
    let mut out = String::new();
    for (zxid, digest) in log {
        let _ = writeln!(out, "{:x}: {}", zxid, *digest as i64);
    }
    out
}

fn read_trim(p: &str) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The process's user name and home directory: `/etc/passwd` for the real uid (as the JVM's
/// `getpwuid`), else `$USER`/`$HOME`.
fn user_name_home() -> (String, String) {
    let uid = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1).map(|u| u.to_string()))
    });
    if let (Some(uid), Ok(pw)) = (uid, std::fs::read_to_string("/etc/passwd")) {
        for line in pw.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 6 && f[2] == uid {
                return (f[0].to_string(), f[5].to_string());
            }
        }
    }
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| "<NA>".into());
    (env("USER"), env("HOME"))
}

/// `kB` value of a `/proc` status-style line, in MB.
fn proc_kb_mb(file: &str, key: &str) -> Option<u64> {
    let t = std::fs::read_to_string(file).ok()?;
    let l = t.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = l[key.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kb / 1024)
}

/// `envi`: Apache's key set, with values describing the rzk process. There is no JVM, so the
/// `java.*` keys read `<NA>` (Java's own value for an unset property), except `java.io.tmpdir`,
/// which is the temp directory rzk would use. `os.memory.total` is the resident set size,
/// `os.memory.max` the machine's memory and `os.memory.free` its available memory.
fn envi() -> String {
    let na = || "<NA>".to_string();
    let host = read_trim("/proc/sys/kernel/hostname").or_else(|| read_trim("/etc/hostname")).unwrap_or_else(na);
    let os_name = read_trim("/proc/sys/kernel/ostype").unwrap_or_else(|| {
        let os = std::env::consts::OS;
        let mut c = os.chars();
        c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_else(na)
    });
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        a => a,
    };
    let os_version = read_trim("/proc/sys/kernel/osrelease").unwrap_or_else(na);
    let (user, home) = user_name_home();
    let dir = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| na());
    let mb = |v: Option<u64>| v.map_or_else(na, |v| format!("{v}MB"));
    let entries: Vec<(&str, String)> = vec![
        ("zookeeper.version", ZK_VERSION.to_string()),
        ("host.name", host),
        ("java.version", na()),
        ("java.vendor", na()),
        ("java.home", na()),
        ("java.class.path", na()),
        ("java.library.path", na()),
        ("java.io.tmpdir", std::env::temp_dir().display().to_string()),
        ("java.compiler", na()),
        ("os.name", os_name),
        ("os.arch", arch.to_string()),
        ("os.version", os_version),
        ("user.name", user),
        ("user.home", home),
        ("user.dir", dir),
        ("os.memory.free", mb(proc_kb_mb("/proc/meminfo", "MemAvailable:"))),
        ("os.memory.max", mb(proc_kb_mb("/proc/meminfo", "MemTotal:"))),
        ("os.memory.total", mb(proc_kb_mb("/proc/self/status", "VmRSS:"))),
    ];
    let mut out = String::from("Environment:\n");
    for (k, v) in entries {
        let _ = writeln!(out, "{k}={v}");
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Watches and dump

fn session_of(engine: &Engine, watcher: u64) -> i64 {
    engine.conns.get(&watcher).and_then(|c| c.session).map_or(0, |s| s.0)
}

/// `wchs`: data-watch table only (reference §0.15), ending with the newline Apache's
/// WatchCommand always adds.
fn wchs(ctx: &Context<'_>) -> String {
    let t = &ctx.engine.watches.data;
    format!("{} connections watching {} paths\nTotal watches:{}\n", t.watcher_count(), t.path_count(), t.watch_count())
}

/// `wchc`: per connection (shown by its session id), the watched paths; data table only.
fn wchc(ctx: &Context<'_>) -> String {
    let e = &*ctx.engine;
    let mut watchers: Vec<_> = e.watches.data.by_watcher().iter().collect();
    watchers.sort_by_key(|(w, _)| **w);
    let mut out = String::new();
    for (w, paths) in watchers {
        let _ = writeln!(out, "0x{:x}", session_of(e, *w));
        let mut paths: Vec<&String> = paths.keys().collect();
        paths.sort();
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
    out.push('\n');
    out
}

/// `wchp`: per path, the watching sessions; data table only.
fn wchp(ctx: &Context<'_>) -> String {
    let e = &*ctx.engine;
    let mut paths: Vec<_> = e.watches.data.by_path().iter().collect();
    paths.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::new();
    for (p, ws) in paths {
        let _ = writeln!(out, "{p}");
        for w in ws.keys() {
            let _ = writeln!(out, "\t0x{:x}", session_of(e, *w));
        }
    }
    out.push('\n');
    out
}

/// Apache's `ExpiryQueue.dump` body after its caller's prefix: `Sets (n)/(m):` then the buckets.
fn expiry_sets(out: &mut String, now: Now, buckets: &[(u64, Vec<String>)]) {
    let total: usize = buckets.iter().map(|(_, v)| v.len()).sum();
    let _ = writeln!(out, "Sets ({})/({}):", buckets.len(), total);
    for (at, items) in buckets {
        let _ = writeln!(out, "{} expire at {}:", items.len(), java_date(mono_to_wall(now, *at)));
        for i in items {
            let _ = writeln!(out, "\t{i}");
        }
    }
}

fn dump(ctx: &Context<'_>) -> String {
    let e = &*ctx.engine;
    let now = ctx.now;
    let mut out = String::from("SessionTracker dump:\nSession ");
    let sessions: Vec<(u64, Vec<String>)> = e
        .sessions
        .buckets()
        .iter()
        .map(|(at, ids)| (*at, ids.iter().map(|s| format!("0x{:x}", s.0)).collect()))
        .collect();
    expiry_sets(&mut out, now, &sessions);

    out.push_str("ephemeral nodes dump:\n");
    let mut owners: Vec<SessionId> = e.tree.ephemeral_sessions().map(|(s, _)| s).collect();
    owners.sort();
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", owners.len());
    for s in owners {
        let _ = writeln!(out, "0x{:x}:", s.0);
        for p in e.tree.ephemerals_of(s) {
            let _ = writeln!(out, "\t{p}");
        }
    }

    // Apache's connection expiry queue: a connection expires its session timeout (10 s without a
    // session) after it was last active, rounded up to the next 10 s.
    out.push_str("Connections dump:\nConnections ");
    let mut conns: std::collections::BTreeMap<u64, Vec<String>> = Default::default();
    for v in connections(e, ctx.requester) {
        let (touched, timeout, sid) = match v.conn {
            Some(c) => match c.session.and_then(|s| e.sessions.get(s)) {
                Some(s) => (c.stats.last_response_ms.max(ctx.start_mono_ms), s.timeout_ms.max(0) as u64, s.id.0),
                None => (now.mono_ms, SESSIONLESS_CNXN_TIMEOUT_MS, 0),
            },
            None => (now.mono_ms, SESSIONLESS_CNXN_TIMEOUT_MS, 0),
        };
        let at = ((touched + timeout) / SESSIONLESS_CNXN_TIMEOUT_MS + 1) * SESSIONLESS_CNXN_TIMEOUT_MS;
        conns.entry(at).or_default().push(format!("ip: {} sessionId: 0x{:x}", java_socket_addr(&v.remote), sid));
    }
    let conns: Vec<(u64, Vec<String>)> = conns.into_iter().collect();
    expiry_sets(&mut out, now, &conns);
    out
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{EngineConfig, Output};
    use crate::jute::Jute;
    use crate::jute::records::{ConnectRequest, CreateRequest, RequestHeader};
    use crate::watch::STANDARD;

    const T0: Now = Now { mono_ms: 1_000_000, wall_ms: 1_795_368_777_264 };

    struct Fixture {
        engine: Engine,
        config: ServerConfig,
        mask: i64,
        _dir: TempDir,
    }

    struct TempDir(PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn temp_dir(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "rzk-4lw-{}-{}-{}",
            tag,
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn fixture(tag: &str) -> Fixture {
        let dir = temp_dir(tag);
        let config = ServerConfig::default_standalone(dir.0.clone());
        let engine = Engine::new(EngineConfig::from_server_config(&config), T0);
        Fixture { engine, config, mask: DEFAULT_TRACE_MASK, _dir: dir }
    }

    fn addr(port: u16) -> SocketAddr {
        format!("127.0.0.1:{port}").parse().unwrap()
    }

    fn connect(e: &mut Engine, conn: u64, port: u16, now: Now) -> SessionId {
        e.open(conn, addr(port), now);
        let req = ConnectRequest { protocol_version: 0, last_zxid_seen: 0, time_out: 30000, session_id: 0, passwd: Some(vec![0; 16]), read_only: Some(false) };
        let out = e.connect(conn, &req.to_bytes(), now);
        assert!(matches!(out.last(), Some(Output::Send(c, _)) if *c == conn));
        e.conns[&conn].session.unwrap()
    }

    fn create_ephemeral(e: &mut Engine, conn: u64, xid: i32, path: &str, now: Now) {
        let mut f = RequestHeader { xid, op: 1 }.to_bytes();
        f.extend(CreateRequest { path: path.into(), data: Some(b"x".to_vec()), acl: crate::tree::acl::open_acl_unsafe(), flags: 1 }.to_bytes());
        let out = e.request(conn, &f, now);
        assert_eq!(out.len(), 1);
    }

    fn ctx<'a>(f: &'a mut Fixture, now: Now, requester: Option<SocketAddr>) -> Context<'a> {
        Context {
            engine: &mut f.engine,
            config: &f.config,
            now,
            start_mono_ms: T0.mono_ms,
            requester,
            listen_port: None,
            trace_mask: &mut f.mask,
            digest_log: &[],
            quorum: None,
            fsync: None,
        }
    }

    #[test]
    fn recognises_every_command() {
        for c in COMMANDS {
            let b: [u8; 4] = c.as_bytes().try_into().unwrap();
            assert_eq!(command_code(b), Some(c));
        }
        assert_eq!(command_code([0xff, 0xf4, 0xff, 0xfd]), Some(TELNET_CLOSE));
        assert_eq!(command_code([0, 0, 0, 45]), None);
        assert_eq!(command_code(*b"RUOK"), None);
        assert_eq!(extra_bytes("stmk"), 8);
        assert_eq!(extra_bytes("srvr"), 0);
        // The config module's list is the same set.
        assert_eq!(COMMANDS, crate::server::config::ALL_FOUR_LETTER_WORDS);
    }

    #[test]
    fn whitelist_rejection_text() {
        let mut f = fixture("wl");
        f.config.four_letter_whitelist = crate::server::config::FourLetterWhitelist::parse("ruok").0;
        assert_eq!(check_whitelist("ruok", &f.config), Ok(()));
        assert_eq!(check_whitelist("srvr", &f.config), Ok(()));
        assert_eq!(check_whitelist("mntr", &f.config), Err("mntr is not executed because it is not in the whitelist.\n".into()));
        assert!(check_whitelist(TELNET_CLOSE, &f.config).is_err());
        let mut c = ctx(&mut f, T0, Some(addr(40000)));
        assert_eq!(handle("mntr", None, &mut c), "mntr is not executed because it is not in the whitelist.\n");
        assert_eq!(handle("ruok", None, &mut c), "imok");
        // Both were counted as received packets, as in Apache.
        assert_eq!(c.engine.stats.packets_received, 2);
    }

    #[test]
    fn simple_commands() {
        let mut f = fixture("simple");
        let mut c = ctx(&mut f, T0, None);
        assert_eq!(run("ruok", &mut c), "imok");
        assert_eq!(run("isro", &mut c), "rw");
        assert_eq!(run("hash", &mut c), "");
        assert_eq!(run(TELNET_CLOSE, &mut c), "");
        assert_eq!(run("srst", &mut c), "Server stats reset.\n");
        assert_eq!(run("crst", &mut c), "Connection stats reset.\n");
        assert_eq!(not_serving("srvr", 306), format!("{NOT_SERVING}\n"));
        assert_eq!(not_serving("isro", 306), "null");
        assert_eq!(not_serving("ruok", 306), "imok");
        let log = [(0x80i64, 12345u64), (0x100, u64::MAX)];
        c.digest_log = &log;
        assert_eq!(run("hash", &mut c), "80: 12345\n100: -1\n");
    }

    #[test]
    fn trace_mask_get_and_set() {
        let mut f = fixture("mask");
        f.config.four_letter_whitelist = crate::server::config::FourLetterWhitelist::All;
        let mut c = ctx(&mut f, T0, None);
        assert_eq!(run("gtmk", &mut c), DEFAULT_TRACE_MASK.to_string());
        assert_eq!(handle("stmk", Some(0x1ff), &mut c), "511");
        assert_eq!(run("gtmk", &mut c), "511");
        assert_eq!(run_stmk(DEFAULT_TRACE_MASK, &mut c), "306");
        assert_eq!(run("gtmk", &mut c), "306");
        assert_eq!(handle("stmk", Some(-1), &mut c), "-1");
        let _ = c;
        assert_eq!(f.mask, -1);
        assert_eq!(not_serving("gtmk", f.mask), "-1");
        assert_eq!(not_serving("hash", 0), NOT_SERVING);
    }

    #[test]
    fn srvr_on_a_fresh_server() {
        let mut f = fixture("srvr");
        let mut c = ctx(&mut f, T0, Some(addr(59598)));
        assert_eq!(
            handle("srvr", None, &mut c),
            format!(
                "Zookeeper version: {ZK_VERSION}\nLatency min/avg/max: 0/0.0/0\nReceived: 1\nSent: 0\nConnections: 1\n\
                 Outstanding: 0\nZxid: 0x0\nMode: standalone\nNode count: 5\n"
            )
        );
    }

    #[test]
    fn stat_and_cons_list_connections() {
        let mut f = fixture("stat");
        let sid = connect(&mut f.engine, 1, 59502, T0);
        let later = Now { mono_ms: T0.mono_ms + 7, wall_ms: T0.wall_ms + 7 };
        create_ephemeral(&mut f.engine, 1, 1, "/e", later);
        f.engine.open(2, addr(59522), T0);
        // The requester registered with the engine too: shown once, as the 4lw connection.
        f.engine.open(3, addr(59598), T0);
        let mut c = ctx(&mut f, later, Some(addr(59598)));
        let stat = handle("stat", None, &mut c);
        let expected = format!(
            "Zookeeper version: {ZK_VERSION}\nClients:\n /127.0.0.1:59502[1](queued=0,recved=2,sent=2)\n\
             \x20/127.0.0.1:59522[1](queued=0,recved=0,sent=0)\n /127.0.0.1:59598[0](queued=0,recved=1,sent=0)\n\n\
             Latency min/avg/max: 0/0.0/0\nReceived: 3\nSent: 2\nConnections: 3\nOutstanding: 0\nZxid: 0x2\n\
             Mode: standalone\nNode count: 6\n"
        );
        assert_eq!(stat, expected);
        let cons = run("cons", &mut c);
        assert_eq!(
            cons,
            format!(
                " /127.0.0.1:59502[1](queued=0,recved=2,sent=2,sid=0x{:x},lop=CREA,est={},to=30000,lcxid=0x1,lzxid=0x2,lresp={},llat=0,minlat=0,avglat=0,maxlat=0)\n\
                 \x20/127.0.0.1:59522[1](queued=0,recved=0,sent=0)\n /127.0.0.1:59598[0](queued=0,recved=1,sent=0)\n\n",
                sid.0, T0.wall_ms, later.mono_ms
            )
        );
        // crst: Apache's reset values (no lcxid, lzxid -1, lop NA).
        assert_eq!(run("crst", &mut c), "Connection stats reset.\n");
        let cons = run("cons", &mut c);
        let first = cons.lines().next().unwrap();
        assert_eq!(
            first,
            format!(
                " /127.0.0.1:59502[1](queued=0,recved=0,sent=0,sid=0x{:x},lop=NA,est={},to=30000,lzxid=0xffffffffffffffff,lresp=0,llat=0,minlat=0,avglat=0,maxlat=0)",
                sid.0, T0.wall_ms
            )
        );
        // srst zeroes the server counters.
        run("srst", &mut c);
        let srvr = run("srvr", &mut c);
        assert!(srvr.contains("\nReceived: 0\nSent: 0\n"), "{srvr}");
    }

    #[test]
    fn mntr_keys_and_values() {
        let mut f = fixture("mntr");
        connect(&mut f.engine, 1, 50001, T0);
        create_ephemeral(&mut f.engine, 1, 1, "/eph", T0);
        f.engine.watches.data.add("/eph", 1, STANDARD);
        f.engine.watches.child.add("/", 1, STANDARD);
        let later = Now { mono_ms: T0.mono_ms + 1234, wall_ms: T0.wall_ms + 1234 };
        let mut c = ctx(&mut f, later, Some(addr(50002)));
        let out = run("mntr", &mut c);
        assert!(out.ends_with('\n'));
        let rows: Vec<(&str, &str)> = out.lines().map(|l| l.split_once('\t').unwrap()).collect();
        let get = |k: &str| rows.iter().find(|(kk, _)| *kk == k).map(|(_, v)| *v).unwrap_or_else(|| panic!("missing {k}"));
        assert_eq!(rows[0], ("zk_version", ZK_VERSION));
        assert_eq!(rows[1], ("zk_server_state", "standalone"));
        assert_eq!(get("zk_avg_latency"), "0.0");
        assert_eq!(get("zk_min_latency"), "0");
        assert_eq!(get("zk_max_latency"), "0");
        assert_eq!(get("zk_packets_received"), "2");
        assert_eq!(get("zk_packets_sent"), "2");
        assert_eq!(get("zk_num_alive_connections"), "2");
        assert_eq!(get("zk_outstanding_requests"), "0");
        assert_eq!(get("zk_znode_count"), "6");
        assert_eq!(get("zk_watch_count"), "2");
        assert_eq!(get("zk_ephemerals_count"), "1");
        assert_eq!(get("zk_approximate_data_size"), c.engine.tree.approximate_data_size().to_string());
        assert_eq!(get("zk_global_sessions"), "1");
        assert_eq!(get("zk_local_sessions"), "0");
        assert_eq!(get("zk_uptime"), "1234");
        assert_eq!(get("zk_auth_failed_count"), "0");
        assert_eq!(get("zk_connection_drop_probability"), "0.0");
        assert_eq!(get("zk_last_client_response_size"), c.engine.stats.response_sizes.last.to_string());
        assert!(c.engine.stats.response_sizes.last > 0);
        assert!(get("zk_open_file_descriptor_count").parse::<i64>().unwrap() > 0);
        get("zk_max_file_descriptor_count").parse::<i64>().unwrap();
        // Keys are unique.
        let mut keys: Vec<&str> = rows.iter().map(|r| r.0).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), rows.len());
    }

    #[test]
    fn watch_commands_read_the_data_table() {
        let mut f = fixture("wch");
        let s1 = connect(&mut f.engine, 1, 50001, T0);
        let s2 = connect(&mut f.engine, 2, 50002, T0);
        f.engine.watches.data.add("/cap", 1, STANDARD);
        f.engine.watches.data.add("/cap/none", 2, STANDARD);
        f.engine.watches.child.add("/cap", 2, STANDARD); // not shown by wch*
        let mut c = ctx(&mut f, T0, None);
        assert_eq!(run("wchs", &mut c), "2 connections watching 2 paths\nTotal watches:2\n");
        assert_eq!(run("wchc", &mut c), format!("0x{:x}\n\t/cap\n0x{:x}\n\t/cap/none\n\n", s1.0, s2.0));
        assert_eq!(run("wchp", &mut c), format!("/cap\n\t0x{:x}\n/cap/none\n\t0x{:x}\n\n", s1.0, s2.0));
        let mut e = fixture("wch-empty");
        let mut c = ctx(&mut e, T0, None);
        assert_eq!(run("wchs", &mut c), "0 connections watching 0 paths\nTotal watches:0\n");
        assert_eq!(run("wchc", &mut c), "\n");
        assert_eq!(run("wchp", &mut c), "\n");
    }

    #[test]
    fn dump_sessions_ephemerals_connections() {
        // Wall clock at a whole second so the bucket times are easy to read.
        let now = Now { mono_ms: 1_000_000, wall_ms: 1_795_368_780_000 };
        let mut f = fixture("dump");
        let s1 = connect(&mut f.engine, 1, 59502, now);
        create_ephemeral(&mut f.engine, 1, 1, "/cap", now);
        create_ephemeral(&mut f.engine, 1, 2, "/b", now);
        let mut c = ctx(&mut f, now, Some(addr(59548)));
        // Session: 30 s timeout, tick 2000 → bucket at mono 1_032_000 = wall +32 s.
        // Connection with session: (1_000_000 + 30_000) rounded up to 10 s → 1_040_000 (+40 s);
        // the 4lw connection: 1_000_000 + 10_000 → 1_020_000 (+20 s).
        let out = run("dump", &mut c);
        let expected = format!(
            "SessionTracker dump:\nSession Sets (1)/(1):\n1 expire at {}:\n\t0x{:x}\n\
             ephemeral nodes dump:\nSessions with Ephemerals (1):\n0x{:x}:\n\t/b\n\t/cap\n\
             Connections dump:\nConnections Sets (2)/(2):\n1 expire at {}:\n\tip: /127.0.0.1:59548 sessionId: 0x0\n\
             1 expire at {}:\n\tip: /127.0.0.1:59502 sessionId: 0x{:x}\n",
            java_date(now.wall_ms + 32_000),
            s1.0,
            s1.0,
            java_date(now.wall_ms + 20_000),
            java_date(now.wall_ms + 40_000),
            s1.0
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn conf_and_dirs() {
        let mut f = fixture("conf");
        let dir = f.config.data_dir.clone();
        std::fs::create_dir_all(dir.join("version-2")).unwrap();
        std::fs::write(dir.join("version-2/log.1"), vec![0u8; 1000]).unwrap();
        std::fs::write(dir.join("version-2/snapshot.0"), vec![0u8; 24]).unwrap();
        std::fs::write(dir.join("myid"), b"1").unwrap(); // outside version-2: not counted
        let mut c = ctx(&mut f, T0, None);
        assert_eq!(run("dirs", &mut c), "datadir_size: 1024\nlogdir_size: 1024\n");
        let v2 = dir.join("version-2").display().to_string();
        assert_eq!(
            run("conf", &mut c),
            format!(
                "clientPort=2181\nsecureClientPort=-1\ndataDir={v2}\ndataDirSize=1024\ndataLogDir={v2}\ndataLogSize=1024\n\
                 tickTime=2000\nmaxClientCnxns=60\nminSessionTimeout=4000\nmaxSessionTimeout=40000\n\
                 clientPortListenBacklog=-1\nserverId=0\n"
            )
        );
        c.listen_port = Some(12481);
        assert!(run("conf", &mut c).starts_with("clientPort=12481\n"));
        // Missing directories count as 0.
        let mut g = fixture("conf-missing");
        let missing = g.config.data_dir.join("nope");
        g.config.data_dir = missing.clone();
        g.config.data_log_dir = missing;
        let mut c = ctx(&mut g, T0, None);
        assert_eq!(run("dirs", &mut c), "datadir_size: 0\nlogdir_size: 0\n");
    }

    #[test]
    fn envi_has_apaches_keys_in_order() {
        let out = envi();
        let keys: Vec<&str> = out.lines().skip(1).map(|l| l.split_once('=').unwrap().0).collect();
        assert!(out.starts_with("Environment:\n"));
        assert!(out.ends_with('\n'));
        assert_eq!(
            keys,
            [
                "zookeeper.version", "host.name", "java.version", "java.vendor", "java.home", "java.class.path",
                "java.library.path", "java.io.tmpdir", "java.compiler", "os.name", "os.arch", "os.version", "user.name",
                "user.home", "user.dir", "os.memory.free", "os.memory.max", "os.memory.total"
            ]
        );
        assert!(out.contains(&format!("\nzookeeper.version={ZK_VERSION}\n")));
        assert!(out.contains("\njava.compiler=<NA>\n"));
        if cfg!(target_os = "linux") {
            assert!(out.contains("\nos.name=Linux\n"), "{out}");
            let total = out.lines().find(|l| l.starts_with("os.memory.total=")).unwrap();
            assert!(total.ends_with("MB"), "{total}");
        }
    }

    #[test]
    fn formatting_helpers() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(avg_latency(37, 12)), "3.0833");
        assert_eq!(java_double(avg_latency(4055, 1000)), "4.055");
        assert_eq!(java_double(avg_latency(5, 1)), "5.0");
        assert_eq!(java_double(avg_latency(1, 32)), "0.0313"); // HALF_UP
        assert_eq!(java_double(avg_latency(1, 10_000)), "1.0E-4");
        assert_eq!(java_double(12_345_678.0), "1.2345678E7");
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_795_368_780_000), "Sun Nov 22 17:33:00 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
        assert_eq!(java_socket_addr(&addr(59502)), "/127.0.0.1:59502");
        assert_eq!(java_socket_addr(&"[::1]:2181".parse().unwrap()), "/[0:0:0:0:0:0:0:1]:2181");
        assert_eq!(java_socket_addr(&"[::ffff:10.0.0.1]:5".parse().unwrap()), "/10.0.0.1:5");
    }
}

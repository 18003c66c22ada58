//! The HTTP AdminServer: Apache ZooKeeper 3.8's `/commands` API (reference §4.4), plus `/ready`
//! for orchestrators.
//!
//! - `GET <admin.commandURL>` (default `/commands`): an HTML list of the commands, one
//!   `<a href="/commands/NAME">NAME</a>\n<br/>\n` per primary name, sorted.
//! - `GET <admin.commandURL>/<name or alias>`: `200`, `application/json`, Jackson's pretty print
//!   (2-space indent, `" : "`, `[ a, b ]`, `{ }`), always with `"command"` (the primary name) and
//!   `"error"` keys. An unknown name is still `200` with `"error" : "Unknown command: <name>"`.
//!   No 4lw whitelist applies and no auth is needed, as in 3.8.
//! - `GET /ready`: `200 ready` while the server is serving (the engine answers within a second),
//!   `503` otherwise. Not an Apache endpoint.
//!
//! Apache starts the AdminServer on `admin.serverAddress:admin.serverPort` (0.0.0.0:8080) unless
//! `admin.enableServer=false`; if the port cannot be bound it logs a warning and serves clients
//! anyway. rzk does the same ([`bind`]).
//!
//! The JSON is built by [`command`], which is pure apart from reading the data directories and
//! `/proc` (like the four-letter words it reuses), so it can be tested without sockets.

use super::four_letter::{self, absolute, dir_size, java_double, Context};
use super::Shared;
use crate::engine::{Conn, Engine, Now};
use crate::server::config::ServerConfig;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

// ---------------------------------------------------------------------------------------------
// JSON with Jackson's DefaultPrettyPrinter layout

/// A JSON value; objects keep their insertion order (Apache's maps are LinkedHashMaps where the
/// order is stable).
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    /// Printed as Java's `Double.toString` (`0.0`, `2.625`, `1.0E-4`).
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub fn obj() -> Json {
        Json::Obj(Vec::new())
    }

    /// Appends `key: value` to an object (no-op on other values).
    pub fn put(&mut self, key: &str, value: impl Into<Json>) -> &mut Json {
        if let Json::Obj(v) = self {
            v.push((key.to_string(), value.into()));
        }
        self
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(v) => v.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Jackson's `writerWithDefaultPrettyPrinter()` output (no trailing newline).
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, nesting: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Json::Float(f) => out.push_str(&java_double(*f)),
            Json::Str(s) => write_json_string(out, s),
            // Arrays are "inline" in Jackson's printer: they do not add an indentation level.
            Json::Arr(items) => {
                if items.is_empty() {
                    out.push_str("[ ]");
                    return;
                }
                out.push_str("[ ");
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write(out, nesting);
                }
                out.push_str(" ]");
            }
            Json::Obj(fields) => {
                if fields.is_empty() {
                    out.push_str("{ }");
                    return;
                }
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('\n');
                    indent(out, nesting + 1);
                    write_json_string(out, k);
                    out.push_str(" : ");
                    v.write(out, nesting + 1);
                }
                out.push('\n');
                indent(out, nesting);
                out.push('}');
            }
        }
    }
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

/// Jackson's string escaping: `"`, `\` and control characters; everything else as is (UTF-8).
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl From<bool> for Json {
    fn from(v: bool) -> Json {
        Json::Bool(v)
    }
}
impl From<i64> for Json {
    fn from(v: i64) -> Json {
        Json::Int(v)
    }
}
impl From<i32> for Json {
    fn from(v: i32) -> Json {
        Json::Int(v as i64)
    }
}
impl From<u32> for Json {
    fn from(v: u32) -> Json {
        Json::Int(v as i64)
    }
}
impl From<u64> for Json {
    fn from(v: u64) -> Json {
        Json::Int(v.min(i64::MAX as u64) as i64)
    }
}
impl From<usize> for Json {
    fn from(v: usize) -> Json {
        Json::Int(v.min(i64::MAX as usize) as i64)
    }
}
impl From<f64> for Json {
    fn from(v: f64) -> Json {
        Json::Float(v)
    }
}
impl From<&str> for Json {
    fn from(v: &str) -> Json {
        Json::Str(v.to_string())
    }
}
impl From<String> for Json {
    fn from(v: String) -> Json {
        Json::Str(v)
    }
}
impl<T: Into<Json>> From<Vec<T>> for Json {
    fn from(v: Vec<T>) -> Json {
        Json::Arr(v.into_iter().map(Into::into).collect())
    }
}

// ---------------------------------------------------------------------------------------------
// Commands

/// Apache 3.8.0's AdminServer commands: (primary name, aliases). The HTML list shows the
/// primary names in this (sorted) order.
pub const COMMANDS: &[(&str, &[&str])] = &[
    ("configuration", &["conf", "config"]),
    ("connection_stat_reset", &["crst"]),
    ("connections", &["cons"]),
    ("dirs", &[]),
    ("dump", &[]),
    ("environment", &["env", "envi"]),
    ("get_trace_mask", &["gtmk"]),
    ("hash", &[]),
    ("initial_configuration", &["icfg"]),
    ("is_read_only", &["isro"]),
    ("last_snapshot", &["lsnp"]),
    ("leader", &["lead"]),
    ("monitor", &["mntr"]),
    ("observer_connection_stat_reset", &["orst"]),
    ("observers", &["obsr"]),
    ("ruok", &[]),
    ("server_stats", &["srvr"]),
    ("set_trace_mask", &["stmk"]),
    ("stat_reset", &["srst"]),
    ("stats", &["stat"]),
    ("system_properties", &["sysp"]),
    ("voting_view", &[]),
    ("watch_summary", &["wchs"]),
    ("watches", &["wchc"]),
    ("watches_by_path", &["wchp"]),
    ("zabstate", &[]),
];

/// The primary name for a command name or alias.
pub fn primary_name(name: &str) -> Option<&'static str> {
    COMMANDS.iter().find(|(p, aliases)| *p == name || aliases.contains(&name)).map(|(p, _)| *p)
}

/// `GET /commands`: Apache's HTML list.
pub fn command_list_html(command_url: &str) -> String {
    let base = command_url.trim_end_matches('/');
    let mut out = String::new();
    for (name, _) in COMMANDS {
        let _ = write!(out, "<a href=\"{base}/{name}\">{name}</a>\n<br/>\n");
    }
    out
}

/// Everything a command reads besides the engine.
pub struct AdminContext<'a> {
    pub config: &'a ServerConfig,
    pub now: Now,
    /// Monotonic ms when the server started (uptime).
    pub start_mono_ms: u64,
    pub listen_port: Option<u16>,
    /// The zoo.cfg text the server was started with (`initial_configuration`).
    pub initial_config: &'a str,
    /// The server's place in its ensemble (None: standalone).
    pub quorum: Option<super::four_letter::QuorumInfo>,
    /// Txn log syncs so far (the monitor command's fsynctime).
    pub fsync: Option<super::FsyncStats>,
}

/// Runs a command by name or alias and returns its full JSON response (with `command` and
/// `error`). `query` is the URL's query string (`set_trace_mask?traceMask=N`).
pub fn command(name: &str, query: Option<&str>, engine: &mut Engine, trace_mask: &mut i64, ctx: &AdminContext<'_>) -> Json {
    let Some(primary) = primary_name(name) else {
        let mut r = Json::obj();
        r.put("command", name).put("error", format!("Unknown command: {name}"));
        return r;
    };
    let mut data = Json::obj();
    let mut fctx = Context {
        engine,
        config: ctx.config,
        now: ctx.now,
        start_mono_ms: ctx.start_mono_ms,
        requester: None,
        listen_port: ctx.listen_port,
        trace_mask,
        digest_log: &[],
        quorum: ctx.quorum,
        fsync: ctx.fsync.clone(),
    };
    match primary {
        "configuration" => configuration(&mut data, ctx),
        "connection_stat_reset" => {
            four_letter::run("crst", &mut fctx);
        }
        "connections" => {
            let e = &*fctx.engine;
            data.put("connections", e.conns.values().map(|c| conn_json(e, c, false)).collect::<Vec<_>>());
            data.put("secure_connections", Json::Arr(vec![]));
        }
        "dirs" => {
            data.put("datadir_size", dir_size(&ctx.config.snap_dir()));
            data.put("logdir_size", dir_size(&ctx.config.txn_log_dir()));
        }
        "dump" => dump(&mut data, fctx.engine),
        "environment" => {
            let text = four_letter::run("envi", &mut fctx);
            for line in text.lines().skip(1) {
                if let Some((k, v)) = line.split_once('=') {
                    data.put(k, v);
                }
            }
        }
        "get_trace_mask" => {
            data.put("tracemask", *fctx.trace_mask);
        }
        // rzk keeps no digest log (Apache: one entry per 128 zxids); the list is empty.
        "hash" => {
            data.put("digests", Json::Arr(vec![]));
        }
        "initial_configuration" => {
            data.put("initial_configuration", ctx.initial_config);
        }
        "is_read_only" => {
            data.put("read_only", false);
        }
        "last_snapshot" => {
            let (zxid, ts) = last_snapshot(&ctx.config.snap_dir()).unwrap_or((-1, -1));
            data.put("zxid", format!("{:x}", zxid));
            data.put("timestamp", ts);
        }
        "leader" => {
            // A standalone server has no leader (Apache puts the error in the data, so it comes
            // before "command").
            data.put("error", "server is not initialized");
        }
        "monitor" => monitor(&mut data, &mut fctx),
        "observer_connection_stat_reset" => {}
        "observers" => {
            data.put("synced_observers", 0i64);
            data.put("observers", Json::Arr(vec![]));
        }
        "ruok" => {}
        "server_stats" => server_stats(&mut data, &mut fctx, ctx),
        "set_trace_mask" => {
            match query_param(query, "traceMask").and_then(|v| v.trim().parse::<i64>().ok()) {
                Some(mask) => {
                    four_letter::run_stmk(mask, &mut fctx);
                    data.put("tracemask", mask);
                }
                None => {
                    data.put("error", "setTraceMask requires long traceMask argument");
                }
            }
        }
        "stat_reset" => {
            four_letter::run("srst", &mut fctx);
        }
        "stats" => {
            server_stats(&mut data, &mut fctx, ctx);
            let e = &*fctx.engine;
            data.put("connections", e.conns.values().map(|c| conn_json(e, c, true)).collect::<Vec<_>>());
            data.put("secure_connections", Json::Arr(vec![]));
        }
        "system_properties" => system_properties(&mut data, ctx.config),
        "voting_view" => {
            data.put("current_config", Json::obj());
        }
        "watch_summary" => {
            let t = &fctx.engine.watches.data;
            data.put("num_connections", t.watcher_count());
            data.put("num_paths", t.path_count());
            data.put("num_total_watches", t.watch_count());
        }
        "watches" => {
            let e = &*fctx.engine;
            let mut by_session: BTreeMap<i64, Vec<String>> = BTreeMap::new();
            for (w, paths) in e.watches.data.by_watcher() {
                let v = by_session.entry(session_of(e, *w)).or_default();
                v.extend(paths.keys().cloned());
            }
            let mut m = Json::obj();
            for (sid, mut paths) in by_session {
                paths.sort();
                paths.dedup();
                m.put(&sid.to_string(), paths);
            }
            data.put("session_id_to_watched_paths", m);
        }
        "watches_by_path" => {
            let e = &*fctx.engine;
            let mut paths: Vec<_> = e.watches.data.by_path().iter().collect();
            paths.sort_by(|a, b| a.0.cmp(b.0));
            let mut m = Json::obj();
            for (p, ws) in paths {
                let mut sids: Vec<i64> = ws.keys().map(|w| session_of(e, *w)).collect();
                sids.sort();
                sids.dedup();
                m.put(p, sids);
            }
            data.put("path_to_session_ids", m);
        }
        "zabstate" => {
            data.put("voting", false);
            data.put("zabstate", "");
        }
        _ => unreachable!("every primary name is handled"),
    }
    finish(data, primary)
}

/// Apache's `CommandResponse.toMap`: the command's data, then `command`, then `error` (null)
/// unless the command already set one.
fn finish(mut data: Json, primary: &str) -> Json {
    let has_error = data.get("error").is_some();
    data.put("command", primary);
    if !has_error {
        data.put("error", Json::Null);
    }
    data
}

fn query_param<'q>(query: Option<&'q str>, key: &str) -> Option<&'q str> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then_some(v)
    })
}

fn session_of(engine: &Engine, watcher: u64) -> i64 {
    engine.conns.get(&watcher).and_then(|c| c.session).map_or(0, |s| s.0)
}


fn configuration(data: &mut Json, ctx: &AdminContext<'_>) {
    let c = ctx.config;
    let port: i64 = ctx.listen_port.or(c.client_port).map_or(-1, i64::from);
    data.put("client_port", port);
    data.put("data_dir", absolute(&c.snap_dir()).display().to_string());
    data.put("data_log_dir", absolute(&c.txn_log_dir()).display().to_string());
    data.put("tick_time", c.tick_time_ms);
    data.put("max_client_cnxns", c.max_client_cnxns);
    data.put("min_session_timeout", c.min_session_timeout_ms);
    data.put("max_session_timeout", c.max_session_timeout_ms);
    data.put("server_id", c.server_id);
    data.put("client_port_listen_backlog", c.client_port_listen_backlog);
}

/// Java's `InetAddress.getHostAddress() + ":" + port` (no brackets, no leading slash).
fn host_port(a: &SocketAddr) -> String {
    let ip = match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        ip => ip,
    };
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{}", a.port()),
        IpAddr::V6(v6) => {
            let groups: Vec<String> = v6.segments().iter().map(|s| format!("{s:x}")).collect();
            format!("{}:{}", groups.join(":"), a.port())
        }
    }
}

/// Apache's `ServerCnxn.getConnectionInfo(brief)`.
fn conn_json(engine: &Engine, c: &Conn, brief: bool) -> Json {
    let s = &c.stats;
    let mut j = Json::obj();
    j.put("remote_socket_address", host_port(&c.remote));
    j.put("interest_ops", 1i64);
    j.put("outstanding_requests", c.queued());
    j.put("packets_received", s.received);
    j.put("packets_sent", s.sent);
    if !brief {
        let sid = c.session.map_or(0, |s| s.0);
        let timeout = c.session.and_then(|s| engine.sessions.get(s)).map_or(0, |x| x.timeout_ms);
        let avg = s.total_latency.checked_div(s.count).unwrap_or(0);
        j.put("session_id", sid);
        j.put("last_operation", s.last_op.unwrap_or("NA"));
        j.put("established", s.established_wall_ms);
        j.put("session_timeout", timeout);
        j.put("last_cxid", s.last_cxid);
        j.put("last_zxid", s.last_zxid);
        j.put("last_response_time", s.last_response_ms);
        j.put("last_latency", 0i64);
        j.put("min_latency", if s.count == 0 { 0 } else { s.min_latency });
        j.put("avg_latency", avg);
        j.put("max_latency", s.max_latency);
    }
    j
}

fn dump(data: &mut Json, e: &Engine) {
    let mut expiry = Json::obj();
    for (at, ids) in e.sessions.buckets() {
        expiry.put(&at.to_string(), ids.iter().map(|s| s.0).collect::<Vec<i64>>());
    }
    data.put("expiry_time_to_session_ids", expiry);
    let mut owners: Vec<_> = e.tree.ephemeral_sessions().map(|(s, _)| s).collect();
    owners.sort();
    let mut eph = Json::obj();
    for s in owners {
        eph.put(&s.0.to_string(), e.tree.ephemerals_of(s));
    }
    data.put("session_id_to_ephemeral_paths", eph);
}

/// Apache's average latency: HALF_UP to 4 decimals, 0.0 without data.
fn avg_latency(total: u64, count: u64) -> f64 {
    if count == 0 {
        return 0.0;
    }
    let q = ((total as u128) * 20_000 + count as u128) / (2 * count as u128);
    q as f64 / 10_000.0
}

/// `server_stats` (and the first part of `stats`).
fn server_stats(data: &mut Json, f: &mut Context<'_>, ctx: &AdminContext<'_>) {
    let e = &*f.engine;
    let st = &e.stats;
    let (min, avg, max) = if st.latency_count == 0 {
        (0, 0.0, 0)
    } else {
        (st.min_latency, avg_latency(st.total_latency, st.latency_count), st.max_latency)
    };
    let mut buffers = Json::obj();
    let sizes = st.response_sizes;
    buffers.put("last_buffer_size", sizes.last).put("min_buffer_size", sizes.min).put("max_buffer_size", sizes.max);
    let mut s = Json::obj();
    s.put("packets_sent", st.packets_sent);
    s.put("packets_received", st.packets_received);
    s.put("fsync_threshold_exceed_count", 0i64);
    s.put("client_response_stats", buffers.clone());
    s.put("data_dir_size", dir_size(&ctx.config.snap_dir()));
    s.put("log_dir_size", dir_size(&ctx.config.txn_log_dir()));
    s.put("provider_null", false);
    s.put("server_state", ctx.quorum.map_or("standalone", |q| q.mode));
    s.put("last_processed_zxid", e.tree.last_processed_zxid);
    s.put("outstanding_requests", e.outstanding_requests());
    s.put("avg_latency", avg);
    s.put("max_latency", max);
    s.put("min_latency", min);
    s.put("num_alive_client_connections", e.conns.len());
    s.put("uptime", ctx.now.mono_ms.saturating_sub(ctx.start_mono_ms));
    s.put("auth_failed_count", st.auth_failed);
    s.put("non_mtlsremote_conn_count", 0i64);
    s.put("non_mtlslocal_conn_count", 0i64);
    data.put("version", four_letter::ZK_VERSION);
    data.put("read_only", false);
    data.put("server_stats", s);
    data.put("client_response", buffers);
    data.put("node_count", e.tree.reported_node_count());
}

/// A `mntr` value as Apache's monitor command types it: longs, doubles, else strings.
fn typed(v: &str) -> Json {
    if let Ok(i) = v.parse::<i64>() {
        return Json::Int(i);
    }
    let numeric = v.bytes().next().is_some_and(|b| b.is_ascii_digit() || b == b'-');
    match v.parse::<f64>() {
        Ok(f) if numeric => Json::Float(f),
        _ => Json::Str(v.to_string()),
    }
}

/// `monitor`: the `mntr` rows without the `zk_` prefix, typed.
fn monitor(data: &mut Json, f: &mut Context<'_>) {
    let text = four_letter::run("mntr", f);
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('\t') {
            data.put(k.strip_prefix("zk_").unwrap_or(k), typed(v));
        }
    }
}

/// The newest `snapshot.<hex zxid>[.gz|.snappy]` in `dir`: (zxid, mtime in seconds).
pub fn last_snapshot(dir: &Path) -> Option<(i64, i64)> {
    let mut best: Option<(i64, i64)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix("snapshot.") else { continue };
        let hex = rest.split('.').next().unwrap_or("");
        let Ok(zxid) = i64::from_str_radix(hex, 16) else { continue };
        let ts = entry
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        if best.is_none_or(|(z, _)| zxid > z) {
            best = Some((zxid, ts));
        }
    }
    best
}

/// Keys Apache's `QuorumPeerConfig` reads itself; every other zoo.cfg key becomes the JVM system
/// property `zookeeper.<key>`, which is what `system_properties` shows.
const CORE_KEYS: &[&str] = &[
    "dataDir", "dataLogDir", "clientPort", "localSessionsEnabled", "localSessionsUpgradingEnabled",
    "clientPortAddress", "secureClientPort", "secureClientPortAddress", "clientPortListenBacklog",
    "tickTime", "maxClientCnxns", "minSessionTimeout", "maxSessionTimeout", "initLimit", "syncLimit",
    "connectToLearnerMasterLimit", "electionAlg", "quorumListenOnAllIPs", "peerType", "syncEnabled",
    "dynamicConfigFile", "autopurge.snapRetainCount", "autopurge.purgeInterval", "standaloneEnabled",
    "reconfigEnabled", "sslQuorum", "portUnification", "sslQuorumReloadCertFiles",
    "client.portUnification", "observerMasterPort", "electionPortBindRetry",
    "multiAddress.enabled", "multiAddress.reachabilityCheckEnabled",
    "multiAddress.reachabilityCheckTimeoutMs",
];

/// `system_properties`: there is no JVM; rzk shows the `os.*`/`user.*` facts Apache would, and
/// the `zookeeper.*` properties its zoo.cfg would have set, sorted by name.
fn system_properties(data: &mut Json, config: &ServerConfig) {
    let mut props: BTreeMap<String, String> = BTreeMap::new();
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    props.insert("os.arch".into(), if std::env::consts::ARCH == "x86_64" { "amd64".into() } else { std::env::consts::ARCH.into() });
    props.insert("os.name".into(), read("/proc/sys/kernel/ostype").unwrap_or_else(|| std::env::consts::OS.into()));
    if let Some(v) = read("/proc/sys/kernel/osrelease") {
        props.insert("os.version".into(), v);
    }
    if let Ok(d) = std::env::current_dir() {
        props.insert("user.dir".into(), d.display().to_string());
    }
    if let Ok(h) = std::env::var("HOME") {
        props.insert("user.home".into(), h);
    }
    if let Ok(u) = std::env::var("USER") {
        props.insert("user.name".into(), u);
    }
    for (k, v) in &config.raw {
        let bare = k.strip_prefix("zookeeper.").unwrap_or(k);
        let core = CORE_KEYS.contains(&bare)
            || ["server.", "group.", "weight.", "metricsProvider.", "quorum.auth."].iter().any(|p| bare.starts_with(p));
        if !core {
            props.insert(format!("zookeeper.{bare}"), v.clone());
        }
    }
    for (k, v) in props {
        data.put(&k, v);
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

pub(crate) type HttpResponse = Response<Full<Bytes>>;

pub(crate) fn response(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> HttpResponse {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// Serves HTTP/1.1 on `listener` until the task is dropped; `handler` gets the method, path and
/// query of each request. `idle` closes connections that send no request head for that long.
pub(crate) async fn serve_http<F>(listener: TcpListener, idle: Duration, handler: F)
where
    F: Fn(&Method, &str, Option<&str>) -> HttpResponse + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    loop {
        let sock = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("HTTP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let h = handler.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let r = h(req.method(), req.uri().path(), req.uri().query());
                async move { Ok::<_, std::convert::Infallible>(r) }
            });
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(hyper_util::rt::TokioTimer::new());
            if !idle.is_zero() {
                b.header_read_timeout(idle);
            }
            let _ = b.serve_connection(hyper_util::rt::TokioIo::new(sock), svc).await;
        });
    }
}

/// Binds `host:port` for one of the HTTP endpoints.
pub(crate) async fn bind_http(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    TcpListener::bind(&addr).await.map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// The AdminServer's listener: `None` when `admin.enableServer=false`, or (with a warning, as
/// Apache's "Problem starting AdminServer") when the address cannot be bound.
pub async fn bind(config: &ServerConfig) -> Option<TcpListener> {
    if !config.admin_enable_server {
        return None;
    }
    match bind_http(&config.admin_server_address, config.admin_server_port).await {
        Ok(l) => {
            if let Ok(a) = l.local_addr() {
                tracing::info!("AdminServer on http://{a}{} (and /ready)", config.admin_command_url);
            }
            Some(l)
        }
        Err(e) => {
            tracing::warn!("Problem starting AdminServer: {e}; serving clients without it (set admin.serverPort, or admin.enableServer=false)");
            None
        }
    }
}

/// The zoo.cfg text for `initial_configuration`: the file the config came from, else the
/// built-in default.
fn initial_config_text(config: &ServerConfig) -> String {
    std::fs::read_to_string(&config.source_name).unwrap_or_else(|_| crate::server::config::DEFAULT_CONFIG.to_string())
}

/// Serves the AdminServer on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let initial = initial_config_text(&shared.config);
    let idle = Duration::from_millis(shared.config.admin_idle_timeout_ms as u64);
    serve_http(listener, idle, move |method, path, query| handle(&shared, &initial, method, path, query)).await
}

/// One AdminServer request.
fn handle(shared: &Shared, initial: &str, method: &Method, path: &str, query: Option<&str>) -> HttpResponse {
    if method != Method::GET && method != Method::HEAD {
        return response(StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "only GET is supported\n");
    }
    if path == "/ready" {
        return ready(shared);
    }
    let base = shared.config.admin_command_url.trim_end_matches('/');
    let Some(rest) = path.strip_prefix(base) else {
        return response(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found\n");
    };
    if rest.is_empty() || rest == "/" {
        return response(StatusCode::OK, "text/html; charset=utf-8", command_list_html(base));
    }
    let Some(name) = rest.strip_prefix('/') else {
        return response(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found\n");
    };
    let name = name.trim_end_matches('/');
    let json = {
        let mut st = shared.lock();
        let st = &mut *st;
        let ctx = AdminContext {
            config: &shared.config,
            now: shared.now(),
            start_mono_ms: shared.start_wall_ms() as u64,
            listen_port: shared.listen_port,
            initial_config: initial,
            quorum: st.quorum.as_ref().map(|q| q.info()),
            fsync: Some(shared.fsyncs.lock().clone()),
        };
        if ctx.quorum.is_some_and(|q| !q.serving) {
            // As Apache's AdminServer while the peer is LOOKING.
            let mut r = Json::obj();
            r.put("command", name).put("error", "This ZooKeeper instance is not currently serving requests");
            r
        } else {
            command(name, query, &mut st.engine, &mut st.trace_mask, &ctx)
        }
    };
    response(StatusCode::OK, "application/json", json.pretty())
}

/// `/ready`: 200 when the engine answers within a second (the server is up and not wedged).
fn ready(shared: &Shared) -> HttpResponse {
    match shared.try_lock_for(Duration::from_secs(1)) {
        Some(st) if st.quorum.as_ref().is_some_and(|q| !q.serving) => {
            response(StatusCode::SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", "not ready: no established leader\n")
        }
        Some(_) => response(StatusCode::OK, "text/plain; charset=utf-8", "ready\n"),
        None => response(StatusCode::SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", "not ready: the engine is busy\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;

    const T0: Now = Now { mono_ms: 1_000_000, wall_ms: 1_795_368_777_264 };

    fn with_engine<R>(f: impl FnOnce(&mut Engine, &mut i64, &AdminContext<'_>) -> R) -> R {
        let dir = std::env::temp_dir().join(format!("rzk-admin-{}-{:?}", std::process::id(), std::thread::current().id()));
        let config = ServerConfig::default_standalone(dir.clone());
        let mut engine = Engine::new(EngineConfig::from_server_config(&config), T0);
        let mut mask = four_letter::DEFAULT_TRACE_MASK;
        let ctx = AdminContext { config: &config, now: T0, start_mono_ms: T0.mono_ms, listen_port: Some(2181), initial_config: "tickTime=2000\n", quorum: None, fsync: None };
        let r = f(&mut engine, &mut mask, &ctx);
        let _ = std::fs::remove_dir_all(dir);
        r
    }

    #[test]
    fn jackson_layout() {
        let mut o = Json::obj();
        o.put("a", 1i64).put("s", "x\"y\n").put("e", Json::Arr(vec![])).put("m", Json::obj());
        let mut inner = Json::obj();
        inner.put("k", 2.625);
        o.put("arr", Json::Arr(vec![inner.clone(), inner]));
        o.put("nums", vec![1i64, 2]);
        o.put("null", Json::Null);
        assert_eq!(
            o.pretty(),
            "{\n  \"a\" : 1,\n  \"s\" : \"x\\\"y\\n\",\n  \"e\" : [ ],\n  \"m\" : { },\n  \"arr\" : [ {\n    \"k\" : 2.625\n  }, {\n    \"k\" : 2.625\n  } ],\n  \"nums\" : [ 1, 2 ],\n  \"null\" : null\n}"
        );
    }

    #[test]
    fn ruok_unknown_and_error_order() {
        with_engine(|e, m, ctx| {
            assert_eq!(command("ruok", None, e, m, ctx).pretty(), "{\n  \"command\" : \"ruok\",\n  \"error\" : null\n}");
            assert_eq!(
                command("nosuch", None, e, m, ctx).pretty(),
                "{\n  \"command\" : \"nosuch\",\n  \"error\" : \"Unknown command: nosuch\"\n}"
            );
            assert_eq!(
                command("lead", None, e, m, ctx).pretty(),
                "{\n  \"error\" : \"server is not initialized\",\n  \"command\" : \"leader\"\n}"
            );
            let st = command("stmk", None, e, m, ctx);
            assert_eq!(st.get("error"), Some(&Json::Str("setTraceMask requires long traceMask argument".into())));
            let st = command("set_trace_mask", Some("traceMask=511"), e, m, ctx);
            assert_eq!(st.get("tracemask"), Some(&Json::Int(511)));
            assert_eq!(command("gtmk", None, e, m, ctx).get("tracemask"), Some(&Json::Int(511)));
        });
    }

    #[test]
    fn aliases_resolve_to_primary_names() {
        assert_eq!(primary_name("srvr"), Some("server_stats"));
        assert_eq!(primary_name("conf"), Some("configuration"));
        assert_eq!(primary_name("config"), Some("configuration"));
        assert_eq!(primary_name("wchs"), Some("watch_summary"));
        assert_eq!(primary_name("envi"), Some("environment"));
        assert_eq!(primary_name("nosuch"), None);
        let html = command_list_html("/commands");
        assert!(html.starts_with("<a href=\"/commands/configuration\">configuration</a>\n<br/>\n"));
        assert_eq!(html.matches("<br/>").count(), COMMANDS.len());
    }

    #[test]
    fn server_stats_and_monitor_shapes() {
        with_engine(|e, m, ctx| {
            let s = command("srvr", None, e, m, ctx);
            assert_eq!(s.get("command"), Some(&Json::Str("server_stats".into())));
            assert_eq!(s.get("node_count"), Some(&Json::Int(5)));
            let inner = s.get("server_stats").unwrap();
            assert_eq!(inner.get("server_state"), Some(&Json::Str("standalone".into())));
            assert_eq!(inner.get("avg_latency"), Some(&Json::Float(0.0)));
            let mon = command("mntr", None, e, m, ctx);
            assert_eq!(mon.get("znode_count"), Some(&Json::Int(5)));
            assert_eq!(mon.get("server_state"), Some(&Json::Str("standalone".into())));
            assert_eq!(mon.get("avg_latency"), Some(&Json::Float(0.0)));
            assert!(matches!(mon.get("version"), Some(Json::Str(_))));
            let conf = command("conf", None, e, m, ctx);
            assert_eq!(conf.get("client_port"), Some(&Json::Int(2181)));
            assert_eq!(conf.get("server_id"), Some(&Json::Int(0)));
            let snap = command("lsnp", None, e, m, ctx);
            assert_eq!(snap.get("zxid"), Some(&Json::Str("ffffffffffffffff".into())));
            assert_eq!(command("icfg", None, e, m, ctx).get("initial_configuration"), Some(&Json::Str("tickTime=2000\n".into())));
            let d = command("dump", None, e, m, ctx).pretty();
            assert!(d.contains("\"expiry_time_to_session_ids\" : { },\n  \"session_id_to_ephemeral_paths\" : { }"), "{d}");
        });
    }

    #[test]
    fn typed_values() {
        assert_eq!(typed("12"), Json::Int(12));
        assert_eq!(typed("-1"), Json::Int(-1));
        assert_eq!(typed("0.0"), Json::Float(0.0));
        assert_eq!(typed("1.0E-4"), Json::Float(1.0e-4));
        assert_eq!(typed("standalone"), Json::Str("standalone".into()));
        assert_eq!(typed("inf"), Json::Str("inf".into()));
        assert_eq!(typed("3.9.3-rzk-0.1.0, built on 1970-01-01 00:00 UTC"), Json::Str("3.9.3-rzk-0.1.0, built on 1970-01-01 00:00 UTC".into()));
    }
}

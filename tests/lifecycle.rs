//! `rzk-server`'s zkServer.sh verbs, run as an operator runs them (start → status → stop, stale
//! pid files, missing configs, taken ports), plus the HTTP AdminServer and the Prometheus
//! `/metrics` endpoint, compared with Apache ZooKeeper 3.8's AdminServer where it is installed.
//!
//! No sleeps: `start` itself returns only once the server answers `srvr`, `stop` only once the
//! process has exited; everything else is checked at once.

mod common;

use common::{ApacheZk, RzkServer, TestDir, free_port, rzk_server_bin};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const USER: &str = "tester";
const HOST: &str = "testhost";

// ---------------------------------------------------------------------------------------------
// Helpers

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `rzk-server <args>` in `dir` with a controlled environment (ZOO_LOG_DIR=<dir>/logs,
/// USER/HOSTNAME fixed, no ZOOCFGDIR/ZOOCFG/ZOOPIDFILE unless given in `env`).
fn rzk(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut c = Command::new(rzk_server_bin());
    c.args(args)
        .current_dir(dir)
        .env("ZOO_LOG_DIR", dir.join("logs"))
        .env("USER", USER)
        .env("HOSTNAME", HOST)
        .env("NO_COLOR", "1")
        .env_remove("ZOOCFGDIR")
        .env_remove("ZOOCFG")
        .env_remove("ZOOPIDFILE")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("run rzk-server");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Is `pid` running (and not a zombie)?
fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X'))
        }
        Err(_) => false,
    }
}

/// A pid that is certainly not running: a child that has exited and been reaped.
fn dead_pid() -> i32 {
    let mut c = Command::new("true").spawn().expect("spawn true");
    let pid = c.id() as i32;
    c.wait().unwrap();
    assert!(!alive(pid));
    pid
}

/// A zoo.cfg in its own directory, with free ports, and a guard that kills a daemon left behind
/// by a failing test (whatever pid the pid file holds).
struct Setup {
    dir: TestDir,
    client: u16,
    admin: u16,
    metrics: u16,
}

impl Setup {
    fn new(kind: &str, extra: &[&str]) -> Setup {
        let dir = TestDir::new(kind);
        let (client, admin, metrics) = (free_port(), free_port(), free_port());
        let mut text = format!(
            "tickTime=2000\ndataDir={}\nclientPort={client}\nclientPortAddress=127.0.0.1\n\
             admin.serverAddress=127.0.0.1\nadmin.serverPort={admin}\n\
             metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={metrics}\n",
            dir.path().join("data").display()
        );
        for l in extra {
            text.push_str(l);
            text.push('\n');
        }
        fs::write(dir.path().join("zoo.cfg"), text).unwrap();
        Setup { dir, client, admin, metrics }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn cfg(&self) -> String {
        self.path().join("zoo.cfg").display().to_string()
    }
    fn pid_file(&self) -> PathBuf {
        self.path().join("data/zookeeper_server.pid")
    }
    fn run(&self, args: &[&str]) -> Out {
        let cfg = self.cfg();
        let mut a: Vec<&str> = args.to_vec();
        a.push(&cfg);
        rzk(self.path(), &a, &[])
    }
    fn pid(&self) -> i32 {
        fs::read_to_string(self.pid_file()).expect("pid file").parse().expect("decimal pid")
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Ok(t) = fs::read_to_string(self.pid_file())
            && let Ok(pid) = t.trim().parse::<i32>()
            && alive(pid)
        {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// GET over a raw socket (HTTP/1.1, Connection: close): (status, content-type, body).
fn http_get(port: u16, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect to HTTP port {port}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no header end in {text:?}"));
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let header = |name: &str| {
        head.lines()
            .skip(1)
            .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string()))
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut out = String::new();
        let mut rest = body;
        loop {
            let (size, after) = rest.split_once("\r\n").unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
        out
    } else {
        body.to_string()
    };
    (status, header("content-type").unwrap_or_default(), body)
}

fn get_json(port: u16, cmd: &str) -> (String, Value) {
    let (status, ctype, body) = http_get(port, &format!("/commands/{cmd}"));
    assert_eq!(status, 200, "/commands/{cmd}: {body}");
    assert!(ctype.starts_with("application/json"), "/commands/{cmd} content-type {ctype:?}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("/commands/{cmd} is not JSON ({e}): {body}"));
    (body, v)
}

// ---------------------------------------------------------------------------------------------
// The verbs

#[test]
fn start_status_stop_as_an_operator_would() {
    let s = Setup::new("life", &[]);
    let pid_path = s.pid_file();

    let o = s.run(&["start"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "Starting zookeeper ... STARTED\n"), "stderr: {}", o.stderr);
    assert!(o.stderr.contains(&format!("Using config: {}", s.cfg())), "{}", o.stderr);
    assert!(!o.stderr.contains("JMX"), "{}", o.stderr);
    // The pid file: decimal, no newline, a live process.
    let text = fs::read_to_string(&pid_path).unwrap();
    assert!(!text.ends_with('\n') && text.bytes().all(|b| b.is_ascii_digit()), "{text:?}");
    let pid = s.pid();
    assert!(alive(pid));
    // The daemon's output and its rotating log are in ZOO_LOG_DIR.
    let logs = s.path().join("logs");
    let out = logs.join(format!("zookeeper-{USER}-server-{HOST}.out"));
    assert!(out.is_file(), "missing {}", out.display());
    let log_files: Vec<String> = fs::read_dir(&logs).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(
        log_files.iter().any(|f| f.starts_with(&format!("zookeeper-{USER}-server-{HOST}.")) && f.ends_with(".log")),
        "{log_files:?}"
    );

    let o = s.run(&["status"]);
    assert_eq!(o.code, 0, "{} {}", o.stdout, o.stderr);
    assert_eq!(
        o.stdout,
        format!("Client port found: {}. Client address: 127.0.0.1. Client SSL: false.\nMode: standalone\n", s.client)
    );

    let o = s.run(&["start"]);
    assert_eq!((o.code, o.stdout.clone()), (1, format!("Starting zookeeper ... already running as process {pid}.\n")));
    assert_eq!(s.pid(), pid, "a refused start must not touch the pid file");

    // The HTTP endpoints of the daemon.
    let (status, _, body) = http_get(s.admin, "/ready");
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    let (_, srvr) = get_json(s.admin, "srvr");
    assert_eq!(srvr["command"], "server_stats");
    assert_eq!(srvr["error"], Value::Null);
    assert_eq!(srvr["node_count"], 5);
    assert_eq!(srvr["server_stats"]["server_state"], "standalone");
    let (raw, _) = get_json(s.admin, "nosuch");
    assert_eq!(raw, "{\n  \"command\" : \"nosuch\",\n  \"error\" : \"Unknown command: nosuch\"\n}");
    let (status, _, body) = http_get(s.metrics, "/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE znode_count gauge\n"));

    let o = s.run(&["stop"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "Stopping zookeeper ... STOPPED\n"), "stderr: {}", o.stderr);
    assert!(!pid_path.exists(), "stop removes the pid file");
    assert!(!alive(pid), "stop returns once the server has exited");

    let o = s.run(&["status"]);
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stdout,
        format!(
            "Client port found: {}. Client address: 127.0.0.1. Client SSL: false.\nError contacting service. It is probably not running.\n",
            s.client
        )
    );

    let o = s.run(&["stop"]);
    assert_eq!(o.code, 0);
    assert_eq!(o.stdout, format!("Stopping zookeeper ... no zookeeper to stop (could not find file {})\n", pid_path.display()));

    // restart from stopped: the stop half finds nothing, the start half starts.
    let o = s.run(&["restart"]);
    assert_eq!(o.code, 0, "{} {}", o.stdout, o.stderr);
    assert!(o.stdout.ends_with("Starting zookeeper ... STARTED\n"), "{}", o.stdout);
    let first = s.pid();
    let o = s.run(&["restart"]);
    assert_eq!(o.code, 0, "{} {}", o.stdout, o.stderr);
    assert_eq!(o.stdout, "Stopping zookeeper ... STOPPED\nStarting zookeeper ... STARTED\n");
    assert!(!alive(first));
    let second = s.pid();
    assert_ne!(first, second);
    assert_eq!(s.run(&["stop"]).code, 0);
    assert!(!alive(second));
}

#[test]
fn stale_pid_files_are_cleaned_up() {
    let s = Setup::new("stale", &[]);
    fs::create_dir_all(s.path().join("data")).unwrap();
    let stale = dead_pid();
    fs::write(s.pid_file(), stale.to_string()).unwrap();
    let o = s.run(&["start"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "Starting zookeeper ... STARTED\n"), "stderr: {}", o.stderr);
    assert!(o.stderr.contains("stale pid file"), "{}", o.stderr);
    let pid = s.pid();
    assert_ne!(pid, stale);
    assert!(alive(pid));
    assert_eq!(s.run(&["stop"]).stdout, "Stopping zookeeper ... STOPPED\n");
    assert!(!alive(pid));

    // stop with a stale pid file: nothing to signal, the file goes.
    fs::write(s.pid_file(), stale.to_string()).unwrap();
    let o = s.run(&["stop"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "Stopping zookeeper ... STOPPED\n"));
    assert!(o.stderr.contains("was not running"), "{}", o.stderr);
    assert!(!s.pid_file().exists());

    // A pid file that does not hold a number is treated as stale too.
    fs::write(s.pid_file(), "garbage").unwrap();
    let o = s.run(&["start"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "Starting zookeeper ... STARTED\n"), "stderr: {}", o.stderr);
    assert_eq!(s.run(&["stop"]).code, 0);

    // $ZOOPIDFILE overrides the location.
    let custom = s.path().join("run/custom.pid");
    let env = [("ZOOPIDFILE", custom.to_str().unwrap())];
    let cfg = s.cfg();
    let o = rzk(s.path(), &["start", &cfg], &env);
    assert_eq!(o.code, 0, "{} {}", o.stdout, o.stderr);
    let pid: i32 = fs::read_to_string(&custom).unwrap().parse().unwrap();
    assert!(alive(pid) && !s.pid_file().exists());
    let o = rzk(s.path(), &["stop", &cfg], &env);
    assert_eq!(o.stdout, "Stopping zookeeper ... STOPPED\n");
    assert!(!alive(pid) && !custom.exists());
}

#[test]
fn missing_config_is_reported_clearly() {
    let dir = TestDir::new("nocfg");
    let missing = dir.path().join("nowhere/zoo.cfg");
    let m = missing.to_str().unwrap();
    let o = rzk(dir.path(), &["start", m], &[]);
    assert_eq!((o.code, o.stdout.as_str()), (1, "Starting zookeeper ... FAILED TO START\n"));
    assert!(o.stderr.contains(&format!("config file {m} does not exist")), "{}", o.stderr);
    let o = rzk(dir.path(), &["status", m], &[]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("does not exist"), "{}", o.stderr);
    let o = rzk(dir.path(), &["start-foreground", m], &[]);
    assert_eq!(o.code, 2, "Apache exits 2 for an invalid config");
    assert!(o.stderr.contains("Invalid config, exiting abnormally"), "{}", o.stderr);
    // Named through the environment: ZOOCFGDIR without a zoo.cfg in it.
    let empty = dir.path().join("conf");
    fs::create_dir_all(&empty).unwrap();
    let o = rzk(dir.path(), &["status"], &[("ZOOCFGDIR", empty.to_str().unwrap())]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains(&format!("{}/zoo.cfg does not exist", empty.display())), "{}", o.stderr);
    // ... and found there when it exists, by bare name too.
    fs::write(empty.join("other.cfg"), "dataDir=./d\nclientPort=1\n").unwrap();
    let o = rzk(dir.path(), &["print-cmd", "other.cfg"], &[("ZOOCFGDIR", empty.to_str().unwrap())]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains(&format!("Using config: {}/other.cfg", empty.display())), "{}", o.stderr);
    assert!(o.stdout.contains(" start-foreground ") && o.stdout.contains(&format!("zookeeper-{USER}-server-{HOST}.out")), "{}", o.stdout);
    // A config that does not parse says where.
    fs::write(dir.path().join("bad.cfg"), "tickTime=abc\ndataDir=/tmp/x\n").unwrap();
    let o = rzk(dir.path(), &["start", "./bad.cfg"], &[]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("line 1") && o.stderr.contains("tickTime"), "{}", o.stderr);
}

#[test]
fn a_taken_port_fails_to_start() {
    // The client port held by another process: found before anything is started.
    let s = Setup::new("taken", &[]);
    let holder = std::net::TcpListener::bind(("127.0.0.1", s.client)).expect("hold the client port");
    let o = s.run(&["start"]);
    assert_eq!((o.code, o.stdout.as_str()), (1, "Starting zookeeper ... FAILED TO START\n"), "stderr: {}", o.stderr);
    assert!(o.stderr.contains("already in use"), "{}", o.stderr);
    assert!(!s.pid_file().exists());
    // start-foreground says so too, and exits 1.
    let o = s.run(&["start-foreground"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("Address already in use") && o.stderr.contains(&s.client.to_string()), "{}", o.stderr);
    drop(holder);

    // The daemon itself dies (an explicitly configured Prometheus port that is taken): start
    // reports FAILED TO START with the reason from the daemon's .out file.
    let s = Setup::new(
        "taken-metrics",
        &["metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"],
    );
    let _holder = std::net::TcpListener::bind(("127.0.0.1", s.metrics)).expect("hold the metrics port");
    let o = s.run(&["start"]);
    assert_eq!((o.code, o.stdout.as_str()), (1, "Starting zookeeper ... FAILED TO START\n"), "stderr: {}", o.stderr);
    assert!(o.stderr.contains("Prometheus metrics endpoint") && o.stderr.contains("in use"), "{}", o.stderr);
    assert!(!s.pid_file().exists(), "a failed start leaves no pid file");

    // A taken AdminServer port only warns (as Apache): the server starts.
    let s = Setup::new("taken-admin", &[]);
    let _holder = std::net::TcpListener::bind(("127.0.0.1", s.admin)).expect("hold the admin port");
    let o = s.run(&["start"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "Starting zookeeper ... STARTED\n"), "stderr: {}", o.stderr);
    assert_eq!(s.run(&["stop"]).code, 0);
}

// ---------------------------------------------------------------------------------------------
// HTTP: /commands, /ready, /metrics

#[test]
fn admin_server_and_metrics_over_http() {
    let (admin, metrics) = (free_port(), free_port());
    let a = format!("admin.serverPort={admin}");
    let m = format!("metricsProvider.httpPort={metrics}");
    let zk = RzkServer::start_with(&[
        "admin.enableServer=true",
        "admin.serverAddress=127.0.0.1",
        &a,
        "metricsProvider.httpHost=127.0.0.1",
        "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
        &m,
    ]);

    let (status, ctype, body) = http_get(admin, "/ready");
    assert_eq!((status, body.as_str()), (200, "ready\n"), "{ctype}");

    let (status, ctype, html) = http_get(admin, "/commands");
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert!(html.starts_with("<a href=\"/commands/configuration\">configuration</a>\n<br/>\n"), "{html}");
    assert!(html.contains("<a href=\"/commands/server_stats\">server_stats</a>\n<br/>\n"));

    let (raw, srvr) = get_json(admin, "srvr");
    assert!(raw.starts_with("{\n  \"version\" : \""), "{raw}");
    assert!(raw.ends_with("\n  \"command\" : \"server_stats\",\n  \"error\" : null\n}"), "{raw}");
    assert_eq!(srvr["node_count"], 5);
    assert_eq!(srvr["server_stats"]["last_processed_zxid"], 0);
    // Aliases give the same command.
    assert_eq!(get_json(admin, "server_stats").1["command"], "server_stats");
    assert_eq!(get_json(admin, "conf").1["client_port"], zk.port);
    assert_eq!(get_json(admin, "ruok").0, "{\n  \"command\" : \"ruok\",\n  \"error\" : null\n}");
    assert_eq!(get_json(admin, "lead").0, "{\n  \"error\" : \"server is not initialized\",\n  \"command\" : \"leader\"\n}");
    assert_eq!(get_json(admin, "nosuch").0, "{\n  \"command\" : \"nosuch\",\n  \"error\" : \"Unknown command: nosuch\"\n}");
    assert_eq!(get_json(admin, "set_trace_mask?traceMask=511").1["tracemask"], 511);
    assert_eq!(get_json(admin, "gtmk").1["tracemask"], 511);
    let (status, _, _) = http_get(admin, "/elsewhere");
    assert_eq!(status, 404);

    // /metrics, read by a Prometheus text parser.
    let (status, ctype, text) = http_get(metrics, "/metrics");
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parse /metrics");
    let value = |name: &str| scrape.samples.iter().find(|s| s.metric == name).map(|s| s.value.clone());
    assert_eq!(value("znode_count"), Some(prometheus_parse::Value::Gauge(5.0)), "{text}");
    for name in [
        "watch_count",
        "ephemerals_count",
        "num_alive_connections",
        "packets_received",
        "packets_sent",
        "outstanding_requests",
        "global_sessions",
        "avg_latency",
        "min_latency",
        "max_latency",
        "approximate_data_size",
        "open_file_descriptor_count",
        "uptime",
    ] {
        assert!(matches!(value(name), Some(prometheus_parse::Value::Gauge(_))), "{name} missing: {text}");
        assert!(scrape.docs.get(name).is_some_and(|d| !d.is_empty()), "no HELP for {name}");
    }
    // Strictly: every sample line is `name value`, after its own HELP and TYPE lines.
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with('#') {
            continue;
        }
        let (name, v) = l.split_once(' ').unwrap_or_else(|| panic!("bad sample line {l:?}"));
        v.parse::<f64>().unwrap_or_else(|_| panic!("bad value in {l:?}"));
        assert!(i >= 2 && lines[i - 2].starts_with(&format!("# HELP {name} ")), "{l}");
        assert!(lines[i - 1].starts_with(&format!("# TYPE {name} ")), "{l}");
    }
    assert_eq!(http_get(metrics, "/nope").0, 404);
    drop(zk);
}

// ---------------------------------------------------------------------------------------------
// Compared with Apache's AdminServer

/// Minimal client: a session, an ephemeral znode, a data watch.
struct Client(TcpStream);

impl Client {
    fn frame(&mut self, body: &[u8]) -> Vec<u8> {
        let mut f = (body.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        self.0.write_all(&f).unwrap();
        let mut len = [0u8; 4];
        self.0.read_exact(&mut len).unwrap();
        let mut reply = vec![0u8; i32::from_be_bytes(len) as usize];
        self.0.read_exact(&mut reply).unwrap();
        reply
    }

    fn connect(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut c = Client(s);
        let mut b = Vec::new();
        b.extend(0i32.to_be_bytes()); // protocolVersion
        b.extend(0i64.to_be_bytes()); // lastZxidSeen
        b.extend(30_000i32.to_be_bytes()); // timeOut
        b.extend(0i64.to_be_bytes()); // sessionId
        b.extend(16i32.to_be_bytes());
        b.extend([0u8; 16]); // passwd
        b.push(0); // readOnly
        let r = c.frame(&b);
        assert!(r.len() >= 36, "connect response {r:?}");
        c
    }

    fn string(b: &mut Vec<u8>, s: &str) {
        b.extend((s.len() as i32).to_be_bytes());
        b.extend(s.as_bytes());
    }

    /// Sends a request and checks its reply's err is 0.
    fn request(&mut self, xid: i32, op: i32, body: &[u8]) {
        let mut b = Vec::new();
        b.extend(xid.to_be_bytes());
        b.extend(op.to_be_bytes());
        b.extend_from_slice(body);
        let r = self.frame(&b);
        let err = i32::from_be_bytes(r[12..16].try_into().unwrap());
        assert_eq!(err, 0, "op {op} failed with {err}");
    }

    fn create(&mut self, xid: i32, path: &str, flags: i32) {
        let mut b = Vec::new();
        Self::string(&mut b, path);
        b.extend(1i32.to_be_bytes());
        b.push(b'x');
        b.extend(1i32.to_be_bytes()); // one ACL: world:anyone, all perms
        b.extend(31i32.to_be_bytes());
        Self::string(&mut b, "world");
        Self::string(&mut b, "anyone");
        b.extend(flags.to_be_bytes());
        self.request(xid, 1, &b);
    }

    fn get_data_watch(&mut self, xid: i32, path: &str) {
        let mut b = Vec::new();
        Self::string(&mut b, path);
        b.push(1);
        self.request(xid, 4, &b);
    }
}

/// The JSON's structure: object keys (numeric keys, which are ids or times, become `#`) with the
/// shapes of their values, the shape of an array's first element, scalar type names.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, x) in m {
                let key = if k.parse::<i64>().is_ok() { "#".to_string() } else { k.clone() };
                out.insert(key, shape(x));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(n) if n.is_f64() => "float".into(),
        Value::Number(_) => "int".into(),
        Value::String(_) => "string".into(),
    }
}

/// Top-level keys in the order they appear in the pretty-printed text.
fn top_keys(raw: &str) -> Vec<String> {
    raw.lines()
        .filter_map(|l| l.strip_prefix("  \"").filter(|r| !r.starts_with(' ')).and_then(|r| r.split_once("\" : ")).map(|(k, _)| k.to_string()))
        .collect()
}

fn strip(v: &mut Value, path: &[&str]) {
    match path {
        [] => {}
        [last] => {
            if let Value::Object(m) = v {
                m.remove(*last);
            }
        }
        [first, rest @ ..] => {
            if let Some(x) = v.get_mut(*first) {
                strip(x, rest);
            }
        }
    }
}

#[test]
fn admin_json_has_apaches_shapes() {
    let apache_admin = free_port();
    let a = format!("admin.serverPort={apache_admin}");
    let Some(apache) = ApacheZk::start_with(&["admin.enableServer=true", "admin.serverAddress=127.0.0.1", &a]) else {
        return;
    };
    let rzk_admin = free_port();
    let r = format!("admin.serverPort={rzk_admin}");
    let m = format!("metricsProvider.httpPort={}", free_port());
    let ours = RzkServer::start_with(&["admin.enableServer=true", "admin.serverAddress=127.0.0.1", &r, "metricsProvider.httpHost=127.0.0.1", &m]);

    // The same state on both: one session with an ephemeral node and a data watch.
    let mut clients = Vec::new();
    for port in [apache.port, ours.port] {
        let mut c = Client::connect(port);
        c.create(1, "/cap", 0);
        c.create(2, "/cap/eph", 1);
        c.get_data_watch(3, "/cap");
        clients.push(c);
    }

    // The HTML list is byte for byte Apache's.
    assert_eq!(http_get(rzk_admin, "/commands").2, http_get(apache_admin, "/commands").2);

    // Exactly the same text.
    for cmd in ["ruok", "nosuch", "lead", "stmk", "gtmk", "isro", "hash", "zabstate", "voting_view", "obsr", "orst", "wchs"] {
        let (ra, _) = get_json(apache_admin, cmd);
        let (rr, _) = get_json(rzk_admin, cmd);
        assert_eq!(rr, ra, "/commands/{cmd}");
    }

    // The same keys, in the same order, with values of the same types.
    let optional: BTreeMap<&str, Vec<Vec<&str>>> = BTreeMap::from([
        // Apache 3.8 omits server_state from server_stats right after start-up.
        ("srvr", vec![vec!["server_stats", "server_state"]]),
        ("stat", vec![vec!["server_stats", "server_state"]]),
    ]);
    for cmd in ["srvr", "stat", "conf", "cons", "dump", "wchc", "wchp", "dirs", "crst", "srst", "icfg", "lsnp"] {
        let (ra, mut va) = get_json(apache_admin, cmd);
        let (rr, mut vr) = get_json(rzk_admin, cmd);
        for p in optional.get(cmd).into_iter().flatten() {
            strip(&mut va, p);
            strip(&mut vr, p);
        }
        assert_eq!(shape(&vr), shape(&va), "/commands/{cmd}\nrzk: {rr}\napache: {ra}");
        assert_eq!(top_keys(&rr), top_keys(&ra), "/commands/{cmd} key order");
    }

    // environment: Apache's keys (values describe the process; rzk has no JVM).
    let (ra, va) = get_json(apache_admin, "envi");
    let (rr, vr) = get_json(rzk_admin, "envi");
    assert_eq!(top_keys(&rr), top_keys(&ra));
    assert_eq!(shape(&vr), shape(&va));

    // monitor: every rzk key is one of Apache's, with the same type; the core ones are there.
    let (_, va) = get_json(apache_admin, "mntr");
    let (_, vr) = get_json(rzk_admin, "mntr");
    let (sa, sr) = (shape(&va), shape(&vr));
    let (ka, kr) = (sa.as_object().unwrap(), sr.as_object().unwrap());
    for (k, t) in kr {
        assert_eq!(ka.get(k), Some(t), "monitor key {k}");
    }
    let have: BTreeSet<&str> = kr.keys().map(String::as_str).collect();
    for k in ["znode_count", "watch_count", "ephemerals_count", "num_alive_connections", "global_sessions", "server_state", "version"] {
        assert!(have.contains(k), "monitor lacks {k}");
    }
    assert_eq!(vr["znode_count"], va["znode_count"]);
    assert_eq!(vr["ephemerals_count"], va["ephemerals_count"]);
    assert_eq!(vr["global_sessions"], va["global_sessions"]);
    drop(clients);
}

fn mntr_values(port: u16) -> BTreeMap<String, String> {
    common::four_letter(port, "mntr")
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// mntr's fsynctime and sync_processor_batch_size summaries count the log's syncs and the txns
/// each covered; with forceSync=no there are none.
#[test]
fn mntr_reports_log_syncs_and_the_txns_they_covered() {
    for force in [true, false] {
        let server = RzkServer::start_with(&[if force { "forceSync=yes" } else { "forceSync=no" }]);
        let mut c = Client::connect(server.port);
        for i in 0..20 {
            c.create(10 + i, &format!("/n{i}"), 0);
        }
        let m = mntr_values(server.port);
        let num = |k: &str| -> f64 { m.get(k).unwrap_or_else(|| panic!("mntr has {k}: {m:?}")).parse().unwrap() };
        let (count, txns) = (num("zk_cnt_fsynctime"), num("zk_sum_sync_processor_batch_size"));
        assert_eq!(num("zk_cnt_sync_processor_batch_size"), count);
        if force {
            // createSession + 20 creates, each answered only after a sync covered it.
            assert!(count >= 1.0 && count <= 21.0, "{m:?}");
            assert_eq!(txns, 21.0, "{m:?}");
            assert!(num("zk_min_sync_processor_batch_size") >= 1.0);
            assert!(num("zk_max_sync_processor_batch_size") <= 21.0);
            // Not > 0: on a RAM-backed temp dir an fdatasync can take under a microsecond.
            assert!(num("zk_avg_fsynctime") >= 0.0, "{m:?}");
            assert!(num("zk_max_fsynctime") >= num("zk_min_fsynctime"));
        } else {
            assert_eq!((count, txns), (0.0, 0.0), "{m:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// systemd readiness (sd_notify)

/// With NOTIFY_SOCKET set, as systemd sets it for `Type=notify`: `READY=1` and `STATUS=Mode:
/// standalone` once clients are served (the harness's start returns on READY=1, so a server
/// that never says it would fail every test), `STOPPING=1` on SIGTERM. An `@name` socket is
/// in the abstract namespace.
#[test]
fn systemd_is_told_when_the_server_serves_and_when_it_stops() {
    let mut s = RzkServer::start();
    assert!(s.notify().ready);
    assert_eq!(s.notify().status.as_deref(), Some("standalone"));
    // The server reported readiness only once it answers clients.
    assert!(common::four_letter(s.port, "srvr").contains("Mode: standalone"));
    assert!(!s.notify().stopping);
    assert!(s.stop(Duration::from_secs(20)).is_some_and(|st| st.success()));
    s.notify().drain();
    assert!(s.notify().stopping, "STOPPING=1 on SIGTERM");

    // Abstract namespace: NOTIFY_SOCKET=@name.
    use std::os::linux::net::SocketAddrExt;
    let name = format!("rzk-test-notify-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = std::os::unix::net::UnixDatagram::bind_addr(&addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let dir = TestDir::new("notify");
    let port = free_port();
    let cfg = dir.path().join("zoo.cfg");
    fs::write(&cfg, format!("tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n", dir.path().join("data").display())).unwrap();
    let mut child = Command::new(rzk_server_bin())
        .arg("start-foreground")
        .arg(&cfg)
        .env("NOTIFY_SOCKET", format!("@{name}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("a notification on the abstract socket");
    let _ = child.kill();
    let _ = child.wait();
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    assert_eq!(msg, "READY=1\nSTATUS=Mode: standalone\n");
}

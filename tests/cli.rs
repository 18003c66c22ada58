//! rzk-cli: zkCli.sh-compatible output and exit codes.
//!
//! * one-shot commands against rzk-server (output text, exit status, quota znodes);
//! * the same command sequence through Debian's zkCli.sh against Apache ZooKeeper and through
//!   rzk-cli against rzk-server (and against the same kind of Apache server), compared line by
//!   line after normalising times, zxids and session ids;
//! * the interactive shell through a pipe (prompt, history, a watch notification printed when
//!   another client changes the node), and through tmux when it is installed (line editing,
//!   history recall, tab completion).
//!
//! Nothing sleeps to synchronise: every wait is for output, with a deadline.

mod common;

use common::*;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const CLI: &str = env!("CARGO_BIN_EXE_rzk-cli");
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(30);

/// Runs `rzk-cli -server <server> args...` with stdin closed: (status, stdout, stderr).
fn cli_at(server: &str, args: &[&str]) -> (i32, String, String) {
    let child = Command::new(CLI)
        .arg("-server")
        .arg(server)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rzk-cli");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(RUN_TIMEOUT) {
        Ok(Ok(o)) => (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Ok(Err(e)) => panic!("rzk-cli {args:?}: {e}"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("rzk-cli {args:?} did not finish within {RUN_TIMEOUT:?}");
        }
    }
}

fn cli(port: u16, args: &[&str]) -> (i32, String, String) {
    cli_at(&format!("127.0.0.1:{port}"), args)
}

/// stdout without zkCli's connection chatter.
fn body(stdout: &str) -> String {
    strip_zkcli_noise(stdout)
}

#[test]
fn one_shot_commands_against_rzk() {
    let zk = RzkServer::start();
    let p = zk.port;

    let (st, out, err) = cli(p, &["create", "/a", "hello"]);
    assert_eq!(st, 0, "{out}{err}");
    assert_eq!(err, "Created /a\n");
    assert_eq!(
        out,
        format!(
            "Connecting to 127.0.0.1:{p}\n\nWATCHER::\n\nWatchedEvent state:SyncConnected type:None path:null\n"
        )
    );

    let (st, out, _) = cli(p, &["get", "/a"]);
    assert_eq!((st, body(&out).as_str()), (0, "hello\n"));

    let (st, out, _) = cli(p, &["ls", "/"]);
    assert_eq!((st, body(&out).as_str()), (0, "[a, zookeeper]\n"));

    let (st, out, _) = cli(p, &["get", "-s", "/a"]);
    assert_eq!(st, 0);
    let lines: Vec<String> = body(&out).lines().map(str::to_string).collect();
    assert_eq!(lines[0], "hello");
    assert!(lines[1].starts_with("cZxid = 0x"), "{out}");
    let ctime = lines[2].strip_prefix("ctime = ").expect("ctime line");
    // `Wed Nov 25 13:52:29 UTC 2026`
    let parts: Vec<&str> = ctime.split(' ').collect();
    assert_eq!(parts.len(), 6, "{ctime}");
    assert!(["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].contains(&parts[0]), "{ctime}");
    assert_eq!(parts[3].len(), 8, "{ctime}");
    let names: Vec<&str> = lines[1..].iter().map(|l| l.split(" = ").next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "cZxid", "ctime", "mZxid", "mtime", "pZxid", "cversion", "dataVersion", "aclVersion",
            "ephemeralOwner", "dataLength", "numChildren"
        ]
    );
    assert!(lines.contains(&"dataLength = 5".to_string()), "{out}");
    assert!(lines.contains(&"ephemeralOwner = 0x0".to_string()), "{out}");

    // Errors: message on stderr, status 1.
    let (st, _, err) = cli(p, &["get", "/nope"]);
    assert_eq!((st, err.as_str()), (1, "Node does not exist: /nope\n"));
    let (st, _, err) = cli(p, &["create", "/a"]);
    assert_eq!((st, err.as_str()), (1, "Node already exists: /a\n"));
    let (st, _, err) = cli(p, &["set", "-v", "7", "/a", "x"]);
    assert_eq!((st, err.as_str()), (1, "version No is not valid : /a\n"));
    let (st, _, err) = cli(p, &["create", "a"]);
    assert_eq!((st, err.as_str()), (1, "Path must start with / character\n"));
    let (st, _, err) = cli(p, &["get"]);
    assert_eq!((st, err.as_str()), (1, "get [-s] [-w] path\n"));
    let (st, _, err) = cli(p, &["ls", "-x", "/"]);
    assert_eq!(
        (st, err.as_str()),
        (1, "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -x\n")
    );
    // An unknown command: the usage list, then status 127.
    let (st, _, err) = cli(p, &["frobnicate"]);
    assert_eq!(st, 127);
    assert!(err.starts_with("ZooKeeper -server host:port -client-configuration properties-file cmd args\n\taddWatch "), "{err}");
    assert!(err.ends_with("\twhoami \nCommand not found: Command not found frobnicate\n"), "{err}");

    // Sequential and ephemeral nodes, ACLs, counts.
    let (st, _, err) = cli(p, &["create", "-s", "/a/s-", "x"]);
    assert_eq!((st, err.as_str()), (0, "Created /a/s-0000000000\n"));
    let (st, out, _) = cli(p, &["getAllChildrenNumber", "/a"]);
    assert_eq!((st, body(&out).as_str()), (0, "1\n"));
    let (st, out, _) = cli(p, &["getAcl", "/a"]);
    assert_eq!((st, body(&out).as_str()), (0, "'world,'anyone\n: cdrwa\n"));
    let (st, out, _) = cli(p, &["whoami"]);
    assert_eq!((st, body(&out).as_str()), (0, "Auth scheme: User\nip: 127.0.0.1\n"));
    let (st, out, _) = cli(p, &["sync", "/a"]);
    assert_eq!((st, body(&out).as_str()), (0, "Sync is OK\n"));
    let (st, out, _) = cli(p, &["ls", "-R", "/a"]);
    assert_eq!((st, body(&out).as_str()), (0, "/a\n/a/s-0000000000\n"));
    let (st, _, err) = cli(p, &["delete", "/a"]);
    assert_eq!((st, err.as_str()), (1, "Node not empty: /a\n"));
    let (st, out, err) = cli(p, &["deleteall", "/a"]);
    assert_eq!((st, body(&out).as_str(), err.as_str()), (0, "", ""));
    let (_, out, _) = cli(p, &["ls", "/"]);
    assert_eq!(body(&out), "[zookeeper]\n");

    // A chroot in the connect string.
    let (st, _, err) = cli_at(&format!("127.0.0.1:{p}/zookeeper"), &["create", "/c", "x"]);
    assert_eq!((st, err.as_str()), (0, "Created /c\n"));
    let (_, out, _) = cli(p, &["ls", "/zookeeper"]);
    assert_eq!(body(&out), "[c, config, quota]\n");
}

#[test]
fn quota_commands_write_zkcli_znodes() {
    let zk = RzkServer::start();
    let p = zk.port;
    for (path, data) in [("/q", None), ("/q/a", Some("12345")), ("/p", None), ("/p/b", None)] {
        let mut args = vec!["create", path];
        args.extend(data);
        assert_eq!(cli(p, &args).0, 0);
    }
    let get = |path: &str| body(&cli(p, &["get", path]).1);

    let (st, out, err) = cli(p, &["setquota", "-n", "5", "/q"]);
    assert_eq!((st, body(&out).as_str(), err.as_str()), (0, "", ""));
    assert_eq!(get("/zookeeper/quota/q/zookeeper_limits"), "count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1\n");
    assert_eq!(cli(p, &["setquota", "-b", "100", "/q"]).0, 0);
    assert_eq!(get("/zookeeper/quota/q/zookeeper_limits"), "count=5,bytes=100=;byteHardLimit=-1;countHardLimit=-1\n");
    assert_eq!(get("/zookeeper/quota/q/zookeeper_stats"), "count=2,bytes=5\n");
    // The intermediate node has null data.
    assert_eq!(get("/zookeeper/quota/q"), "null\n");

    let (st, out, err) = cli(p, &["listquota", "/q"]);
    assert_eq!(st, 0);
    assert_eq!(err, "absolute path is /zookeeper/quota/q/zookeeper_limits\n");
    assert_eq!(
        body(&out),
        "Output quota for /q count=5,bytes=100=;byteHardLimit=-1;countHardLimit=-1\nOutput stat for /q count=2,bytes=5\n"
    );

    // Refusals.
    let (st, _, err) = cli(p, &["setquota", "-n", "5", "/q/a"]);
    assert_eq!((st, err.as_str()), (1, "/q/a has a parent /q which has a quota\n"));
    assert_eq!(cli(p, &["setquota", "-N", "2", "/p/b"]).0, 0);
    assert_eq!(get("/zookeeper/quota/p/b/zookeeper_limits"), "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2\n");
    let (st, _, err) = cli(p, &["setquota", "-n", "3", "/p"]);
    assert_eq!((st, err.as_str()), (1, "/p has a child /p/b which has a quota\n"));
    let (st, _, err) = cli(p, &["setquota", "-n", "3", "/nope"]);
    assert_eq!((st, err.as_str()), (1, "/nope does not exist.\n"));
    let (st, _, err) = cli(p, &["setquota", "-n", "3", "/zookeeper/quota/x"]);
    assert_eq!((st, err.as_str()), (0, "cannot set a quota under the path: /zookeeper/quota\n"));
    let (st, _, err) = cli(p, &["setquota", "-n", "3", "/"]);
    assert_eq!((st, err.as_str()), (1, "Path must not end with / character\n"));
    let (st, _, err) = cli(p, &["setquota", "/q"]);
    assert_eq!(st, 1);
    assert_eq!(
        err,
        "org.apache.commons.cli.MissingOptionException: Missing required option: [-n num soft quota, \
         -b bytes soft quota, -N num hard quota, -B bytes hard quota]\n"
    );

    // delquota of one limit, then of the whole quota (its empty parents go too).
    assert_eq!(cli(p, &["delquota", "-n", "/q"]).0, 0);
    assert_eq!(get("/zookeeper/quota/q/zookeeper_limits"), "count=-1,bytes=100=;byteHardLimit=-1;countHardLimit=-1\n");
    assert_eq!(cli(p, &["delquota", "/q"]).0, 0);
    let (st, _, err) = cli(p, &["listquota", "/q"]);
    assert_eq!(
        (st, err.as_str()),
        (0, "absolute path is /zookeeper/quota/q/zookeeper_limits\nquota for /q does not exist.\n")
    );
    assert_eq!(body(&cli(p, &["ls", "/zookeeper/quota"]).1), "[p]\n");
    let (st, out, _) = cli(p, &["delquota", "/q"]);
    assert_eq!((st, body(&out).as_str()), (0, "Quota does not exist for /q\n"));
}

#[test]
fn connection_failures_and_server_lists() {
    let zk = RzkServer::start();
    let dead = free_port();
    // Nothing listening: ConnectionLoss at once, status 1.
    let started = Instant::now();
    let (st, _, err) = cli(dead, &["ls", "/"]);
    assert_eq!((st, err.as_str()), (1, "KeeperErrorCode = ConnectionLoss for /\n"));
    assert!(started.elapsed() < Duration::from_secs(20));
    let (st, out, _) = cli(dead, &["sync", "/"]);
    assert_eq!((st, body(&out).as_str()), (0, "Sync has failed. rc=-4\n"));
    // A list with a dead host still gets through to the live one.
    for _ in 0..3 {
        let (st, out, err) = cli_at(&format!("127.0.0.1:{dead},127.0.0.1:{}", zk.port), &["ls", "/"]);
        assert_eq!((st, body(&out).as_str()), (0, "[zookeeper]\n"), "{err}");
    }
    // -timeout and -r are accepted.
    let (st, out, _) = cli(zk.port, &["-timeout", "5000", "-r", "ls", "/zookeeper"]);
    assert_eq!((st, body(&out).as_str()), (0, "[config, quota]\n"));
}

// ------------------------------------------------------------------------------------------
// Against zkCli.sh + Apache
// ------------------------------------------------------------------------------------------

/// Makes zkCli and rzk-cli transcripts comparable: dates, zxids, session ids and ports vary.
fn normalise(s: &str, port: u16) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let line = line.replace(&port.to_string(), "PORT");
        let line = if let Some((k, v)) = line.split_once(" = ") {
            match k {
                "ctime" | "mtime" => format!("{k} = DATE"),
                "cZxid" | "mZxid" | "pZxid" if v.starts_with("0x") => format!("{k} = 0xZXID"),
                "ephemeralOwner" if v != "0x0" => format!("{k} = 0xSESSION"),
                _ => line.clone(),
            }
        } else {
            line
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The commands both clients run, in order, each as its own process (as `zkCli.sh cmd`).
const SEQUENCE: &[&[&str]] = &[
    &["create", "/x", "hi"],
    &["create", "/x"],
    &["create"],
    &["create", "x"],
    &["ls", "/"],
    &["ls", "-s", "/x"],
    &["get", "-s", "/x"],
    &["get", "/nope"],
    &["set", "/x", "there"],
    &["set", "-s", "/x", "again"],
    &["set", "-v", "7", "/x", "no"],
    &["stat", "/x"],
    &["stat", "/nope"],
    &["get", "/x", "1"],
    &["delete", "/nope"],
    &["create", "/q"],
    &["create", "/q/a", "12345"],
    &["setquota", "-n", "5", "/q"],
    &["setquota", "-b", "100", "/q"],
    &["get", "/zookeeper/quota/q/zookeeper_limits"],
    &["get", "/zookeeper/quota/q/zookeeper_stats"],
    &["listquota", "/q"],
    &["setquota", "-n", "5", "/q/a"],
    &["setquota", "-n", "1", "-b", "2", "/q"],
    &["setquota", "-n", "0", "/q"],
    &["delquota", "-n", "/q"],
    &["listquota", "/q"],
    &["delquota", "/q"],
    &["listquota", "/q"],
    &["ls", "-R", "/zookeeper"],
    &["getAcl", "/x"],
    &["getAcl", "-s", "/x"],
    &["create", "/acl", "d", "world:anyone:rx,digest:u:x:cdrwa"],
    &["getAcl", "/acl"],
    &["set", "/acl", "x"],
    &["create", "/bad", "d", "bogus"],
    &["whoami"],
    &["getAllChildrenNumber", "/q"],
    &["getEphemerals"],
    &["sync", "/x"],
    &["create", "-s", "/q/s-"],
    &["create", "-c", "-e", "/q/c"],
    &["create", "-t", "0", "/q/t"],
    &["ls", "-R", "/q"],
    &["deleteall", "/q"],
    &["ls", "/"],
    &["removewatches", "/x"],
    &["ls", "-x", "/"],
    &["set", "-v"],
    &["frobnicate"],
];

type Run<'a> = &'a mut dyn FnMut(&[&str]) -> (i32, String, String);

fn transcript(run: Run<'_>, port: u16) -> Vec<String> {
    SEQUENCE
        .iter()
        .map(|args| {
            let (st, out, err) = run(args);
            let err: String = err.lines().filter(|l| !l.starts_with("SLF4J: ")).map(|l| format!("{l}\n")).collect();
            normalise(&format!("$ {}\n[status {st}]\n{}--- stderr\n{err}", args.join(" "), body(&out)), port)
        })
        .collect()
}

fn assert_same(what: &str, expected: &[String], got: &[String]) {
    for (e, g) in expected.iter().zip(got) {
        assert_eq!(e, g, "{what}: first difference (left: zkCli.sh + Apache)");
    }
    assert_eq!(expected.len(), got.len());
}

#[test]
fn matches_zkcli_transcript() {
    let Some(apache) = ApacheZk::start() else { return };
    assert!(zkcli_available(), "{ZKCLI} missing");
    let expected = transcript(&mut |a| zkcli(apache.port, a), apache.port);

    let rzk = RzkServer::start();
    let got = transcript(&mut |a| cli(rzk.port, a), rzk.port);
    assert_same("rzk-cli + rzk-server", &expected, &got);

    // The client alone: rzk-cli against a fresh Apache server gives the same text.
    let Some(apache2) = ApacheZk::start() else { return };
    let got = transcript(&mut |a| cli(apache2.port, a), apache2.port);
    assert_same("rzk-cli + Apache", &expected, &got);
}

// ------------------------------------------------------------------------------------------
// Interactive
// ------------------------------------------------------------------------------------------

/// Everything a child wrote to stdout so far, with a condition variable to wait on.
#[derive(Clone, Default)]
struct Output(Arc<(Mutex<String>, Condvar)>);

impl Output {
    fn collect(r: impl Read + Send + 'static) -> Output {
        let o = Output::default();
        let o2 = o.clone();
        std::thread::spawn(move || o2.pump(r));
        o
    }

    /// Appends everything read from `r` until EOF.
    fn pump(&self, mut r: impl Read) {
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let (m, c) = &*self.0;
                    m.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                    c.notify_all();
                }
            }
        }
    }

    fn text(&self) -> String {
        self.0 .0.lock().unwrap().clone()
    }

    fn len(&self) -> usize {
        self.0 .0.lock().unwrap().len()
    }

    /// Waits (at most `timeout`) until there is more than `seen` bytes; returns the length.
    fn wait_longer(&self, seen: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let (m, c) = &*self.0;
        let mut s = m.lock().unwrap();
        while s.len() <= seen {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            s = c.wait_timeout(s, deadline - now).unwrap().0;
        }
        s.len()
    }

    /// Waits until `needle` appears at or after byte `from`; returns the offset just past it.
    fn wait_for(&self, needle: &str, from: usize) -> usize {
        let deadline = Instant::now() + WAIT;
        let (m, c) = &*self.0;
        let mut s = m.lock().unwrap();
        loop {
            if let Some(i) = s.get(from..).and_then(|t| t.find(needle)) {
                return from + i + needle.len();
            }
            let now = Instant::now();
            assert!(now < deadline, "timed out waiting for {needle:?}; output so far:\n{}", *s);
            s = c.wait_timeout(s, deadline - now).unwrap().0;
        }
    }
}

struct Piped {
    child: Child,
    stdin: ChildStdin,
    out: Output,
    err: Output,
}

impl Piped {
    fn start(port: u16) -> Piped {
        let mut child = Command::new(CLI)
            .args(["-server", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rzk-cli");
        let stdin = child.stdin.take().unwrap();
        let out = Output::collect(child.stdout.take().unwrap());
        let err = Output::collect(child.stderr.take().unwrap());
        Piped { child, stdin, out, err }
    }

    fn send(&mut self, line: &str) {
        self.stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn interactive_through_a_pipe() {
    let zk = RzkServer::start();
    let p = zk.port;
    let mut sh = Piped::start(p);
    let prompt = |n: usize| format!("[zk: 127.0.0.1:{p}(CONNECTED) {n}] ");

    let mut at = sh.out.wait_for(&prompt(0), 0);
    let head = sh.out.text();
    assert!(
        head.starts_with(&format!(
            "Connecting to 127.0.0.1:{p}\nWelcome to ZooKeeper!\nJLine support is enabled\n\nWATCHER::\n\n\
             WatchedEvent state:SyncConnected type:None path:null\n"
        )),
        "{head}"
    );

    sh.send("create /w a");
    at = sh.out.wait_for(&prompt(1), at);
    sh.err.wait_for("Created /w\n", 0);
    sh.send("get -w /w");
    at = sh.out.wait_for(&format!("a\n{}", prompt(2)), at);

    // Another client changes the node: the notification appears in the shell's output.
    let (st, _, err) = cli(p, &["set", "/w", "b"]);
    assert_eq!(st, 0, "{err}");
    at = sh.out.wait_for("\nWATCHER::\n\nWatchedEvent state:SyncConnected type:NodeDataChanged path:/w\n", at);

    // A persistent recursive watch fires for each change below it.
    sh.send("addWatch /w");
    at = sh.out.wait_for(&prompt(3), at);
    assert_eq!(cli(p, &["create", "/w/c"]).0, 0);
    at = sh.out.wait_for("WatchedEvent state:SyncConnected type:NodeCreated path:/w/c\n", at);
    assert_eq!(cli(p, &["set", "/w/c", "x"]).0, 0);
    at = sh.out.wait_for("WatchedEvent state:SyncConnected type:NodeDataChanged path:/w/c\n", at);
    sh.send("removewatches /w");
    at = sh.out.wait_for("WatchedEvent state:SyncConnected type:PersistentWatchRemoved path:/w\n", at);
    at = sh.out.wait_for(&prompt(4), at);

    // printwatches off silences notifications. (The shell's `get` after the change is a round
    // trip on its own connection, so the notification has been handled by the time it prints.)
    sh.send("printwatches off");
    at = sh.out.wait_for(&prompt(5), at);
    sh.send("get -w /w");
    at = sh.out.wait_for(&format!("b\n{}", prompt(6)), at);
    assert_eq!(cli(p, &["set", "/w", "c"]).0, 0);
    sh.send("get /w");
    let quiet_end = sh.out.wait_for(&format!("c\n{}", prompt(7)), at);
    assert!(!sh.out.text()[at..quiet_end].contains("WATCHER::"), "{}", &sh.out.text()[at..]);
    at = quiet_end;
    sh.send("printwatches");
    at = sh.out.wait_for(&format!("printwatches is off\n{}", prompt(8)), at);
    sh.send("printwatches on");
    at = sh.out.wait_for(&prompt(9), at);

    // history and redo.
    sh.send("history");
    let hist_end = sh.out.wait_for(&prompt(10), at);
    let hist = sh.out.text()[at..hist_end].to_string();
    assert!(hist.starts_with("0 - create /w a\n1 - get -w /w\n2 - addWatch /w\n"), "{hist}");
    assert!(hist.contains("9 - history\n"), "{hist}");
    at = hist_end;
    sh.send("redo 6");
    at = sh.out.wait_for(&format!("c\n{}", prompt(11)), at);
    sh.send("redo 99");
    at = sh.out.wait_for(&prompt(12), at);
    sh.err.wait_for("Command index out of range\n", 0);

    // An error does not end the shell; close, then commands say "Not connected".
    sh.send("get /nope");
    at = sh.out.wait_for(&prompt(13), at);
    sh.err.wait_for("Node does not exist: /nope\n", 0);
    sh.send("close");
    at = sh.out.wait_for("WatchedEvent state:Closed type:None path:null\n", at);
    at = sh.out.wait_for(&format!("[zk: 127.0.0.1:{p}(CLOSED) 14] "), at);
    sh.send("ls /");
    at = sh.out.wait_for(&format!("Not connected\n[zk: 127.0.0.1:{p}(CLOSED) 15] "), at);
    sh.send(&format!("connect 127.0.0.1:{p}"));
    at = sh.out.wait_for("WatchedEvent state:SyncConnected type:None path:null\n", at);
    sh.send("ls /");
    at = sh.out.wait_for("[w, zookeeper]\n", at);
    sh.send("quit");
    sh.out.wait_for("WatchedEvent state:Closed type:None path:null\n", at);
    let status = sh.child.wait().unwrap();
    // quit exits with the status of the command before it.
    assert_eq!(status.code(), Some(0));
}

/// A private tmux server (its own socket), killed on drop. The pane's output is also piped
/// (pipe-pane) into a FIFO we read, so waiting for the screen to change blocks on that stream
/// instead of sleeping between polls.
struct Tmux {
    socket: String,
    fifo: std::path::PathBuf,
    changes: Output,
}

impl Tmux {
    fn available() -> bool {
        Command::new("tmux").arg("-V").output().map(|o| o.status.success()).unwrap_or(false)
    }

    fn start(cmd: &str) -> Tmux {
        let id = std::process::id();
        let fifo = std::env::temp_dir().join(format!("rzk-cli-test-{id}.fifo"));
        let _ = std::fs::remove_file(&fifo);
        assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
        let changes = Output::default();
        let (c2, f2) = (changes.clone(), fifo.clone());
        std::thread::spawn(move || {
            // Blocks until pipe-pane's `cat` opens the FIFO for writing.
            if let Ok(f) = std::fs::File::open(&f2) {
                c2.pump(f);
            }
        });
        let t = Tmux { socket: format!("rzk-cli-test-{id}"), fifo, changes };
        t.tmux(&["new-session", "-d", "-s", "cli", "-x", "160", "-y", "50", cmd]);
        t.tmux(&["set-option", "-t", "cli", "remain-on-exit", "on"]);
        let pipe = format!("cat > '{}'", t.fifo.display());
        t.tmux(&["pipe-pane", "-t", "cli", &pipe]);
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let o = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("run tmux");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "cli"])
    }

    /// Re-reads the screen whenever the pane writes something, until `pred` holds.
    fn wait_screen(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let seen = self.changes.len();
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            let now = Instant::now();
            assert!(now < deadline, "timed out waiting for {what}; screen:\n{s}");
            // The change signal can come just before tmux updates its copy of the screen, so
            // also look again after a short while even without one.
            self.changes.wait_longer(seen, (deadline - now).min(Duration::from_millis(250)));
        }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "cli"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
        let _ = std::fs::remove_file(&self.fifo);
    }
}

#[test]
fn interactive_in_a_terminal() {
    if !Tmux::available() {
        println!("skipping: tmux not installed");
        return;
    }
    let zk = RzkServer::start();
    let p = zk.port;
    assert_eq!(cli(p, &["create", "/zebra", "z"]).0, 0);
    let t = Tmux::start(&format!("{} -server 127.0.0.1:{p}", Path::new(CLI).display()));
    let prompt0 = format!("[zk: 127.0.0.1:{p}(CONNECTED) 0] ");
    t.wait_screen("first prompt", |s| s.lines().any(|l| l == prompt0.trim_end()));

    // Line editing: type, move left, insert.
    t.keys(&["get /zbra", "Left", "Left", "Left", "e", "Enter"]);
    let prompt1 = format!("[zk: 127.0.0.1:{p}(CONNECTED) 1]");
    let s = t.wait_screen("get output", |s| s.contains(&prompt1));
    assert!(s.contains(&format!("{prompt0}get /zebra\nz\n")), "{s}");

    // History recall with Up.
    t.keys(&["Up", "Enter"]);
    let prompt2 = format!("[zk: 127.0.0.1:{p}(CONNECTED) 2]");
    let s = t.wait_screen("recalled command", |s| s.contains(&prompt2));
    assert!(s.contains(&format!("{prompt1} get /zebra\nz\n")), "{s}");

    // Tab completes znode paths.
    t.keys(&["ls /zoo", "Tab"]);
    t.wait_screen("completion", |s| s.contains(&format!("{prompt2} ls /zookeeper")));
    t.keys(&["Enter"]);
    let prompt3 = format!("[zk: 127.0.0.1:{p}(CONNECTED) 3]");
    let s = t.wait_screen("ls output", |s| s.contains(&prompt3));
    assert!(s.contains("[config, quota]\n"), "{s}");

    // A watch notification arrives while the prompt waits.
    t.keys(&["stat -w /zebra", "Enter"]);
    let prompt4 = format!("[zk: 127.0.0.1:{p}(CONNECTED) 4]");
    t.wait_screen("stat output", |s| s.contains(&prompt4));
    assert_eq!(cli(p, &["delete", "/zebra"]).0, 0);
    t.wait_screen("notification", |s| s.contains("WatchedEvent state:SyncConnected type:NodeDeleted path:/zebra"));
    t.keys(&["quit", "Enter"]);
    t.wait_screen("Closed event", |s| s.contains("WatchedEvent state:Closed type:None path:null"));
}

//! Shared harness for the integration tests (include it with `mod common;`).
//!
//! It provides:
//! * [`free_port`]: an unused 127.0.0.1 TCP port.
//! * [`ApacheZk`]: a real Apache ZooKeeper 3.8.0 (Debian package `zookeeper`, jars in
//!   `/usr/share/java`) in standalone mode, used as an oracle. [`ApacheZk::start`] returns `None`
//!   (and prints a "skipping" line) when the package is not installed, unless
//!   `RZK_REQUIRE_APACHE=1` is set (CI sets it), in which case it panics.
//! * [`RzkServer`]: our own `rzk-server` binary in a temp dir, with the same zoo.cfg shape.
//! * [`four_letter`]: send a four-letter word and read the reply to EOF.
//! * [`zkcli`]: run Debian's `zkCli.sh` non-interactively against a port.
//!
//! Every server gets a fresh directory under `std::env::temp_dir()` named
//! `rzk-test-<kind>-<pid>-<counter>`; it holds `zoo.cfg`, `data/` (the dataDir) and the
//! server's logs. The directory is removed on drop unless `RZK_KEEP_TEST_DIRS=1` is set.
//!
//! The zoo.cfg written for both servers is:
//! ```text
//! tickTime=2000
//! dataDir=<dir>/data
//! clientPort=<free port>
//! clientPortAddress=127.0.0.1
//! admin.enableServer=false
//! 4lw.commands.whitelist=*
//! maxClientCnxns=0
//! <extra lines given by the caller>
//! ```
//! An extra line whose key matches one of the defaults (e.g. `tickTime=500` or
//! `dataDir=/some/where`) replaces that default instead of being appended twice.
//!
//! Apache is started as (see [`ApacheZk::java_command_line`]):
//! ```text
//! java -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar:/usr/share/java/servlet-api.jar \
//!      -XX:+UseSerialGC -Xmx512m \
//!      -Dlog4j.configuration=file:<dir>/log4j.properties -Dzookeeper.log.dir=<dir> \
//!      -Dzookeeper.log.file=zookeeper.log -Dzookeeper.root.logger=INFO,FILE \
//!      -Dzookeeper.jmx.log4j.disable=true <extra jvm args> \
//!      org.apache.zookeeper.server.quorum.QuorumPeerMain <dir>/zoo.cfg
//! ```
//! zookeeper.jar's manifest `Class-Path` already lists its other dependencies (jute, netty,
//! jetty, slf4j-api, ...); only an slf4j binding + log4j (and servlet-api, needed only when the
//! AdminServer is enabled) have to be added. `/etc/zookeeper/conf` is deliberately *not* on the
//! classpath: we write our own log4j.properties so that the log goes to `<dir>/zookeeper.log`
//! and nothing reaches the test's stdout.

#![allow(dead_code)]

pub mod ensemble;

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The Apache jar from Debian's `zookeeper` package.
pub const APACHE_JAR: &str = "/usr/share/java/zookeeper.jar";
/// Debian's zkCli.sh (not on PATH; Debian does not ship /usr/bin/zkCli).
pub const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
/// Extra jars added to zookeeper.jar (its manifest Class-Path covers everything else).
const APACHE_EXTRA_JARS: &[&str] = &[
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
    "/usr/share/java/servlet-api.jar",
];
/// How long a server may take to answer `ruok` with `imok` and `srvr` with a real state.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a zkCli.sh run may take before it is killed.
pub const ZKCLI_TIMEOUT: Duration = Duration::from_secs(60);

fn env_flag(name: &str) -> bool {
    matches!(
        std::env::var(name).as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

/// An unused TCP port on 127.0.0.1, below the kernel's ephemeral range.
///
/// Not `bind(0)`: that hands out a port from the ephemeral range (32768–60999 on Linux), and
/// until the server under test binds it, any outgoing connection (an ensemble member dialling
/// its peers, a client) may be given the same port as its source port; the server then fails
/// to bind. Ports are taken in turn from 15000–31999, starting at a place derived from the
/// pid so that two test binaries rarely walk the same ports, and each is checked by binding it.
pub fn free_port() -> u16 {
    const LOW: u32 = 15000;
    const SPAN: u32 = 17000;
    static NEXT: AtomicU64 = AtomicU64::new(u64::MAX);
    let start = (std::process::id().wrapping_mul(7919) % SPAN) as u64;
    let _ = NEXT.compare_exchange(u64::MAX, start, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = (LOW + (n % SPAN as u64) as u32) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}..{}", LOW + SPAN);
}

// ---------------------------------------------------------------------------------------------
// Temp dirs
// ---------------------------------------------------------------------------------------------

/// A fresh directory under `std::env::temp_dir()`, removed on drop
/// (kept when `RZK_KEEP_TEST_DIRS=1`).
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    pub fn new(kind: &str) -> TestDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        loop {
            let n = COUNTER.fetch_add(1, Ordering::SeqCst);
            let path = base.join(format!("rzk-test-{kind}-{}-{n}", std::process::id()));
            match fs::create_dir_all(&base).and_then(|_| fs::create_dir(&path)) {
                Ok(()) => return TestDir { path },
                // A leftover from an earlier process that had the same pid: pick the next name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create test dir {}: {e}", path.display()),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if env_flag("RZK_KEEP_TEST_DIRS") {
            eprintln!("keeping test dir {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Recursively copy a directory (e.g. one server's dataDir into another's).
pub fn copy_dir(src: &Path, dst: &Path) -> io::Result<()> {
    fs::create_dir_all(dst)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let to = dst.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &to)?;
        } else {
            fs::copy(entry.path(), &to)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// zoo.cfg
// ---------------------------------------------------------------------------------------------

fn cfg_key(line: &str) -> Option<&str> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    let end = t.find(['=', ':']).unwrap_or(t.len());
    Some(t[..end].trim())
}

/// Builds the zoo.cfg text; returns (text, effective dataDir).
fn build_cfg(dir: &Path, port: u16, extra: &[&str]) -> (String, PathBuf) {
    let default_data = dir.join("data");
    let defaults = [
        ("tickTime", "2000".to_string()),
        ("dataDir", default_data.display().to_string()),
        ("clientPort", port.to_string()),
        ("clientPortAddress", "127.0.0.1".to_string()),
        ("admin.enableServer", "false".to_string()),
        ("4lw.commands.whitelist", "*".to_string()),
        ("maxClientCnxns", "0".to_string()),
        // Keeps rzk's Prometheus endpoint (on by default, port 7000) out of parallel test
        // servers' way; Apache's default provider is the same class.
        ("metricsProvider.className", "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider".to_string()),
    ];
    let overridden: Vec<&str> = extra.iter().filter_map(|l| cfg_key(l)).collect();
    let mut text = String::new();
    for (k, v) in &defaults {
        if !overridden.contains(k) {
            text.push_str(&format!("{k}={v}\n"));
        }
    }
    let mut data_dir = default_data;
    for line in extra {
        text.push_str(line.trim());
        text.push('\n');
        if cfg_key(line) == Some("dataDir") {
            let v = line.trim().split_once(['=', ':']).map_or("", |(_, v)| v).trim();
            data_dir = PathBuf::from(v);
        }
    }
    (text, data_dir)
}

// ---------------------------------------------------------------------------------------------
// Process helpers
// ---------------------------------------------------------------------------------------------

fn tail(path: &Path, max_lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(max_lines);
    lines[start..].join("\n")
}

pub enum WaitError {
    Exited(ExitStatus),
    Timeout,
}

const NOT_SERVING: &str = "not currently serving requests";

/// Until the server on `port` answers `ruok` with `imok` and `srvr` does not say "This
/// ZooKeeper instance is not currently serving requests", the child exits, or `START_TIMEOUT`
/// elapses (see `wait_probe`; Apache offers no readiness event of its own).
fn wait_serving_by_log(child: &mut Child, port: u16, log_dir: &Path) -> Result<Duration, WaitError> {
    let started = Instant::now();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_probe(child, log_dir, started + START_TIMEOUT, || {
        let budget = Duration::from_secs(2);
        // Apache answers `imok` as soon as the port is bound, even before the database is
        // loaded; until then every other command says "not currently serving". So also wait
        // for `srvr` to report a real state.
        four_letter_at(addr, "ruok", budget).is_ok_and(|r| r == "imok")
            && four_letter_at(addr, "srvr", budget).is_ok_and(|t| !t.contains(NOT_SERVING))
    })?;
    Ok(started.elapsed())
}

/// Until `ready()` is true, the child exits, or `deadline`. Between two calls of `ready` it
/// blocks until the server writes to a file in `log_dir` (a server logs as it starts) or
/// exits, and `ready` runs at least once a second, in case readiness came after the last line
/// logged.
pub fn wait_probe(child: &mut Child, log_dir: &Path, deadline: Instant, mut ready: impl FnMut() -> bool) -> Result<(), WaitError> {
    let pid = PidFd::open(child.id()).expect("pidfd_open");
    let watch = DirWatch::new(log_dir);
    loop {
        watch.drain();
        if let Ok(Some(status)) = child.try_wait() {
            return Err(WaitError::Exited(status));
        }
        if Instant::now() >= deadline {
            return Err(WaitError::Timeout);
        }
        if ready() {
            return Ok(());
        }
        wait_readable(&[watch.fd(), pid.fd()], deadline.min(Instant::now() + Duration::from_secs(1)));
    }
}

/// Until the server reports `READY=1` on its NOTIFY_SOCKET (src/server/notify.rs), exits, or
/// `START_TIMEOUT` elapses: blocks on the socket and on the child's pidfd.
pub fn wait_notified_ready(child: &mut Child, notify: &mut Notify) -> Result<Duration, WaitError> {
    let started = Instant::now();
    let deadline = started + START_TIMEOUT;
    let pid = PidFd::open(child.id()).expect("pidfd_open");
    loop {
        notify.drain();
        if notify.ready {
            return Ok(started.elapsed());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(WaitError::Exited(status));
        }
        if !wait_readable(&[notify.fd(), pid.fd()], deadline) {
            return Err(WaitError::Timeout);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Events: what tests block on instead of sleeping
// ---------------------------------------------------------------------------------------------

pub use rzk::server::notify::{Listener as Notify, PidFd, wait_readable};

/// inotify on a directory: readable when a file in it is created or written.
pub struct DirWatch(i32);

impl DirWatch {
    pub fn new(dir: &Path) -> DirWatch {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: plain syscalls on a new fd and a NUL-terminated path.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(fd >= 0, "inotify_init1: {}", io::Error::last_os_error());
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).expect("dir path");
        let wd = unsafe { libc::inotify_add_watch(fd, c.as_ptr(), libc::IN_MODIFY | libc::IN_CREATE | libc::IN_CLOSE_WRITE) };
        assert!(wd >= 0, "inotify_add_watch {}: {}", dir.display(), io::Error::last_os_error());
        DirWatch(fd)
    }
    pub fn fd(&self) -> i32 {
        self.0
    }
    /// Discards the events read so far.
    pub fn drain(&self) {
        let mut buf = [0u8; 4096];
        // SAFETY: reads into a local buffer of the given size; non-blocking.
        while unsafe { libc::read(self.0, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
    }
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        // SAFETY: the fd is ours.
        unsafe { libc::close(self.0) };
    }
}

/// An rzk-server's NOTIFY_SOCKET (src/server/notify.rs) at `<dir>/notify.sock`.
pub fn notify_socket(dir: &Path) -> Notify {
    let path = dir.join("notify.sock");
    Notify::bind(&path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()))
}

fn kill_child(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status.
fn terminate_child(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(st)) = child.try_wait() {
        return Some(st);
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Some(st) = wait_exit(child, Instant::now() + grace) {
        return Some(st);
    }
    let _ = child.kill();
    child.wait().ok()
}

/// Waits for a child to exit until `deadline`; None if it is still running then. std has no
/// wait-with-timeout, so this blocks in poll(2) on a pidfd of the child, which becomes readable
/// when it exits.
pub fn wait_exit(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    let pid = PidFd::open(child.id()).expect("pidfd_open");
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) => {}
            Err(e) => panic!("waiting for child {}: {e}", child.id()),
        }
        if !wait_readable(&[pid.fd()], deadline) {
            return child.try_wait().ok().flatten();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Apache ZooKeeper
// ---------------------------------------------------------------------------------------------

pub const LOG4J_PROPERTIES: &str = "\
log4j.rootLogger=${zookeeper.root.logger}
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File=${zookeeper.log.dir}/${zookeeper.log.file}
log4j.appender.FILE.Append=true
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
";

/// A running standalone Apache ZooKeeper (killed and its dir removed on drop).
pub struct ApacheZk {
    pub port: u16,
    /// How long the last start took until it answered `ruok`/`srvr` as ready.
    pub startup: Duration,
    cfg_path: PathBuf,
    data_dir: PathBuf,
    jvm_args: Vec<String>,
    child: Child,
    dir: TestDir,
}

impl ApacheZk {
    /// Is Debian's zookeeper package installed?
    pub fn available() -> bool {
        Path::new(APACHE_JAR).exists()
    }

    /// `false` (with a "skipping" line) if Apache is not installed and
    /// `RZK_REQUIRE_APACHE=1` is not set; panics if it is set.
    pub fn check_available() -> bool {
        if Self::available() {
            return true;
        }
        if env_flag("RZK_REQUIRE_APACHE") {
            panic!(
                "RZK_REQUIRE_APACHE=1 but Apache ZooKeeper is not installed ({APACHE_JAR} missing; \
                 apt-get install zookeeper)"
            );
        }
        println!("skipping: Apache ZooKeeper not installed ({APACHE_JAR} missing)");
        false
    }

    pub fn start() -> Option<ApacheZk> {
        Self::start_with(&[])
    }

    /// `extra_cfg_lines` are appended to zoo.cfg, e.g. `extendedTypesEnabled=true`,
    /// `enforceQuota=true`.
    pub fn start_with(extra_cfg_lines: &[&str]) -> Option<ApacheZk> {
        Self::start_full(extra_cfg_lines, &[])
    }

    /// Also passes JVM arguments, e.g. `-Djute.maxbuffer=4096` or `-Dreadonlymode.enabled=true`
    /// (those two are JVM-only and are ignored in zoo.cfg).
    pub fn start_full(extra_cfg_lines: &[&str], jvm_args: &[&str]) -> Option<ApacheZk> {
        if !Self::check_available() {
            return None;
        }
        let jvm_args: Vec<String> = jvm_args.iter().map(|s| s.to_string()).collect();
        // A port picked by free_port() can be taken by someone else before the JVM binds it;
        // retry with a new port in that case.
        let mut last_err = String::new();
        for _attempt in 0..3 {
            let dir = TestDir::new("apache");
            let port = free_port();
            let (cfg_text, data_dir) = build_cfg(dir.path(), port, extra_cfg_lines);
            let cfg_path = dir.path().join("zoo.cfg");
            fs::write(&cfg_path, cfg_text).expect("write zoo.cfg");
            fs::write(dir.path().join("log4j.properties"), LOG4J_PROPERTIES)
                .expect("write log4j.properties");
            let child = Self::spawn_java(dir.path(), &cfg_path, &jvm_args);
            let mut zk = ApacheZk {
                port,
                startup: Duration::ZERO,
                cfg_path,
                data_dir,
                jvm_args: jvm_args.clone(),
                child,
                dir,
            };
            match zk.wait_ready() {
                Ok(()) => return Some(zk),
                Err((msg, retry)) => {
                    last_err = msg;
                    if !retry {
                        break;
                    }
                }
            }
        }
        panic!("{last_err}");
    }

    pub fn classpath() -> String {
        let mut cp = vec![APACHE_JAR];
        cp.extend(APACHE_EXTRA_JARS.iter().filter(|j| Path::new(j).exists()));
        cp.join(":")
    }

    /// The full java command line (program + args) used for a server living in `dir`.
    pub fn java_command_line(dir: &Path, cfg_path: &Path, jvm_args: &[String]) -> Vec<String> {
        let java = std::env::var("JAVA").unwrap_or_else(|_| "java".to_string());
        let mut v = vec![
            java,
            "-cp".to_string(),
            Self::classpath(),
            "-XX:+UseSerialGC".to_string(),
            "-Xmx512m".to_string(),
            format!(
                "-Dlog4j.configuration=file:{}",
                dir.join("log4j.properties").display()
            ),
            format!("-Dzookeeper.log.dir={}", dir.display()),
            "-Dzookeeper.log.file=zookeeper.log".to_string(),
            "-Dzookeeper.root.logger=INFO,FILE".to_string(),
            "-Dzookeeper.jmx.log4j.disable=true".to_string(),
        ];
        v.extend(jvm_args.iter().cloned());
        v.push("org.apache.zookeeper.server.quorum.QuorumPeerMain".to_string());
        v.push(cfg_path.display().to_string());
        v
    }

    fn spawn_java(dir: &Path, cfg_path: &Path, jvm_args: &[String]) -> Child {
        let argv = Self::java_command_line(dir, cfg_path, jvm_args);
        let out = fs::File::create(dir.join("stdout.log")).expect("create stdout.log");
        let err = fs::File::create(dir.join("stderr.log")).expect("create stderr.log");
        Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", argv[0]))
    }

    /// Err((message, worth retrying with another port)).
    fn wait_ready(&mut self) -> Result<(), (String, bool)> {
        match wait_serving_by_log(&mut self.child, self.port, self.dir.path()) {
            Ok(d) => {
                self.startup = d;
                Ok(())
            }
            Err(e) => {
                kill_child(&mut self.child);
                let logs = self.logs_tail(40);
                let (what, retry) = match e {
                    WaitError::Exited(st) => (
                        format!("exited early ({st})"),
                        logs.contains("Address already in use"),
                    ),
                    WaitError::Timeout => (
                        format!("did not become ready (ruok/srvr) within {START_TIMEOUT:?}"),
                        false,
                    ),
                };
                Err((
                    format!(
                        "Apache ZooKeeper on port {} {what}; dir {}\n{logs}",
                        self.port,
                        self.dir.path().display()
                    ),
                    retry,
                ))
            }
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn cfg_path(&self) -> &Path {
        &self.cfg_path
    }
    /// The effective dataDir (the data lives in `<data_dir>/version-2`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("zookeeper.log")
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Last lines of zookeeper.log, stdout and stderr of the JVM.
    pub fn logs_tail(&self, n: usize) -> String {
        let d = self.dir.path();
        format!(
            "--- zookeeper.log ---\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            tail(&d.join("zookeeper.log"), n),
            tail(&d.join("stdout.log"), n),
            tail(&d.join("stderr.log"), n)
        )
    }

    /// SIGKILL the JVM (the dir stays until drop).
    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        terminate_child(&mut self.child, grace)
    }

    /// Kill (if running) and start again with the same zoo.cfg, port and dataDir.
    pub fn restart(&mut self) {
        kill_child(&mut self.child);
        self.child = Self::spawn_java(self.dir.path(), &self.cfg_path, &self.jvm_args);
        if let Err((msg, _)) = self.wait_ready() {
            panic!("restart failed: {msg}");
        }
    }
}

impl Drop for ApacheZk {
    fn drop(&mut self) {
        kill_child(&mut self.child);
        // self.dir is dropped afterwards and removes the directory.
    }
}

// ---------------------------------------------------------------------------------------------
// rzk-server
// ---------------------------------------------------------------------------------------------

/// Path of the `rzk-server` binary built by cargo for this test run.
pub fn rzk_server_bin() -> PathBuf {
    // option_env! (not env!) so that the harness still compiles while src/bin/rzk-server.rs
    // does not exist yet; tests that need the binary then fail with a clear message.
    match option_env!("CARGO_BIN_EXE_rzk-server") {
        Some(p) => PathBuf::from(p),
        None => panic!("CARGO_BIN_EXE_rzk-server is not set: is there a src/bin/rzk-server.rs?"),
    }
}

/// A running `rzk-server start-foreground <dir>/zoo.cfg` (killed and its dir removed on drop).
pub struct RzkServer {
    pub port: u16,
    /// How long the last start took until it answered `ruok`/`srvr` as ready.
    pub startup: Duration,
    cfg_path: PathBuf,
    data_dir: PathBuf,
    child: Child,
    notify: Notify,
    dir: TestDir,
}

impl RzkServer {
    pub fn start() -> RzkServer {
        Self::start_with(&[])
    }

    /// `extra_cfg_lines` are appended to zoo.cfg (a line with a default key replaces it).
    pub fn start_with(extra_cfg_lines: &[&str]) -> RzkServer {
        let mut last_err = String::new();
        for _attempt in 0..3 {
            let dir = TestDir::new("rzk");
            let port = free_port();
            let (cfg_text, data_dir) = build_cfg(dir.path(), port, extra_cfg_lines);
            let cfg_path = dir.path().join("zoo.cfg");
            fs::write(&cfg_path, cfg_text).expect("write zoo.cfg");
            let notify = notify_socket(dir.path());
            let child = Self::spawn(dir.path(), &cfg_path, notify.env_value());
            let mut s = RzkServer {
                port,
                startup: Duration::ZERO,
                cfg_path,
                data_dir,
                child,
                notify,
                dir,
            };
            match s.wait_ready() {
                Ok(()) => return s,
                Err((msg, retry)) => {
                    last_err = msg;
                    if !retry {
                        break;
                    }
                }
            }
        }
        panic!("{last_err}");
    }

    fn spawn(dir: &Path, cfg_path: &Path, notify: &std::ffi::OsStr) -> Child {
        let bin = rzk_server_bin();
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("stdout.log"))
            .expect("open stdout.log");
        let err = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("stderr.log"))
            .expect("open stderr.log");
        Command::new(&bin)
            .arg("start-foreground")
            .arg(cfg_path)
            .current_dir(dir)
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1")
            .env("NOTIFY_SOCKET", notify)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", bin.display()))
    }

    fn wait_ready(&mut self) -> Result<(), (String, bool)> {
        match wait_notified_ready(&mut self.child, &mut self.notify) {
            Ok(d) => {
                self.startup = d;
                Ok(())
            }
            Err(e) => {
                kill_child(&mut self.child);
                let logs = self.logs_tail(40);
                let (what, retry) = match e {
                    WaitError::Exited(st) => {
                        let l = logs.to_ascii_lowercase();
                        (
                            format!("exited early ({st})"),
                            l.contains("address already in use") || l.contains("addrinuse"),
                        )
                    }
                    WaitError::Timeout => (
                        format!("did not report READY=1 within {START_TIMEOUT:?}"),
                        false,
                    ),
                };
                Err((
                    format!(
                        "rzk-server on port {} {what}; dir {}\n{logs}",
                        self.port,
                        self.dir.path().display()
                    ),
                    retry,
                ))
            }
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn cfg_path(&self) -> &Path {
        &self.cfg_path
    }
    /// The effective dataDir (the data lives in `<data_dir>/version-2`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote to stdout and stderr so far.
    pub fn output(&self) -> (String, String) {
        let d = self.dir.path();
        (
            fs::read_to_string(d.join("stdout.log")).unwrap_or_default(),
            fs::read_to_string(d.join("stderr.log")).unwrap_or_default(),
        )
    }

    pub fn logs_tail(&self, n: usize) -> String {
        let d = self.dir.path();
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            tail(&d.join("stdout.log"), n),
            tail(&d.join("stderr.log"), n)
        )
    }

    /// SIGKILL (the dir stays until drop).
    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        terminate_child(&mut self.child, grace)
    }

    /// What the server reported on its NOTIFY_SOCKET.
    pub fn notify(&mut self) -> &mut Notify {
        &mut self.notify
    }

    /// Is the process still running?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kill (if running) and start again with the same zoo.cfg, port and dataDir.
    pub fn restart(&mut self) {
        kill_child(&mut self.child);
        self.notify.reset();
        self.child = Self::spawn(self.dir.path(), &self.cfg_path, self.notify.env_value());
        if let Err((msg, _)) = self.wait_ready() {
            panic!("restart failed: {msg}");
        }
    }
}

impl Drop for RzkServer {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

// ---------------------------------------------------------------------------------------------
// Four-letter words
// ---------------------------------------------------------------------------------------------

fn four_letter_at(addr: SocketAddr, cmd: &str, timeout: Duration) -> io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(cmd.as_bytes())?;
    let mut buf = Vec::new();
    match s.read_to_end(&mut buf) {
        Ok(_) => {}
        // The server closes right after writing; a reset after some output is still a reply.
        Err(e) if !buf.is_empty() && e.kind() == io::ErrorKind::ConnectionReset => {}
        Err(e) => return Err(e),
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Like [`four_letter`] but returns connection/read errors instead of panicking.
pub fn try_four_letter(port: u16, cmd: &str) -> io::Result<String> {
    four_letter_at(([127, 0, 0, 1], port).into(), cmd, Duration::from_secs(10))
}

/// Send the 4 bytes of `cmd` to 127.0.0.1:`port`, read to EOF, return the text.
/// (An unknown command makes the server close without output: "".)
pub fn four_letter(port: u16, cmd: &str) -> String {
    try_four_letter(port, cmd)
        .unwrap_or_else(|e| panic!("four-letter word {cmd:?} to port {port} failed: {e}"))
}

// ---------------------------------------------------------------------------------------------
// zkCli.sh
// ---------------------------------------------------------------------------------------------

pub fn zkcli_available() -> bool {
    Path::new(ZKCLI).exists()
}

/// Run Debian's zkCli.sh non-interactively:
/// `/usr/share/zookeeper/bin/zkCli.sh -server 127.0.0.1:<port> <args...>` with stdin = /dev/null.
/// Returns (exit status, stdout, stderr). The status is -1 if it was killed after `ZKCLI_TIMEOUT`
/// or died by a signal. The `SLF4J: ...` warning lines (Debian's zkEnv.sh puts no slf4j binding on
/// the classpath) are removed from stderr.
///
/// What 3.8.0's zkCli prints (seen live):
/// * stdout always starts with `Connecting to 127.0.0.1:<port>`, then (after connecting)
///   `\nWATCHER::\n\nWatchedEvent state:SyncConnected type:None path:null`; use
///   [`strip_zkcli_noise`] to drop those lines. `get /x` prints the data on stdout.
/// * `create /x hi` prints `Created /x` on **stderr**; errors such as
///   `Node does not exist: /nope` also go to stderr, with exit status 1. Success is status 0.
/// * No server: `KeeperErrorCode = ConnectionLoss for /x` on stderr, status 1 (fast).
pub fn zkcli(port: u16, args: &[&str]) -> (i32, String, String) {
    assert!(
        zkcli_available(),
        "{ZKCLI} not found (apt-get install zookeeper)"
    );
    let server = format!("127.0.0.1:{port}");
    // Own process group: zkCli.sh runs java as a child (no exec), so a timeout must kill both.
    let mut child = Command::new(ZKCLI)
        .process_group(0)
        .arg("-server")
        .arg(&server)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {ZKCLI}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + ZKCLI_TIMEOUT;
    let status = match wait_exit(&mut child, deadline) {
        Some(st) => st.code().unwrap_or(-1),
        None => {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            -1
        }
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    let stderr: String = stderr
        .lines()
        .filter(|l| !l.starts_with("SLF4J: "))
        .map(|l| format!("{l}\n"))
        .collect();
    (status, stdout, stderr)
}

/// Drop zkCli's connection chatter from its stdout (`Connecting to ...`, `WATCHER::`,
/// `WatchedEvent state:SyncConnected type:None path:null`, blank lines), leaving the command's
/// own output.
pub fn strip_zkcli_noise(stdout: &str) -> String {
    stdout
        .lines()
        .filter(|l| {
            !(l.is_empty()
                || l.starts_with("Connecting to ")
                || *l == "WATCHER::"
                || *l == "WatchedEvent state:SyncConnected type:None path:null")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A client of `hosts` (connected, or panics after 20 s) whose watch and state events arrive
/// on the returned channel.
pub fn connect_watched(hosts: &str) -> (rzk::cli::client::Client, std::sync::mpsc::Receiver<rzk::cli::client::WatchedEvent>) {
    use rzk::cli::client::{Client, States, WatchedEvent};
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let c = Client::connect(hosts, 10_000, false, std::sync::Arc::new(move |ev: &WatchedEvent| {
        let _ = tx.lock().unwrap().send(ev.clone());
    }))
    .unwrap();
    assert_eq!(c.wait_connected(Duration::from_secs(20), false), States::Connected, "client to {hosts}");
    (c, rx)
}

/// The next event on `events` that `want` accepts (earlier ones are skipped); panics after
/// `limit` naming `what`.
pub fn next_event(
    events: &std::sync::mpsc::Receiver<rzk::cli::client::WatchedEvent>,
    limit: Duration,
    what: &str,
    want: impl Fn(&rzk::cli::client::WatchedEvent) -> bool,
) -> rzk::cli::client::WatchedEvent {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(ev) if want(&ev) => return ev,
            Ok(_) => {}
            Err(_) => panic!("timed out after {limit:?} waiting for the event {what}"),
        }
    }
}

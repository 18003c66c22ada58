//! rzk-server: the ZooKeeper-compatible server, with zkServer.sh's verbs.
//!
//! ```text
//! rzk-server [--config <conf-dir>] {start|start-foreground|stop|restart|status|print-cmd|version} [cfg]
//! ```
//!
//! The verbs behave like Apache ZooKeeper 3.8's `zkServer.sh` (reference §5.3): the same stdout
//! lines and exit codes, `Using config: <path>` on stderr, the pid file
//! `<dataDir>/zookeeper_server.pid` (decimal, no newline; `$ZOOPIDFILE` overrides it), and the
//! daemon's output in `$ZOO_LOG_DIR/zookeeper-$USER-server-$HOSTNAME.out`. Where zkServer.sh only
//! sleeps, rzk waits for the real event: `start` waits until the server answers `srvr` with a
//! `Mode:` line, `stop` until the process has exited. docs/operations.md is the operator's guide.

use clap::{Parser, Subcommand};
use rzk::server::config::ServerConfig;
use rzk::server::notify::{Listener, PidFd, wait_readable};
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command as Proc, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "rzk-server",
    version,
    about = "A ZooKeeper-compatible coordination service",
    after_help = "Config lookup (as zkServer.sh): [cfg] with a '/' is a path; a bare name is looked up in the \
                  config directory (--config, else $ZOOCFGDIR, else <binary dir>/../conf if present, else the current \
                  directory). Without [cfg]: <config dir>/${ZOOCFG:-zoo.cfg}; if that does not exist and nothing was \
                  named, the built-in default (127.0.0.1:2181, dataDir ./data).\n\
                  Environment: ZOOCFGDIR, ZOOCFG, ZOOPIDFILE, ZOO_LOG_DIR (default ./logs), ZOO_LOG_FILE, \
                  ZOO_START_TIMEOUT (s, default 60), ZOO_STOP_TIMEOUT (s, default 30), RZK_LOG (log filter, default info)."
)]
struct Cli {
    /// Directory holding the config (as zkServer.sh's --config); overrides $ZOOCFGDIR.
    #[arg(long = "config", global = true, value_name = "conf-dir")]
    config_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server in the background; wait until it serves.
    Start {
        /// zoo.cfg: a path, or a file name in the config directory (see `rzk-server --help`)
        cfg: Option<String>,
    },
    /// Run the server in the foreground (logs to stderr unless --log-dir is given).
    StartForeground {
        /// zoo.cfg: a path, or a file name in the config directory (see `rzk-server --help`)
        cfg: Option<String>,
        /// Write the log to <dir>/zookeeper-$USER-server-$HOSTNAME.<date>.log, rotated daily
        /// (7 files kept), instead of stderr.
        #[arg(long, value_name = "dir")]
        log_dir: Option<PathBuf>,
    },
    /// Stop the server whose pid is in the pid file (SIGTERM, then wait for it to exit).
    Stop {
        /// zoo.cfg: a path, or a file name in the config directory (see `rzk-server --help`)
        cfg: Option<String>,
    },
    /// stop, then start.
    Restart {
        /// zoo.cfg: a path, or a file name in the config directory (see `rzk-server --help`)
        cfg: Option<String>,
    },
    /// Ask the server for its mode with the srvr four-letter word.
    Status {
        /// zoo.cfg: a path, or a file name in the config directory (see `rzk-server --help`)
        cfg: Option<String>,
    },
    /// Print the command line `start` runs.
    PrintCmd {
        /// zoo.cfg: a path, or a file name in the config directory (see `rzk-server --help`)
        cfg: Option<String>,
    },
    /// Print the version.
    Version,
}

// ---------------------------------------------------------------------------------------------
// Config lookup

/// Where the config came from.
enum Source {
    File(PathBuf),
    BuiltIn,
}

struct Loaded {
    source: Source,
    cfg: ServerConfig,
}

impl Loaded {
    /// The config argument to give a child process (absolute, so it does not depend on a cwd).
    fn child_arg(&self) -> Option<PathBuf> {
        match &self.source {
            Source::File(p) => Some(absolute(p)),
            Source::BuiltIn => None,
        }
    }
}

/// `p` made absolute against the current directory, without `.` components.
fn absolute(p: &Path) -> PathBuf {
    let full = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    };
    full.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect()
}

fn env_nonempty(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// zoo.cfg as zkServer.sh finds it. `Err` when a config was named but does not exist.
fn find_config(arg: Option<&str>, config_dir: Option<&Path>) -> Result<Source, String> {
    let explicit_dir = config_dir.map(Path::to_path_buf).or_else(|| env_nonempty("ZOOCFGDIR").map(PathBuf::from));
    let default_dir = || {
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|b| b.join("../conf")))
            .filter(|d| d.is_dir())
    };
    let dir = explicit_dir.clone().or_else(default_dir);
    let missing = |p: &Path| {
        format!(
            "config file {} does not exist (give the zoo.cfg path as the last argument, or set ZOOCFGDIR/ZOOCFG)",
            p.display()
        )
    };
    if let Some(a) = arg {
        let p = match &dir {
            Some(d) if !a.contains('/') => d.join(a),
            _ => PathBuf::from(a),
        };
        return if p.is_file() { Ok(Source::File(p)) } else { Err(missing(&p)) };
    }
    let name = env_nonempty("ZOOCFG");
    let file = name.clone().unwrap_or_else(|| "zoo.cfg".to_string());
    let p = if file.contains('/') {
        PathBuf::from(&file)
    } else {
        match &dir {
            Some(d) => d.join(&file),
            None => PathBuf::from(&file),
        }
    };
    if p.is_file() {
        return Ok(Source::File(p));
    }
    if explicit_dir.is_some() || name.is_some() {
        return Err(missing(&p));
    }
    // Nothing named and no zoo.cfg found: the built-in default.
    Ok(Source::BuiltIn)
}

/// Finds, announces (`Using config: ...` on stderr, as zkServer.sh) and parses the config.
fn load(arg: Option<&str>, config_dir: Option<&Path>) -> Result<Loaded, String> {
    match find_config(arg, config_dir)? {
        Source::File(path) => {
            eprintln!("Using config: {}", path.display());
            let cfg = ServerConfig::load(&path).map_err(|e| e.to_string())?;
            Ok(Loaded { source: Source::File(path), cfg })
        }
        Source::BuiltIn => {
            eprintln!("Using config: <built-in default> (clientPort 2181 on 127.0.0.1, dataDir ./data)");
            let mut cfg = ServerConfig::default_standalone(PathBuf::from("./data"));
            // The built-in default is loopback only: so are its AdminServer and /metrics.
            cfg.admin_server_address = "127.0.0.1".to_string();
            cfg.metrics_host = "127.0.0.1".to_string();
            Ok(Loaded { source: Source::BuiltIn, cfg })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Paths: pid file and logs

fn pid_file(cfg: &ServerConfig) -> PathBuf {
    match env_nonempty("ZOOPIDFILE") {
        Some(p) => PathBuf::from(p),
        None => cfg.data_dir.join("zookeeper_server.pid"),
    }
}

fn log_dir() -> PathBuf {
    absolute(&PathBuf::from(env_nonempty("ZOO_LOG_DIR").unwrap_or_else(|| "logs".to_string())))
}

fn user_name() -> String {
    if let Some(u) = env_nonempty("USER") {
        return u;
    }
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() }.to_string();
    fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|pw| {
            pw.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid).then(|| f[0].to_string())
            })
        })
        .unwrap_or_default()
}

fn host_name() -> String {
    env_nonempty("HOSTNAME")
        .or_else(|| fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|s| s.trim().to_string()))
        .unwrap_or_else(|| "localhost".to_string())
}

/// `zookeeper-$USER-server-$HOSTNAME`, the stem of the daemon's .out and .log files.
fn log_stem() -> String {
    format!("zookeeper-{}-server-{}", user_name(), host_name())
}

fn daemon_out(dir: &Path) -> PathBuf {
    dir.join(format!("{}.out", log_stem()))
}

/// The rolling log file's prefix: `$ZOO_LOG_FILE` without `.log`, else the stem.
fn log_file_prefix() -> String {
    match env_nonempty("ZOO_LOG_FILE") {
        Some(f) => f.strip_suffix(".log").unwrap_or(&f).to_string(),
        None => log_stem(),
    }
}

fn env_secs(key: &str, default: u64) -> Duration {
    Duration::from_secs(env_nonempty(key).and_then(|v| v.parse().ok()).unwrap_or(default))
}

// ---------------------------------------------------------------------------------------------
// Processes

/// Is `pid` a live process? A zombie (exited, not yet reaped) is not.
fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) {
        let state = stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next());
        return !matches!(state, Some('Z') | Some('X'));
    }
    // SAFETY: kill with signal 0 only checks for existence/permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

enum PidFile {
    Missing,
    Pid(i32),
    Garbage(String),
}

fn read_pid_file(path: &Path) -> PidFile {
    match fs::read_to_string(path) {
        Err(_) => PidFile::Missing,
        Ok(t) => match t.trim().parse::<i32>() {
            Ok(p) if p > 0 => PidFile::Pid(p),
            _ => PidFile::Garbage(t),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Talking to the server

/// The client address to contact, as zkServer.sh status finds it: (host as printed, port).
fn client_endpoint(cfg: &ServerConfig) -> Result<(String, u16), String> {
    let mut host = cfg.client_port_address.clone().unwrap_or_else(|| "localhost".to_string());
    if let Some(port) = cfg.client_port {
        return Ok((host, port));
    }
    // Quorum style: the ";[host:]port" part of this server's server.N line.
    let myid = fs::read_to_string(cfg.data_dir.join("myid")).ok().and_then(|s| s.trim().parse::<u64>().ok());
    match myid {
        None => println!("myid could not be determined, will not able to locate clientPort in the server configs."),
        Some(id) => match cfg.servers.iter().find(|(n, _)| *n == id).and_then(|(_, v)| v.split_once(';').map(|x| x.1.trim().to_string())) {
            None => println!("Client port not found in the server configs"),
            Some(cp) => {
                let port_str = match cp.rsplit_once(':') {
                    Some((h, p)) => {
                        host = h.trim_start_matches('[').trim_end_matches(']').to_string();
                        p
                    }
                    None => cp.as_str(),
                };
                if let Ok(port) = port_str.parse::<u16>() {
                    return Ok((host, port));
                }
                println!("Client port not found in the server configs");
            }
        },
    }
    Err("Unable to find either secure or unsecure client port in any configs. Terminating.".to_string())
}

/// The socket addresses for `host:port`; unspecified addresses (0.0.0.0, ::) mean this machine.
fn resolve(host: &str, port: u16) -> Vec<SocketAddr> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    let mut addrs: Vec<SocketAddr> = (h, port).to_socket_addrs().map(|i| i.collect()).unwrap_or_default();
    for a in &mut addrs {
        if a.ip().is_unspecified() {
            let lo: std::net::IpAddr = if a.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() };
            a.set_ip(lo);
        }
    }
    addrs
}

/// Sends a four-letter word and reads the reply to EOF (FourLetterWordMain).
fn four_letter(host: &str, port: u16, cmd: &str, timeout: Duration) -> Option<String> {
    for addr in resolve(host, port) {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, timeout) else { continue };
        let _ = s.set_read_timeout(Some(timeout));
        let _ = s.set_write_timeout(Some(timeout));
        if s.write_all(cmd.as_bytes()).is_err() {
            continue;
        }
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        if !buf.is_empty() {
            return Some(String::from_utf8_lossy(&buf).into_owned());
        }
    }
    None
}

/// The `Mode: ...` line of `srvr`, if the server answers with one.
fn mode_line(host: &str, port: u16, timeout: Duration) -> Option<String> {
    four_letter(host, port, "srvr", timeout)?.lines().find(|l| l.contains("Mode")).map(str::to_string)
}

/// Does anything accept connections on the client address?
fn port_in_use(host: &str, port: u16) -> bool {
    resolve(host, port).iter().any(|a| TcpStream::connect_timeout(a, Duration::from_millis(500)).is_ok())
}

fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn flush() {
    let _ = std::io::stdout().flush();
}

// ---------------------------------------------------------------------------------------------
// Verbs

fn cmd_start(l: &Loaded) -> ExitCode {
    print!("Starting zookeeper ... ");
    flush();
    let pid_path = pid_file(&l.cfg);
    match read_pid_file(&pid_path) {
        PidFile::Pid(pid) if alive(pid) => {
            println!("already running as process {pid}.");
            return ExitCode::from(1);
        }
        PidFile::Pid(pid) => {
            eprintln!("Removing stale pid file {} (process {pid} is not running)", pid_path.display());
            let _ = fs::remove_file(&pid_path);
        }
        PidFile::Garbage(t) => {
            eprintln!("Removing pid file {} (it holds {:?}, not a process id)", pid_path.display(), t.trim());
            let _ = fs::remove_file(&pid_path);
        }
        PidFile::Missing => {}
    }
    let endpoint = client_endpoint(&l.cfg).ok();
    if let Some((host, port)) = &endpoint
        && port_in_use(host, *port)
    {
        println!("FAILED TO START");
        eprintln!(
            "Client port {host}:{port} is already in use by another process (another ZooKeeper server without a pid file at {}?)",
            pid_path.display()
        );
        return ExitCode::from(1);
    }
    let logs = log_dir();
    if let Err(e) = fs::create_dir_all(&logs) {
        println!("FAILED TO START");
        eprintln!("cannot create ZOO_LOG_DIR {}: {e}", logs.display());
        return ExitCode::from(1);
    }
    if let Some(parent) = pid_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = fs::create_dir_all(parent);
    }
    let out_path = daemon_out(&logs);
    let (out, err) = match fs::File::create(&out_path).and_then(|f| Ok((f.try_clone()?, f))) {
        Ok(x) => x,
        Err(e) => {
            println!("FAILED TO START");
            eprintln!("cannot create {}: {e}", out_path.display());
            return ExitCode::from(1);
        }
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            println!("SERVER DID NOT START");
            eprintln!("cannot find the rzk-server binary: {e}");
            return ExitCode::from(1);
        }
    };
    // The daemon reports READY=1 here once it serves (an ensemble member: once it leads or
    // follows); a socket in the abstract namespace, named after this process.
    let mut ready = Listener::bind_abstract(&format!("rzk-server-start-{}", std::process::id())).ok();
    let mut cmd = Proc::new(&exe);
    if let Some(n) = &ready {
        cmd.env("NOTIFY_SOCKET", n.env_value());
    }
    cmd.arg("start-foreground");
    if let Some(c) = l.child_arg() {
        cmd.arg(c);
    }
    cmd.arg("--log-dir").arg(&logs).stdin(Stdio::null()).stdout(out).stderr(err);
    // Detach from the terminal's session, as nohup + & does (no SIGHUP/SIGINT from it).
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            println!("SERVER DID NOT START");
            eprintln!("cannot run {}: {e}", exe.display());
            return ExitCode::from(1);
        }
    };
    let pid = child.id();
    if let Err(e) = fs::write(&pid_path, pid.to_string()) {
        println!("FAILED TO WRITE PID");
        eprintln!("cannot write {}: {e}", pid_path.display());
        let _ = child.kill();
        let _ = child.wait();
        return ExitCode::from(1);
    }
    let timeout = env_secs("ZOO_START_TIMEOUT", 60);
    let deadline = Instant::now() + timeout;
    let pidfd = PidFd::open(pid).ok();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            println!("FAILED TO START");
            let _ = fs::remove_file(&pid_path);
            eprintln!("The server exited ({status}). Last lines of {}:\n{}", out_path.display(), tail(&out_path, 15));
            return ExitCode::from(1);
        }
        if let Some(n) = ready.as_mut() {
            n.drain();
        }
        if ready.as_ref().is_some_and(|n| n.ready)
            || (ready.is_none()
                && endpoint.as_ref().is_some_and(|(host, port)| mode_line(host, *port, Duration::from_secs(1)).is_some()))
        {
            if matches!(child.try_wait(), Ok(None)) {
                println!("STARTED");
                return ExitCode::SUCCESS;
            }
            continue;
        }
        if Instant::now() >= deadline {
            println!("FAILED TO START");
            eprintln!(
                "Process {pid} is running but did not report serving within {} s; see {}. It was left running: `rzk-server stop` ends it.",
                timeout.as_secs(),
                out_path.display()
            );
            return ExitCode::from(1);
        }
        // Block until the server says READY=1 or exits (no socket: ask srvr again in 50 ms).
        match (&ready, &pidfd) {
            (Some(n), Some(p)) => {
                wait_readable(&[n.fd(), p.fd()], deadline);
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn cmd_stop(l: &Loaded) -> ExitCode {
    print!("Stopping zookeeper ... ");
    flush();
    let pid_path = pid_file(&l.cfg);
    let pid = match read_pid_file(&pid_path) {
        PidFile::Missing => {
            println!("no zookeeper to stop (could not find file {})", pid_path.display());
            return ExitCode::SUCCESS;
        }
        PidFile::Garbage(t) => {
            eprintln!("pid file {} holds {:?}, not a process id; removing it", pid_path.display(), t.trim());
            let _ = fs::remove_file(&pid_path);
            println!("STOPPED");
            return ExitCode::SUCCESS;
        }
        PidFile::Pid(p) => p,
    };
    if alive(pid) {
        // SAFETY: plain kill(2).
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let timeout = env_secs("ZOO_STOP_TIMEOUT", 30);
        let deadline = Instant::now() + timeout;
        let pidfd = PidFd::open(pid as u32).ok();
        while alive(pid) {
            if Instant::now() >= deadline {
                println!("FAILED TO STOP");
                eprintln!(
                    "process {pid} is still running {} s after SIGTERM; pid file {} kept (kill -9 {pid} to force)",
                    timeout.as_secs(),
                    pid_path.display()
                );
                return ExitCode::from(1);
            }
            // Block until it exits (without a pidfd: look again in 20 ms).
            match &pidfd {
                Some(p) => {
                    wait_readable(&[p.fd()], deadline);
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    } else {
        eprintln!("process {pid} was not running; removing the stale pid file {}", pid_path.display());
    }
    let _ = fs::remove_file(&pid_path);
    println!("STOPPED");
    ExitCode::SUCCESS
}

fn cmd_status(l: &Loaded) -> ExitCode {
    let (host, port) = match client_endpoint(&l.cfg) {
        Ok(x) => x,
        Err(msg) => {
            println!("{msg}");
            return ExitCode::from(1);
        }
    };
    println!("Client port found: {port}. Client address: {host}. Client SSL: false.");
    match mode_line(&host, port, Duration::from_secs(5)) {
        Some(line) => {
            println!("{}", line.trim());
            ExitCode::SUCCESS
        }
        None => {
            println!("Error contacting service. It is probably not running.");
            ExitCode::from(1)
        }
    }
}

fn cmd_print_cmd(l: &Loaded) -> ExitCode {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("rzk-server"));
    let logs = log_dir();
    let cfg = l.child_arg().map(|c| format!(" \"{}\"", c.display())).unwrap_or_default();
    println!(
        "\"{}\" start-foreground{cfg} --log-dir \"{}\" > \"{}\" 2>&1 < /dev/null",
        exe.display(),
        logs.display(),
        daemon_out(&logs).display()
    );
    ExitCode::SUCCESS
}

fn init_logging(log_dir: Option<&Path>) -> Result<(), String> {
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("RZK_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    match log_dir {
        None => tracing_subscriber::fmt().with_env_filter(filter()).with_writer(std::io::stderr).init(),
        Some(dir) => {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create log directory {}: {e}", dir.display()))?;
            let appender = tracing_appender::rolling::Builder::new()
                .rotation(tracing_appender::rolling::Rotation::DAILY)
                .filename_prefix(log_file_prefix())
                .filename_suffix("log")
                .max_log_files(7)
                .build(dir)
                .map_err(|e| format!("cannot open the log file in {}: {e}", dir.display()))?;
            tracing_subscriber::fmt().with_env_filter(filter()).with_ansi(false).with_writer(appender).init();
        }
    }
    Ok(())
}

fn cmd_start_foreground(cfg: Option<&str>, config_dir: Option<&Path>, log_dir: Option<&Path>) -> ExitCode {
    if let Err(e) = init_logging(log_dir) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    // A fatal error goes to the log, and also to stderr when the log is a file (so that it shows
    // in the daemon's .out file and on the terminal).
    let to_file = log_dir.is_some();
    let fatal = move |msg: &str| {
        tracing::error!("{msg}");
        if to_file {
            eprintln!("{msg}");
        }
    };
    let l = match load(cfg, config_dir) {
        Ok(l) => l,
        Err(e) => {
            fatal(&format!("Invalid config, exiting abnormally: {e}"));
            return ExitCode::from(2);
        }
    };
    let cfg = l.cfg;
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    if let Err(e) = fs::create_dir_all(&cfg.data_dir) {
        fatal(&format!("cannot create dataDir {}: {e}", cfg.data_dir.display()));
        return ExitCode::from(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async move {
        let server = match rzk::server::Server::bind(cfg).await {
            Ok(s) => s,
            Err(e) => {
                let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                    " (another process is listening there: is another server running? Change clientPort, or stop it)"
                } else {
                    ""
                };
                fatal(&format!("{e}{hint}"));
                return ExitCode::from(1);
            }
        };
        server
            .run(async {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            })
            .await;
        ExitCode::SUCCESS
    })
}

/// mimalloc instead of glibc malloc: the tree makes millions of small allocations (no per-block
/// header, size classes close to the request) and the request path allocates and frees at a
/// high rate from several threads (thread-local free lists, no arena locks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_t` values (mimalloc 2.x's mimalloc.h; libmimalloc-sys names only some).
const MI_OPTION_PURGE_DECOMMITS: libmimalloc_sys::mi_option_t = 5;
const MI_OPTION_ABANDONED_PAGE_PURGE: libmimalloc_sys::mi_option_t = 12;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Memory freed by the server goes back to the system at once. mimalloc's defaults keep freed
/// pages for a while, which suits a short-lived process; a server's resident size should follow
/// its tree (a fuzzy snapshot's buffers, freed when it is written, would otherwise stay
/// resident). Together with arenas that are not committed up front (compiled in:
/// .cargo/config.toml), the RSS after creating 1M znodes of 100 B is 233 MB instead of 450 MB.
fn tune_allocator() {
    // SAFETY: mi_option_set only stores an option value; it is called before other threads exist.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DECOMMITS, 1);
        // The snapshot thread ends after each snapshot: its pages go back then.
        libmimalloc_sys::mi_option_set(MI_OPTION_ABANDONED_PAGE_PURGE, 1);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let dir = cli.config_dir.as_deref();
    let loaded = |cfg: Option<&str>| -> Result<Loaded, ExitCode> {
        load(cfg, dir).map_err(|e| {
            eprintln!("Invalid config, exiting abnormally: {e}");
            ExitCode::from(1)
        })
    };
    match cli.command {
        Command::Version => {
            println!("rzk, version {} (ZooKeeper 3.9 protocol)", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::StartForeground { cfg, log_dir } => cmd_start_foreground(cfg.as_deref(), dir, log_dir.as_deref()),
        Command::Start { cfg } => match loaded(cfg.as_deref()) {
            Ok(l) => cmd_start(&l),
            Err(code) => {
                println!("Starting zookeeper ... FAILED TO START");
                code
            }
        },
        Command::Stop { cfg } => loaded(cfg.as_deref()).map_or_else(|c| c, |l| cmd_stop(&l)),
        Command::Status { cfg } => loaded(cfg.as_deref()).map_or_else(|c| c, |l| cmd_status(&l)),
        Command::PrintCmd { cfg } => loaded(cfg.as_deref()).map_or_else(|c| c, |l| cmd_print_cmd(&l)),
        Command::Restart { cfg } => match loaded(cfg.as_deref()) {
            Ok(l) => {
                let stopped = cmd_stop(&l);
                if stopped != ExitCode::SUCCESS {
                    return stopped;
                }
                cmd_start(&l)
            }
            Err(code) => code,
        },
    }
}

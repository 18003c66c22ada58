//! zkCli's shell (ZooKeeperMain + the `org.apache.zookeeper.cli` commands): option parsing,
//! the command table, each command's output and error texts, history/redo, and exit codes.

use super::client::{
    AddWatchMode, Client, CreateMode, States, WatchedEvent, WatcherType, ZkError, ZkResult,
    validate_path,
};
use super::format::{
    BYTES, BYTES_HARD, COUNT, COUNT_HARD, StatsTrack, id_to_string, java_date, parse_acl, perm_string,
    stat_lines,
};
use super::parse::{CommandLine, OptionsSpec, flag, parse_options, split_command, with_arg};
use crate::jute::records::{Acl, Id, Stat};
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Writes to stdout, whole, flushed (watch notifications come from another thread).
pub fn out(s: &str) {
    let o = std::io::stdout();
    let mut o = o.lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

/// Writes to stderr, whole, flushed.
pub fn err(s: &str) {
    let e = std::io::stderr();
    let mut e = e.lock();
    let _ = e.write_all(s.as_bytes());
    let _ = e.flush();
}

fn outln(s: &str) {
    out(&format!("{s}\n"));
}

fn errln(s: &str) {
    err(&format!("{s}\n"));
}

/// A CliException: the message zkCli prints on stderr and the exit code it sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub msg: String,
    pub code: i32,
}

impl CliError {
    pub fn new(msg: impl Into<String>) -> CliError {
        CliError { msg: msg.into(), code: 1 }
    }
}

/// CliWrapperException's messages for a KeeperException; an IllegalArgumentException becomes a
/// MalformedPathException with its own message.
pub fn wrap(e: ZkError) -> CliError {
    let ZkError::Keeper { code, path } = &e else {
        return CliError::new(e.to_string());
    };
    let p = path.clone().unwrap_or_else(|| "null".to_string());
    let msg = match code {
        -101 => format!("Node does not exist: {p}"),
        -108 => format!("Ephemerals cannot have children: {p}"),
        -110 => format!("Node already exists: {p}"),
        -111 => format!("Node not empty: {p}"),
        -119 => format!("Not a read-only call: {p}"),
        -114 => format!("Acl is not valid : {p}"),
        -102 => format!("Insufficient permission : {p}"),
        -8 => format!("Arguments are not valid : {p}"),
        -103 => format!("version No is not valid : {p}"),
        -14 => "Another reconfiguration is in progress -- concurrent reconfigs not supported (yet)".to_string(),
        -13 => "No quorum of new config is connected and up-to-date with the leader of last commmitted config \
                - try invoking reconfiguration after new servers are connected and synced"
            .to_string(),
        -125 => format!("Quota has exceeded : {p}"),
        _ => e.to_string(),
    };
    CliError::new(msg)
}

/// Java's uncaught NumberFormatException from `Integer.parseInt` (zkCli dies with a stack
/// trace; we report the exception line and fail the command).
fn parse_int(s: &str) -> Result<i32, CliError> {
    java_parse_i64(s)
        .and_then(|v| i32::try_from(v).ok())
        .ok_or_else(|| CliError::new(format!("java.lang.NumberFormatException: For input string: \"{s}\"")))
}

/// `Long.parseLong`: optional sign, decimal digits only.
fn java_parse_i64(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// `Integer.decode`: decimal, `0x`/`#` hex, leading-0 octal, with a sign.
fn java_decode(s: &str) -> Option<i64> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (radix, digits) = if let Some(h) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")).or_else(|| rest.strip_prefix('#')) {
        (16, h)
    } else if rest.len() > 1 && rest.starts_with('0') {
        (8, &rest[1..])
    } else {
        (10, rest)
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let v = i64::from_str_radix(digits, radix).ok()?;
    let v = if neg { -v } else { v };
    i32::try_from(v).ok().map(i64::from)
}

/// The options before the command (ZooKeeperMain.MyCommandOptions).
#[derive(Clone, Debug)]
pub struct MainOptions {
    pub server: String,
    pub timeout: String,
    pub read_only: bool,
    pub client_configuration: Option<String>,
    pub wait_for_connection: bool,
    /// The command given on the command line (run once, then exit).
    pub command: Option<Vec<String>>,
}

impl MainOptions {
    /// `parseOptions`: `-server`, `-timeout`, `-r`, `-client-configuration`,
    /// `-waitforconnection`; the first word not starting with `-` starts the command. Other
    /// `-words` are ignored, as zkCli does.
    pub fn parse(args: &[String]) -> MainOptions {
        let mut o = MainOptions {
            server: "localhost:2181".into(),
            timeout: "30000".into(),
            read_only: false,
            client_configuration: None,
            wait_for_connection: false,
            command: None,
        };
        let mut it = args.iter();
        while let Some(opt) = it.next() {
            let needs = |v: Option<&String>| -> Option<String> {
                if v.is_none() {
                    errln(&format!("Error: no argument found for option {opt}"));
                }
                v.cloned()
            };
            match opt.as_str() {
                "-server" => match needs(it.next()) {
                    Some(v) => o.server = v,
                    None => return o,
                },
                "-timeout" => match needs(it.next()) {
                    Some(v) => o.timeout = v,
                    None => return o,
                },
                "-r" => o.read_only = true,
                "-client-configuration" => match needs(it.next()) {
                    Some(v) => o.client_configuration = Some(v),
                    None => return o,
                },
                "-waitforconnection" => o.wait_for_connection = true,
                _ => {}
            }
            if !opt.starts_with('-') {
                let mut cmd = vec![opt.clone()];
                cmd.extend(it.cloned());
                o.command = Some(cmd);
                return o;
            }
        }
        o
    }
}

/// What the caller of the shell should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Exit(i32),
}

/// The shell's commands and their option strings (the usage list), in zkCli's order: ZooKeeperMain's
/// own first, then the CliCommands.
const SHELL_COMMANDS: &[(&str, &str)] = &[
    ("connect", "host:port"),
    ("history", ""),
    ("redo", "cmdno"),
    ("printwatches", "on|off"),
    ("quit", ""),
];

const ADD_WATCH_USAGE: &str =
    "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE";
const RECONFIG_USAGE: &str = "[-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | \
                              [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]";

const CLI_COMMANDS: &[(&str, &str)] = &[
    ("close", ""),
    ("create", "[-s] [-e] [-c] [-t ttl] path [data] [acl]"),
    ("delete", "[-v version] path"),
    ("deleteall", "path [-b batch size]"),
    ("set", "[-s] [-v version] path data"),
    ("get", "[-s] [-w] path"),
    ("ls", "[-s] [-w] [-R] path"),
    ("getAcl", "[-s] path"),
    ("setAcl", "[-s] [-v version] [-R] path acl"),
    ("stat", "[-w] path"),
    ("sync", "path"),
    ("setquota", "-n|-b|-N|-B val path"),
    ("listquota", "path"),
    ("delquota", "[-n|-b|-N|-B] path"),
    ("addauth", "scheme auth"),
    ("reconfig", RECONFIG_USAGE),
    ("config", "[-c] [-w] [-s]"),
    ("removewatches", "path [-c|-d|-a] [-l]"),
    ("getEphemerals", "path"),
    ("getAllChildrenNumber", "path"),
    ("version", ""),
    ("addWatch", ADD_WATCH_USAGE),
    ("whoami", ""),
];

/// All command names, sorted (for completion).
pub fn command_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = SHELL_COMMANDS.iter().chain(CLI_COMMANDS).map(|(c, _)| *c).collect();
    v.sort_unstable();
    v
}

fn cli_usage(cmd: &str) -> String {
    let opts = CLI_COMMANDS.iter().find(|(c, _)| *c == cmd).map(|(_, o)| *o).unwrap_or("");
    format!("{cmd} {opts}")
}

/// `ZooKeeperMain.usage()` (stderr).
pub fn usage_text() -> String {
    let mut all: Vec<(&str, &str)> = SHELL_COMMANDS.iter().chain(CLI_COMMANDS).copied().collect();
    all.sort_by(|a, b| a.0.cmp(b.0));
    let mut s = String::from("ZooKeeper -server host:port -client-configuration properties-file cmd args\n");
    for (c, o) in all {
        s.push_str(&format!("\t{c} {o}\n"));
    }
    s
}

const QUOTA_ZOOKEEPER: &str = "/zookeeper/quota";
const PROC_ZOOKEEPER: &str = "/zookeeper";
const LIMIT_NODE: &str = "zookeeper_limits";
const STAT_NODE: &str = "zookeeper_stats";

fn quota_path(path: &str) -> String {
    format!("{QUOTA_ZOOKEEPER}{path}")
}
fn limit_path(path: &str) -> String {
    format!("{QUOTA_ZOOKEEPER}{path}/{LIMIT_NODE}")
}
fn stat_path(path: &str) -> String {
    format!("{QUOTA_ZOOKEEPER}{path}/{STAT_NODE}")
}

fn open_acl() -> Vec<Acl> {
    vec![Acl { perms: 31, id: Id { scheme: "world".into(), id: "anyone".into() } }]
}

/// Java's `String.compareTo` (UTF-16 code units), which zkCli's sorts use.
fn java_sort(v: &mut [String]) {
    v.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
}

/// `List.toString()`.
fn java_list(v: &[String]) -> String {
    format!("[{}]", v.join(", "))
}

/// `ZKUtil.visitSubTreeDFS`: the node, then each level's children in sorted order before
/// descending into them. A callback error stops the walk.
fn visit_subtree_dfs(
    zk: &Client,
    path: &str,
    watch: bool,
    cb: &mut dyn FnMut(&str) -> ZkResult<()>,
) -> ZkResult<()> {
    validate_path(path).map_err(ZkError::IllegalArgument)?;
    zk.get_data(path, watch)?;
    cb(path)?;
    visit_helper(zk, path, watch, cb)
}

fn visit_helper(zk: &Client, path: &str, watch: bool, cb: &mut dyn FnMut(&str) -> ZkResult<()>) -> ZkResult<()> {
    let is_root = path.len() == 1;
    let mut children = match zk.get_children(path, watch) {
        Ok(c) => c,
        Err(ZkError::Keeper { code: -101, .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    java_sort(&mut children);
    let child_path = |c: &str| if is_root { format!("{path}{c}") } else { format!("{path}/{c}") };
    for c in &children {
        cb(&child_path(c))?;
    }
    for c in &children {
        visit_helper(zk, &child_path(c), watch, cb)?;
    }
    Ok(())
}

/// Option specs of each command.
mod specs {
    use super::*;
    pub const LS: OptionsSpec =
        OptionsSpec::plain(&[flag("?", "help"), flag("s", "stat"), flag("w", "watch"), flag("R", "recurse")]);
    pub const GET: OptionsSpec = OptionsSpec::plain(&[flag("s", "stats"), flag("w", "watch")]);
    pub const SET: OptionsSpec = OptionsSpec::plain(&[flag("s", "stats"), with_arg("v", "version")]);
    pub const CREATE: OptionsSpec = OptionsSpec::plain(&[
        flag("e", "ephemeral"),
        flag("s", "sequential"),
        flag("c", "container"),
        with_arg("t", "ttl"),
    ]);
    pub const STAT: OptionsSpec = OptionsSpec::plain(&[flag("w", "watch")]);
    pub const DELETE: OptionsSpec = OptionsSpec::plain(&[with_arg("v", "version")]);
    pub const DELETE_ALL: OptionsSpec = OptionsSpec::plain(&[with_arg("b", "batch size")]);
    pub const SET_QUOTA: OptionsSpec = OptionsSpec {
        opts: &[
            with_arg("n", "num soft quota"),
            with_arg("b", "bytes soft quota"),
            with_arg("N", "num hard quota"),
            with_arg("B", "bytes hard quota"),
        ],
        grouped: true,
        required: true,
    };
    pub const DEL_QUOTA: OptionsSpec = OptionsSpec {
        opts: &[
            flag("n", "num soft quota"),
            flag("b", "bytes soft quota"),
            flag("N", "num hard quota"),
            flag("B", "bytes hard quota"),
        ],
        grouped: true,
        required: false,
    };
    pub const NONE: OptionsSpec = OptionsSpec::plain(&[]);
    pub const GET_ACL: OptionsSpec = OptionsSpec::plain(&[flag("s", "stats")]);
    pub const SET_ACL: OptionsSpec =
        OptionsSpec::plain(&[flag("s", "stats"), with_arg("v", "version"), flag("R", "recursive")]);
    pub const ADD_WATCH: OptionsSpec = OptionsSpec::plain(&[with_arg("m", "")]);
    pub const REMOVE_WATCHES: OptionsSpec = OptionsSpec::plain(&[
        flag("c", "child watcher type"),
        flag("d", "data watcher type"),
        flag("a", "any watcher type"),
        flag("l", "remove locally when there is no server connection"),
    ]);
    pub const CONFIG: OptionsSpec =
        OptionsSpec::plain(&[flag("s", "stats"), flag("w", "watch"), flag("c", "client connection string")]);
    pub const RECONFIG: OptionsSpec = OptionsSpec::plain(&[
        flag("s", "stats"),
        with_arg("v", "required current config version"),
        with_arg("file", "path of config file to parse for membership"),
        with_arg("members", "comma-separated list of config strings for non-incremental reconfig"),
        with_arg("add", "comma-separated list of config strings for new servers"),
        with_arg("remove", "comma-separated list of server IDs to remove"),
    ]);
}

const LS_HELP: &str = "usage: ls [options] path\n -?   help\n -R   recurse\n -s   stat\n -w   watch\n";

fn parse(spec: &OptionsSpec, tokens: &[String]) -> Result<CommandLine, CliError> {
    parse_options(spec, tokens).map_err(CliError::new)
}

/// The rewrite zkCli does for the old `cmd path watch` form: the third word becomes `-w`.
fn retain_watch_compat(
    spec: &OptionsSpec,
    tokens: &[String],
    cl: CommandLine,
    old: &str,
    new: &str,
) -> Result<CommandLine, CliError> {
    if cl.args.len() <= 2 {
        return Ok(cl);
    }
    let mut t = tokens.to_vec();
    t[2] = "-w".into();
    errln(&format!("'{old}' has been deprecated. Please use '{new}' instead."));
    parse(spec, &t)
}

/// The interactive shell / one-shot command runner.
pub struct Shell {
    opts: MainOptions,
    host: String,
    zk: Option<Client>,
    /// The current client, shared with the line editor's completer.
    current: Arc<Mutex<Option<Client>>>,
    history: HashMap<i64, String>,
    command_count: i64,
    print_watches: Arc<AtomicBool>,
    exit_code: i32,
}

impl Shell {
    /// Prints `Connecting to <server>` and starts connecting.
    pub fn new(opts: MainOptions) -> Result<Shell, CliError> {
        outln(&format!("Connecting to {}", opts.server));
        let mut sh = Shell {
            host: String::new(),
            zk: None,
            current: Arc::new(Mutex::new(None)),
            history: HashMap::new(),
            command_count: 0,
            print_watches: Arc::new(AtomicBool::new(true)),
            exit_code: 0,
            opts,
        };
        let server = sh.opts.server.clone();
        sh.connect_to_zk(&server)?;
        Ok(sh)
    }

    pub fn current_client(&self) -> Arc<Mutex<Option<Client>>> {
        self.current.clone()
    }

    pub fn client(&self) -> Option<&Client> {
        self.zk.as_ref()
    }

    pub fn exit_code(&self) -> i32 {
        self.exit_code
    }

    pub fn command_line(&self) -> Option<Vec<String>> {
        self.opts.command.clone()
    }

    fn timeout_ms(&self) -> Result<i32, CliError> {
        parse_int(&self.opts.timeout)
    }

    fn connect_to_zk(&mut self, new_host: &str) -> Result<(), CliError> {
        if let Some(zk) = self.zk.as_ref().filter(|z| z.state().is_alive()) {
            zk.close();
        }
        self.host = new_host.to_string();
        let timeout = self.timeout_ms()?;
        let pw = self.print_watches.clone();
        let watcher = Arc::new(move |e: &WatchedEvent| {
            if pw.load(Ordering::SeqCst) {
                out(&format!("\nWATCHER::\n\nWatchedEvent state:{:?} type:{:?} path:{}\n", e.state, e.kind, e.path.as_deref().unwrap_or("null")));
            }
        });
        let zk = Client::connect(new_host, timeout, self.opts.read_only, watcher)
            .map_err(|e| CliError::new(format!("java.lang.IllegalArgumentException: {e}")))?;
        if self.opts.wait_for_connection {
            let st = zk.wait_connected(Duration::from_millis(timeout.max(0) as u64), false);
            if !st.is_connected() {
                zk.close();
                *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(zk.clone());
                self.zk = Some(zk);
                return Err(CliError::new("KeeperErrorCode = ConnectionLoss"));
            }
        }
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(zk.clone());
        self.zk = Some(zk);
        Ok(())
    }

    /// Waits for the first connection attempt's outcome (so the first prompt shows the real
    /// state and the SyncConnected notification is not printed over it).
    pub fn wait_first_connect(&self) {
        if let (Some(zk), Ok(t)) = (&self.zk, self.timeout_ms()) {
            // At most a few seconds: an unreachable host should not hold the prompt back long.
            zk.wait_connected(Duration::from_millis(t.clamp(1000, 5000) as u64), true);
        }
    }

    /// `[zk: host(STATE) N] `.
    pub fn prompt(&self) -> String {
        let state = self.zk.as_ref().map(|z| z.state()).unwrap_or(States::NotConnected);
        format!("[zk: {}({}) {}] ", self.host, state, self.command_count)
    }

    /// One line typed at the prompt.
    pub fn execute_line(&mut self, line: &str) -> Flow {
        if line.is_empty() {
            return Flow::Continue;
        }
        let args = split_command(line);
        if args.is_empty() {
            // zkCli would re-run the previous command here; we ignore blank lines.
            return Flow::Continue;
        }
        self.history.insert(self.command_count, line.to_string());
        let f = self.process_cmd(&args);
        self.command_count += 1;
        f
    }

    /// Runs one command and records its exit code (printing a failure on stderr).
    pub fn process_cmd(&mut self, args: &[String]) -> Flow {
        match self.process_zk_cmd(args) {
            Ok(Flow::Exit(c)) => Flow::Exit(c),
            Ok(Flow::Continue) => {
                self.exit_code = 0;
                Flow::Continue
            }
            Err(e) => {
                self.exit_code = e.code;
                errln(&e.msg);
                Flow::Continue
            }
        }
    }

    fn process_zk_cmd(&mut self, args: &[String]) -> Result<Flow, CliError> {
        let Some(cmd) = args.first().cloned() else {
            err(&usage_text());
            return Err(CliError::new("No command entered"));
        };
        let known = SHELL_COMMANDS.iter().chain(CLI_COMMANDS).any(|(c, _)| *c == cmd);
        if !known {
            err(&usage_text());
            return Err(CliError { msg: format!("Command not found: Command not found {cmd}"), code: 127 });
        }
        match cmd.as_str() {
            "quit" => {
                if let Some(zk) = &self.zk {
                    zk.close();
                }
                return Ok(Flow::Exit(self.exit_code));
            }
            "redo" if args.len() >= 2 => {
                let i = java_decode(&args[1]).ok_or_else(|| {
                    CliError::new(format!("java.lang.NumberFormatException: For input string: \"{}\"", args[1]))
                })?;
                if self.command_count <= i || i < 0 {
                    return Err(CliError::new("Command index out of range"));
                }
                let line = self.history.get(&i).cloned().unwrap_or_default();
                let redo_args = split_command(&line);
                if redo_args.first().map(String::as_str) == Some("redo") {
                    return Err(CliError::new("No redoing redos"));
                }
                self.history.insert(self.command_count, line);
                if let Flow::Exit(c) = self.process_cmd(&redo_args) {
                    return Ok(Flow::Exit(c));
                }
            }
            "history" => {
                for i in (self.command_count - 10).max(0)..=self.command_count {
                    let h = self.history.get(&i).map(String::as_str).unwrap_or("null");
                    outln(&format!("{i} - {h}"));
                }
            }
            "printwatches" => {
                if args.len() == 1 {
                    let on = self.print_watches.load(Ordering::SeqCst);
                    outln(&format!("printwatches is {}", if on { "on" } else { "off" }));
                } else {
                    self.print_watches.store(args[1] == "on", Ordering::SeqCst);
                }
            }
            "connect" => {
                let h = if args.len() >= 2 { args[1].clone() } else { self.host.clone() };
                self.connect_to_zk(&h)?;
            }
            _ => {}
        }
        let zk = match &self.zk {
            Some(zk) if zk.state().is_alive() => zk.clone(),
            _ => {
                outln("Not connected");
                return Ok(Flow::Continue);
            }
        };
        if CLI_COMMANDS.iter().any(|(c, _)| *c == cmd) {
            self.run_cli_command(&zk, &cmd, args)?;
        }
        Ok(Flow::Continue)
    }

    fn run_cli_command(&mut self, zk: &Client, cmd: &str, t: &[String]) -> Result<(), CliError> {
        let usage = || CliError::new(cli_usage(cmd));
        match cmd {
            "ls" => {
                let cl = parse(&specs::LS, t)?;
                if cl.has("?") {
                    out(LS_HELP);
                }
                let cl = retain_watch_compat(&specs::LS, t, cl, "ls path [watch]", "ls [-w] path")?;
                if cl.args.len() < 2 {
                    return Err(usage());
                }
                let path = &cl.args[1];
                let watch = cl.has("w");
                if cl.has("R") {
                    visit_subtree_dfs(zk, path, watch, &mut |p| {
                        outln(p);
                        Ok(())
                    })
                    .map_err(wrap)?;
                } else if cl.has("s") {
                    let (mut children, stat) = zk.get_children2(path, watch).map_err(wrap)?;
                    java_sort(&mut children);
                    out(&format!("{}\n{}", java_list(&children), stat_lines(&stat)));
                } else {
                    let mut children = zk.get_children(path, watch).map_err(wrap)?;
                    java_sort(&mut children);
                    outln(&java_list(&children));
                }
            }
            "get" => {
                let cl = parse(&specs::GET, t)?;
                if cl.args.len() < 2 {
                    return Err(usage());
                }
                let cl = retain_watch_compat(&specs::GET, t, cl, "get path [watch]", "get [-s] [-w] path")?;
                let (data, stat) = zk.get_data(&cl.args[1], cl.has("w")).map_err(wrap)?;
                let text = match &data {
                    Some(d) => String::from_utf8_lossy(d).into_owned(),
                    None => "null".to_string(),
                };
                let mut s = format!("{text}\n");
                if cl.has("s") {
                    s.push_str(&stat_lines(&stat));
                }
                out(&s);
            }
            "set" => {
                let cl = parse(&specs::SET, t)?;
                if cl.args.len() < 3 {
                    return Err(usage());
                }
                let version = match cl.value("v") {
                    Some(v) => parse_int(v)?,
                    None => -1,
                };
                let stat = zk.set_data(&cl.args[1], cl.args[2].as_bytes(), version).map_err(wrap)?;
                if cl.has("s") {
                    out(&stat_lines(&stat));
                }
            }
            "create" => self.create(zk, t)?,
            "stat" => {
                let cl = parse(&specs::STAT, t)?;
                if cl.args.len() < 2 {
                    return Err(usage());
                }
                let cl = retain_watch_compat(&specs::STAT, t, cl, "stat path [watch]", "stat [-w] path")?;
                let path = &cl.args[1];
                match zk.exists(path, cl.has("w")).map_err(wrap)? {
                    Some(stat) => out(&stat_lines(&stat)),
                    None => return Err(wrap(ZkError::keeper(-101, Some(path)))),
                }
            }
            "delete" => {
                let cl = parse(&specs::DELETE, t)?;
                if cl.args.len() < 2 {
                    return Err(usage());
                }
                if cl.args.len() > 2 {
                    errln("'delete path [version]' has been deprecated. Please use 'delete [-v version] path' instead.");
                }
                let version = match cl.value("v") {
                    Some(v) => parse_int(v)?,
                    None => -1,
                };
                zk.delete(&cl.args[1], version).map_err(wrap)?;
            }
            "deleteall" => {
                let cl = parse(&specs::DELETE_ALL, t)?;
                if cl.args.len() < 2 {
                    return Err(usage());
                }
                let batch = match cl.value("b") {
                    Some(v) => java_parse_i64(v)
                        .and_then(|v| i32::try_from(v).ok())
                        .ok_or_else(|| CliError::new("-b argument must be an int value"))?,
                    None => 1000,
                };
                if !delete_recursive(zk, &cl.args[1], batch).map_err(wrap)? {
                    errln("Failed to delete some node(s) in the subtree!");
                }
            }
            "setquota" => self.set_quota(zk, t)?,
            "listquota" => {
                let cl = parse(&specs::NONE, t)?;
                if cl.args.len() < 2 {
                    return Err(usage());
                }
                let path = &cl.args[1];
                errln(&format!("absolute path is {}", limit_path(path)));
                let got = zk
                    .get_data(&limit_path(path), false)
                    .and_then(|(q, _)| zk.get_data(&stat_path(path), false).map(|(s, _)| (q, s)));
                match got {
                    Ok((q, s)) => {
                        let q = stats_track(&q)?;
                        let s = stats_track(&s)?;
                        out(&format!("Output quota for {path} {q}\nOutput stat for {path} {s}\n"));
                    }
                    Err(ZkError::Keeper { code: -101, .. }) => errln(&format!("quota for {path} does not exist.")),
                    Err(e) => return Err(wrap(e)),
                }
            }
            "delquota" => {
                let cl = parse(&specs::DEL_QUOTA, t)?;
                if cl.args.len() < 2 {
                    return Err(usage());
                }
                let path = &cl.args[1];
                let flags: Vec<&str> = ["n", "b", "N", "B"].into_iter().filter(|f| cl.has(f)).collect();
                match del_quota(zk, path, &flags) {
                    Ok(()) => {}
                    Err(QuotaError::Cli(e)) => return Err(e),
                    Err(QuotaError::Zk(ZkError::Keeper { code: -101, .. })) => {
                        errln(&format!("quota for {path} does not exist."))
                    }
                    Err(QuotaError::Zk(e)) => return Err(wrap(e)),
                }
            }
            "getAcl" => {
                let cl = parse(&specs::GET_ACL, t)?;
                if cl.args.len() < 2 {
                    return Err(usage());
                }
                let (acl, stat) = zk.get_acl(&cl.args[1]).map_err(wrap)?;
                let mut s = String::new();
                for a in &acl {
                    s.push_str(&format!("{}: {}\n", id_to_string(&a.id), perm_string(a.perms)));
                }
                if cl.has("s") {
                    s.push_str(&stat_lines(&stat));
                }
                out(&s);
            }
            "setAcl" => {
                let cl = parse(&specs::SET_ACL, t)?;
                if cl.args.len() < 3 {
                    return Err(usage());
                }
                let path = &cl.args[1];
                let acl = parse_acl(&cl.args[2], &mut |w| errln(&w));
                let version = match cl.value("v") {
                    Some(v) => parse_int(v)?,
                    None => -1,
                };
                if cl.has("R") {
                    visit_subtree_dfs(zk, path, false, &mut |p| {
                        if let Err(e) = zk.set_acl(p, &acl, version) {
                            out(&e.to_string());
                        }
                        Ok(())
                    })
                    .map_err(wrap)?;
                } else {
                    let stat = zk.set_acl(path, &acl, version).map_err(wrap)?;
                    if cl.has("s") {
                        out(&stat_lines(&stat));
                    }
                }
            }
            "sync" => {
                let cl = parse(&specs::NONE, t)?;
                if cl.args.len() < 2 {
                    return Err(usage());
                }
                match zk.sync(&cl.args[1]).map_err(wrap)? {
                    0 => outln("Sync is OK"),
                    rc => outln(&format!("Sync has failed. rc={rc}")),
                }
            }
            "addauth" => {
                let cl = parse(&specs::NONE, t)?;
                if cl.args.len() < 2 {
                    return Err(usage());
                }
                zk.add_auth(&cl.args[1], cl.args.get(2).map(|a| a.as_bytes().to_vec()));
            }
            "getEphemerals" => {
                let cl = parse(&specs::NONE, t)?;
                let prefix = cl.args.get(1).map(String::as_str).unwrap_or("/");
                let eph = zk.get_ephemerals(prefix).map_err(wrap)?;
                outln(&java_list(&eph));
            }
            "getAllChildrenNumber" => {
                let cl = parse(&specs::NONE, t)?;
                if cl.args.len() < 2 {
                    return Err(usage());
                }
                let n = zk.get_all_children_number(&cl.args[1]).map_err(wrap)?;
                outln(&n.to_string());
            }
            "addWatch" => {
                let cl = parse(&specs::ADD_WATCH, t)?;
                if cl.args.len() != 2 {
                    return Err(usage());
                }
                let mode = match cl.value("m").map(|m| m.to_uppercase()) {
                    None => AddWatchMode::PersistentRecursive,
                    Some(m) if m == "PERSISTENT" => AddWatchMode::Persistent,
                    Some(m) if m == "PERSISTENT_RECURSIVE" => AddWatchMode::PersistentRecursive,
                    Some(_) => return Err(usage()),
                };
                zk.add_watch(&cl.args[1], mode).map_err(wrap)?;
            }
            "removewatches" => {
                let cl = parse(&specs::REMOVE_WATCHES, t)?;
                if cl.args.len() < 2 {
                    return Err(usage());
                }
                let kind = if cl.has("c") {
                    WatcherType::Children
                } else if cl.has("d") {
                    WatcherType::Data
                } else {
                    WatcherType::Any
                };
                zk.remove_all_watches(&cl.args[1], kind, cl.has("l")).map_err(wrap)?;
            }
            "whoami" => {
                let infos = zk.who_am_i();
                let mut s = String::from("Auth scheme: User\n");
                for i in infos {
                    s.push_str(&format!("{}: {}\n", i.auth_scheme, i.user));
                }
                out(&s);
            }
            "config" => {
                let cl = parse(&specs::CONFIG, t)?;
                let (data, stat) = zk.get_config(cl.has("w")).map_err(wrap)?;
                let text = match &data {
                    Some(d) => String::from_utf8_lossy(d).into_owned(),
                    None => "null".to_string(),
                };
                let mut s = if cl.has("c") { format!("{}\n", client_config_str(&text)) } else { format!("{text}\n") };
                if cl.has("s") {
                    s.push_str(&stat_lines(&stat));
                }
                out(&s);
            }
            "reconfig" => self.reconfig(zk, t)?,
            "version" => {
                let cl = parse(&specs::NONE, t)?;
                if cl.args.len() > 1 {
                    return Err(usage());
                }
                outln(&format!("ZooKeeper CLI version: rzk-cli {}", env!("CARGO_PKG_VERSION")));
            }
            "close" => zk.close(),
            _ => {}
        }
        Ok(())
    }

    fn create(&mut self, zk: &Client, t: &[String]) -> Result<(), CliError> {
        let cl = parse(&specs::CREATE, t)?;
        if cl.args.len() < 2 {
            return Err(CliError::new(cli_usage("create")));
        }
        let (has_e, has_s, has_c, has_t) = (cl.has("e"), cl.has("s"), cl.has("c"), cl.has("t"));
        if has_c && (has_e || has_s) {
            return Err(CliError::new(
                "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.",
            ));
        }
        let ttl = if has_t {
            java_parse_i64(cl.value("t").unwrap_or(""))
                .ok_or_else(|| CliError::new("-t argument must be a long value"))?
        } else {
            0
        };
        if has_t && has_e {
            return Err(CliError::new("TTLs cannot be used with Ephemeral znodes"));
        }
        if has_t && has_c {
            return Err(CliError::new("TTLs cannot be used with Container znodes"));
        }
        let mode = if has_e && has_s {
            CreateMode::EphemeralSequential
        } else if has_e {
            CreateMode::Ephemeral
        } else if has_s {
            if has_t { CreateMode::PersistentSequentialWithTtl } else { CreateMode::PersistentSequential }
        } else if has_c {
            CreateMode::Container
        } else if has_t {
            CreateMode::PersistentWithTtl
        } else {
            CreateMode::Persistent
        };
        if has_t && (ttl > super::client::MAX_TTL || ttl <= 0) {
            return Err(CliError::new(format!(
                "ttl must be positive and cannot be larger than: {}",
                super::client::MAX_TTL
            )));
        }
        let path = &cl.args[1];
        let data = cl.args.get(2).map(|d| d.as_bytes().to_vec());
        let acl = match cl.args.get(3) {
            Some(a) => parse_acl(a, &mut |w| errln(&w)),
            None => open_acl(),
        };
        match zk.create(path, data.as_deref(), &acl, mode, has_t.then_some(ttl)) {
            Ok(created) => errln(&format!("Created {created}")),
            Err(e @ ZkError::Keeper { code: -120, .. }) => {
                errln("Unable to create ephemeral node on a local session");
                return Err(wrap(e));
            }
            Err(e @ ZkError::Keeper { code: -114, .. }) => {
                errln(&e.to_string());
                return Err(wrap(e));
            }
            Err(e) => return Err(wrap(e)),
        }
        Ok(())
    }

    fn set_quota(&mut self, zk: &Client, t: &[String]) -> Result<(), CliError> {
        let cl = parse(&specs::SET_QUOTA, t)?;
        if cl.args.len() < 2 {
            return Err(CliError::new(cli_usage("setquota")));
        }
        let path = &cl.args[1];
        if path.starts_with(QUOTA_ZOOKEEPER) {
            errln(&format!("cannot set a quota under the path: {QUOTA_ZOOKEEPER}"));
            return Ok(());
        }
        let mut quota = StatsTrack::new();
        quota.set(COUNT, -1);
        quota.set(BYTES, -1);
        quota.set(COUNT_HARD, -1);
        quota.set(BYTES_HARD, -1);
        // checkOptionValue
        let int = |v: &str| java_parse_i64(v).and_then(|x| i32::try_from(x).ok()).map(i64::from);
        for (opt, key, is_count) in [("n", COUNT, true), ("b", BYTES, false), ("N", COUNT_HARD, true), ("B", BYTES_HARD, false)] {
            let Some(v) = cl.value(opt) else { continue };
            let parsed = if is_count { int(v) } else { java_parse_i64(v) };
            let Some(n) = parsed else {
                errln("NumberFormatException happens when parsing the option value");
                return Ok(());
            };
            if is_count && n <= 0 {
                errln("the num quota must be greater than zero");
                return Ok(());
            }
            if !is_count && n < 0 {
                errln("the bytes quota must be greater than or equal to zero");
                return Ok(());
            }
            quota.set(key, n);
        }
        match create_quota(zk, path, &quota) {
            Ok(()) => Ok(()),
            Err(QuotaError::Cli(e)) => Err(e),
            Err(QuotaError::Zk(e)) => Err(wrap(e)),
        }
    }

    fn reconfig(&mut self, zk: &Client, t: &[String]) -> Result<(), CliError> {
        let cl = parse(&specs::RECONFIG, t)?;
        let (file, members, add, remove) = (cl.has("file"), cl.has("members"), cl.has("add"), cl.has("remove"));
        if !(file || members || add || remove) {
            return Err(CliError::new(cli_usage("reconfig")));
        }
        let version = match cl.value("v") {
            Some(v) => i64::from_str_radix(v, 16)
                .map_err(|_| CliError::new("-v must be followed by a long (configuration version)"))?,
            None => -1,
        };
        if (file || members) && (add || remove) {
            return Err(CliError::new(
                "Can't use -file or -members together with -add or -remove (mixing incremental and \
                 non-incremental modes is not allowed)",
            ));
        }
        if file && members {
            return Err(CliError::new("Can't use -file and -members together (conflicting non-incremental modes)"));
        }
        let joining = cl.value("add").map(|s| s.to_lowercase());
        let leaving = cl.value("remove").map(|s| s.to_lowercase());
        let mut new_members = cl.value("members").map(|s| s.to_lowercase());
        if let Some(f) = cl.value("file") {
            let text = std::fs::read_to_string(f)
                .map_err(|e| CliError::new(format!("Error processing {f}{e}")))?;
            let servers: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with("server.") || l.starts_with("version="))
                .map(|l| l.to_string())
                .collect();
            new_members = Some(servers.join("\n"));
        }
        let (data, stat) = zk.reconfig(joining, leaving, new_members, version).map_err(wrap)?;
        let data = data.map(|d| String::from_utf8_lossy(&d).into_owned()).unwrap_or_else(|| "null".into());
        let mut s = format!("Committed new configuration:\n{data}\n");
        if cl.has("s") {
            s.push_str(&stat_lines(&stat));
        }
        out(&s);
        Ok(())
    }
}

fn stats_track(data: &Option<Vec<u8>>) -> Result<StatsTrack, CliError> {
    let s = data.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
    StatsTrack::parse(&s).map_err(|e| CliError::new(format!("java.lang.NumberFormatException: {e}")))
}

/// `ConfigUtils.getClientConfigStr`: `version host:port,...` from the dynamic config.
fn client_config_str(config: &str) -> String {
    let mut version = String::new();
    let mut addrs = Vec::new();
    for line in config.lines() {
        let Some((k, v)) = line.split_once('=') else { continue };
        let (k, v) = (k.trim(), v.trim());
        if k == "version" {
            version = v.to_string();
        }
        if !k.starts_with("server.") {
            continue;
        }
        // server.N=host:quorumPort:electionPort[:role];[clientHost:]clientPort
        if let Some((_, client)) = v.split_once(';') {
            let client = client.trim();
            let addr = match client.rsplit_once(':') {
                Some((h, p)) => format!("{h}:{p}"),
                None => format!("0.0.0.0:{client}"),
            };
            addrs.push(addr);
        }
    }
    format!("{version} {}", addrs.join(","))
}

/// `ZKUtil.deleteRecursive`: list the subtree breadth-first, then delete it leaves first in
/// multis of `batch` ops; false if some batch failed.
fn delete_recursive(zk: &Client, root: &str, batch: i32) -> ZkResult<bool> {
    validate_path(root).map_err(ZkError::IllegalArgument)?;
    let mut tree = vec![root.to_string()];
    let mut i = 0;
    while i < tree.len() {
        let node = tree[i].clone();
        for c in zk.get_children(&node, false)? {
            let base = if node == "/" { "" } else { node.as_str() };
            tree.push(format!("{base}/{c}"));
        }
        i += 1;
    }
    let mut ops: Vec<String> = Vec::new();
    let mut success = true;
    for i in (0..tree.len()).rev() {
        ops.push(tree[i].clone());
        if ops.len() as i64 == batch as i64 || i == 0 {
            if !success {
                break;
            }
            let rc = zk.multi_delete(&ops)?;
            if rc != 0 {
                success = false;
            }
            ops.clear();
        }
    }
    Ok(success)
}

enum QuotaError {
    Cli(CliError),
    Zk(ZkError),
}

impl From<ZkError> for QuotaError {
    fn from(e: ZkError) -> Self {
        match e {
            ZkError::IllegalArgument(m) => QuotaError::Cli(CliError::new(m)),
            e => QuotaError::Zk(e),
        }
    }
}

fn java_path_split(path: &str) -> Vec<&str> {
    super::format::java_split(path, '/')
}

/// `SetQuotaCommand.createQuota`.
fn create_quota(zk: &Client, path: &str, quota: &StatsTrack) -> Result<(), QuotaError> {
    if zk.exists(path, false)?.is_none() {
        return Err(QuotaError::Cli(CliError::new(format!("{path} does not exist."))));
    }
    check_if_child_quota(zk, path)?;
    check_if_parent_quota(zk, path)?;
    if zk.exists(QUOTA_ZOOKEEPER, false)?.is_none() {
        let r = zk
            .create(PROC_ZOOKEEPER, None, &open_acl(), CreateMode::Persistent, None)
            .and_then(|_| zk.create(QUOTA_ZOOKEEPER, None, &open_acl(), CreateMode::Persistent, None));
        match r {
            Ok(_) | Err(ZkError::Keeper { code: -110, .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let splits = java_path_split(path);
    let mut qpath = QUOTA_ZOOKEEPER.to_string();
    for s in splits.iter().skip(1) {
        qpath = format!("{qpath}/{s}");
        if zk.exists(&qpath, false)?.is_none() {
            match zk.create(&qpath, None, &open_acl(), CreateMode::Persistent, None) {
                Ok(_) | Err(ZkError::Keeper { code: -110, .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let stat_node = format!("{qpath}/{STAT_NODE}");
    let limit_node = format!("{qpath}/{LIMIT_NODE}");
    if zk.exists(&limit_node, false)?.is_none() {
        zk.create(&limit_node, Some(quota.to_string().as_bytes()), &open_acl(), CreateMode::Persistent, None)?;
        let mut stats = StatsTrack::new();
        stats.set(COUNT, 0);
        stats.set(BYTES, 0);
        zk.create(&stat_node, Some(stats.to_string().as_bytes()), &open_acl(), CreateMode::Persistent, None)?;
        let q = stats_track(&zk.get_data(&limit_node, false)?.0).map_err(QuotaError::Cli)?;
        let s = stats_track(&zk.get_data(&stat_node, false)?.0).map_err(QuotaError::Cli)?;
        check_quota(&q, &s);
    } else {
        let mut q = stats_track(&zk.get_data(&limit_node, false)?.0).map_err(QuotaError::Cli)?;
        for key in [COUNT, BYTES, COUNT_HARD, BYTES_HARD] {
            if quota.get(key) > -1 {
                q.set(key, quota.get(key));
            }
        }
        let s = stats_track(&zk.get_data(&stat_node, false)?.0).map_err(QuotaError::Cli)?;
        check_quota(&q, &s);
        zk.set_data(&limit_node, q.to_string().as_bytes(), -1)?;
    }
    Ok(())
}

fn check_quota(q: &StatsTrack, s: &StatsTrack) {
    let over = |limit: i64, used: i64| limit > -1 && limit < used;
    if over(q.get(COUNT), s.get(COUNT)) || over(q.get(COUNT_HARD), s.get(COUNT)) {
        outln(&format!("[Warning]: the count quota you create is less than the existing count:{}", s.get(COUNT)));
    }
    if over(q.get(BYTES), s.get(BYTES)) || over(q.get(BYTES_HARD), s.get(BYTES)) {
        outln(&format!("[Warning]: the bytes quota you create is less than the existing bytes:{}", s.get(BYTES)));
    }
}

fn check_if_child_quota(zk: &Client, path: &str) -> Result<(), QuotaError> {
    let real = quota_path(path);
    let own = format!("{QUOTA_ZOOKEEPER}{path}");
    let r = visit_subtree_dfs(zk, &real, false, &mut |qp| {
        let children = match zk.get_children(qp, false) {
            Ok(c) => c,
            Err(ZkError::Keeper { code: -101, .. }) => return Ok(()),
            Err(_) => Vec::new(),
        };
        for c in &children {
            if qp != own && c == LIMIT_NODE {
                let trimmed = &qp[QUOTA_ZOOKEEPER.len()..];
                return Err(ZkError::IllegalArgument(format!("{path} has a child {trimmed} which has a quota")));
            }
        }
        Ok(())
    });
    match r {
        Ok(()) | Err(ZkError::Keeper { code: -101, .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn check_if_parent_quota(zk: &Client, path: &str) -> Result<(), QuotaError> {
    let splits = java_path_split(path);
    let mut qpath = QUOTA_ZOOKEEPER.to_string();
    for s in splits.iter().take(splits.len().saturating_sub(1)).skip(1) {
        qpath = format!("{qpath}/{s}");
        let children = match zk.get_children(&qpath, false) {
            Ok(c) => c,
            Err(ZkError::Keeper { code: -101, .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if children.is_empty() {
            return Ok(());
        }
        for c in &children {
            if qpath != quota_path(path) && c == LIMIT_NODE {
                let trimmed = &qpath[QUOTA_ZOOKEEPER.len()..];
                return Err(QuotaError::Cli(CliError::new(format!(
                    "{path} has a parent {trimmed} which has a quota"
                ))));
            }
        }
    }
    Ok(())
}

/// `DelQuotaCommand.delQuota`: without flags the whole quota goes (and empty parents under
/// /zookeeper/quota); with flags, just those limits become -1.
fn del_quota(zk: &Client, path: &str, flags: &[&str]) -> Result<(), QuotaError> {
    let parent = quota_path(path);
    let qpath = limit_path(path);
    if zk.exists(&qpath, false)?.is_none() {
        outln(&format!("Quota does not exist for {path}"));
        return Ok(());
    }
    let data = zk.get_data(&qpath, false)?.0;
    let mut st = stats_track(&data).map_err(QuotaError::Cli)?;
    if flags.is_empty() {
        for c in zk.get_children(&parent, false)? {
            zk.delete(&format!("{parent}/{c}"), -1)?;
        }
        trim_proc_quotas(zk, &parent)?;
    } else {
        for f in flags {
            let key = match *f {
                "n" => COUNT,
                "b" => BYTES,
                "N" => COUNT_HARD,
                _ => BYTES_HARD,
            };
            st.set(key, -1);
        }
        zk.set_data(&qpath, st.to_string().as_bytes(), -1)?;
    }
    Ok(())
}

fn trim_proc_quotas(zk: &Client, path: &str) -> Result<(), QuotaError> {
    let mut path = path.to_string();
    loop {
        if path == QUOTA_ZOOKEEPER {
            return Ok(());
        }
        if !zk.get_children(&path, false)?.is_empty() {
            return Ok(());
        }
        zk.delete(&path, -1)?;
        match path.rfind('/') {
            Some(i) => path.truncate(i),
            None => return Ok(()),
        }
    }
}

/// The stat lines of a Stat (re-exported for tests and tools).
pub fn format_stat(s: &Stat) -> String {
    stat_lines(s)
}

/// `new Date(ms).toString()` (re-exported).
pub fn format_date(ms: i64) -> String {
    java_date(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn main_options() {
        let o = MainOptions::parse(&v(&["-server", "h:1", "-timeout", "5000", "-r", "ls", "-s", "/"]));
        assert_eq!(o.server, "h:1");
        assert_eq!(o.timeout, "5000");
        assert!(o.read_only);
        assert_eq!(o.command, Some(v(&["ls", "-s", "/"])));
        let o = MainOptions::parse(&v(&[]));
        assert_eq!(o.server, "localhost:2181");
        assert_eq!(o.command, None);
    }

    #[test]
    fn usage_is_sorted_like_zkcli() {
        let u = usage_text();
        let lines: Vec<&str> = u.lines().collect();
        assert_eq!(lines[0], "ZooKeeper -server host:port -client-configuration properties-file cmd args");
        assert!(lines[1].starts_with("\taddWatch [-m mode] path"));
        assert_eq!(lines[2], "\taddauth scheme auth");
        assert_eq!(lines[3], "\tclose ");
        assert_eq!(*lines.last().unwrap(), "\twhoami ");
        assert_eq!(lines.len(), 29);
    }

    #[test]
    fn wrapped_messages() {
        assert_eq!(wrap(ZkError::keeper(-101, Some("/nope"))).msg, "Node does not exist: /nope");
        assert_eq!(wrap(ZkError::keeper(-110, Some("/x"))).msg, "Node already exists: /x");
        assert_eq!(wrap(ZkError::keeper(-114, None)).msg, "Acl is not valid : null");
        assert_eq!(wrap(ZkError::keeper(-4, Some("/x"))).msg, "KeeperErrorCode = ConnectionLoss for /x");
        assert_eq!(wrap(ZkError::IllegalArgument("Path must start with / character".into())).msg, "Path must start with / character");
    }

    #[test]
    fn java_number_parsing() {
        assert_eq!(java_decode("0x10"), Some(16));
        assert_eq!(java_decode("010"), Some(8));
        assert_eq!(java_decode("-3"), Some(-3));
        assert_eq!(java_decode("x"), None);
        assert_eq!(java_parse_i64("+5"), Some(5));
        assert_eq!(java_parse_i64("5 "), None);
        assert!(parse_int("abc").unwrap_err().msg.contains("For input string: \"abc\""));
    }

    #[test]
    fn client_config() {
        assert_eq!(client_config_str(""), " ");
        let c = "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nserver.2=h2:2888:3888;2182\nversion=100000000";
        assert_eq!(client_config_str(c), "100000000 127.0.0.1:2181,0.0.0.0:2182");
    }
}

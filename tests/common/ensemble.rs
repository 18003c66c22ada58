//! Real-process ensembles on 127.0.0.1, of rzk members, Apache ZooKeeper 3.8 members or both
//! (tests/ensemble.rs, tests/ensemble_interop.rs), started as an operator would: one zoo.cfg per
//! member with the same server.N lines, `myid` in its dataDir (`<member dir>/data`).
//!
//! Waiting: an rzk member reports on its NOTIFY_SOCKET when it serves and in which mode; an
//! Apache member is asked with `srvr` each time it writes to its directory (inotify) and at least
//! once a second. A member that exits during a wait ends the wait with every member's log.

use super::{ApacheZk, DirWatch, LOG4J_PROPERTIES, Notify, PidFd, TestDir, free_port, notify_socket, rzk_server_bin, try_four_letter, wait_readable};
use rzk::cli::client::{Client, States, WatchedEvent};
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Apache,
    Rzk,
}

pub struct Member {
    pub id: u64,
    pub kind: Kind,
    pub client_port: u16,
    pub quorum_port: u16,
    pub election_port: u16,
    /// Holds zoo.cfg and the logs: rzk's stdout+stderr in server.log, Apache's zookeeper.log.
    pub dir: PathBuf,
    /// The dataDir (`myid`, `version-2/`).
    pub data_dir: PathBuf,
    pub child: Option<Child>,
    /// rzk: where it reports serving and its mode.
    notify: Option<Mutex<Notify>>,
    /// Apache: writes to its log, after which its mode is asked again.
    log_watch: Option<DirWatch>,
}

/// How the server.N lines look.
pub struct Layout<'a> {
    /// The last `observers` members are observers (rzk only).
    pub observers: usize,
    /// Written into the server.N lines: an address or a name to resolve.
    pub host: &'a str,
    /// The client port given only in the server.N lines (`;127.0.0.1:port`), not as clientPort.
    pub client_in_line: bool,
}

impl Default for Layout<'_> {
    fn default() -> Self {
        Layout { observers: 0, host: "127.0.0.1", client_in_line: false }
    }
}

pub struct Ensemble {
    pub members: Vec<Member>,
    _dir: TestDir,
    /// Ensembles of one test binary run one at a time: a dozen servers with tickTime 200 ms
    /// competing for two cores would miss their pings and elect over and over.
    _serial: std::sync::MutexGuard<'static, ()>,
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Is Apache installed? Prints a "skipping" line if not; panics if not and `RZK_REQUIRE_APACHE=1`.
pub fn apache_available() -> bool {
    ApacheZk::check_available()
}

impl Ensemble {
    /// `voters` rzk members, then `observers` rzk observers.
    pub fn rzk(voters: usize, observers: usize) -> Ensemble {
        Self::start_with(&vec![Kind::Rzk; voters + observers], &Layout { observers, ..Layout::default() })
    }

    /// `kinds[i]` is the kind of server `i + 1`.
    pub fn start(kinds: &[Kind]) -> Ensemble {
        Self::start_with(kinds, &Layout::default())
    }

    /// Apache members are launched first and rzk members only once every Apache member has
    /// started its first election: the JVM takes a second or two to start, and two quick rzk
    /// members could otherwise elect one of themselves before the sid that should lead runs.
    pub fn start_with(kinds: &[Kind], layout: &Layout) -> Ensemble {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = TestDir::new("ensemble");
        let n = kinds.len();
        let voters = n - layout.observers;
        let ports: Vec<(u16, u16, u16)> = kinds.iter().map(|_| (free_port(), free_port(), free_port())).collect();
        let mut servers = String::new();
        for (i, (c, q, e)) in ports.iter().enumerate() {
            let role = if i < voters { "" } else { ":observer" };
            let client = if layout.client_in_line { format!(";127.0.0.1:{c}") } else { String::new() };
            servers.push_str(&format!("server.{}={}:{q}:{e}{role}{client}\n", i + 1, layout.host));
        }
        let mut members = Vec::new();
        for (i, (&kind, &(c, q, e))) in kinds.iter().zip(&ports).enumerate() {
            let id = i as u64 + 1;
            let d = dir.path().join(format!("s{id}-{kind:?}").to_lowercase());
            let data = d.join("data");
            fs::create_dir_all(&data).unwrap();
            fs::write(data.join("myid"), format!("{id}\n")).unwrap();
            let peer_type = if i < voters { "" } else { "peerType=observer\n" };
            let client = if layout.client_in_line { String::new() } else { format!("clientPort={c}\nclientPortAddress=127.0.0.1\n") };
            let cfg = format!(
                "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\n{client}\
                 admin.enableServer=false\n4lw.commands.whitelist=*\nmaxClientCnxns=0\n\
                 metricsProvider.className=org.apache.zookeeper.metrics.impl.DefaultMetricsProvider\n{peer_type}{servers}",
                data.display()
            );
            fs::write(d.join("zoo.cfg"), cfg).unwrap();
            if kind == Kind::Apache {
                fs::write(d.join("log4j.properties"), LOG4J_PROPERTIES).unwrap();
            }
            let notify = (kind == Kind::Rzk).then(|| Mutex::new(notify_socket(&d)));
            let log_watch = (kind == Kind::Apache).then(|| DirWatch::new(&d));
            members.push(Member { id, kind, client_port: c, quorum_port: q, election_port: e, dir: d, data_dir: data, child: None, notify, log_watch });
        }
        let mut en = Ensemble { members, _dir: dir, _serial: serial };
        let apache: Vec<usize> = (0..n).filter(|&i| kinds[i] == Kind::Apache).collect();
        for &i in &apache {
            en.launch(i);
        }
        // QuorumPeer logs "LOOKING" when it starts its first election, after the election
        // listener is up. (Probing the port instead would make Apache log an EOFException.)
        for &i in &apache {
            en.wait_until(&[i], Duration::from_secs(30), "Apache to start its election", |_| en.log(i).contains("] - LOOKING").then_some(()));
        }
        for i in 0..n {
            if kinds[i] == Kind::Rzk {
                en.launch(i);
            }
        }
        en
    }

    /// Starts member `i` (again).
    pub fn launch(&mut self, i: usize) {
        let m = &mut self.members[i];
        let cfg = m.dir.join("zoo.cfg");
        let out = fs::OpenOptions::new().create(true).append(true).open(m.dir.join("server.log")).unwrap();
        let err = out.try_clone().unwrap();
        let mut cmd = match m.kind {
            Kind::Rzk => {
                let mut n = m.notify.as_ref().unwrap().lock().unwrap();
                n.reset();
                let mut c = Command::new(rzk_server_bin());
                c.arg("start-foreground").arg(&cfg).env("NO_COLOR", "1").env("NOTIFY_SOCKET", n.env_value());
                c
            }
            Kind::Apache => {
                let argv = ApacheZk::java_command_line(&m.dir, &cfg, &[]);
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        let child = cmd.current_dir(&m.dir).stdin(Stdio::null()).stdout(out).stderr(err).spawn().expect("spawn server");
        m.child = Some(child);
    }

    /// SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn signal(&self, i: usize, sig: i32) {
        let pid = self.members[i].child.as_ref().expect("running").id() as i32;
        // SAFETY: plain kill(2).
        unsafe {
            libc::kill(pid, sig);
        }
    }

    /// The member's log: Apache's zookeeper.log, or rzk's stdout+stderr.
    pub fn log(&self, i: usize) -> String {
        let m = &self.members[i];
        let name = if m.kind == Kind::Apache { "zookeeper.log" } else { "server.log" };
        fs::read_to_string(m.dir.join(name)).unwrap_or_default()
    }

    pub fn describe(&self, i: usize) -> String {
        format!("server {} ({:?})", self.members[i].id, self.members[i].kind)
    }

    /// `Mode:` from srvr, or None while the member does not serve.
    pub fn mode(&self, i: usize) -> Option<String> {
        let t = try_four_letter(self.members[i].client_port, "srvr").ok()?;
        t.lines().find_map(|l| l.strip_prefix("Mode: ")).map(str::to_string)
    }

    /// The serving mode of each member of `idx` (None while it does not serve): what an rzk
    /// member last reported on its NOTIFY_SOCKET, `srvr`'s `Mode:` for an Apache member.
    fn modes(&self, idx: &[usize]) -> Vec<Option<String>> {
        idx.iter()
            .map(|&i| match &self.members[i].notify {
                Some(n) => {
                    let mut n = n.lock().unwrap();
                    n.drain();
                    n.serving().map(str::to_string)
                }
                None => self.mode(i),
            })
            .collect()
    }

    /// Blocks until `f`, given the modes of the members in `idx`, returns Some. Panics after
    /// `limit`, or as soon as one of them exits, with their logs.
    pub fn wait_until<T>(&self, idx: &[usize], limit: Duration, what: &str, mut f: impl FnMut(&[Option<String>]) -> Option<T>) -> T {
        let deadline = Instant::now() + limit;
        let pids: Vec<PidFd> = idx.iter().map(|&i| PidFd::open(self.members[i].child.as_ref().expect("member running").id()).expect("pidfd_open")).collect();
        let any_apache = idx.iter().any(|&i| self.members[i].kind == Kind::Apache);
        loop {
            for &i in idx {
                if let Some(w) = &self.members[i].log_watch {
                    w.drain();
                }
            }
            let modes = self.modes(idx);
            if let Some(v) = f(&modes) {
                return v;
            }
            let exited = pids.iter().position(PidFd::exited);
            if Instant::now() >= deadline || exited.is_some() {
                let mut msg = match exited {
                    Some(k) => format!("{} exited while waiting for {what}; modes {modes:?}\n", self.describe(idx[k])),
                    None => format!("timed out after {limit:?} waiting for {what}; modes {modes:?}\n"),
                };
                for &i in idx {
                    let log = self.log(i);
                    let tail: Vec<&str> = log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
                    msg.push_str(&format!("--- {} ---\n{}\n", self.describe(i), tail.join("\n")));
                }
                panic!("{msg}");
            }
            let mut fds: Vec<i32> = pids.iter().map(PidFd::fd).collect();
            for &i in idx {
                let m = &self.members[i];
                if let Some(n) = &m.notify {
                    fds.push(n.lock().unwrap().fd());
                }
                if let Some(w) = &m.log_watch {
                    fds.push(w.fd());
                }
            }
            // Apache may start serving after its last log line: ask it again within a second.
            let until = if any_apache { deadline.min(Instant::now() + Duration::from_secs(1)) } else { deadline };
            wait_readable(&fds, until);
        }
    }

    /// Waits until the running members serve with exactly one leader; returns its index.
    pub fn wait_stable(&self, running: &[usize]) -> usize {
        self.wait_until(running, Duration::from_secs(30), "one leader and the rest serving", |modes| {
            if modes.iter().any(Option::is_none) {
                return None;
            }
            let leaders: Vec<usize> = running.iter().zip(modes).filter(|(_, m)| m.as_deref() == Some("leader")).map(|(i, _)| *i).collect();
            (leaders.len() == 1).then(|| leaders[0])
        })
    }

    /// Waits until member `i` no longer serves clients.
    pub fn wait_not_serving(&self, i: usize) {
        self.wait_until(&[i], Duration::from_secs(20), "the member to stop serving", |m| m[0].is_none().then_some(()))
    }

    /// A connected client of member `i`.
    pub fn connect(&self, i: usize) -> Client {
        let c = Client::connect(&format!("127.0.0.1:{}", self.members[i].client_port), 10_000, false, Arc::new(|_| {})).unwrap();
        assert_eq!(c.wait_connected(Duration::from_secs(20), false), States::Connected, "client to {}", self.describe(i));
        c
    }

    /// A client of member `i` whose watch and state events arrive on the returned channel.
    pub fn connect_watched(&self, i: usize) -> (Client, Receiver<WatchedEvent>) {
        super::connect_watched(&format!("127.0.0.1:{}", self.members[i].client_port))
    }

    /// `host:port` of every member, for a client that may use any of them.
    pub fn hosts(&self) -> String {
        self.members.iter().map(|m| format!("127.0.0.1:{}", m.client_port)).collect::<Vec<_>>().join(",")
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            if self.members[i].child.is_some() {
                self.signal(i, libc::SIGCONT);
            }
            self.kill(i);
        }
    }
}

//! A small synchronous ZooKeeper client, enough for `rzk-cli`.
//!
//! One background thread per [`Client`] owns the connection: it connects to the hosts of the
//! connect string in turn, does the session handshake (re-using the session after a lost
//! connection), re-sends `addauth` credentials and the client's watches (SetWatches) after a
//! reconnect, pings when nothing was sent for a third of the session timeout, reads replies and
//! hands each to the caller waiting on its xid, and turns notifications into [`WatchedEvent`]s
//! for the watcher callback (only for watches this client registered, as the Java client does).
//!
//! Callers block in [`Client::submit`] (wrapped by one method per operation). A request made
//! while a connection attempt is under way waits for its outcome: it is sent once the session is
//! up, or fails with ConnectionLoss if the attempt fails, so a command against a dead server
//! fails fast, like zkCli.

use crate::jute::opcode::OpCode;
use crate::jute::records::{
    Acl, AddWatchRequest, ClientInfo, ConnectRequest, ConnectResponse,
    CreateRequest, CreateResponse, CreateTtlRequest, DeleteRequest, GetAclResponse,
    GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenResponse, GetDataResponse,
    GetEphemeralsRequest, GetEphemeralsResponse, MultiHeader, PathRequest, PathWatchRequest,
    ReplyHeader, RequestHeader, SetAclRequest, SetDataRequest, SetWatches, SetWatches2, Stat,
    StatResponse, WatcherEvent, WhoAmIResponse,
};
use crate::jute::{Jute, Reader, Writer};
use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const NOTIFICATION_XID: i32 = -1;
pub const PING_XID: i32 = -2;
pub const AUTH_XID: i32 = -4;
pub const SET_WATCHES_XID: i32 = -8;

// KeeperException codes used by the client itself.
pub const OK: i32 = 0;
pub const CONNECTION_LOSS: i32 = -4;
pub const MARSHALLING_ERROR: i32 = -5;
pub const NO_NODE: i32 = -101;
pub const INVALID_ACL: i32 = -114;
pub const AUTH_FAILED: i32 = -115;
pub const SESSION_EXPIRED: i32 = -112;
pub const NO_WATCHER: i32 = -121;

/// The largest frame we accept (jute.maxbuffer's default plus headroom).
const MAX_FRAME: usize = 0xfffff + 1024 * 1024;

/// `ZooKeeper.States`, as the prompt shows them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum States {
    Connecting,
    Associating,
    Connected,
    ConnectedReadOnly,
    Closed,
    AuthFailed,
    NotConnected,
}

impl States {
    pub fn name(self) -> &'static str {
        match self {
            States::Connecting => "CONNECTING",
            States::Associating => "ASSOCIATING",
            States::Connected => "CONNECTED",
            States::ConnectedReadOnly => "CONNECTEDREADONLY",
            States::Closed => "CLOSED",
            States::AuthFailed => "AUTH_FAILED",
            States::NotConnected => "NOT_CONNECTED",
        }
    }
    pub fn is_alive(self) -> bool {
        !matches!(self, States::Closed | States::AuthFailed)
    }
    pub fn is_connected(self) -> bool {
        matches!(self, States::Connected | States::ConnectedReadOnly)
    }
}

impl fmt::Display for States {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `Watcher.Event.KeeperState`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KeeperState {
    Unknown,
    Disconnected,
    NoSyncConnected,
    SyncConnected,
    AuthFailed,
    ConnectedReadOnly,
    SaslAuthenticated,
    Expired,
    Closed,
}

impl KeeperState {
    pub fn from_i32(v: i32) -> KeeperState {
        match v {
            0 => KeeperState::Disconnected,
            1 => KeeperState::NoSyncConnected,
            3 => KeeperState::SyncConnected,
            4 => KeeperState::AuthFailed,
            5 => KeeperState::ConnectedReadOnly,
            6 => KeeperState::SaslAuthenticated,
            -112 => KeeperState::Expired,
            7 => KeeperState::Closed,
            _ => KeeperState::Unknown,
        }
    }
}

/// `Watcher.Event.EventType`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EventType {
    None,
    NodeCreated,
    NodeDeleted,
    NodeDataChanged,
    NodeChildrenChanged,
    DataWatchRemoved,
    ChildWatchRemoved,
    PersistentWatchRemoved,
}

impl EventType {
    pub fn from_i32(v: i32) -> Option<EventType> {
        Some(match v {
            -1 => EventType::None,
            1 => EventType::NodeCreated,
            2 => EventType::NodeDeleted,
            3 => EventType::NodeDataChanged,
            4 => EventType::NodeChildrenChanged,
            5 => EventType::DataWatchRemoved,
            6 => EventType::ChildWatchRemoved,
            7 => EventType::PersistentWatchRemoved,
            _ => return None,
        })
    }
}

/// What the watcher callback receives; `Display` is Java's `WatchedEvent.toString()`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct WatchedEvent {
    pub state: KeeperState,
    pub kind: EventType,
    pub path: Option<String>,
}

impl WatchedEvent {
    fn state_only(state: KeeperState) -> WatchedEvent {
        WatchedEvent { state, kind: EventType::None, path: None }
    }
}

impl fmt::Display for WatchedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WatchedEvent state:{:?} type:{:?} path:{}",
            self.state,
            self.kind,
            self.path.as_deref().unwrap_or("null")
        )
    }
}

/// A failed call: a KeeperException (code and the client path it is about, if any) or an
/// argument the client refused before sending (Java's IllegalArgumentException).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ZkError {
    Keeper { code: i32, path: Option<String> },
    IllegalArgument(String),
}

impl ZkError {
    pub fn keeper(code: i32, path: Option<&str>) -> ZkError {
        ZkError::Keeper { code, path: path.map(str::to_string) }
    }
    pub fn code(&self) -> Option<i32> {
        match self {
            ZkError::Keeper { code, .. } => Some(*code),
            ZkError::IllegalArgument(_) => None,
        }
    }
}

/// `KeeperException.getCodeMessage`.
pub fn code_message(code: i32) -> String {
    let s = match code {
        0 => "ok",
        -1 => "SystemError",
        -2 => "RuntimeInconsistency",
        -3 => "DataInconsistency",
        -4 => "ConnectionLoss",
        -5 => "MarshallingError",
        -13 => "NewConfigNoQuorum",
        -14 => "ReconfigInProgress",
        -6 => "Unimplemented",
        -7 => "OperationTimeout",
        -8 => "BadArguments",
        -100 => "APIError",
        -101 => "NoNode",
        -102 => "NoAuth",
        -103 => "BadVersion",
        -108 => "NoChildrenForEphemerals",
        -110 => "NodeExists",
        -114 => "InvalidACL",
        -115 => "AuthFailed",
        -111 => "Directory not empty",
        -112 => "Session expired",
        -113 => "Invalid callback",
        -118 => "Session moved",
        -119 => "Not a read-only call",
        -120 => "Ephemeral node on local session",
        -121 => "No such watcher",
        -123 => "Reconfig is disabled",
        -124 => "Session closed because client failed to authenticate",
        -125 => "Quota has exceeded",
        -127 => "Op throttled due to high load",
        _ => return format!("Unknown error {code}"),
    };
    s.to_string()
}

impl fmt::Display for ZkError {
    /// `KeeperException.getMessage()`, or the IllegalArgumentException's message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZkError::Keeper { code, path: Some(p) } if !p.is_empty() => {
                write!(f, "KeeperErrorCode = {} for {p}", code_message(*code))
            }
            ZkError::Keeper { code, .. } => write!(f, "KeeperErrorCode = {}", code_message(*code)),
            ZkError::IllegalArgument(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ZkError {}

pub type ZkResult<T> = Result<T, ZkError>;

/// `CreateMode`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CreateMode {
    Persistent,
    Ephemeral,
    PersistentSequential,
    EphemeralSequential,
    Container,
    PersistentWithTtl,
    PersistentSequentialWithTtl,
}

impl CreateMode {
    pub fn flags(self) -> i32 {
        match self {
            CreateMode::Persistent => 0,
            CreateMode::Ephemeral => 1,
            CreateMode::PersistentSequential => 2,
            CreateMode::EphemeralSequential => 3,
            CreateMode::Container => 4,
            CreateMode::PersistentWithTtl => 5,
            CreateMode::PersistentSequentialWithTtl => 6,
        }
    }
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }
    pub fn is_ttl(self) -> bool {
        matches!(self, CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl)
    }
    pub fn java_name(self) -> &'static str {
        match self {
            CreateMode::Persistent => "PERSISTENT",
            CreateMode::Ephemeral => "EPHEMERAL",
            CreateMode::PersistentSequential => "PERSISTENT_SEQUENTIAL",
            CreateMode::EphemeralSequential => "EPHEMERAL_SEQUENTIAL",
            CreateMode::Container => "CONTAINER",
            CreateMode::PersistentWithTtl => "PERSISTENT_WITH_TTL",
            CreateMode::PersistentSequentialWithTtl => "PERSISTENT_SEQUENTIAL_WITH_TTL",
        }
    }
}

/// `AddWatchMode`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AddWatchMode {
    Persistent,
    PersistentRecursive,
}

/// `Watcher.WatcherType`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WatcherType {
    Children,
    Data,
    Any,
}

impl WatcherType {
    fn code(self) -> i32 {
        match self {
            WatcherType::Children => 1,
            WatcherType::Data => 2,
            WatcherType::Any => 3,
        }
    }
}

/// The maximum TTL (`EphemeralType.TTL.maxValue()`).
pub const MAX_TTL: i64 = 0xFF_FFFF_FFFF;

/// `PathUtils.validatePath`: the IllegalArgumentException message on failure.
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("Path length must be > 0".into());
    }
    if !path.starts_with('/') {
        return Err("Path must start with / character".into());
    }
    // Java works on UTF-16 code units; positions are reported in those units.
    let chars: Vec<u16> = path.encode_utf16().collect();
    if chars.len() == 1 {
        return Ok(());
    }
    if *chars.last().unwrap() == b'/' as u16 {
        return Err("Path must not end with / character".into());
    }
    let mut reason = None;
    let mut lastc = b'/' as u16;
    let (slash, dot) = (b'/' as u16, b'.' as u16);
    for i in 1..chars.len() {
        let c = chars[i];
        if c == 0 {
            reason = Some(format!("null character not allowed @{i}"));
            break;
        } else if c == slash && lastc == slash {
            reason = Some(format!("empty node name specified @{i}"));
            break;
        } else if c == dot && lastc == dot {
            if chars[i - 2] == slash && (i + 1 == chars.len() || chars[i + 1] == slash) {
                reason = Some(format!("relative paths not allowed @{i}"));
                break;
            }
        } else if c == dot {
            if chars[i - 1] == slash && (i + 1 == chars.len() || chars[i + 1] == slash) {
                reason = Some(format!("relative paths not allowed @{i}"));
                break;
            }
        } else if (c > 0 && c <= 0x1f)
            || (0x7f..=0x9f).contains(&c)
            || (0xd800..=0xf8ff).contains(&c)
            || c >= 0xfff0
        {
            reason = Some(format!("invalid character @{i}"));
            break;
        }
        lastc = c;
    }
    match reason {
        Some(r) => Err(format!("Invalid path string \"{path}\" caused by {r}")),
        None => Ok(()),
    }
}

fn check_path(path: &str) -> ZkResult<()> {
    validate_path(path).map_err(ZkError::IllegalArgument)
}

/// A parsed connect string: `host:port[,host:port...][/chroot]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectString {
    pub hosts: Vec<(String, u16)>,
    pub chroot: Option<String>,
}

/// `ConnectStringParser`: the chroot starts at the first `/`; a host without a port gets 2181;
/// IPv6 literals go in brackets.
pub fn parse_connect_string(s: &str) -> Result<ConnectString, String> {
    let (hosts_part, chroot) = match s.find('/') {
        Some(i) => {
            let c = &s[i..];
            let chroot = if c.len() == 1 {
                None
            } else {
                validate_path(c)?;
                Some(c.to_string())
            };
            (&s[..i], chroot)
        }
        None => (s, None),
    };
    let mut hosts = Vec::new();
    for h in hosts_part.split(',') {
        let h = h.trim();
        if h.is_empty() {
            continue;
        }
        let (host, port) = if let Some(rest) = h.strip_prefix('[') {
            let end = rest.find(']').ok_or_else(|| format!("{h} starts with '[' but has no matching ']:'"))?;
            let host = &rest[..end];
            let after = &rest[end + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse::<u16>().map_err(|_| format!("For input string: \"{p}\""))?,
                None => 2181,
            };
            (host.to_string(), port)
        } else {
            match h.rfind(':') {
                Some(i) => {
                    let p = &h[i + 1..];
                    (h[..i].to_string(), p.parse::<u16>().map_err(|_| format!("For input string: \"{p}\""))?)
                }
                None => (h.to_string(), 2181),
            }
        };
        hosts.push((host, port));
    }
    if hosts.is_empty() {
        return Err("A HostProvider may not be empty!".into());
    }
    Ok(ConnectString { hosts, chroot })
}

/// The callback every event goes to (zkCli's default watcher).
pub type Watcher = Arc<dyn Fn(&WatchedEvent) + Send + Sync>;

/// The client's own record of its watches (client paths), as ZKWatchManager keeps them.
#[derive(Default, Debug, Clone)]
struct WatchTables {
    data: BTreeSet<String>,
    exist: BTreeSet<String>,
    child: BTreeSet<String>,
    persistent: BTreeSet<String>,
    persistent_recursive: BTreeSet<String>,
}

impl WatchTables {
    fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.persistent_recursive.is_empty()
    }

    /// Which watches an event from the server triggers (ZKWatchManager.materialize); one-shot
    /// watches are removed. True if any did (the single default watcher then gets it once).
    fn materialize(&mut self, kind: EventType, path: &str) -> bool {
        let mut hit = false;
        match kind {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                hit |= self.data.remove(path);
                hit |= self.exist.remove(path);
            }
            EventType::NodeChildrenChanged => {
                hit |= self.child.remove(path);
            }
            EventType::NodeDeleted => {
                hit |= self.data.remove(path);
                hit |= self.exist.remove(path);
                hit |= self.child.remove(path);
            }
            _ => return true,
        }
        hit |= self.persistent.contains(path);
        // A recursive watch on the path or any ancestor.
        let mut p = path;
        loop {
            if self.persistent_recursive.contains(p) {
                hit = true;
                break;
            }
            if p == "/" {
                break;
            }
            p = match p.rfind('/') {
                Some(0) => "/",
                Some(i) => &p[..i],
                None => break,
            };
        }
        hit
    }

    fn register(&mut self, reg: &WatchReg, rc: i32) {
        match reg {
            WatchReg::Data(p) if rc == OK => {
                self.data.insert(p.clone());
            }
            WatchReg::Exists(p) if rc == OK => {
                self.data.insert(p.clone());
            }
            WatchReg::Exists(p) if rc == NO_NODE => {
                self.exist.insert(p.clone());
            }
            WatchReg::Child(p) if rc == OK => {
                self.child.insert(p.clone());
            }
            WatchReg::Persistent(p) if rc == OK => {
                self.persistent.insert(p.clone());
            }
            WatchReg::PersistentRecursive(p) if rc == OK => {
                self.persistent_recursive.insert(p.clone());
            }
            _ => {}
        }
    }

    /// ZKWatchManager.removeWatcher for the default watcher: which "watch removed" events to
    /// deliver, or the error code.
    fn deregister(&mut self, d: &WatchDereg, rc: i32) -> Result<Vec<EventType>, i32> {
        let path = d.path.as_str();
        let persistent = self.persistent.contains(path) || self.persistent_recursive.contains(path);
        let contains = match d.kind {
            WatcherType::Children => self.child.contains(path) || persistent,
            WatcherType::Data => self.data.contains(path) || self.exist.contains(path) || persistent,
            WatcherType::Any => {
                self.child.contains(path)
                    || self.data.contains(path)
                    || self.exist.contains(path)
                    || persistent
            }
        };
        if !contains {
            return Err(NO_WATCHER);
        }
        let local = d.local;
        let remove = |set: &mut BTreeSet<String>| -> Result<bool, i32> {
            if !local && rc != OK {
                return Err(rc);
            }
            Ok(set.remove(path))
        };
        let mut events = Vec::new();
        match d.kind {
            WatcherType::Children => {
                if remove(&mut self.child)? {
                    events.push(EventType::ChildWatchRemoved);
                }
            }
            WatcherType::Data => {
                let a = remove(&mut self.data)?;
                let b = remove(&mut self.exist)?;
                if a || b {
                    events.push(EventType::DataWatchRemoved);
                }
            }
            WatcherType::Any => {
                if remove(&mut self.child)? {
                    events.push(EventType::ChildWatchRemoved);
                }
                let a = remove(&mut self.data)?;
                let b = remove(&mut self.exist)?;
                if a || b {
                    events.push(EventType::DataWatchRemoved);
                }
                let a = remove(&mut self.persistent)?;
                let b = remove(&mut self.persistent_recursive)?;
                if a || b {
                    events.push(EventType::PersistentWatchRemoved);
                }
            }
        }
        if events.is_empty() {
            return Err(NO_WATCHER);
        }
        Ok(events)
    }
}

/// A watch to record when the reply comes back (WatchRegistration).
#[derive(Clone, Debug)]
enum WatchReg {
    Data(String),
    Exists(String),
    Child(String),
    Persistent(String),
    PersistentRecursive(String),
}

/// A removal to apply when the reply comes back (WatchDeregistration).
#[derive(Clone, Debug)]
struct WatchDereg {
    path: String,
    kind: WatcherType,
    local: bool,
}

/// (err, body) of a reply.
type ReplyResult = (i32, Vec<u8>);

struct Pending {
    xid: i32,
    reg: Option<WatchReg>,
    dereg: Option<WatchDereg>,
    tx: mpsc::Sender<ReplyResult>,
}

struct ConnState {
    state: States,
    /// Bumped whenever a connection attempt fails or a connection is lost.
    attempt: u64,
    writer: Option<TcpStream>,
    pending: VecDeque<Pending>,
    next_xid: i32,
    session_id: i64,
    passwd: Vec<u8>,
    negotiated_timeout: i32,
    last_zxid: i64,
    last_send: Instant,
    auth_info: Vec<(String, Option<Vec<u8>>)>,
    closing: bool,
}

struct Shared {
    conn: Mutex<ConnState>,
    cond: Condvar,
    watches: Mutex<WatchTables>,
    watcher: Watcher,
    hosts: Vec<(String, u16)>,
    chroot: Option<String>,
    session_timeout: i32,
    read_only: bool,
}

/// A ZooKeeper session (cheap to clone; all clones share it).
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn frame(xid: i32, op: i32, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::with_capacity(body.len() + 12);
    let at = w.begin_frame();
    RequestHeader { xid, op }.write(&mut w);
    w.buf.extend_from_slice(body);
    w.finish_frame(at);
    w.into_inner()
}

impl Client {
    /// Starts connecting in the background; events go to `watcher` (including the first
    /// SyncConnected).
    pub fn connect(
        connect_string: &str,
        session_timeout_ms: i32,
        read_only: bool,
        watcher: Watcher,
    ) -> Result<Client, String> {
        let mut cs = parse_connect_string(connect_string)?;
        // Spread clients over the ensemble, as StaticHostProvider does.
        {
            use rand::seq::SliceRandom;
            cs.hosts.shuffle(&mut rand::thread_rng());
        }
        let shared = Arc::new(Shared {
            conn: Mutex::new(ConnState {
                state: States::Connecting,
                attempt: 0,
                writer: None,
                pending: VecDeque::new(),
                next_xid: 1,
                session_id: 0,
                passwd: vec![0; 16],
                negotiated_timeout: 0,
                last_zxid: 0,
                last_send: Instant::now(),
                auth_info: Vec::new(),
                closing: false,
            }),
            cond: Condvar::new(),
            watches: Mutex::new(WatchTables::default()),
            watcher,
            hosts: cs.hosts,
            chroot: cs.chroot,
            session_timeout: session_timeout_ms,
            read_only,
        });
        let s2 = shared.clone();
        std::thread::Builder::new()
            .name("rzk-cli-io".into())
            .spawn(move || io_thread(s2))
            .map_err(|e| e.to_string())?;
        Ok(Client { shared })
    }

    pub fn state(&self) -> States {
        lock(&self.shared.conn).state
    }

    pub fn session_id(&self) -> i64 {
        lock(&self.shared.conn).session_id
    }

    pub fn negotiated_timeout(&self) -> i32 {
        lock(&self.shared.conn).negotiated_timeout
    }

    /// Waits until the session is connected, or the state is dead, or `timeout` elapsed, or (with
    /// `until_first_outcome`) the current connection attempt failed. Returns the state then.
    pub fn wait_connected(&self, timeout: Duration, until_first_outcome: bool) -> States {
        let deadline = Instant::now() + timeout;
        let mut st = lock(&self.shared.conn);
        let attempt0 = st.attempt;
        loop {
            if st.state.is_connected() || !st.state.is_alive() {
                return st.state;
            }
            if until_first_outcome && st.attempt - attempt0 >= self.shared.hosts.len() as u64 {
                return st.state;
            }
            let now = Instant::now();
            if now >= deadline {
                return st.state;
            }
            st = self.shared.cond.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Closes the session (CloseSession when connected) and delivers the Closed event.
    pub fn close(&self) {
        {
            let mut st = lock(&self.shared.conn);
            if st.closing {
                return;
            }
            // Java: closing a client that is already closed (or whose auth failed) does nothing.
            if !st.state.is_alive() {
                st.closing = true;
                self.shared.cond.notify_all();
                return;
            }
        }
        if self.state().is_connected() {
            // Best effort: the reply (or the server closing the socket) ends the wait.
            let (tx, rx) = mpsc::channel();
            let sent = {
                let mut st = lock(&self.shared.conn);
                st.closing = true;
                let xid = st.next_xid;
                st.next_xid += 1;
                let bytes = frame(xid, OpCode::CloseSession.code(), &[]);
                let ok = st.writer.as_mut().map(|w| w.write_all(&bytes).is_ok()).unwrap_or(false);
                if ok {
                    st.pending.push_back(Pending { xid, reg: None, dereg: None, tx });
                }
                ok
            };
            if sent {
                let wait = Duration::from_millis(self.shared.session_timeout.clamp(1000, 30000) as u64);
                let _ = rx.recv_timeout(wait);
            }
        }
        let mut st = lock(&self.shared.conn);
        st.closing = true;
        if let Some(w) = st.writer.take() {
            let _ = w.shutdown(Shutdown::Both);
        }
        let prev = st.state;
        st.state = States::Closed;
        let pending: Vec<Pending> = st.pending.drain(..).collect();
        self.shared.cond.notify_all();
        drop(st);
        for p in pending {
            finish(&self.shared, p, SESSION_EXPIRED, Vec::new());
        }
        if prev != States::Closed {
            (self.shared.watcher)(&WatchedEvent::state_only(KeeperState::Closed));
        }
    }

    /// Sends one request and waits for its reply: Ok(body) or Err(code).
    fn submit(&self, op: OpCode, body: &[u8], reg: Option<WatchReg>, dereg: Option<WatchDereg>) -> Result<Vec<u8>, i32> {
        let (tx, rx) = mpsc::channel();
        let mut st = lock(&self.shared.conn);
        let attempt0 = st.attempt;
        loop {
            if st.state.is_connected() && st.writer.is_some() && !st.closing {
                break;
            }
            let fail = match st.state {
                States::AuthFailed => Some(AUTH_FAILED),
                States::Closed => Some(SESSION_EXPIRED),
                _ if st.closing => Some(SESSION_EXPIRED),
                // Every host failed once since we started waiting (Java fails queued requests
                // on the first failed attempt; trying the whole list first is kinder to a
                // one-shot command).
                _ if st.attempt - attempt0 >= self.shared.hosts.len() as u64 => Some(CONNECTION_LOSS),
                _ => None,
            };
            if let Some(code) = fail {
                drop(st);
                let p = Pending { xid: 0, reg, dereg, tx };
                let (err, body) = finish_now(&self.shared, p, code, Vec::new());
                return if err == OK { Ok(body) } else { Err(err) };
            }
            st = self.shared.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        let xid = st.next_xid;
        st.next_xid = st.next_xid.wrapping_add(1).max(1);
        let bytes = frame(xid, op.code(), body);
        st.pending.push_back(Pending { xid, reg, dereg, tx });
        st.last_send = Instant::now();
        let ok = st.writer.as_mut().map(|w| w.write_all(&bytes).is_ok()).unwrap_or(false);
        if !ok {
            // The reader notices the dead socket and fails everything pending.
            if let Some(w) = st.writer.as_ref() {
                let _ = w.shutdown(Shutdown::Both);
            }
        }
        drop(st);
        match rx.recv() {
            Ok((OK, body)) => Ok(body),
            Ok((err, _)) => Err(err),
            Err(_) => Err(CONNECTION_LOSS),
        }
    }

    fn server_path(&self, client_path: &str) -> String {
        match &self.shared.chroot {
            None => client_path.to_string(),
            Some(c) if client_path == "/" => c.clone(),
            Some(c) => format!("{c}{client_path}"),
        }
    }

    fn client_path(&self, server_path: &str) -> String {
        strip_chroot(self.shared.chroot.as_deref(), server_path)
    }

    fn err(path: &str) -> impl Fn(i32) -> ZkError + '_ {
        move |code| ZkError::keeper(code, Some(path))
    }

    /// `addAuthInfo`: remembered for reconnects and sent at once when connected (no reply is
    /// waited for; a failure shows as an AuthFailed event).
    pub fn add_auth(&self, scheme: &str, auth: Option<Vec<u8>>) {
        let mut st = lock(&self.shared.conn);
        st.auth_info.push((scheme.to_string(), auth.clone()));
        if st.state.is_connected() {
            let body = crate::jute::records::AuthPacket { auth_type: 0, scheme: scheme.to_string(), auth }.to_bytes();
            let bytes = frame(AUTH_XID, OpCode::Auth.code(), &body);
            st.last_send = Instant::now();
            if let Some(w) = st.writer.as_mut() {
                let _ = w.write_all(&bytes);
            }
        }
    }

    pub fn create(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        mode: CreateMode,
        ttl: Option<i64>,
    ) -> ZkResult<String> {
        if mode.is_sequential() {
            check_path(&format!("{path}1"))?;
        } else {
            check_path(path)?;
        }
        match (mode.is_ttl(), ttl) {
            (true, t) => {
                let t = t.unwrap_or(-1);
                if t > MAX_TTL || t <= 0 {
                    return Err(ZkError::IllegalArgument(format!(
                        "ttl must be positive and cannot be larger than: {MAX_TTL}"
                    )));
                }
            }
            (false, Some(t)) if t >= 0 => {
                return Err(ZkError::IllegalArgument(format!("ttl not valid for mode: {}", mode.java_name())));
            }
            _ => {}
        }
        if acl.is_empty() {
            return Err(ZkError::keeper(INVALID_ACL, None));
        }
        let sp = self.server_path(path);
        let data = data.map(|d| d.to_vec());
        let (op, body) = if let (Some(ttl), true) = (ttl, mode.is_ttl()) {
            let req = CreateTtlRequest { path: sp, data, acl: acl.to_vec(), flags: mode.flags(), ttl };
            (OpCode::CreateTtl, req.to_bytes())
        } else {
            let req = CreateRequest { path: sp, data, acl: acl.to_vec(), flags: mode.flags() };
            let op = match (mode, ttl.is_some()) {
                (CreateMode::Container, _) => OpCode::CreateContainer,
                (_, true) => OpCode::Create2,
                _ => OpCode::Create,
            };
            (op, req.to_bytes())
        };
        let resp = self.submit(op, &body, None, None).map_err(Self::err(path))?;
        // CreateResponse and Create2Response both start with the path.
        let created = CreateResponse::from_bytes(&resp)
            .map(|r| r.path)
            .map_err(|_| ZkError::keeper(MARSHALLING_ERROR, Some(path)))?;
        Ok(self.client_path(&created))
    }

    pub fn delete(&self, path: &str, version: i32) -> ZkResult<()> {
        check_path(path)?;
        // Java deletes "/" through the chroot check only; the server refuses it anyway.
        let req = DeleteRequest { path: self.server_path(path), version };
        self.submit(OpCode::Delete, &req.to_bytes(), None, None).map_err(Self::err(path))?;
        Ok(())
    }

    pub fn exists(&self, path: &str, watch: bool) -> ZkResult<Option<Stat>> {
        check_path(path)?;
        let req = PathWatchRequest { path: self.server_path(path), watch };
        let reg = watch.then(|| WatchReg::Exists(path.to_string()));
        match self.submit(OpCode::Exists, &req.to_bytes(), reg, None) {
            Ok(b) => Ok(Some(parse::<StatResponse>(&b, path)?.stat)),
            Err(NO_NODE) => Ok(None),
            Err(e) => Err(ZkError::keeper(e, Some(path))),
        }
    }

    pub fn get_data(&self, path: &str, watch: bool) -> ZkResult<(Option<Vec<u8>>, Stat)> {
        check_path(path)?;
        self.get_data_raw(path, self.server_path(path), watch)
    }

    fn get_data_raw(&self, path: &str, server_path: String, watch: bool) -> ZkResult<(Option<Vec<u8>>, Stat)> {
        let req = PathWatchRequest { path: server_path, watch };
        let reg = watch.then(|| WatchReg::Data(path.to_string()));
        let b = self.submit(OpCode::GetData, &req.to_bytes(), reg, None).map_err(Self::err(path))?;
        let r = parse::<GetDataResponse>(&b, path)?;
        Ok((r.data, r.stat))
    }

    /// `getConfig`: the data of /zookeeper/config (never under the chroot).
    pub fn get_config(&self, watch: bool) -> ZkResult<(Option<Vec<u8>>, Stat)> {
        let p = "/zookeeper/config";
        self.get_data_raw(p, p.to_string(), watch)
    }

    pub fn set_data(&self, path: &str, data: &[u8], version: i32) -> ZkResult<Stat> {
        check_path(path)?;
        let req = SetDataRequest { path: self.server_path(path), data: Some(data.to_vec()), version };
        let b = self.submit(OpCode::SetData, &req.to_bytes(), None, None).map_err(Self::err(path))?;
        Ok(parse::<StatResponse>(&b, path)?.stat)
    }

    pub fn get_children(&self, path: &str, watch: bool) -> ZkResult<Vec<String>> {
        check_path(path)?;
        let req = PathWatchRequest { path: self.server_path(path), watch };
        let reg = watch.then(|| WatchReg::Child(path.to_string()));
        let b = self.submit(OpCode::GetChildren, &req.to_bytes(), reg, None).map_err(Self::err(path))?;
        Ok(parse::<GetChildrenResponse>(&b, path)?.children)
    }

    pub fn get_children2(&self, path: &str, watch: bool) -> ZkResult<(Vec<String>, Stat)> {
        check_path(path)?;
        let req = PathWatchRequest { path: self.server_path(path), watch };
        let reg = watch.then(|| WatchReg::Child(path.to_string()));
        let b = self.submit(OpCode::GetChildren2, &req.to_bytes(), reg, None).map_err(Self::err(path))?;
        let r = parse::<GetChildren2Response>(&b, path)?;
        Ok((r.children, r.stat))
    }

    pub fn get_acl(&self, path: &str) -> ZkResult<(Vec<Acl>, Stat)> {
        check_path(path)?;
        let req = PathRequest { path: self.server_path(path) };
        let b = self.submit(OpCode::GetAcl, &req.to_bytes(), None, None).map_err(Self::err(path))?;
        let r = parse::<GetAclResponse>(&b, path)?;
        Ok((r.acl, r.stat))
    }

    pub fn set_acl(&self, path: &str, acl: &[Acl], version: i32) -> ZkResult<Stat> {
        check_path(path)?;
        if acl.is_empty() {
            return Err(ZkError::keeper(INVALID_ACL, None));
        }
        let req = SetAclRequest { path: self.server_path(path), acl: acl.to_vec(), version };
        let b = self.submit(OpCode::SetAcl, &req.to_bytes(), None, None).map_err(Self::err(path))?;
        Ok(parse::<StatResponse>(&b, path)?.stat)
    }

    /// `sync`: the result code (0 on success), as the async callback reports it.
    pub fn sync(&self, path: &str) -> ZkResult<i32> {
        check_path(path)?;
        let req = PathRequest { path: self.server_path(path) };
        Ok(match self.submit(OpCode::Sync, &req.to_bytes(), None, None) {
            Ok(_) => OK,
            Err(e) => e,
        })
    }

    /// `getEphemerals(prefix)`; like Java, the prefix is not put under the chroot and errors
    /// carry no path.
    pub fn get_ephemerals(&self, prefix: &str) -> ZkResult<Vec<String>> {
        check_path(prefix)?;
        let req = GetEphemeralsRequest { prefix_path: Some(prefix.to_string()) };
        let b = self
            .submit(OpCode::GetEphemerals, &req.to_bytes(), None, None)
            .map_err(|e| ZkError::keeper(e, None))?;
        Ok(parse::<GetEphemeralsResponse>(&b, prefix)?.ephemerals)
    }

    pub fn get_all_children_number(&self, path: &str) -> ZkResult<i32> {
        check_path(path)?;
        let req = PathRequest { path: self.server_path(path) };
        let b = self
            .submit(OpCode::GetAllChildrenNumber, &req.to_bytes(), None, None)
            .map_err(Self::err(path))?;
        Ok(parse::<GetAllChildrenNumberResponse>(&b, path)?.total_number)
    }

    pub fn add_watch(&self, path: &str, mode: AddWatchMode) -> ZkResult<()> {
        check_path(path)?;
        let (m, reg) = match mode {
            AddWatchMode::Persistent => (0, WatchReg::Persistent(path.to_string())),
            AddWatchMode::PersistentRecursive => (1, WatchReg::PersistentRecursive(path.to_string())),
        };
        let req = AddWatchRequest { path: self.server_path(path), mode: m };
        self.submit(OpCode::AddWatch, &req.to_bytes(), Some(reg), None).map_err(Self::err(path))?;
        Ok(())
    }

    /// `removeAllWatches(path, type, local)`; the "watch removed" events are delivered before
    /// this returns.
    pub fn remove_all_watches(&self, path: &str, kind: WatcherType, local: bool) -> ZkResult<()> {
        check_path(path)?;
        let req = crate::jute::records::RemoveWatchesRequest { path: self.server_path(path), watch_type: kind.code() };
        let dereg = WatchDereg { path: path.to_string(), kind, local };
        self.submit(OpCode::RemoveWatches, &req.to_bytes(), None, Some(dereg)).map_err(Self::err(path))?;
        Ok(())
    }

    /// `whoAmI`: like Java, a failed call gives an empty list rather than an error.
    pub fn who_am_i(&self) -> Vec<ClientInfo> {
        match self.submit(OpCode::WhoAmI, &[], None, None) {
            Ok(b) => WhoAmIResponse::from_bytes(&b).map(|r| r.client_info).unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// A multi of deletes (version -1 each): the first failing op's code, or 0.
    pub fn multi_delete(&self, paths: &[String]) -> ZkResult<i32> {
        for p in paths {
            check_path(p)?;
        }
        let mut w = Writer::new();
        for p in paths {
            MultiHeader { op: OpCode::Delete.code(), done: false, err: -1 }.write(&mut w);
            DeleteRequest { path: self.server_path(p), version: -1 }.write(&mut w);
        }
        MultiHeader { op: -1, done: true, err: -1 }.write(&mut w);
        let b = match self.submit(OpCode::Multi, &w.buf, None, None) {
            Ok(b) => b,
            Err(e) => return Ok(e),
        };
        let mut r = Reader::new(&b);
        loop {
            let Ok(h) = MultiHeader::read(&mut r) else { return Ok(MARSHALLING_ERROR) };
            if h.done {
                return Ok(OK);
            }
            if h.op == -1 {
                let err = r.read_i32().unwrap_or(MARSHALLING_ERROR);
                if err != OK {
                    return Ok(err);
                }
            }
        }
    }

    /// `reconfigure`: the new config data and its stat.
    pub fn reconfig(
        &self,
        joining: Option<String>,
        leaving: Option<String>,
        members: Option<String>,
        version: i64,
    ) -> ZkResult<(Option<Vec<u8>>, Stat)> {
        let req = crate::jute::records::ReconfigRequest {
            joining_servers: joining,
            leaving_servers: leaving,
            new_members: members,
            cur_config_id: version,
        };
        let b = self.submit(OpCode::Reconfig, &req.to_bytes(), None, None).map_err(|e| ZkError::keeper(e, None))?;
        let r = parse::<GetDataResponse>(&b, "")?;
        Ok((r.data, r.stat))
    }
}

fn parse<T: Jute>(b: &[u8], path: &str) -> ZkResult<T> {
    T::from_bytes(b).map_err(|_| ZkError::keeper(MARSHALLING_ERROR, Some(path)))
}

fn strip_chroot(chroot: Option<&str>, server_path: &str) -> String {
    match chroot {
        None => server_path.to_string(),
        Some(c) if server_path == c => "/".to_string(),
        Some(c) if server_path.len() > c.len() && server_path.starts_with(c) => server_path[c.len()..].to_string(),
        Some(_) => server_path.to_string(),
    }
}

/// Applies a finished request's watch (de)registration and hands the result to the caller.
fn finish(shared: &Shared, p: Pending, err: i32, body: Vec<u8>) {
    let tx = p.tx.clone();
    let r = finish_now(shared, p, err, body);
    let _ = tx.send(r);
}

fn finish_now(shared: &Shared, p: Pending, mut err: i32, body: Vec<u8>) -> ReplyResult {
    if let Some(reg) = &p.reg {
        lock(&shared.watches).register(reg, err);
    }
    if let Some(d) = &p.dereg {
        let r = lock(&shared.watches).deregister(d, err);
        match r {
            Ok(events) => {
                let state = if err == CONNECTION_LOSS || err == SESSION_EXPIRED {
                    KeeperState::Disconnected
                } else {
                    KeeperState::SyncConnected
                };
                for kind in events {
                    (shared.watcher)(&WatchedEvent { state, kind, path: Some(d.path.clone()) });
                }
                err = OK;
            }
            Err(code) => err = code,
        }
    }
    (err, body)
}

enum Outcome {
    /// The handshake failed (or the host was unreachable).
    Failed,
    /// The server said the session is gone.
    Expired,
    /// A session was up and then lost.
    Lost,
    /// We are closing (or auth failed); stop.
    Stop,
}

fn io_thread(shared: Arc<Shared>) {
    let n = shared.hosts.len();
    let mut idx = 0usize;
    let mut failures_in_cycle = 0usize;
    loop {
        if lock(&shared.conn).closing {
            return;
        }
        let host = shared.hosts[idx].clone();
        idx = (idx + 1) % n;
        match run_connection(&shared, &host) {
            Outcome::Stop => return,
            Outcome::Expired => {
                let mut st = lock(&shared.conn);
                st.state = States::Closed;
                st.writer = None;
                st.attempt += 1;
                let pending: Vec<Pending> = st.pending.drain(..).collect();
                shared.cond.notify_all();
                drop(st);
                (shared.watcher)(&WatchedEvent::state_only(KeeperState::Expired));
                for p in pending {
                    finish(&shared, p, SESSION_EXPIRED, Vec::new());
                }
                return;
            }
            Outcome::Lost => {
                failures_in_cycle = 0;
                let mut st = lock(&shared.conn);
                if st.closing {
                    return;
                }
                st.state = States::Connecting;
                st.writer = None;
                st.attempt += 1;
                let pending: Vec<Pending> = st.pending.drain(..).collect();
                shared.cond.notify_all();
                drop(st);
                (shared.watcher)(&WatchedEvent::state_only(KeeperState::Disconnected));
                for p in pending {
                    finish(&shared, p, CONNECTION_LOSS, Vec::new());
                }
            }
            Outcome::Failed => {
                let mut st = lock(&shared.conn);
                if st.closing {
                    return;
                }
                st.attempt += 1;
                let pending: Vec<Pending> = st.pending.drain(..).collect();
                shared.cond.notify_all();
                failures_in_cycle += 1;
                // Once every host failed, pause up to a second before the next round.
                if failures_in_cycle >= n {
                    failures_in_cycle = 0;
                    let pause = Duration::from_millis(200 + (rand::random::<u64>() % 800));
                    let deadline = Instant::now() + pause;
                    drop(st);
                    for p in pending {
                        finish(&shared, p, CONNECTION_LOSS, Vec::new());
                    }
                    let mut st = lock(&shared.conn);
                    while !st.closing {
                        let now = Instant::now();
                        if now >= deadline {
                            break;
                        }
                        st = shared.cond.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
                    }
                } else {
                    drop(st);
                    for p in pending {
                        finish(&shared, p, CONNECTION_LOSS, Vec::new());
                    }
                }
            }
        }
    }
}

fn resolve(host: &(String, u16)) -> Vec<SocketAddr> {
    (host.0.as_str(), host.1).to_socket_addrs().map(|a| a.collect()).unwrap_or_default()
}

/// Reads one length-prefixed frame, honouring the stream's read timeout.
fn read_frame(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let n = i32::from_be_bytes(len);
    if n < 0 || n as usize > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("Packet len {n} is out of range!")));
    }
    let mut buf = vec![0u8; n as usize];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

fn run_connection(shared: &Arc<Shared>, host: &(String, u16)) -> Outcome {
    let n = shared.hosts.len().max(1) as u64;
    let connect_timeout = Duration::from_millis((shared.session_timeout.max(1000) as u64 / n).max(200));
    let addrs = resolve(host);
    let mut stream = None;
    for a in addrs {
        if let Ok(s) = TcpStream::connect_timeout(&a, connect_timeout) {
            stream = Some(s);
            break;
        }
    }
    let Some(mut s) = stream else { return Outcome::Failed };
    let _ = s.set_nodelay(true);
    let (last_zxid, session_id, passwd) = {
        let st = lock(&shared.conn);
        if st.closing {
            return Outcome::Stop;
        }
        (st.last_zxid, st.session_id, st.passwd.clone())
    };
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: last_zxid,
        time_out: shared.session_timeout,
        session_id,
        passwd: Some(passwd),
        read_only: Some(shared.read_only),
    };
    let mut w = Writer::new();
    let at = w.begin_frame();
    req.write(&mut w);
    w.finish_frame(at);
    if s.write_all(&w.buf).is_err() {
        return Outcome::Failed;
    }
    let _ = s.set_read_timeout(Some(connect_timeout.max(Duration::from_secs(1))));
    let resp = match read_frame(&mut s).ok().and_then(|f| ConnectResponse::from_bytes(&f).ok()) {
        Some(r) => r,
        None => return Outcome::Failed,
    };
    if resp.time_out <= 0 {
        return Outcome::Expired;
    }
    let read_only = resp.read_only.unwrap_or(false);
    let Ok(writer) = s.try_clone() else { return Outcome::Failed };
    {
        let mut st = lock(&shared.conn);
        if st.closing {
            let _ = s.shutdown(Shutdown::Both);
            return Outcome::Stop;
        }
        st.session_id = resp.session_id;
        st.passwd = resp.passwd.clone();
        st.negotiated_timeout = resp.time_out;
        st.writer = Some(writer);
        st.last_send = Instant::now();
        // Credentials, then watches, before anything queued (ClientCnxn.primeConnection).
        let mut prime = Vec::new();
        for (scheme, auth) in &st.auth_info {
            let body = crate::jute::records::AuthPacket { auth_type: 0, scheme: scheme.clone(), auth: auth.clone() }.to_bytes();
            prime.extend(frame(AUTH_XID, OpCode::Auth.code(), &body));
        }
        let watches = lock(&shared.watches).clone();
        if !watches.is_empty() && session_id != 0 {
            let sp = |set: &BTreeSet<String>| -> Vec<String> {
                set.iter()
                    .map(|p| match &shared.chroot {
                        None => p.clone(),
                        Some(c) if p == "/" => c.clone(),
                        Some(c) => format!("{c}{p}"),
                    })
                    .collect()
            };
            if watches.persistent.is_empty() && watches.persistent_recursive.is_empty() {
                let body = SetWatches {
                    relative_zxid: st.last_zxid,
                    data_watches: sp(&watches.data),
                    exist_watches: sp(&watches.exist),
                    child_watches: sp(&watches.child),
                }
                .to_bytes();
                prime.extend(frame(SET_WATCHES_XID, OpCode::SetWatches.code(), &body));
            } else {
                let body = SetWatches2 {
                    relative_zxid: st.last_zxid,
                    data_watches: sp(&watches.data),
                    exist_watches: sp(&watches.exist),
                    child_watches: sp(&watches.child),
                    persistent_watches: sp(&watches.persistent),
                    persistent_recursive_watches: sp(&watches.persistent_recursive),
                }
                .to_bytes();
                prime.extend(frame(SET_WATCHES_XID, OpCode::SetWatches2.code(), &body));
            }
        }
        if !prime.is_empty() {
            let ok = st.writer.as_mut().map(|w| w.write_all(&prime).is_ok()).unwrap_or(false);
            if !ok {
                st.writer = None;
                return Outcome::Failed;
            }
        }
        st.state = if read_only { States::ConnectedReadOnly } else { States::Connected };
    }
    // The event before anyone waiting is woken, so it prints before the first reply's output.
    let ev = if read_only { KeeperState::ConnectedReadOnly } else { KeeperState::SyncConnected };
    (shared.watcher)(&WatchedEvent::state_only(ev));
    shared.cond.notify_all();
    read_loop(shared, s, resp.time_out)
}

fn read_loop(shared: &Arc<Shared>, mut s: TcpStream, negotiated: i32) -> Outcome {
    let read_timeout = Duration::from_millis((negotiated as u64 * 2 / 3).max(10));
    let ping_interval = read_timeout / 2;
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut tmp = vec![0u8; 64 * 1024];
    let mut last_recv = Instant::now();
    loop {
        let now = Instant::now();
        if now.duration_since(last_recv) >= read_timeout {
            return lost_or_stop(shared);
        }
        let since_send = {
            let mut st = lock(&shared.conn);
            if st.closing && st.pending.is_empty() {
                return Outcome::Stop;
            }
            let idle = now.duration_since(st.last_send);
            if idle >= ping_interval && !st.closing {
                let bytes = frame(PING_XID, OpCode::Ping.code(), &[]);
                st.last_send = now;
                if let Some(w) = st.writer.as_mut() {
                    let _ = w.write_all(&bytes);
                }
                Duration::ZERO
            } else {
                idle
            }
        };
        let until_ping = ping_interval.saturating_sub(since_send);
        let until_dead = read_timeout.saturating_sub(now.duration_since(last_recv));
        let wait = until_ping.min(until_dead).max(Duration::from_millis(5));
        let _ = s.set_read_timeout(Some(wait));
        match s.read(&mut tmp) {
            Ok(0) => return lost_or_stop(shared),
            Ok(k) => {
                buf.extend_from_slice(&tmp[..k]);
                last_recv = Instant::now();
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted) => {
                continue;
            }
            Err(_) => return lost_or_stop(shared),
        }
        // Handle every complete frame.
        let mut off = 0;
        while buf.len() - off >= 4 {
            let n = i32::from_be_bytes(buf[off..off + 4].try_into().unwrap());
            if n < 0 || n as usize > MAX_FRAME {
                return lost_or_stop(shared);
            }
            let n = n as usize;
            if buf.len() - off - 4 < n {
                break;
            }
            let f = buf[off + 4..off + 4 + n].to_vec();
            off += 4 + n;
            if let Some(outcome) = handle_frame(shared, &f) {
                return outcome;
            }
        }
        buf.drain(..off);
    }
}

fn lost_or_stop(shared: &Shared) -> Outcome {
    let st = lock(&shared.conn);
    if st.closing || !st.state.is_alive() { Outcome::Stop } else { Outcome::Lost }
}

fn handle_frame(shared: &Arc<Shared>, f: &[u8]) -> Option<Outcome> {
    let mut r = Reader::new(f);
    let Ok(h) = ReplyHeader::read(&mut r) else { return Some(lost_or_stop(shared)) };
    let body = r.rest().to_vec();
    match h.xid {
        PING_XID | SET_WATCHES_XID => None,
        AUTH_XID => {
            if h.err == AUTH_FAILED {
                let mut st = lock(&shared.conn);
                st.state = States::AuthFailed;
                if let Some(w) = st.writer.take() {
                    let _ = w.shutdown(Shutdown::Both);
                }
                let pending: Vec<Pending> = st.pending.drain(..).collect();
                shared.cond.notify_all();
                drop(st);
                (shared.watcher)(&WatchedEvent::state_only(KeeperState::AuthFailed));
                for p in pending {
                    finish(shared, p, AUTH_FAILED, Vec::new());
                }
                return Some(Outcome::Stop);
            }
            None
        }
        NOTIFICATION_XID => {
            let Ok(ev) = WatcherEvent::from_bytes(&body) else { return None };
            let kind = EventType::from_i32(ev.event_type)?;
            let path = strip_chroot(shared.chroot.as_deref(), &ev.path);
            let fire = lock(&shared.watches).materialize(kind, &path);
            if fire {
                let event = WatchedEvent { state: KeeperState::from_i32(ev.state), kind, path: Some(path) };
                (shared.watcher)(&event);
            }
            None
        }
        _ => {
            let p = {
                let mut st = lock(&shared.conn);
                if h.zxid > 0 {
                    st.last_zxid = h.zxid;
                }
                match st.pending.pop_front() {
                    Some(p) if p.xid == h.xid => p,
                    // Out of order, or a reply nobody asked for: the connection is unusable.
                    Some(p) => {
                        st.pending.push_front(p);
                        drop(st);
                        return Some(lost_or_stop(shared));
                    }
                    None => {
                        drop(st);
                        return Some(lost_or_stop(shared));
                    }
                }
            };
            finish(shared, p, h.err, if h.err == OK { body } else { Vec::new() });
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_validation_matches_java_messages() {
        assert_eq!(validate_path("/"), Ok(()));
        assert_eq!(validate_path("/a/b"), Ok(()));
        assert_eq!(validate_path("x").unwrap_err(), "Path must start with / character");
        assert_eq!(validate_path("/x/").unwrap_err(), "Path must not end with / character");
        assert_eq!(validate_path("").unwrap_err(), "Path length must be > 0");
        assert_eq!(
            validate_path("/a//b").unwrap_err(),
            "Invalid path string \"/a//b\" caused by empty node name specified @3"
        );
        assert_eq!(
            validate_path("/a/../b").unwrap_err(),
            "Invalid path string \"/a/../b\" caused by relative paths not allowed @4"
        );
        assert_eq!(
            validate_path("/a/.").unwrap_err(),
            "Invalid path string \"/a/.\" caused by relative paths not allowed @3"
        );
        assert_eq!(validate_path("/a/.b"), Ok(()));
    }

    #[test]
    fn connect_strings() {
        let c = parse_connect_string("127.0.0.1:2181,localhost/app").unwrap();
        assert_eq!(c.hosts, vec![("127.0.0.1".to_string(), 2181), ("localhost".to_string(), 2181)]);
        assert_eq!(c.chroot.as_deref(), Some("/app"));
        let c = parse_connect_string("[::1]:2182/").unwrap();
        assert_eq!(c.hosts, vec![("::1".to_string(), 2182)]);
        assert_eq!(c.chroot, None);
        assert!(parse_connect_string("h:x").is_err());
        assert_eq!(strip_chroot(Some("/app"), "/app"), "/");
        assert_eq!(strip_chroot(Some("/app"), "/app/x"), "/x");
    }

    #[test]
    fn watch_tables_follow_the_java_client() {
        let mut w = WatchTables::default();
        w.register(&WatchReg::Exists("/a".into()), NO_NODE);
        assert!(w.exist.contains("/a"));
        assert!(w.materialize(EventType::NodeCreated, "/a"));
        assert!(!w.materialize(EventType::NodeDataChanged, "/a"));
        w.register(&WatchReg::PersistentRecursive("/r".into()), OK);
        assert!(w.materialize(EventType::NodeCreated, "/r/x/y"));
        assert!(w.materialize(EventType::NodeCreated, "/r/x/y"));
        assert!(!w.materialize(EventType::NodeCreated, "/rx"));
        let d = WatchDereg { path: "/r".into(), kind: WatcherType::Data, local: false };
        assert_eq!(w.deregister(&d, OK), Err(NO_WATCHER));
        let d = WatchDereg { path: "/r".into(), kind: WatcherType::Any, local: false };
        assert_eq!(w.deregister(&d, OK), Ok(vec![EventType::PersistentWatchRemoved]));
        assert!(w.is_empty());
    }

    #[test]
    fn event_text() {
        let e = WatchedEvent { state: KeeperState::SyncConnected, kind: EventType::NodeDataChanged, path: Some("/x".into()) };
        assert_eq!(e.to_string(), "WatchedEvent state:SyncConnected type:NodeDataChanged path:/x");
        assert_eq!(
            WatchedEvent::state_only(KeeperState::Closed).to_string(),
            "WatchedEvent state:Closed type:None path:null"
        );
        assert_eq!(ZkError::keeper(-101, Some("/x")).to_string(), "KeeperErrorCode = NoNode for /x");
        assert_eq!(ZkError::keeper(-114, None).to_string(), "KeeperErrorCode = InvalidACL");
    }
}

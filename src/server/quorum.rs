//! The quorum shell: carries out what `zab::election` and `zab::peer` decide, over the election
//! port (QuorumCnxManager's rules) and the quorum port (leader ↔ learners), with the txn log and
//! the engine.
//!
//! Threads, not tasks: each quorum or election connection has a blocking reader thread and a
//! writer thread fed by a channel. A reader takes the state lock for each message it hands to the
//! pure state machines, and the actions they return are carried out under that same lock, in
//! order — so the engine (which applies commits) and the peer (which decides them) never disagree
//! about what has been applied, e.g. when a SNAP is serialised.

use super::{durability, Shared, State};
use crate::engine::{Now, Proposal, Role as EngineRole};
use crate::jute::records::Id;
use crate::jute::Writer;
use crate::storage::txnlog::{decode_txn_bytes, txn_bytes};
use crate::tree::DataTree;
use crate::types::{SessionId, Zxid};
use crate::zab::election::{Election, ElectionAction, Vote};
use crate::zab::packet::{self as pk, Notification, QuorumPacket};
use crate::zab::peer::{Action, Durable, Peer, PeerConfig, ZabTxn};
use crate::zab::{LearnerType, PeerState, QuorumServer, QuorumVerifier, ServerId};
use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::Duration;

/// Largest quorum packet body accepted (Apache's jute.maxbuffer default plus headroom).
const MAX_PACKET: usize = 64 * 1024 * 1024;

struct QConn {
    tx: Sender<Vec<u8>>,
    stream: TcpStream,
}

/// The quorum part of the server state (under the state lock).
pub struct QuorumState {
    pub me: ServerId,
    pub verifier: QuorumVerifier,
    pub peer: Peer,
    pub election: Election,
    pub state: PeerState,
    pub leader: Option<ServerId>,
    /// Whether the role is established and clients are served.
    pub serving: bool,
    /// Bumped on every role change: threads of an older role see it and stop.
    pub generation: u64,
    conns: BTreeMap<ServerId, QConn>,
    /// A SNAP's state, parsed by the reader thread before it hands the packet over.
    pending_snapshot: Option<(DataTree, Vec<(SessionId, i32)>)>,
    /// Bumped on every log truncation: log reports from before it are stale.
    pub log_generation: u64,
    /// Where election messages go (its own lock: socket work never happens under the state lock).
    election_net: Arc<ElectionNet>,
    /// Leader: last/min/max proposal packet size (-1 before any), for srvr and mntr.
    pub proposal_sizes: (i64, i64, i64),
    /// Packets queued per server, not yet handed to its writer (see `send_pkt`).
    out: BTreeMap<ServerId, Vec<u8>>,
}

impl QuorumState {
    pub fn mode(&self) -> &'static str {
        self.state.mode()
    }
    /// What srvr/stat/mntr show.
    pub fn info(&self) -> super::four_letter::QuorumInfo {
        let leader = self.peer.leader_counts();
        let phase = if self.serving { "broadcast" } else if matches!(self.state, PeerState::Looking) { "election" } else { "synchronization" };
        let peer_state = match (self.state, phase) {
            (PeerState::Leading, "broadcast") => "leading - broadcast",
            (PeerState::Leading, _) => "leading - synchronization",
            (PeerState::Following, "broadcast") => "following - broadcast",
            (PeerState::Following, _) => "following - synchronization",
            (PeerState::Observing, "broadcast") => "observing - broadcast",
            (PeerState::Observing, _) => "observing - synchronization",
            (PeerState::Looking, _) => "looking - election",
        };
        super::four_letter::QuorumInfo {
            mode: self.state.mode(),
            peer_state,
            serving: self.serving,
            quorum_size: self.verifier.voters().count(),
            leader,
            proposal_sizes: self.proposal_sizes,
        }
    }
}

/// `server.N=host:quorumPort:electionPort[:participant|observer][;[clientAddr:]clientPort]`.
pub fn parse_server_line(id: u64, value: &str) -> Result<QuorumServer, String> {
    let (addr, client) = match value.split_once(';') {
        Some((a, c)) => (a.trim(), Some(c.trim().to_string())),
        None => (value.trim(), None),
    };
    // host may be an IPv6 literal in brackets.
    let (host, rest) = if let Some(stripped) = addr.strip_prefix('[') {
        let end = stripped.find(']').ok_or_else(|| format!("server.{id}: unterminated [ in {value}"))?;
        (format!("[{}]", &stripped[..end]), stripped[end + 1..].trim_start_matches(':').to_string())
    } else {
        let (h, r) = addr.split_once(':').ok_or_else(|| format!("server.{id}: expected host:port:port in {value}"))?;
        (h.to_string(), r.to_string())
    };
    let parts: Vec<&str> = rest.split(':').collect();
    if parts.len() < 2 {
        return Err(format!("server.{id}: expected host:quorumPort:electionPort in {value}"));
    }
    let qport: u16 = parts[0].parse().map_err(|_| format!("server.{id}: bad quorum port {}", parts[0]))?;
    let eport: u16 = parts[1].parse().map_err(|_| format!("server.{id}: bad election port {}", parts[1]))?;
    let learner_type = match parts.get(2).map(|s| s.to_ascii_lowercase()) {
        None => LearnerType::Participant,
        Some(s) if s == "participant" => LearnerType::Participant,
        Some(s) if s == "observer" => LearnerType::Observer,
        Some(s) => return Err(format!("server.{id}: unknown role {s}")),
    };
    Ok(QuorumServer { id: ServerId(id), quorum_addr: format!("{host}:{qport}"), election_addr: format!("{host}:{eport}"), learner_type, client_addr: client })
}

pub fn verifier_from_config(cfg: &super::config::ServerConfig) -> Result<QuorumVerifier, String> {
    let mut servers = Vec::new();
    for (id, v) in &cfg.servers {
        servers.push(parse_server_line(*id, v)?);
    }
    Ok(QuorumVerifier::new(servers))
}

/// Reads `<dataDir>/myid` (a decimal server id).
pub fn read_myid(data_dir: &Path) -> Result<u64, String> {
    let p = data_dir.join("myid");
    let s = std::fs::read_to_string(&p).map_err(|e| format!("{} file is missing: {e}", p.display()))?;
    s.trim().parse().map_err(|_| format!("serverid {} is not a number", s.trim()))
}

/// acceptedEpoch / currentEpoch: a decimal number in `<dataDir>/version-2/<name>`, written to a
/// temp file, fsynced and renamed (Apache's AtomicFileOutputStream).
fn read_epoch(dir: &Path, name: &str) -> Option<u32> {
    std::fs::read_to_string(dir.join(name)).ok().and_then(|s| s.trim().parse().ok())
}

fn write_epoch(dir: &Path, name: &str, epoch: u32) {
    let tmp = dir.join(format!("{name}.tmp"));
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(epoch.to_string().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = res {
        // An epoch that is not durable could let this server vote twice in one epoch.
        tracing::error!("cannot write {}: {e}; exiting", dir.join(name).display());
        std::process::exit(3);
    }
}

/// Sets up the quorum state at start-up (after the tree is restored) and returns it; the
/// caller puts it into `State` and then calls `start`.
pub fn init(cfg: &super::config::ServerConfig, last_logged: Zxid) -> Result<QuorumState, String> {
    let verifier = verifier_from_config(cfg)?;
    let me = ServerId(cfg.server_id);
    let lt = verifier.servers.get(&me).map(|s| s.learner_type).ok_or_else(|| format!("myid {me} is not in any server.N line"))?;
    let dir = cfg.snap_dir();
    let current_epoch = read_epoch(&dir, "currentEpoch").unwrap_or(last_logged.epoch());
    let accepted_epoch = read_epoch(&dir, "acceptedEpoch").unwrap_or(last_logged.epoch()).max(current_epoch);
    let pc = PeerConfig {
        me,
        verifier: verifier.clone(),
        tick_ms: cfg.tick_time_ms as u64,
        init_limit: cfg.init_limit.max(1) as u64,
        sync_limit: cfg.sync_limit.max(1) as u64,
        commit_log_count: 500,
    };
    let durable = Durable { accepted_epoch, current_epoch, last_logged, recent: Default::default() };
    Ok(QuorumState {
        me,
        verifier: verifier.clone(),
        peer: Peer::new(pc, durable),
        election: Election::new(me, verifier, lt),
        state: PeerState::Looking,
        leader: None,
        serving: false,
        generation: 0,
        conns: BTreeMap::new(),
        pending_snapshot: None,
        log_generation: 0,
        election_net: Arc::new(ElectionNet::default()),
        proposal_sizes: (-1, -1, -1),
        out: BTreeMap::new(),
    })
}

/// Starts the listeners and the first election.
pub fn start(shared: &Arc<Shared>) -> Result<(), String> {
    let (eaddr, qaddr, net) = {
        let st = shared.lock();
        let q = st.quorum.as_ref().expect("quorum mode");
        let me = &q.verifier.servers[&q.me];
        (me.election_addr.clone(), me.quorum_addr.clone(), q.election_net.clone())
    };
    let listen_all = shared.config.quorum_listen_on_all_ips;
    let bind = |addr: &str| -> Result<TcpListener, String> {
        let addr = if listen_all { format!("0.0.0.0:{}", addr.rsplit(':').next().unwrap_or("0")) } else { addr.to_string() };
        let tries = match shared.config.election_port_bind_retry {
            0 => u32::MAX,
            n => n,
        };
        let mut last = String::new();
        for i in 0..tries.max(1) {
            match TcpListener::bind(&addr) {
                Ok(l) => return Ok(l),
                Err(e) => {
                    last = format!("cannot listen on {addr}: {e}");
                    tracing::warn!("{last} (attempt {})", i + 1);
                    if i + 1 < tries.max(1) {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
        }
        Err(last)
    };
    let el = bind(&eaddr)?;
    let ql = bind(&qaddr)?;
    tracing::info!("election port {eaddr}, quorum port {qaddr}");
    {
        let shared = shared.clone();
        let net = net.clone();
        std::thread::Builder::new().name("rzk-election-accept".into()).spawn(move || election_accept(shared, net, el)).map_err(|e| e.to_string())?;
    }
    {
        let shared = shared.clone();
        std::thread::Builder::new().name("rzk-learner-accept".into()).spawn(move || learner_accept(shared, ql)).map_err(|e| e.to_string())?;
    }
    let mut st = shared.lock();
    go_looking(shared, &mut st, "starting up");
    Ok(())
}

// ---- election transport (QuorumCnxManager) ----

#[derive(Default)]
pub struct ElectionNet {
    inner: parking_lot::Mutex<NetInner>,
}

#[derive(Default)]
struct NetInner {
    /// Live connections by server id.
    conns: BTreeMap<ServerId, (Sender<Vec<u8>>, TcpStream)>,
    /// The last message for each server, resent when a connection comes up.
    last: BTreeMap<ServerId, Vec<u8>>,
    dialing: std::collections::BTreeSet<ServerId>,
}

impl ElectionNet {
    fn send(self: &Arc<Self>, shared: &Arc<Shared>, to: ServerId, payload: Vec<u8>) {
        let mut f = Vec::with_capacity(4 + payload.len());
        pk::encode_frame(&payload, &mut f);
        let mut g = self.inner.lock();
        g.last.insert(to, f.clone());
        if let Some((tx, _)) = g.conns.get(&to) {
            if tx.send(f).is_ok() {
                return;
            }
            g.conns.remove(&to);
        }
        if g.dialing.insert(to) {
            let (net, shared) = (self.clone(), shared.clone());
            let _ = std::thread::Builder::new().name(format!("rzk-election-dial-{to}")).spawn(move || {
                dial_election(&shared, &net, to);
                net.inner.lock().dialing.remove(&to);
            });
        }
    }

    fn register(self: &Arc<Self>, shared: &Arc<Shared>, sid: ServerId, stream: TcpStream) {
        let (tx, rx) = channel::<Vec<u8>>();
        let Ok(wstream) = stream.try_clone() else { return };
        {
            let mut g = self.inner.lock();
            if let Some((_, old)) = g.conns.remove(&sid) {
                let _ = old.shutdown(Shutdown::Both);
            }
            // Apache resends the last message so a peer that missed it (a broken connection) hears it.
            if let Some(m) = g.last.get(&sid) {
                let _ = tx.send(m.clone());
            }
            g.conns.insert(sid, (tx, stream.try_clone().unwrap_or(wstream.try_clone().unwrap())));
        }
        std::thread::spawn(move || {
            let mut w = wstream;
            while let Ok(m) = rx.recv() {
                if w.write_all(&m).is_err() {
                    break;
                }
            }
            let _ = w.shutdown(Shutdown::Both);
        });
        let (net, shared) = (self.clone(), shared.clone());
        std::thread::spawn(move || election_reader(shared, net, sid, stream));
    }
}

fn my_election_addr(shared: &Shared) -> (ServerId, String) {
    let st = shared.lock();
    let q = st.quorum.as_ref().expect("quorum mode");
    (q.me, q.verifier.servers[&q.me].election_addr.clone())
}

fn resolve(addr: &str) -> Option<std::net::SocketAddr> {
    // Resolved on every attempt, so a peer whose name moved (a restarted container) is found.
    addr.to_socket_addrs().ok()?.next()
}

fn dial_election(shared: &Arc<Shared>, net: &Arc<ElectionNet>, to: ServerId) {
    let (me, my_addr) = my_election_addr(shared);
    let addr = {
        let st = shared.lock();
        st.quorum.as_ref().and_then(|q| q.verifier.servers.get(&to)).map(|s| s.election_addr.clone())
    };
    let Some(addr) = addr else { return };
    let Some(sa) = resolve(&addr) else {
        tracing::warn!("cannot resolve election address {addr} of server {to}");
        return;
    };
    let Ok(mut s) = TcpStream::connect_timeout(&sa, Duration::from_millis(5000)) else { return };
    let _ = s.set_nodelay(true);
    let hs = pk::InitialMessage::v1(me, &my_addr).to_bytes();
    if s.write_all(&hs).is_err() {
        return;
    }
    if to > me {
        // Only the connection opened by the larger id is kept: the peer closes this one and
        // dials back.
        let _ = s.shutdown(Shutdown::Write);
        return;
    }
    net.register(shared, to, s);
}

fn election_accept(shared: Arc<Shared>, net: Arc<ElectionNet>, l: TcpListener) {
    for s in l.incoming() {
        let Ok(mut s) = s else { continue };
        let _ = s.set_nodelay(true);
        let (shared, net) = (shared.clone(), net.clone());
        std::thread::spawn(move || {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let Some(sid) = read_initial_message(&mut s) else { return };
            let _ = s.set_read_timeout(None);
            let (me, _) = my_election_addr(&shared);
            if sid < me {
                // Keep only connections from larger ids: close, and dial back.
                let _ = s.shutdown(Shutdown::Both);
                let payload = net.inner.lock().last.get(&sid).cloned();
                let _ = payload;
                if net.inner.lock().dialing.insert(sid) {
                    dial_election(&shared, &net, sid);
                    net.inner.lock().dialing.remove(&sid);
                }
                return;
            }
            net.register(&shared, sid, s);
        });
    }
}

fn read_initial_message(s: &mut TcpStream) -> Option<ServerId> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        match pk::InitialMessage::parse(&buf) {
            Ok(Some((m, _used))) => return Some(m.sid),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("bad election handshake: {e}");
                return None;
            }
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn election_reader(shared: Arc<Shared>, net: Arc<ElectionNet>, sid: ServerId, s: TcpStream) {
    let mut r = BufReader::new(s);
    loop {
        let mut len = [0u8; 4];
        if r.read_exact(&mut len).is_err() {
            break;
        }
        let n = i32::from_be_bytes(len);
        if !(1..=524_288).contains(&n) {
            tracing::warn!("election message of {n} bytes from server {sid}; closing");
            break;
        }
        let mut body = vec![0u8; n as usize];
        if r.read_exact(&mut body).is_err() {
            break;
        }
        let Ok(note) = Notification::decode(&body) else {
            tracing::warn!("malformed notification from server {sid}");
            continue;
        };
        let mut st = shared.lock();
        let now = shared.now().mono_ms;
        let Some(q) = st.quorum.as_mut() else { return };
        let acts = q.election.on_notification(sid, &note, now);
        election_actions(&shared, &mut st, acts);
    }
    let mut g = net.inner.lock();
    if let Some((_, s)) = g.conns.get(&sid)
        && let (Ok(a), Ok(b)) = (s.peer_addr(), r.get_ref().peer_addr())
            && a == b && s.local_addr().ok() == r.get_ref().local_addr().ok() {
                g.conns.remove(&sid);
            }
}

fn election_actions(shared: &Arc<Shared>, st: &mut State, acts: Vec<ElectionAction>) {
    for a in acts {
        match a {
            ElectionAction::Send { to, n } => {
                let net = st.quorum.as_ref().unwrap().election_net.clone();
                net.send(shared, to, n.encode());
            }
            ElectionAction::Decided { state, vote } => decided(shared, st, state, vote),
        }
    }
}

fn decided(shared: &Arc<Shared>, st: &mut State, state: PeerState, vote: Vote) {
    let now = shared.now().mono_ms;
    let q = st.quorum.as_mut().unwrap();
    q.election.settle(state, vote);
    q.state = state;
    q.leader = Some(vote.leader);
    tracing::info!("{} - leader is server {} (epoch {}, zxid {})", state.mode().to_uppercase(), vote.leader, vote.peer_epoch, vote.zxid);
    let acts = match state {
        PeerState::Leading => q.peer.lead(now),
        _ => q.peer.follow(vote.leader, now),
    };
    peer_actions(shared, st, acts);
}

/// Drops the current role (clients, quorum connections) and starts an election.
pub fn go_looking(shared: &Arc<Shared>, st: &mut State, why: &str) {
    let now = shared.now();
    tracing::info!("LOOKING: {why}");
    super::notify::looking();
    let out = st.engine.drop_clients();
    st.dispatch(out);
    let q = st.quorum.as_mut().unwrap();
    q.serving = false;
    q.generation += 1;
    q.state = PeerState::Looking;
    q.leader = None;
    q.out.clear();
    for (_, c) in std::mem::take(&mut q.conns) {
        let _ = c.stream.shutdown(Shutdown::Both);
    }
    let rest = q.peer.stop();
    st.engine.set_role(EngineRole::Learner, now);
    // Apache's fastForwardDataBase: what this server logged but saw no commit for is applied
    // now (its clients are gone, so nobody is answered); the next leader keeps or TRUNCs it.
    for t in &rest {
        if t.zxid.0 > st.engine.tree.last_processed_zxid
            && let Some(p) = decode(t) {
                let out = st.engine.apply_committed(&p.hdr, &p.txn, p.digest, now);
                st.dispatch(out);
            }
    }
    let q = st.quorum.as_mut().unwrap();
    let last = q.peer.last_logged();
    let epoch = q.peer.durable.current_epoch as u64;
    let acts = q.election.start(last, epoch, now.mono_ms);
    election_actions(shared, st, acts);
}

// ---- quorum port ----

fn register_conn(st: &mut State, id: ServerId, stream: &TcpStream) -> bool {
    let Some(q) = st.quorum.as_mut() else { return false };
    let (Ok(ws), Ok(keep)) = (stream.try_clone(), stream.try_clone()) else { return false };
    let (tx, rx) = channel::<Vec<u8>>();
    if let Some(old) = q.conns.insert(id, QConn { tx, stream: keep }) {
        let _ = old.stream.shutdown(Shutdown::Both);
    }
    std::thread::spawn(move || {
        let mut w = std::io::BufWriter::with_capacity(256 * 1024, ws);
        while let Ok(m) = rx.recv() {
            if w.write_all(&m).is_err() {
                break;
            }
            // Write everything queued, then flush once (PROPOSALs and COMMITs travel in batches).
            let mut ok = true;
            while let Ok(m) = rx.try_recv() {
                if w.write_all(&m).is_err() {
                    ok = false;
                    break;
                }
            }
            if !ok || w.flush().is_err() {
                break;
            }
        }
        let _ = w.get_ref().shutdown(Shutdown::Both);
    });
    true
}

fn learner_accept(shared: Arc<Shared>, l: TcpListener) {
    for s in l.incoming() {
        let Ok(s) = s else { continue };
        let _ = s.set_nodelay(true);
        let shared = shared.clone();
        std::thread::spawn(move || serve_learner(shared, s));
    }
}

/// Leader side of one learner connection (LearnerHandler).
fn serve_learner(shared: Arc<Shared>, s: TcpStream) {
    let mut r = PacketReader::new(s.try_clone().expect("clone"));
    let init_ms = shared.config.tick_time_ms as u64 * shared.config.init_limit.max(1) as u64;
    let _ = s.set_read_timeout(Some(Duration::from_millis(init_ms)));
    let Ok(first) = r.next(false) else { return };
    let _ = s.set_read_timeout(None);
    if first.kind != pk::FOLLOWERINFO && first.kind != pk::OBSERVERINFO {
        tracing::warn!("first packet from a learner is {}, not FOLLOWERINFO; closing", pk::kind_name(first.kind));
        return;
    }
    let Some(info) = first.data.as_deref().and_then(|d| pk::LearnerInfo::decode(d).ok()) else {
        tracing::warn!("malformed LearnerInfo; closing");
        return;
    };
    let sid = ServerId(info.server_id);
    // A learner may decide on us before our own election has finished: Apache's finalizeWait
    // and notification timing differ from ours, and an Apache follower often connects a few
    // hundred ms before we settle. Apache's leader binds its quorum port only in Leader.lead(),
    // so there the learner sees "connection refused" and retries (Learner.connectToLeader);
    // our port is always bound, so hold the connection while we are still LOOKING instead of
    // closing it (a closed connection sends an Apache follower back to an election in a new
    // round, which our LEADING notification from the old round cannot end: "Oracle indicates
    // not to follow"). A server that follows someone else closes at once.
    let deadline = std::time::Instant::now() + Duration::from_millis(init_ms);
    loop {
        let state = shared.lock().quorum.as_ref().map(|q| q.state);
        match state {
            Some(PeerState::Leading) => break,
            Some(PeerState::Looking) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => return,
        }
    }
    let generation_ = {
        let mut st = shared.lock();
        let Some(q) = st.quorum.as_ref() else { return };
        if !matches!(q.state, PeerState::Leading) {
            return;
        }
        let generation_ = q.generation;
        if !register_conn(&mut st, sid, &s) {
            return;
        }
        let now = shared.now().mono_ms;
        let acts = st.quorum.as_mut().unwrap().peer.on_packet(sid, first, now);
        peer_actions(&shared, &mut st, acts);
        generation_
    };
    tracing::info!("learner {sid} connected from {:?}", s.peer_addr().ok());
    packet_loop(&shared, r, sid, generation_);
}

/// Learner side: dial the leader's quorum port (a few tries, as Apache's connectToLeader).
fn connect_to_leader(shared: Arc<Shared>, leader: ServerId, generation_: u64) {
    let addr = {
        let st = shared.lock();
        st.quorum.as_ref().and_then(|q| q.verifier.servers.get(&leader)).map(|s| s.quorum_addr.clone())
    };
    let Some(addr) = addr else { return };
    // Apache's Learner.LeaderConnector: retry every 100 ms (leaderConnectDelayDuringRetryMs)
    // for up to initLimit ticks. An Apache leader binds its quorum port only once it has won
    // the election (the Leader constructor), so the first tries are often refused.
    let tick = shared.config.tick_time_ms as u64;
    let connect_limit = Duration::from_millis(tick * shared.config.init_limit.max(1) as u64);
    let started = std::time::Instant::now();
    let mut stream = None;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        if let Some(sa) = resolve(&addr) {
            match TcpStream::connect_timeout(&sa, Duration::from_millis(tick * shared.config.sync_limit.max(1) as u64)) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) if attempt == 1 || attempt.is_multiple_of(10) => tracing::warn!("cannot connect to leader {leader} at {addr} (attempt {attempt}): {e}"),
                Err(_) => {}
            }
        }
        if shared.lock().quorum.as_ref().is_none_or(|q| q.generation != generation_) {
            return;
        }
        if started.elapsed() + Duration::from_millis(100) >= connect_limit {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut st = shared.lock();
    if st.quorum.as_ref().is_none_or(|q| q.generation != generation_) {
        return;
    }
    let now = shared.now().mono_ms;
    let Some(s) = stream else {
        let acts = st.quorum.as_mut().unwrap().peer.disconnected(leader, now);
        peer_actions(&shared, &mut st, acts);
        return;
    };
    let _ = s.set_nodelay(true);
    register_conn(&mut st, leader, &s);
    let acts = st.quorum.as_mut().unwrap().peer.connected(leader, now);
    peer_actions(&shared, &mut st, acts);
    drop(st);
    let r = PacketReader::new(s);
    packet_loop(&shared, r, leader, generation_);
}

fn packet_loop(shared: &Arc<Shared>, mut r: PacketReader, from: ServerId, generation_: u64) {
    let learner_side = shared.lock().quorum.as_ref().is_some_and(|q| !matches!(q.state, PeerState::Leading));
    'conn: loop {
        let first = match r.next(learner_side) {
            Ok(p) => p,
            Err(e) => {
                tracing::info!("quorum connection with server {from} ended: {e}");
                break;
            }
        };
        // Everything already received is handled under one lock acquisition, and the txns it
        // logs go to the log thread together (one group commit).
        let mut batch = vec![first];
        while batch.len() < 1024 && batch.last().is_none_or(|p| p.kind != pk::SNAP) {
            match r.buffered(learner_side) {
                Ok(Some(p)) => batch.push(p),
                Ok(None) => break,
                Err(e) => {
                    tracing::info!("quorum connection with server {from} ended: {e}");
                    break 'conn;
                }
            }
        }
        let mut st = shared.lock();
        st.log_batching = true;
        for pkt in batch {
            let Some(q) = st.quorum.as_mut() else { return };
            if q.generation != generation_ {
                st.log_batching = false;
                st.log_flush();
                flush_packets(&mut st);
                return;
            }
            match pkt.kind {
                // Apache's Learner.syncWithLeader log lines.
                pk::DIFF => tracing::info!("Getting a diff from the leader {}", Zxid(pkt.zxid)),
                pk::TRUNC => tracing::warn!("Truncating log to get in sync with the leader {}", Zxid(pkt.zxid)),
                pk::SNAP => {
                    tracing::info!("Getting a snapshot from leader {}", Zxid(pkt.zxid));
                    q.pending_snapshot = r.snapshot.take();
                }
                _ => {}
            }
            let now = shared.now().mono_ms;
            let acts = q.peer.on_packet(from, pkt, now);
            peer_actions(shared, &mut st, acts);
        }
        st.log_batching = false;
        st.log_flush();
        flush_packets(&mut st);
    }
    let mut st = shared.lock();
    let Some(q) = st.quorum.as_mut() else { return };
    if q.generation != generation_ {
        return;
    }
    q.conns.remove(&from);
    let now = shared.now().mono_ms;
    let acts = q.peer.disconnected(from, now);
    peer_actions(shared, &mut st, acts);
}

/// Reads QuorumPackets (no length prefix) from a stream; after a SNAP it also reads the snapshot
/// stream that follows it and keeps the parsed state in `snapshot`.
struct PacketReader {
    r: BufReader<TcpStream>,
    buf: Vec<u8>,
    /// Where the unparsed bytes of `buf` start.
    pos: usize,
    snapshot: Option<(DataTree, Vec<(SessionId, i32)>)>,
}

impl PacketReader {
    fn new(s: TcpStream) -> PacketReader {
        PacketReader { r: BufReader::with_capacity(256 * 1024, s), buf: Vec::new(), pos: 0, snapshot: None }
    }

    /// The next packet if it is already buffered (a SNAP's stream is then read to its end).
    fn buffered(&mut self, learner_side: bool) -> Result<Option<QuorumPacket>, String> {
        match QuorumPacket::parse(&self.buf[self.pos..], MAX_PACKET) {
            Ok(Some((p, used))) => {
                self.pos += used;
                if p.kind == pk::SNAP && learner_side {
                    // The snapshot stream follows the packet directly; bytes already buffered
                    // come first, and whatever of them the parser did not consume stays.
                    let pre = self.buf.split_off(self.pos);
                    self.buf.clear();
                    self.pos = 0;
                    let mut chained = pre.as_slice().chain(&mut self.r);
                    let (tree, sessions) = crate::storage::snapshot::read_snap_stream(&mut chained, true).map_err(|e| format!("bad SNAP stream: {e}"))?;
                    self.buf = chained.into_inner().0.to_vec();
                    self.snapshot = Some((tree, sessions));
                }
                Ok(Some(p))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(format!("malformed quorum packet: {e:?}")),
        }
    }

    fn next(&mut self, learner_side: bool) -> Result<QuorumPacket, String> {
        loop {
            if let Some(p) = self.buffered(learner_side)? {
                return Ok(p);
            }
            // Drop what was parsed (once, not per packet: a batch holds hundreds of them).
            if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            // Read straight into the buffer's spare room (no zeroed scratch array per read).
            let len = self.buf.len();
            self.buf.resize(len + 64 * 1024, 0);
            let n = match self.r.read(&mut self.buf[len..]) {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(e.to_string());
                }
            };
            self.buf.truncate(len + n);
            if n == 0 {
                return Err("end of stream".into());
            }
        }
    }
}

// ---- actions ----

/// Queues a packet for `to`. Packets for one server are gathered and handed to its writer
/// thread together by `flush_packets` (a batch of ACKs or PROPOSALs is one wake-up and one
/// write), in the order they were queued.
fn send_pkt(st: &mut State, to: ServerId, pkt: &QuorumPacket) {
    let Some(q) = st.quorum.as_mut() else { return };
    if !q.conns.contains_key(&to) {
        return;
    }
    let buf = q.out.entry(to).or_default();
    let mut w = Writer { buf: std::mem::take(buf) };
    pkt.encode(&mut w);
    *buf = w.buf;
}

/// Hands every queued packet to its connection's writer.
pub fn flush_packets(st: &mut State) {
    let Some(q) = st.quorum.as_mut() else { return };
    if q.out.is_empty() {
        return;
    }
    for (to, bytes) in std::mem::take(&mut q.out) {
        if let Some(c) = q.conns.get(&to) {
            let _ = c.tx.send(bytes);
        }
    }
}

fn decode(t: &ZabTxn) -> Option<Proposal> {
    match decode_txn_bytes(&t.data) {
        Ok((hdr, txn, d)) => Some(Proposal { hdr, txn, digest: d.map(|d| d.tree_digest) }),
        Err(e) => {
            tracing::error!("cannot decode txn {}: {e}", t.zxid);
            None
        }
    }
}

/// Carries out the peer's actions in order, under the state lock.
pub fn peer_actions(shared: &Arc<Shared>, st: &mut State, acts: Vec<Action>) {
    let mut queue: VecDeque<Action> = acts.into();
    while let Some(a) = queue.pop_front() {
        let now = shared.now();
        match a {
            Action::Send { to, pkt } => send_pkt(st, to, &pkt),
            Action::SendSnap { to, zxid } => {
                let t = std::time::Instant::now();
                let sessions: Vec<(SessionId, i32)> = st.engine.sessions.iter().map(|s| (s.id, s.timeout_ms)).collect();
                let mut bytes = QuorumPacket::new(pk::SNAP, zxid.0, None).to_bytes();
                crate::storage::snapshot::write_snap_stream(&mut bytes, &st.engine.tree, &sessions);
                tracing::info!("sending SNAP at {zxid} ({} bytes, {} ms) to learner {to}", bytes.len(), t.elapsed().as_millis());
                // Whatever was queued for this learner goes before the snapshot.
                flush_packets(st);
                if let Some(c) = st.quorum.as_ref().and_then(|q| q.conns.get(&to)) {
                    let _ = c.tx.send(bytes);
                }
            }
            Action::Connect { leader } => {
                let generation_ = st.quorum.as_ref().unwrap().generation;
                let shared = shared.clone();
                let _ = std::thread::Builder::new().name("rzk-learner".into()).spawn(move || connect_to_leader(shared, leader, generation_));
            }
            Action::Disconnect { peer } => {
                if let Some(c) = st.quorum.as_mut().unwrap().conns.remove(&peer) {
                    let _ = c.stream.shutdown(Shutdown::Both);
                }
            }
            Action::Log(txns) => {
                // Logged as proposed, byte for byte; decoded once, when committed.
                st.log_records(txns.into_iter().map(|t| durability::LogRecord::Encoded { zxid: t.zxid.0, bytes: t.data }));
            }
            Action::Deliver(txns) => {
                let last = txns.last().map(|t| t.zxid.0).unwrap_or(0);
                if st.quorum.as_ref().unwrap().peer.is_leader() {
                    let mut out = Vec::new();
                    st.engine.committed(last, now, &mut out);
                    st.dispatch(out);
                } else {
                    for t in &txns {
                        if let Some(p) = decode(t) {
                            let out = st.engine.apply_committed(&p.hdr, &p.txn, p.digest, now);
                            st.dispatch(out);
                        }
                    }
                }
            }
            Action::Truncate(z) => truncate(shared, st, z),
            Action::LoadSnapshot { zxid, .. } => {
                let Some((mut tree, sessions)) = st.quorum.as_mut().unwrap().pending_snapshot.take() else {
                    tracing::error!("SNAP without a snapshot stream");
                    continue;
                };
                tree.last_processed_zxid = zxid.0;
                // Durable before NEWLEADER is ACKed: the log does not hold these txns.
                let opts = durability::snapshot_options(&shared.config).unwrap_or_default();
                if let Err(e) = crate::storage::snapshot::write_snapshot(&shared.config.snap_dir(), &tree, &sessions, &opts) {
                    tracing::error!("cannot write the snapshot received from the leader: {e}; exiting");
                    std::process::exit(3);
                }
                st.log_roll();
                tracing::info!("loaded SNAP at {zxid}: {} znodes, {} sessions", tree.len(), sessions.len());
                st.engine.restore(tree, &sessions, now);
            }
            Action::WriteAcceptedEpoch(e) => write_epoch(&shared.config.snap_dir(), "acceptedEpoch", e),
            Action::WriteCurrentEpoch(e) => write_epoch(&shared.config.snap_dir(), "currentEpoch", e),
            Action::Request { from, pkt } => forwarded_request(st, from, pkt, now),
            Action::TouchSessions { data, .. } => {
                let mut list = Vec::new();
                for c in data.chunks_exact(12) {
                    list.push((SessionId(i64::from_be_bytes(c[..8].try_into().unwrap())), i32::from_be_bytes(c[8..].try_into().unwrap())));
                }
                st.engine.touch_sessions(&list, now);
            }
            Action::PingReply { zxid } => {
                let touched = st.engine.take_touched();
                let mut data = Vec::with_capacity(touched.len() * 12);
                for (s, t) in touched {
                    data.extend_from_slice(&s.0.to_be_bytes());
                    data.extend_from_slice(&t.to_be_bytes());
                }
                let leader = st.quorum.as_ref().unwrap().leader;
                if let Some(l) = leader {
                    send_pkt(st, l, &QuorumPacket::new(pk::PING, zxid, Some(data)));
                }
            }
            Action::Revalidated { data } => {
                // `long sessionId, boolean valid` (Learner.revalidate).
                if data.len() >= 9 {
                    let sid = SessionId(i64::from_be_bytes(data[..8].try_into().unwrap()));
                    let valid = data[8] != 0;
                    tracing::info!(session = %sid, "Session {} revalidated by the leader: {}", sid, if valid { "valid" } else { "invalid" });
                    let out = st.engine.revalidated(sid, valid, now);
                    st.dispatch(out);
                }
            }
            Action::SyncDone => {
                let out = st.engine.sync_done(now);
                st.dispatch(out);
            }
            Action::Serving { epoch } => {
                let q = st.quorum.as_mut().unwrap();
                q.serving = true;
                q.election.update_epoch(epoch as u64);
                let leading = q.peer.is_leader();
                let mode = if leading { "leader" } else { q.state.mode() };
                tracing::info!("serving clients as {mode} in epoch {epoch}");
                super::notify::serving(mode);
                if leading {
                    st.engine.set_role(EngineRole::Leader, now);
                    st.engine.start_epoch(epoch);
                } else {
                    st.engine.set_role(EngineRole::Learner, now);
                }
            }
            Action::GoLooking { why } => {
                go_looking(shared, st, &why);
                return;
            }
        }
    }
    // Writes the engine prepared meanwhile (leader) or forwarded (learner).
    st.dispatch(Vec::new());
    if !st.log_batching {
        st.log_flush();
        flush_packets(st);
    }
}

/// A REQUEST from a learner: `long sessionId, int cxid, int type` + the request body.
fn forwarded_request(st: &mut State, from: ServerId, pkt: QuorumPacket, now: Now) {
    let d = pkt.data.unwrap_or_default();
    if pkt.kind == pk::REVALIDATE {
        if d.len() < 12 {
            return;
        }
        let sid = SessionId(i64::from_be_bytes(d[..8].try_into().unwrap()));
        let timeout = i32::from_be_bytes(d[8..12].try_into().unwrap());
        let valid = st.engine.revalidate(sid, timeout, now);
        let mut w = Writer::new();
        w.write_i64(sid.0);
        w.write_bool(valid);
        send_pkt(st, from, &QuorumPacket::new(pk::REVALIDATE, -1, Some(w.buf)));
        return;
    }
    if d.len() < 16 {
        tracing::warn!("short REQUEST from learner {from}");
        return;
    }
    let session = SessionId(i64::from_be_bytes(d[..8].try_into().unwrap()));
    let cxid = i32::from_be_bytes(d[8..12].try_into().unwrap());
    let op = i32::from_be_bytes(d[12..16].try_into().unwrap());
    let auth: Vec<Id> = pkt.authinfo.unwrap_or_default();
    let out = st.engine.forwarded(session, cxid, op, &d[16..], auth, now);
    st.dispatch(out);
}

fn truncate(shared: &Arc<Shared>, st: &mut State, z: Zxid) {
    tracing::info!("TRUNC: truncating the txn log to {z} and reloading");
    st.quorum.as_mut().unwrap().log_generation += 1;
    if let Err(e) = st.log_truncate(z) {
        tracing::error!("cannot truncate the txn log to {z}: {e}; exiting");
        std::process::exit(3);
    }
    match durability::load(&shared.config) {
        Ok(l) => {
            let now = shared.now();
            st.engine.restore(l.tree, &l.sessions, now);
        }
        Err(e) => {
            tracing::error!("cannot reload after TRUNC: {e}; exiting");
            std::process::exit(3);
        }
    }
}

/// The log thread reports everything up to `zxid` durable.
pub fn logged(shared: &Arc<Shared>, st: &mut State, zxid: i64, log_generation: u64) {
    let Some(q) = st.quorum.as_mut() else { return };
    if q.log_generation != log_generation {
        return;
    }
    let now = shared.now().mono_ms;
    let acts = q.peer.logged(Zxid(zxid), now);
    peer_actions(shared, st, acts);
}

/// The leader's engine prepared txns: propose them to the quorum and log the same bytes, all in
/// one hand-over.
pub fn propose(shared: &Arc<Shared>, st: &mut State, props: Vec<Proposal>) {
    let mut acts = Vec::new();
    for p in props {
        let data = Bytes::from(txn_bytes(&p.hdr, &p.txn, p.digest));
        if let Some(q) = st.quorum.as_mut() {
            // Apache's proposal size: the whole PROPOSAL packet.
            let n = data.len() as i64 + 28;
            let (_, mn, mx) = q.proposal_sizes;
            q.proposal_sizes = (n, if mn < 0 { n } else { mn.min(n) }, mx.max(n));
        }
        let Some(q) = st.quorum.as_mut() else { return };
        let mut log = false;
        for a in q.peer.propose(ZabTxn { zxid: Zxid(p.hdr.zxid), data: data.clone() }) {
            match a {
                Action::Log(_) => log = true,
                other => acts.push(other),
            }
        }
        if log {
            // The bytes just proposed are the log entry's txnBytes.
            st.log_buf.push(durability::LogRecord::Encoded { zxid: p.hdr.zxid, bytes: data });
        }
    }
    peer_actions(shared, st, acts);
}

/// The periodic part: election resends and finalize-wait, pings and liveness.
pub fn tick(shared: &Arc<Shared>, st: &mut State) {
    let now = shared.now().mono_ms;
    let Some(q) = st.quorum.as_mut() else { return };
    let acts = q.election.tick(now);
    election_actions(shared, st, acts);
    let q = st.quorum.as_mut().unwrap();
    let acts = q.peer.tick(now);
    peer_actions(shared, st, acts);
}

/// The learner's forwarded writes: REQUEST packets to the leader, with the connection's auth ids.
pub fn forward(st: &mut State) {
    // REVALIDATEs first: a request pipelined behind a reconnect must reach the leader after it.
    let rv = st.engine.take_revalidations();
    if !rv.is_empty()
        && let Some(leader) = st.quorum.as_ref().and_then(|q| q.leader) {
            for (sid, timeout) in rv {
                let mut d = Vec::with_capacity(12);
                d.extend_from_slice(&sid.0.to_be_bytes());
                d.extend_from_slice(&timeout.to_be_bytes());
                send_pkt(st, leader, &QuorumPacket::new(pk::REVALIDATE, -1, Some(d)));
            }
        }
    let fw = st.engine.take_forwards();
    if fw.is_empty() {
        return;
    }
    let Some(leader) = st.quorum.as_ref().and_then(|q| q.leader) else { return };
    for f in fw {
        let mut d = Vec::with_capacity(16 + f.body.len());
        d.extend_from_slice(&f.session.0.to_be_bytes());
        d.extend_from_slice(&f.cxid.to_be_bytes());
        d.extend_from_slice(&f.op_type.to_be_bytes());
        d.extend_from_slice(&f.body);
        let auth = if f.op_type == -10 { None } else { Some(f.auth) };
        let pkt = QuorumPacket { kind: pk::REQUEST, zxid: -1, data: Some(d), authinfo: auth };
        send_pkt(st, leader, &pkt);
    }
}

//! The standalone request pipeline, without I/O: prep → (log) → apply → watch events → reply.
//!
//! The shell calls `connect`, `request`, `disconnect` and `tick` with the time; each returns the
//! frames to write and the connections to close, in order. A write is *prepared* at once (checked
//! against the tree plus the pending changes of earlier writes, given the next zxid) and becomes
//! a `Proposal`; it is applied and answered only when the shell reports it durable through
//! `committed` (or at once with `auto_commit`, for an in-memory server and for tests).
//!
//! Ordering guarantees:
//! - writes get zxids in arrival order and are applied in zxid order;
//! - per connection, requests are answered in arrival order: a read (or any non-write) that
//!   arrives while the connection has writes in flight waits until they are applied, so it sees
//!   them (Apache's CommitProcessor rule);
//! - a write's notifications are emitted before its reply, and before any later reply on any
//!   connection, because the shell writes outputs in the order they are returned.
//!
//! Roles in an ensemble (`Role`): a *leader* runs the same pipeline for its own clients and also
//! prepares writes forwarded by learners (`forwarded`), whose txns it commits without answering
//! anyone locally. A *learner* (follower or observer) serves reads itself but prepares no write:
//! it hands each write to the shell as a `Forward` for the leader and answers the client when the
//! leader's committed txn comes back through `apply_committed`. Per-connection order is kept the
//! same way in every role: a connection's reads wait until its writes have been applied here.

pub mod reply;
mod role;
pub mod stats;

use crate::auth::{generate_digest, AuthContext};
use crate::error::ErrorCode;
use crate::jute::opcode::OpCode;
use crate::jute::records::*;
use crate::jute::txn::types::{CLOSE_SESSION, CREATE_SESSION};
use crate::jute::txn::{Txn, TxnHeader};
use crate::jute::{Jute, Reader};
use crate::ops::create::CreateKind;
use crate::ops::{self, decode, OpsConfig, Pending, PendingView, ReadCtx, WriteCtx};
use crate::session::Sessions;
use crate::tree::apply::{Trigger, TxnResult};
use crate::tree::acl::perms;
use crate::tree::{DataTree, NodeKind};
use crate::types::{SessionId, Zxid};
use crate::watch::{Notification, Watches};
use reply::*;
use stats::{ConnStats, ServerStats};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;

pub type ConnId = u64;

#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    Send(ConnId, Vec<u8>),
    Close(ConnId),
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub tick_ms: u64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub ops: OpsConfig,
    pub super_digest: Option<String>,
    pub digest_auth_enabled: bool,
    pub skip_acl: bool,
    pub server_id: u8,
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: u32,
    pub container_max_never_used_interval_ms: u64,
    /// `digest.enabled` (true): txns carry the tree digest they lead to, and it is checked.
    pub digest_enabled: bool,
}

impl EngineConfig {
    pub fn from_server_config(c: &crate::server::config::ServerConfig) -> EngineConfig {
        EngineConfig {
            tick_ms: c.tick_time_ms as u64,
            min_session_timeout_ms: c.min_session_timeout_ms as i32,
            max_session_timeout_ms: c.max_session_timeout_ms as i32,
            ops: OpsConfig { extended_types: c.extended_types_enabled, enforce_quota: c.enforce_quota, reconfig_enabled: c.reconfig_enabled },
            super_digest: c.super_digest.clone(),
            digest_auth_enabled: c.digest_auth_enabled,
            skip_acl: c.skip_acl,
            // The high byte of the session ids this server makes: its myid in an ensemble, so
            // ids made by different members never collide; 1 in standalone, as Apache's
            // standalone server does.
            server_id: if c.server_id == 0 { 1 } else { c.server_id as u8 },
            container_check_interval_ms: c.container_check_interval_ms,
            container_max_per_minute: c.container_max_per_minute,
            container_max_never_used_interval_ms: c.container_max_never_used_interval_ms,
            digest_enabled: c.digest_enabled,
        }
    }
}

pub struct Conn {
    pub id: ConnId,
    pub remote: SocketAddr,
    pub session: Option<SessionId>,
    /// Auth ids in the order they were added (`ip:<remote>` first); see
    /// `auth::apache_auth_order` for the order clients see.
    pub auth: Vec<Id>,
    pub stats: ConnStats,
    /// Writes (and a session creation) of this connection prepared but not yet applied.
    pending_writes: usize,
    /// Requests held back behind those writes, in arrival order.
    waiting: VecDeque<Vec<u8>>,
}

impl Conn {
    /// Requests received but not answered yet (`queued=` in cons/stat).
    pub fn queued(&self) -> usize {
        self.pending_writes + self.waiting.len()
    }
}

/// A txn to make durable before it is applied: the shell logs it, then calls `committed`.
#[derive(Clone, Debug)]
pub struct Proposal {
    pub hdr: TxnHeader,
    pub txn: Txn,
    /// The tree digest once this txn is applied (TxnDigest in the log entry and the PROPOSAL);
    /// None when digests are off, or not known (a learner's txn from a leader that sent none).
    pub digest: Option<u64>,
}

/// What this server is in its ensemble.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Role {
    /// No ensemble: every write is prepared, logged and applied here.
    #[default]
    Standalone,
    /// Prepares every write of the ensemble (its own clients' and learners' forwarded ones),
    /// expires sessions and reaps containers.
    Leader,
    /// Follower or observer: serves reads, forwards writes to the leader and applies what the
    /// leader commits.
    Learner,
}

/// A request a learner sends to the leader (Apache's REQUEST packet): the session, the client's
/// xid, the op type and the raw request body after the RequestHeader, with the connection's auth
/// ids so the leader checks ACLs as this server would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    pub session: SessionId,
    pub cxid: i32,
    pub op_type: i32,
    pub body: Vec<u8>,
    pub auth: Vec<Id>,
}

/// Who is waiting for a txn, and what to send when it is applied.
enum Origin {
    Client { conn: ConnId, xid: i32, op: OpCode, received_ms: u64 },
    CloseSession { conn: ConnId, xid: i32 },
    Connect { conn: ConnId, resp: ConnectResponse },
    Expiry,
    Reaper,
    /// Forwarded by a learner: that learner answers its client.
    Remote,
}

impl Origin {
    /// Whether a committed txn of this type can be the answer to this origin (a createSession and
    /// a session's first write can share cxid 0 on the wire, as can an expiry and a connect).
    fn expects(&self, txn_type: i32) -> bool {
        match self {
            Origin::Connect { .. } => txn_type == CREATE_SESSION,
            Origin::CloseSession { .. } => txn_type == CLOSE_SESSION,
            _ => txn_type != CREATE_SESSION && txn_type != CLOSE_SESSION,
        }
    }
}

struct InFlight {
    proposal: Proposal,
    origin: Origin,
}

pub struct Engine {
    pub cfg: EngineConfig,
    pub tree: DataTree,
    pub sessions: Sessions,
    pub watches: Watches,
    pub conns: BTreeMap<ConnId, Conn>,
    pub session_conn: HashMap<SessionId, ConnId>,
    pub stats: ServerStats,
    last_reap_ms: u64,
    pending: Pending,
    /// The last zxid handed out (≥ the tree's last applied zxid).
    last_prepared_zxid: i64,
    in_flight: VecDeque<InFlight>,
    proposals: Vec<Proposal>,
    /// Apply each write as soon as it is prepared (no log).
    pub auto_commit: bool,
    /// What this server is in its ensemble; change it with `set_role`.
    pub role: Role,
    /// Learner: requests for the leader, in arrival order.
    forwards: Vec<Forward>,
    /// Learner: who waits for each forwarded request. Per session a FIFO is enough: the leader
    /// commits one session's txns in the order this server sent them.
    forwarded_origins: HashMap<SessionId, VecDeque<(i32, Origin)>>,
    /// Learner: sessions with client activity since the last `take_touched`.
    touched: BTreeSet<SessionId>,
    /// Learner: client `sync`s sent to the leader, answered in order by `sync_done`.
    pending_syncs: VecDeque<(ConnId, i32, String)>,
    /// Learner: REVALIDATE requests for the leader, and the connects waiting for the answers.
    revalidations: Vec<(SessionId, i32)>,
    pending_revalidations: VecDeque<(ConnId, SessionId, i32, Option<bool>)>,
}

/// Monotonic time (ms) and wall-clock time (ms since the epoch), passed in by the shell.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub mono_ms: u64,
    pub wall_ms: i64,
}

impl Engine {
    pub fn new(cfg: EngineConfig, now: Now) -> Engine {
        let mut tree = DataTree::new();
        tree.extended_types = cfg.ops.extended_types;
        Engine {
            sessions: Sessions::new(cfg.server_id, cfg.tick_ms, now.mono_ms),
            cfg,
            tree,
            watches: Watches::default(),
            conns: BTreeMap::new(),
            session_conn: HashMap::new(),
            stats: ServerStats::default(),
            last_reap_ms: now.mono_ms,
            pending: Pending::default(),
            last_prepared_zxid: 0,
            in_flight: VecDeque::new(),
            proposals: Vec::new(),
            auto_commit: true,
            role: Role::Standalone,
            forwards: Vec::new(),
            forwarded_origins: HashMap::new(),
            touched: BTreeSet::new(),
            pending_syncs: VecDeque::new(),
            revalidations: Vec::new(),
            pending_revalidations: VecDeque::new(),
        }
    }

    /// Starts from a restored tree and its sessions (fresh timeouts from `now`).
    pub fn restore(&mut self, tree: DataTree, sessions: &[(SessionId, i32)], now: Now) {
        // The session table is replaced (a learner loading its leader's snapshot, or reloading
        // after a TRUNC), not merged.
        self.sessions = Sessions::new(self.cfg.server_id, self.cfg.tick_ms, now.mono_ms);
        self.tree = tree;
        self.tree.extended_types = self.cfg.ops.extended_types;
        self.last_prepared_zxid = self.tree.last_processed_zxid;
        for &(sid, timeout) in sessions {
            self.sessions.add(sid, timeout, now.mono_ms);
        }
        self.sessions.skip_past(sessions.iter().map(|s| s.0));
    }

    /// Txns prepared since the last call, in zxid order, for the shell to log.
    pub fn take_proposals(&mut self) -> Vec<Proposal> {
        std::mem::take(&mut self.proposals)
    }

    /// Txns prepared and not yet applied.
    pub fn outstanding(&self) -> usize {
        self.in_flight.len()
    }

    /// Requests received and not yet answered (srvr's `Outstanding`, mntr's
    /// `zk_outstanding_requests`): writes waiting for their fsync and requests held behind them.
    pub fn outstanding_requests(&self) -> usize {
        let forwarded = self.forwarded_origins.values().map(|q| q.len()).sum::<usize>();
        self.in_flight.len() + forwarded + self.conns.values().map(|c| c.waiting.len()).sum::<usize>()
    }

    pub fn last_zxid(&self) -> Zxid {
        Zxid(self.tree.last_processed_zxid)
    }

    /// A new TCP connection (before its ConnectRequest).
    pub fn open(&mut self, conn: ConnId, remote: SocketAddr, _now: Now) {
        let auth = vec![Id { scheme: "ip".into(), id: remote.ip().to_string() }];
        self.conns.insert(conn, Conn { id: conn, remote, session: None, auth, stats: ConnStats::default(), pending_writes: 0, waiting: VecDeque::new() });
    }

    /// The connection went away (EOF, error, or we closed it). Its watches die with it; its
    /// session lives on until it expires or the client reconnects.
    pub fn disconnect(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn)
            && let Some(s) = c.session
                && self.session_conn.get(&s) == Some(&conn) {
                    self.session_conn.remove(&s);
                }
        self.watches.remove_watcher(conn);
    }

    fn send(&mut self, out: &mut Vec<Output>, conn: ConnId, frame: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.sent += 1;
        }
        self.stats.packets_sent += 1;
        self.stats.response_sizes.record(frame.len() as i64 - 4);
        out.push(Output::Send(conn, frame));
    }

    /// Hands out the next zxid and queues the txn for logging; with `auto_commit` it is applied
    /// at once.
    fn propose(&mut self, session: SessionId, cxid: i32, txn: Txn, now: Now, origin: Origin, out: &mut Vec<Output>) -> i64 {
        let zxid = self.last_prepared_zxid + 1;
        self.last_prepared_zxid = zxid;
        let hdr = TxnHeader { client_id: session.0, cxid, zxid, time: now.wall_ms, txn_type: txn.type_code() };
        let digest = self.cfg.digest_enabled.then(|| self.pending.digest(self.tree.digest.value));
        let p = Proposal { hdr, txn, digest };
        if !self.auto_commit {
            self.proposals.push(p.clone());
        }
        self.in_flight.push_back(InFlight { proposal: p, origin });
        if self.auto_commit {
            self.committed(zxid, now, out);
        }
        zxid
    }

    /// The shell reports every txn up to `zxid` durable: apply them in order and answer.
    pub fn committed(&mut self, zxid: i64, now: Now, out: &mut Vec<Output>) {
        while self.in_flight.front().is_some_and(|f| f.proposal.hdr.zxid <= zxid) {
            let f = self.in_flight.pop_front().unwrap();
            let r = self.apply_txn(&f.proposal.hdr, &f.proposal.txn, out);
            self.check_digest(&f.proposal);
            self.pending.committed(f.proposal.hdr.zxid);
            self.answer(&f.proposal.hdr, f.origin, r, now, out);
        }
    }

    /// After applying a txn: the digest it was proposed with must be the tree's now (Apache's
    /// `DataTree.compareDigest`). A mismatch is logged and counted (mntr
    /// `zk_digest_mismatches_count`), never fatal.
    pub(crate) fn check_digest(&mut self, p: &Proposal) {
        let Some(d) = p.digest else { return };
        if matches!(p.txn, Txn::Error { .. }) || !self.cfg.digest_enabled {
            return;
        }
        if self.tree.digest.value != d {
            self.stats.digest_mismatches += 1;
            tracing::warn!(zxid = %Zxid(p.hdr.zxid), "Digest mismatch: the txn says 0x{:x}, the tree has 0x{:x}", d, self.tree.digest.value);
        }
    }

    /// A closing session's ephemerals leave the pending view as the closeSession txn will take
    /// them (their parents' pzxid moves), so later writes and the predicted digest see it.
    fn close_in_view(&mut self, paths: &[String]) {
        let zxid = self.last_prepared_zxid + 1;
        let mut view = PendingView::new(&self.tree, &mut self.pending, zxid);
        for path in paths {
            ops::delete::remove_for_close(&mut view, zxid, path);
        }
    }

    /// Applies a txn and delivers the watch events it fires, before anything else is sent. Shared
    /// by every role: the leader's and standalone's own txns (`committed`) and the txns a learner
    /// gets from its leader (`apply_committed`) fire watches identically.
    fn apply_txn(&mut self, hdr: &TxnHeader, txn: &Txn, out: &mut Vec<Output>) -> TxnResult {
        let mut triggers: Vec<Trigger> = Vec::new();
        let r = self.tree.apply(hdr, txn, &mut triggers);
        let mut notes: Vec<Notification> = Vec::new();
        for (i, t) in triggers.iter().enumerate() {
            self.watches.trigger(t, i, &mut notes);
        }
        for n in notes {
            // Events go only to connections allowed to READ the node (the watch is consumed
            // either way).
            let acl = &triggers[n.trigger].acl;
            let allowed = self.conns.get(&n.watcher).is_some_and(|c| AuthContext { ids: &c.auth, skip_acl: self.cfg.skip_acl }.check(acl, perms::READ).is_ok());
            if allowed {
                let f = notification(hdr.zxid, n.kind, &n.path);
                self.send(out, n.watcher, f);
            }
        }
        self.stats.commits += 1;
        r
    }

    fn answer(&mut self, hdr: &TxnHeader, origin: Origin, r: TxnResult, now: Now, out: &mut Vec<Output>) {
        let zxid = hdr.zxid;
        match origin {
            Origin::Client { conn, xid, op, received_ms } => {
                let latency = now.mono_ms.saturating_sub(received_ms);
                self.stats.record_latency(latency);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.stats.record(op, xid, zxid, now.mono_ms, latency);
                }
                let frame = if r.err != 0 {
                    header_frame(xid, zxid, r.err)
                } else {
                    frame(xid, zxid, 0, Some(&|w: &mut crate::jute::Writer| write_body(&r, w)))
                };
                self.send(out, conn, frame);
                self.write_done(conn, now, out);
            }
            Origin::CloseSession { conn, xid } => {
                let sid = SessionId(hdr.client_id);
                self.sessions.remove(sid);
                if self.session_conn.get(&sid) == Some(&conn) {
                    self.session_conn.remove(&sid);
                }
                tracing::info!(session = %sid, "Closed session {}", sid);
                self.send(out, conn, header_frame(xid, zxid, 0));
                out.push(Output::Close(conn));
            }
            Origin::Connect { conn, resp } => {
                self.send_connect_response(out, conn, &resp);
                self.write_done(conn, now, out);
            }
            Origin::Expiry => self.session_gone(SessionId(hdr.client_id), out),
            Origin::Reaper => {}
            Origin::Remote => {
                // The learner that forwarded the request answers its client; here the session
                // table only has to follow a close.
                if r.txn_type == CLOSE_SESSION {
                    self.session_gone(SessionId(hdr.client_id), out);
                }
            }
        }
    }

    /// A session ended without its connection here asking for it (expiry, or a close decided
    /// elsewhere in the ensemble): forget it and drop the connection attached to it, if any.
    fn session_gone(&mut self, sid: SessionId, out: &mut Vec<Output>) {
        self.sessions.remove(sid);
        if let Some(conn) = self.session_conn.remove(&sid) {
            self.disconnect(conn);
            out.push(Output::Close(conn));
        }
    }

    /// One of the connection's writes was applied: requests held behind it may run now.
    fn write_done(&mut self, conn: ConnId, now: Now, out: &mut Vec<Output>) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        c.pending_writes = c.pending_writes.saturating_sub(1);
        loop {
            let Some(c) = self.conns.get_mut(&conn) else { return };
            if c.pending_writes > 0 {
                // Another write of this connection is in flight: what follows waits for it.
                if c.waiting.front().is_none_or(|f| !frame_is_write(f)) {
                    return;
                }
            }
            let Some(frame) = c.waiting.pop_front() else { return };
            self.handle(conn, &frame, now, out);
        }
    }

    /// The first frame of a connection: a ConnectRequest.
    pub fn connect(&mut self, conn: ConnId, body: &[u8], now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        self.stats.packets_received += 1;
        let Ok(req) = ConnectRequest::from_bytes(body) else {
            tracing::warn!(conn, "malformed ConnectRequest; closing connection");
            out.push(Output::Close(conn));
            return out;
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.received += 1;
        }
        if req.last_zxid_seen > self.tree.last_processed_zxid {
            tracing::info!(
                "Refusing session request for client as it has seen zxid {} our last zxid is {} client must try another server",
                Zxid(req.last_zxid_seen),
                self.last_zxid()
            );
            out.push(Output::Close(conn));
            return out;
        }
        let timeout = req.time_out.clamp(self.cfg.min_session_timeout_ms, self.cfg.max_session_timeout_ms);
        let ro = req.read_only.map(|_| false);
        if req.session_id == 0 {
            // The session exists from now on (so it can expire), but the client hears of it only
            // once its createSession txn is durable; requests pipelined behind the
            // ConnectRequest wait for that.
            let sid = self.sessions.next_id();
            let s = self.sessions.add(sid, timeout, now.mono_ms).clone();
            tracing::info!(session = %sid, timeout, "Established session {} with negotiated timeout {} for client {:?}", sid, timeout,
                self.conns.get(&conn).map(|c| c.remote));
            self.attach(conn, sid, now);
            if let Some(c) = self.conns.get_mut(&conn) {
                c.pending_writes += 1;
            }
            let resp = ConnectResponse { protocol_version: 0, time_out: timeout, session_id: sid.0, passwd: s.passwd.to_vec(), read_only: ro };
            if self.role == Role::Learner {
                // The leader logs the createSession (with the timeout negotiated here) and starts
                // tracking the session's expiry; the client hears of it once that txn comes back.
                let body = timeout.to_be_bytes().to_vec();
                self.forward(sid, 0, OpCode::CreateSession.code(), body, Vec::new(), Origin::Connect { conn, resp });
            } else {
                self.propose(sid, 0, Txn::CreateSession { timeout }, now, Origin::Connect { conn, resp }, &mut out);
            }
            return out;
        }
        let sid = SessionId(req.session_id);
        if self.role == Role::Learner && self.sessions.get(sid).is_none() && req.passwd.as_deref() == Some(&crate::session::session_password(sid)[..]) {
            // A session this learner has not heard of (made elsewhere a moment ago, or before
            // this server joined): ask the leader (Apache's REVALIDATE). The session is held
            // here meanwhile so that requests pipelined behind the ConnectRequest wait.
            self.sessions.add(sid, timeout, now.mono_ms);
            self.attach(conn, sid, now);
            if let Some(c) = self.conns.get_mut(&conn) {
                c.pending_writes += 1;
            }
            self.revalidations.push((sid, timeout));
            self.pending_revalidations.push_back((conn, sid, timeout, ro));
            return out;
        }
        let valid = match self.sessions.get(sid) {
            Some(s) => !s.closing && req.passwd.as_deref() == Some(&s.passwd[..]),
            None => false,
        };
        if !valid {
            tracing::info!(session = %sid, "Invalid session {} for client, probably expired", sid);
            let resp = ConnectResponse { protocol_version: 0, time_out: 0, session_id: 0, passwd: vec![0; 16], read_only: ro };
            self.send_connect_response(&mut out, conn, &resp);
            out.push(Output::Close(conn));
            return out;
        }
        // A good reconnect takes the session over from any older connection.
        if let Some(&old) = self.session_conn.get(&sid)
            && old != conn {
                self.disconnect(old);
                out.push(Output::Close(old));
            }
        self.sessions.set_timeout(sid, timeout, now.mono_ms);
        if self.role == Role::Learner {
            self.touched.insert(sid);
        }
        self.attach(conn, sid, now);
        let passwd = self.sessions.get(sid).unwrap().passwd.to_vec();
        let resp = ConnectResponse { protocol_version: 0, time_out: timeout, session_id: sid.0, passwd, read_only: ro };
        self.send_connect_response(&mut out, conn, &resp);
        out
    }

    fn attach(&mut self, conn: ConnId, sid: SessionId, now: Now) {
        self.session_conn.insert(sid, conn);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(sid);
            c.stats.established_wall_ms = now.wall_ms;
            c.stats.record(OpCode::CreateSession, 0, self.tree.last_processed_zxid, now.mono_ms, 0);
        }
    }

    fn send_connect_response(&mut self, out: &mut Vec<Output>, conn: ConnId, resp: &ConnectResponse) {
        let mut w = crate::jute::Writer::new();
        let at = w.begin_frame();
        resp.write(&mut w);
        w.finish_frame(at);
        self.send(out, conn, w.buf);
    }

    /// One request frame (RequestHeader + body) from an established connection.
    pub fn request(&mut self, conn: ConnId, frame: &[u8], now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        self.stats.packets_received += 1;
        let Some(c) = self.conns.get_mut(&conn) else { return out };
        c.stats.received += 1;
        let Some(sid) = c.session else {
            out.push(Output::Close(conn));
            return out;
        };
        if frame.len() < 8 {
            tracing::warn!(session = %sid, "malformed request header; closing connection");
            out.push(Output::Close(conn));
            return out;
        }
        if !self.sessions.touch(sid, now.mono_ms) {
            // The session expired or is closing while this connection was still open.
            out.push(Output::Close(conn));
            return out;
        }
        if self.role == Role::Learner {
            // Only the leader expires sessions: it hears of this activity in our next PING reply.
            self.touched.insert(sid);
        }
        // Per-connection order: anything but a write waits behind this connection's writes in
        // flight; a write waits only behind requests already waiting.
        let c = self.conns.get_mut(&conn).unwrap();
        if !c.waiting.is_empty() || (c.pending_writes > 0 && !frame_is_write(frame)) {
            c.waiting.push_back(frame.to_vec());
            return out;
        }
        self.handle(conn, frame, now, &mut out);
        out
    }

    fn handle(&mut self, conn: ConnId, frame: &[u8], now: Now, out: &mut Vec<Output>) {
        let Some(sid) = self.conns.get(&conn).and_then(|c| c.session) else { return };
        let mut r = Reader::new(frame);
        let Ok(h) = RequestHeader::read(&mut r) else { return };
        let body = r.rest();
        let op = match OpCode::from_i32(h.op) {
            Some(op) if !matches!(op, OpCode::Notification | OpCode::CreateSession | OpCode::Error) => op,
            _ => {
                tracing::warn!(session = %sid, "unknown opcode {} from client; closing connection", h.op);
                self.send(out, conn, header_frame(h.xid, -1, ErrorCode::Unimplemented.code()));
                out.push(Output::Close(conn));
                return;
            }
        };
        let zxid_before = self.tree.last_processed_zxid;
        match op {
            OpCode::Ping => {
                let f = header_frame(h.xid, zxid_before, 0);
                self.send(out, conn, f);
            }
            OpCode::Auth => self.auth(conn, body, out),
            OpCode::Sasl => {
                // No SASL server configured: Apache answers OK with a null token.
                let f = record_frame(h.xid, 0, &SaslToken { token: None });
                self.send(out, conn, f);
            }
            OpCode::SetWatches | OpCode::SetWatches2 => self.set_watches(conn, sid, h.xid, op, body, out),
            OpCode::CloseSession if self.role == Role::Learner => {
                // The leader lists the session's ephemerals: only it sees every pending change.
                self.sessions.set_closing(sid);
                let Some(c) = self.conns.get_mut(&conn) else { return };
                c.pending_writes += 1;
                let auth = c.auth.clone();
                self.forward(sid, h.xid, op.code(), body.to_vec(), auth, Origin::CloseSession { conn, xid: h.xid });
            }
            OpCode::CloseSession => {
                let paths = self.session_ephemerals(sid);
                self.sessions.set_closing(sid);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.pending_writes += 1;
                }
                self.close_in_view(&paths);
                self.propose(sid, h.xid, Txn::CloseSession { paths }, now, Origin::CloseSession { conn, xid: h.xid }, out);
            }
            op if op.is_write() || op == OpCode::DeleteContainer => self.write(conn, sid, h.xid, op, body, now, out),
            _ => self.read(conn, sid, h.xid, op, body, out),
        }
        // Writes are counted when they are answered (with their fsync in the latency).
        if !(op.is_write() || op == OpCode::DeleteContainer) {
            self.stats.record_latency(0);
            if let Some(c) = self.conns.get_mut(&conn) {
                c.stats.record(op, h.xid, self.tree.last_processed_zxid, now.mono_ms, 0);
            }
        }
    }

    /// A session's ephemerals as they will be once every pending write is applied.
    fn session_ephemerals(&self, sid: SessionId) -> Vec<String> {
        let mut paths: std::collections::BTreeSet<String> = self.tree.ephemerals_of(sid).into_iter().collect();
        let (created, deleted) = self.pending.ephemerals_of(sid.0);
        for p in deleted {
            paths.remove(&p);
        }
        paths.extend(created);
        paths.into_iter().collect()
    }

    fn auth(&mut self, conn: ConnId, body: &[u8], out: &mut Vec<Output>) {
        let pkt: Result<AuthPacket, _> = decode(body);
        let ok = match pkt {
            Ok(p) if p.scheme == "digest" && self.cfg.digest_auth_enabled => {
                let raw = String::from_utf8_lossy(p.auth.as_deref().unwrap_or(&[])).into_owned();
                let digest = generate_digest(&raw);
                let mut ids = Vec::new();
                if self.cfg.super_digest.as_deref() == Some(digest.as_str()) {
                    ids.push(Id { scheme: "super".into(), id: "".into() });
                }
                ids.push(Id { scheme: "digest".into(), id: digest });
                Some(ids)
            }
            Ok(p) if p.scheme == "ip" => self.conns.get(&conn).map(|c| vec![Id { scheme: "ip".into(), id: c.remote.ip().to_string() }]),
            _ => None,
        };
        match ok {
            Some(ids) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    for id in ids {
                        if !c.auth.contains(&id) {
                            c.auth.push(id);
                        }
                    }
                }
                self.send(out, conn, header_frame(-4, 0, 0));
            }
            None => {
                self.stats.auth_failed += 1;
                tracing::warn!(conn, "authentication failed; closing connection");
                self.send(out, conn, header_frame(-4, 0, ErrorCode::AuthFailed.code()));
                out.push(Output::Close(conn));
            }
        }
    }

    fn set_watches(&mut self, conn: ConnId, sid: SessionId, xid: i32, op: OpCode, body: &[u8], out: &mut Vec<Output>) {
        let req: Result<SetWatches2, ErrorCode> = if op == OpCode::SetWatches {
            decode::<SetWatches>(body).map(|s| SetWatches2 {
                relative_zxid: s.relative_zxid,
                data_watches: s.data_watches,
                exist_watches: s.exist_watches,
                child_watches: s.child_watches,
                ..Default::default()
            })
        } else {
            decode(body)
        };
        let last = self.tree.last_processed_zxid;
        let Ok(req) = req else {
            self.send(out, conn, header_frame(xid, last, ErrorCode::MarshallingError.code()));
            return;
        };
        let auth = &self.conns[&conn].auth;
        let mut ctx = ReadCtx {
            tree: &self.tree,
            watches: &mut self.watches,
            watcher: conn,
            auth: AuthContext { ids: auth, skip_acl: self.cfg.skip_acl },
            session: sid,
            last_zxid: last,
        };
        let events = ops::set_watches::apply(&mut ctx, &req);
        for (kind, path) in events {
            let f = notification(-1, kind, &path);
            self.send(out, conn, f);
        }
        self.send(out, conn, header_frame(xid, last, 0));
    }

    #[allow(clippy::too_many_arguments)]
    fn write(&mut self, conn: ConnId, sid: SessionId, xid: i32, op: OpCode, body: &[u8], now: Now, out: &mut Vec<Output>) {
        let origin = Origin::Client { conn, xid, op, received_ms: now.mono_ms };
        if self.role == Role::Learner {
            // Prepared by the leader against the ensemble's pending changes; answered when its
            // txn is applied here. Counting it as in flight keeps this connection's later reads
            // behind it, as for a local write.
            let Some(c) = self.conns.get_mut(&conn) else { return };
            c.pending_writes += 1;
            let auth = c.auth.clone();
            self.forward(sid, xid, op.code(), body.to_vec(), auth, origin);
            return;
        }
        let zxid = self.last_prepared_zxid + 1;
        let txn = prep_txn(&self.tree, &mut self.pending, &self.cfg, &self.conns[&conn].auth, sid, zxid, now, op, body);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.pending_writes += 1;
        }
        self.propose(sid, xid, txn, now, origin, out);
    }

    fn read(&mut self, conn: ConnId, sid: SessionId, xid: i32, op: OpCode, body: &[u8], out: &mut Vec<Output>) {
        if op == OpCode::Sync && self.role == Role::Learner {
            // A learner's `sync` goes through the leader: the answer comes once this server has
            // applied everything the leader had proposed when it saw the sync. Requests behind it
            // on this connection wait, as behind a write.
            let path = decode::<PathRequest>(body).map(|r| r.path).unwrap_or_default();
            if let Some(c) = self.conns.get_mut(&conn) {
                c.pending_writes += 1;
            }
            let auth = self.conns[&conn].auth.clone();
            self.forwards.push(Forward { session: sid, cxid: xid, op_type: OpCode::Sync.code(), body: body.to_vec(), auth });
            self.pending_syncs.push_back((conn, xid, path));
            return;
        }
        let last = self.tree.last_processed_zxid;
        let auth_ids = self.conns[&conn].auth.clone();
        let mut ctx = ReadCtx {
            tree: &self.tree,
            watches: &mut self.watches,
            watcher: conn,
            auth: AuthContext { ids: &auth_ids, skip_acl: self.cfg.skip_acl },
            session: sid,
            last_zxid: last,
        };
        let res = read_op(&mut ctx, op, body, &auth_ids);
        let f = match res {
            Ok(b) => raw_frame(xid, last, &b),
            Err(e) => header_frame(xid, last, e.code()),
        };
        self.send(out, conn, f);
    }

    /// Expires sessions whose bucket has passed and reaps empty containers and expired TTL nodes.
    pub fn tick(&mut self, now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        if self.role == Role::Learner {
            // The leader expires sessions and reaps containers for the whole ensemble; a learner
            // applies the txns it commits for them.
            return out;
        }
        for sid in self.sessions.expired(now.mono_ms) {
            let timeout = self.sessions.get(sid).map_or(0, |s| s.timeout_ms);
            tracing::info!(session = %sid, "Expiring session {}, timeout of {}ms exceeded", sid, timeout);
            self.close_session(sid, now, &mut out);
            self.stats.expired_sessions += 1;
        }
        if now.mono_ms >= self.last_reap_ms + self.cfg.container_check_interval_ms {
            self.last_reap_ms = now.mono_ms;
            self.reap_containers(now, &mut out);
        }
        out
    }

    fn close_session(&mut self, sid: SessionId, now: Now, out: &mut Vec<Output>) {
        let paths = self.session_ephemerals(sid);
        self.sessions.set_closing(sid);
        self.close_in_view(&paths);
        self.propose(sid, 0, Txn::CloseSession { paths }, now, Origin::Expiry, out);
    }

    /// Apache's ContainerManager: containers that had children and are now empty (or were never
    /// used for maxNeverUsedIntervalMs), and TTL nodes with no children idle for longer than
    /// their TTL. At most maxPerMinute deletes per run.
    fn reap_containers(&mut self, now: Now, out: &mut Vec<Output>) {
        let mut candidates = Vec::new();
        for &id in &self.tree.containers {
            let n = self.tree.node(id);
            if n.num_children() > 0 {
                continue;
            }
            let never_used = self.cfg.container_max_never_used_interval_ms;
            if n.stat.cversion > 0 || (never_used > 0 && now.wall_ms - n.stat.mtime > never_used as i64) {
                candidates.push(self.tree.path_of(id));
            }
        }
        for &id in &self.tree.ttls {
            let n = self.tree.node(id);
            if let NodeKind::Ttl(ttl) = n.stat.kind(true)
                && n.num_children() == 0 && now.wall_ms - n.stat.mtime > ttl {
                    candidates.push(self.tree.path_of(id));
                }
        }
        candidates.truncate(self.cfg.container_max_per_minute as usize);
        for path in candidates {
            let zxid = self.last_prepared_zxid + 1;
            let prepared = {
                let mut ctx = WriteCtx {
                    view: PendingView::new(&self.tree, &mut self.pending, zxid),
                    auth: AuthContext { ids: &[], skip_acl: true },
                    session: SessionId(0),
                    cfg: &self.cfg.ops,
                    zxid,
                    time: now.wall_ms,
                };
                ops::delete::prep_container(&mut ctx, path.clone())
            };
            let txn = prepared.unwrap_or_else(|e| Txn::Error { err: e.code() });
            tracing::info!(zxid = %Zxid(zxid), "deleting container/TTL node {}", path);
            self.propose(SessionId(0), 0, txn, now, Origin::Reaper, out);
        }
    }
}

/// Checks a write against the tree plus the pending changes, given its zxid. A failed check
/// still becomes a txn: failed writes consume a zxid, as in Apache.
#[allow(clippy::too_many_arguments)]
fn prep_txn(tree: &DataTree, pending: &mut Pending, cfg: &EngineConfig, auth: &[Id], sid: SessionId, zxid: i64, now: Now, op: OpCode, body: &[u8]) -> Txn {
    let mut ctx = WriteCtx {
        view: PendingView::new(tree, pending, zxid),
        auth: AuthContext { ids: auth, skip_acl: cfg.skip_acl },
        session: sid,
        cfg: &cfg.ops,
        zxid,
        time: now.wall_ms,
    };
    prep_write(&mut ctx, op, body).unwrap_or_else(|e| Txn::Error { err: e.code() })
}

/// Whether a request frame is a write (it takes a zxid and goes through the log).
fn frame_is_write(frame: &[u8]) -> bool {
    let op = i32::from_be_bytes(frame[4..8].try_into().unwrap());
    OpCode::from_i32(op).is_some_and(|op| op.is_write() || op == OpCode::DeleteContainer)
}

/// Parses a write request and runs its checks.
fn prep_write(ctx: &mut WriteCtx<'_>, op: OpCode, body: &[u8]) -> Result<Txn, ErrorCode> {
    use ops::*;
    match op {
        OpCode::Create => create::prep(ctx, CreateKind::Create, decode::<CreateRequest>(body)?.into()),
        OpCode::Create2 => create::prep(ctx, CreateKind::Create2, decode::<CreateRequest>(body)?.into()),
        OpCode::CreateContainer => create::prep(ctx, CreateKind::Container, decode::<CreateRequest>(body)?.into()),
        OpCode::CreateTtl => create::prep(ctx, CreateKind::Ttl, decode::<CreateTtlRequest>(body)?.into()),
        OpCode::Delete => delete::prep(ctx, decode(body)?),
        OpCode::DeleteContainer => delete::prep_container(ctx, String::from_utf8_lossy(body).into_owned()),
        OpCode::SetData => set_data::prep(ctx, decode(body)?),
        OpCode::SetAcl => set_acl::prep(ctx, decode(body)?),
        OpCode::Check => check::prep(ctx, decode(body)?),
        OpCode::Multi => multi::prep(ctx, body),
        OpCode::Reconfig => reconfig::prep(ctx, decode(body)?),
        _ => Err(ErrorCode::Unimplemented),
    }
}

/// Runs a read and encodes its response record.
fn read_op(ctx: &mut ReadCtx<'_>, op: OpCode, body: &[u8], auth: &[Id]) -> Result<Vec<u8>, ErrorCode> {
    use ops::*;
    Ok(match op {
        OpCode::Exists => exists::read(ctx, &decode(body)?)?.to_bytes(),
        OpCode::GetData => get_data::read(ctx, &decode(body)?)?.to_bytes(),
        OpCode::GetAcl => get_acl::read(ctx, &decode(body)?)?.to_bytes(),
        OpCode::GetChildren => GetChildrenResponse { children: get_children::read(ctx, &decode(body)?)?.0 }.to_bytes(),
        OpCode::GetChildren2 => {
            let (children, stat) = get_children::read(ctx, &decode(body)?)?;
            GetChildren2Response { children, stat }.to_bytes()
        }
        OpCode::Sync => sync::read(decode(body)?).to_bytes(),
        OpCode::GetAllChildrenNumber => get_all_children_number::read(ctx, &decode(body)?)?.to_bytes(),
        OpCode::GetEphemerals => get_ephemerals::read(ctx, &decode(body)?).to_bytes(),
        OpCode::WhoAmI => who_am_i::read(auth).to_bytes(),
        OpCode::AddWatch => {
            add_watch::apply(ctx, &decode(body)?)?;
            ErrorResponse { err: 0 }.to_bytes()
        }
        OpCode::CheckWatches => {
            remove_watches::check(ctx, &decode(body)?)?;
            Vec::new()
        }
        OpCode::RemoveWatches => {
            remove_watches::remove(ctx, &decode(body)?)?;
            Vec::new()
        }
        OpCode::MultiRead => multi_read::read(ctx, body)?,
        _ => return Err(ErrorCode::Unimplemented),
    })
}

#[cfg(test)]
mod role_tests;
#[cfg(test)]
mod tests;

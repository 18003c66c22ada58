//! A deterministic simulation of an ensemble: N servers running `election` and `peer` over a
//! seeded network that delays, reorders (election messages), drops and partitions, with crashes
//! and restarts; after every step it checks Zab.tla's invariants and a client-history oracle.
//!
//! Everything is driven by one seeded RNG and a logical clock, so a failing seed replays exactly
//! (`rzk-sim --seed N`).
//!
//! What each check means here (names from Apache's Zab.tla):
//! - Leadership: at most one server establishes each epoch.
//! - Integrity: every txn a server applies was proposed by a leader, under that zxid.
//! - TotalOrder / PrefixConsistency / Agreement: the applied sequences of any two synced servers
//!   are prefixes of one another, and zxids rise along each.
//! - PrimaryIntegrity: a leader that establishes an epoch has applied every txn acknowledged to a
//!   client in earlier epochs.
//! - Client oracle: no acknowledged write is ever lost (at the end, after healing, every server
//!   has applied every acknowledged txn), and one client's writes apply in the order it sent them.

use super::election::{Election, ElectionAction};
use super::packet::{self as pk, Notification, QuorumPacket};
use super::peer::{Action, Durable, Peer, PeerConfig, ZabTxn};
use super::{LearnerType, PeerState, QuorumServer, QuorumVerifier, ServerId};
use crate::types::Zxid;
use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub voters: usize,
    pub observers: usize,
    pub steps: u64,
    /// Probability per step of a crash, a partition change, a client write.
    pub crash_p: f64,
    pub partition_p: f64,
    pub write_p: f64,
    pub drop_p: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig { voters: 3, observers: 0, steps: 4000, crash_p: 0.002, partition_p: 0.002, write_p: 0.3, drop_p: 0.02 }
    }
}

#[derive(Debug, Default, Clone)]
pub struct SimReport {
    pub proposed: usize,
    pub acknowledged: usize,
    pub crashes: usize,
    pub partitions: usize,
    pub elections: usize,
    pub epochs: u32,
    pub snaps: usize,
    pub truncs: usize,
    pub diffs: usize,
    /// Crashes injected at named points between durable steps, by point.
    pub crash_points: BTreeMap<&'static str, usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Channel {
    Election,
    Quorum,
}

#[derive(Clone, Debug)]
enum Msg {
    Note(Notification),
    Pkt(QuorumPacket),
    /// The quorum connection from `from` to `to` is established (learner side sees it open).
    Open,
    /// The quorum connection broke.
    Closed,
    /// The election connection from `from` to `to` came back: QuorumCnxManager sends the last
    /// notification again.
    Resend,
}

struct InFlight {
    at: u64,
    seq: u64,
    from: ServerId,
    to: ServerId,
    chan: Channel,
    msg: Msg,
}

/// What survives a crash.
#[derive(Clone, Default)]
struct Disk {
    log: Vec<ZabTxn>,
    accepted_epoch: u32,
    current_epoch: u32,
}

struct Node {
    id: ServerId,
    up: bool,
    disk: Disk,
    /// Log writes not yet fsynced: they become durable at `flush_at`.
    unsynced: Vec<ZabTxn>,
    flush_at: Option<u64>,
    election: Election,
    peer: Peer,
    /// The state machine: zxids applied, in order.
    applied: Vec<Zxid>,
    /// Whether `applied` is confirmed by a leader (synced and serving); after a restart the
    /// replayed log may hold txns that a TRUNC will take away.
    serving: bool,
    /// Quorum connections this node holds open (to its leader, or from its learners).
    conns: BTreeSet<ServerId>,
}

pub struct Sim {
    cfg: SimConfig,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    nodes: Vec<Node>,
    net: Vec<InFlight>,
    /// Nodes cut off from everybody else.
    isolated: BTreeSet<ServerId>,
    verifier: QuorumVerifier,
    /// Every txn a leader proposed: data → zxid.
    proposed: BTreeMap<Bytes, Zxid>,
    /// Txns acknowledged to clients (committed by a leader), in commit order.
    acked: Vec<(Zxid, Bytes)>,
    acked_set: BTreeSet<Zxid>,
    /// Epoch → the server that established it.
    established: BTreeMap<u32, ServerId>,
    next_write: u64,
    /// The last notification each server sent each other server (resent on reconnect).
    last_note: BTreeMap<(ServerId, ServerId), Notification>,
    pub report: SimReport,
    /// `RZK_SIM_TRACE=1`: print every role change, sync and fault.
    trace: bool,
    /// Whether faults are being injected (off while settling).
    faults_on: bool,
}

/// The actions a crash may precede, by name, with the chance of crashing there: higher for the
/// rare steps of discovery and synchronisation than for the per-txn ones.
fn crash_point(a: &Action) -> Option<(&'static str, f64)> {
    const RARE: f64 = 0.03;
    const PER_TXN: f64 = 0.002;
    Some(match a {
        Action::Send { pkt, .. } => match pkt.kind {
            pk::ACK => ("before sending ACK", PER_TXN),
            pk::ACKEPOCH => ("before sending ACKEPOCH", RARE),
            pk::COMMIT => ("before sending COMMIT", PER_TXN),
            pk::PROPOSAL => ("before sending PROPOSAL", PER_TXN),
            pk::NEWLEADER => ("before sending NEWLEADER", RARE),
            pk::UPTODATE => ("before sending UPTODATE", RARE),
            pk::LEADERINFO => ("before sending LEADERINFO", RARE),
            _ => return None,
        },
        Action::WriteAcceptedEpoch(_) => ("before writing acceptedEpoch", RARE),
        Action::WriteCurrentEpoch(_) => ("before writing currentEpoch", RARE),
        Action::Log(_) => ("before logging", PER_TXN),
        Action::Deliver(_) => ("before applying a commit", PER_TXN),
        Action::Truncate(_) => ("before truncating", RARE),
        Action::LoadSnapshot { .. } => ("before loading a snapshot", RARE),
        Action::SendSnap { .. } => ("before sending a snapshot", RARE),
        Action::Serving { .. } => ("before serving", RARE),
        _ => return None,
    })
}

fn encode_snapshot(txns: &[ZabTxn]) -> Bytes {
    let mut v = Vec::new();
    for t in txns {
        v.extend_from_slice(&t.zxid.0.to_be_bytes());
        v.extend_from_slice(&(t.data.len() as u32).to_be_bytes());
        v.extend_from_slice(&t.data);
    }
    Bytes::from(v)
}

fn decode_snapshot(b: &[u8]) -> Vec<ZabTxn> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 12 <= b.len() {
        let z = i64::from_be_bytes(b[i..i + 8].try_into().unwrap());
        let n = u32::from_be_bytes(b[i + 8..i + 12].try_into().unwrap()) as usize;
        out.push(ZabTxn { zxid: Zxid(z), data: Bytes::copy_from_slice(&b[i + 12..i + 12 + n]) });
        i += 12 + n;
    }
    out
}

impl Sim {
    pub fn new(seed: u64, cfg: SimConfig) -> Sim {
        let mut servers = Vec::new();
        for i in 1..=(cfg.voters + cfg.observers) as u64 {
            servers.push(QuorumServer {
                id: ServerId(i),
                quorum_addr: format!("127.0.0.1:{}", 2000 + i),
                election_addr: format!("127.0.0.1:{}", 3000 + i),
                learner_type: if i as usize > cfg.voters { LearnerType::Observer } else { LearnerType::Participant },
                client_addr: None,
            });
        }
        let verifier = QuorumVerifier::new(servers);
        let mut sim = Sim {
            rng: ChaCha8Rng::seed_from_u64(seed),
            cfg,
            now: 0,
            seq: 0,
            nodes: Vec::new(),
            net: Vec::new(),
            isolated: BTreeSet::new(),
            verifier: verifier.clone(),
            proposed: BTreeMap::new(),
            acked: Vec::new(),
            acked_set: BTreeSet::new(),
            established: BTreeMap::new(),
            next_write: 0,
            last_note: BTreeMap::new(),
            report: SimReport::default(),
            trace: std::env::var("RZK_SIM_TRACE").is_ok_and(|v| v == "1"),
            faults_on: false,
        };
        for s in verifier.servers.values() {
            let node = sim.boot(s.id, Disk::default());
            sim.nodes.push(node);
        }
        for i in 0..sim.nodes.len() {
            sim.start_looking(i);
        }
        sim
    }

    fn peer_config(&self, id: ServerId) -> PeerConfig {
        PeerConfig { me: id, verifier: self.verifier.clone(), tick_ms: 100, init_limit: 10, sync_limit: 5, commit_log_count: 20 }
    }

    /// A server starting from its disk: replay the whole log (as Apache does).
    fn boot(&self, id: ServerId, disk: Disk) -> Node {
        let lt = self.verifier.servers[&id].learner_type;
        let recent: VecDeque<ZabTxn> = disk.log.iter().rev().take(20).rev().cloned().collect();
        let durable = Durable {
            accepted_epoch: disk.accepted_epoch,
            current_epoch: disk.current_epoch,
            last_logged: disk.log.last().map_or(Zxid(0), |t| t.zxid),
            recent,
        };
        Node {
            id,
            up: true,
            applied: disk.log.iter().map(|t| t.zxid).collect(),
            disk,
            unsynced: Vec::new(),
            flush_at: None,
            election: Election::new(id, self.verifier.clone(), lt),
            peer: Peer::new(self.peer_config(id), durable),
            serving: false,
            conns: BTreeSet::new(),
        }
    }

    fn idx(&self, id: ServerId) -> usize {
        (id.0 - 1) as usize
    }

    fn send(&mut self, from: ServerId, to: ServerId, chan: Channel, msg: Msg) {
        // Quorum traffic is TCP: in order per connection, so a fixed small delay keeps FIFO.
        // Election notifications may arrive in any order and may be lost.
        let delay = match chan {
            Channel::Quorum => 1 + self.rng.gen_range(0..2),
            Channel::Election => 1 + self.rng.gen_range(0..20),
        };
        if chan == Channel::Election {
            if let Msg::Note(n) = &msg {
                self.last_note.insert((from, to), n.clone());
            }
            if self.rng.gen_bool(self.cfg.drop_p) {
                // A lost notification is a broken election connection: it is dialled again a
                // little later and the last notification is sent once more (as the shell does).
                self.seq += 1;
                let at = self.now + 50 + self.rng.gen_range(0..450);
                self.net.push(InFlight { at, seq: self.seq, from, to, chan, msg: Msg::Resend });
                return;
            }
        }
        self.seq += 1;
        let mut at = self.now + delay;
        if chan == Channel::Quorum {
            // Never overtake an earlier message on the same connection.
            if let Some(last) = self.net.iter().filter(|m| m.chan == Channel::Quorum && m.from == from && m.to == to).map(|m| m.at).max() {
                at = at.max(last);
            }
        }
        self.net.push(InFlight { at, seq: self.seq, from, to, chan, msg });
    }

    fn reachable(&self, a: ServerId, b: ServerId) -> bool {
        self.nodes[self.idx(a)].up && self.nodes[self.idx(b)].up && self.isolated.contains(&a) == self.isolated.contains(&b)
    }

    fn start_looking(&mut self, i: usize) {
        self.report.elections += 1;
        // Fast-forward: what was logged but not committed is applied on leaving the role.
        self.flush(i);
        let n = &mut self.nodes[i];
        n.serving = false;
        for t in n.peer.stop() {
            if n.applied.last().is_none_or(|l| *l < t.zxid) {
                n.applied.push(t.zxid);
            }
        }
        let last = n.peer.last_logged();
        let epoch = n.peer.durable.current_epoch as u64;
        let acts = n.election.start(last, epoch, self.now);
        let id = n.id;
        // Drop every quorum connection this node held.
        let conns: Vec<ServerId> = std::mem::take(&mut self.nodes[i].conns).into_iter().collect();
        for c in conns {
            self.close_conn(id, c);
        }
        self.election_actions(id, acts);
    }

    fn close_conn(&mut self, a: ServerId, b: ServerId) {
        let bi = self.idx(b);
        if self.nodes[bi].conns.remove(&a) {
            self.send(a, b, Channel::Quorum, Msg::Closed);
        }
        let ai = self.idx(a);
        self.nodes[ai].conns.remove(&b);
    }

    fn election_actions(&mut self, id: ServerId, acts: Vec<ElectionAction>) {
        for a in acts {
            match a {
                ElectionAction::Send { to, n } => self.send(id, to, Channel::Election, Msg::Note(n)),
                ElectionAction::Decided { state, vote } => {
                    let i = self.idx(id);
                    if self.trace {
                        println!("t={} {id} decided {state:?} {vote:?}", self.now);
                    }
                    self.nodes[i].election.settle(state, vote);
                    let acts = match state {
                        PeerState::Leading => self.nodes[i].peer.lead(self.now),
                        _ => self.nodes[i].peer.follow(vote.leader, self.now),
                    };
                    self.peer_actions(id, acts);
                }
            }
        }
    }

    fn peer_actions(&mut self, id: ServerId, acts: Vec<Action>) {
        let mut queue: VecDeque<Action> = acts.into();
        while let Some(a) = queue.pop_front() {
            let i = self.idx(id);
            // Named crash points: the server dies just before carrying out one of these
            // actions, i.e. between two durable steps of the protocol.
            if self.faults_on && self.nodes[i].up
                && let Some((point, p)) = crash_point(&a)
                    && self.rng.gen_bool(p) {
                        *self.report.crash_points.entry(point).or_default() += 1;
                        if self.trace {
                            println!("t={} CRASH {id} at {point}", self.now);
                        }
                        self.crash(i);
                        return;
                    }
            if self.trace {
                match &a {
                    Action::Send { pkt, .. } if matches!(pkt.kind, pk::PING | pk::ACK | pk::COMMIT | pk::PROPOSAL) => {}
                    Action::Log(_) | Action::Deliver(_) | Action::PingReply { .. } => {}
                    Action::Send { to, pkt } => println!("t={} {id}->{to} {} {:x}", self.now, pk::kind_name(pkt.kind), pkt.zxid),
                    a => println!("t={} {id}: {a:?} (applied up to {:?})", self.now, self.nodes[i].applied.last()),
                }
            }
            if !self.nodes[i].up {
                return;
            }
            match a {
                Action::Send { to, pkt } => {
                    if self.nodes[i].conns.contains(&to) {
                        self.send(id, to, Channel::Quorum, Msg::Pkt(pkt));
                    }
                }
                Action::SendSnap { to, zxid } => {
                    self.report.snaps += 1;
                    let n = &self.nodes[i];
                    assert_eq!(n.applied.last().copied().unwrap_or(Zxid(0)), zxid, "leader {id} snapshot at {zxid} but applied differs");
                    let txns: Vec<ZabTxn> = n.applied.iter().map(|z| self.txn_of(*z)).collect();
                    let data = encode_snapshot(&txns);
                    if self.nodes[i].conns.contains(&to) {
                        self.send(id, to, Channel::Quorum, Msg::Pkt(QuorumPacket::new(pk::SNAP, zxid.0, Some(data.to_vec()))));
                    }
                }
                Action::Connect { leader } => {
                    if self.reachable(id, leader) && leader != id {
                        self.nodes[i].conns.insert(leader);
                        let li = self.idx(leader);
                        self.nodes[li].conns.insert(id);
                        self.send(leader, id, Channel::Quorum, Msg::Open);
                    } else {
                        let acts = self.nodes[i].peer.disconnected(leader, self.now);
                        queue.extend(acts);
                    }
                }
                Action::Disconnect { peer } => self.close_conn(id, peer),
                Action::Log(txns) => {
                    let n = &mut self.nodes[i];
                    n.unsynced.extend(txns);
                    if n.flush_at.is_none() {
                        n.flush_at = Some(self.now + self.rng.gen_range(0..4));
                    }
                }
                Action::Deliver(txns) => {
                    for t in txns {
                        self.apply(i, t);
                    }
                }
                Action::Truncate(z) => {
                    self.report.truncs += 1;
                    self.flush(i);
                    let n = &mut self.nodes[i];
                    n.disk.log.retain(|t| t.zxid <= z);
                    n.applied = n.disk.log.iter().map(|t| t.zxid).collect();
                }
                Action::LoadSnapshot { zxid, data } => {
                    self.flush(i);
                    let txns = decode_snapshot(&data);
                    let n = &mut self.nodes[i];
                    // The snapshot replaces the state and becomes the base of the log.
                    n.applied = txns.iter().map(|t| t.zxid).collect();
                    n.disk.log = txns;
                    assert_eq!(n.applied.last().copied().unwrap_or(Zxid(0)), zxid);
                }
                Action::WriteAcceptedEpoch(e) => self.nodes[i].disk.accepted_epoch = e,
                Action::WriteCurrentEpoch(e) => self.nodes[i].disk.current_epoch = e,
                Action::Request { .. } | Action::TouchSessions { .. } | Action::Revalidated { .. } | Action::SyncDone => {}
                Action::PingReply { zxid } => {
                    if let super::peer::Role::Following(l) = &self.nodes[i].peer.role {
                        let to = l.leader;
                        if self.nodes[i].conns.contains(&to) {
                            self.send(id, to, Channel::Quorum, Msg::Pkt(QuorumPacket::new(pk::PING, zxid, Some(Vec::new()))));
                        }
                    }
                }
                Action::Serving { epoch } => {
                    self.nodes[i].serving = true;
                    // As the shell: the settled vote now carries the new epoch (Apache's
                    // updateElectionVote), so restarted servers find a quorum agreeing on it.
                    self.nodes[i].election.update_epoch(epoch as u64);
                    if self.nodes[i].peer.is_leader() {
                        if let Some(prev) = self.established.insert(epoch, id) {
                            panic!("Leadership: epoch {epoch} established by {prev} and by {id}");
                        }
                        self.report.epochs = self.report.epochs.max(epoch);
                        // PrimaryIntegrity: the new leader has every acknowledged txn.
                        let have: BTreeSet<Zxid> = self.nodes[i].applied.iter().copied().collect();
                        for (z, _) in &self.acked {
                            assert!(have.contains(z), "PrimaryIntegrity: leader {id} of epoch {epoch} lacks acknowledged {z}");
                        }
                    }
                    self.check_prefixes();
                }
                Action::GoLooking { .. } => {
                    self.start_looking(i);
                    return;
                }
            }
        }
    }

    fn txn_of(&self, z: Zxid) -> ZabTxn {
        let data = self.proposed.iter().find(|(_, v)| **v == z).map(|(k, _)| k.clone()).expect("applied txn was proposed");
        ZabTxn { zxid: z, data }
    }

    fn apply(&mut self, i: usize, t: ZabTxn) {
        // Integrity: it was proposed, under this zxid.
        assert_eq!(self.proposed.get(&t.data), Some(&t.zxid), "Integrity: server {} applied {} not proposed as such", self.nodes[i].id, t.zxid);
        let n = &mut self.nodes[i];
        if let Some(last) = n.applied.last() {
            assert!(t.zxid > *last, "TotalOrder: server {} applied {} after {}", n.id, t.zxid, last);
        }
        n.applied.push(t.zxid);
        if n.peer.is_leader() && self.acked_set.insert(t.zxid) {
            self.acked.push((t.zxid, t.data.clone()));
            self.report.acknowledged += 1;
        }
    }

    fn flush(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.flush_at = None;
        if n.unsynced.is_empty() {
            return;
        }
        let txns = std::mem::take(&mut n.unsynced);
        let last = txns.last().unwrap().zxid;
        for t in txns {
            if n.disk.log.last().is_none_or(|l| l.zxid < t.zxid) {
                n.disk.log.push(t);
            }
        }
        let id = n.id;
        let acts = n.peer.logged(last, self.now);
        self.peer_actions(id, acts);
    }

    /// PrefixConsistency over every serving server.
    fn check_prefixes(&self) {
        let serving: Vec<&Node> = self.nodes.iter().filter(|n| n.up && n.serving).collect();
        for a in &serving {
            for b in &serving {
                let k = a.applied.len().min(b.applied.len());
                if let Some(d) = (0..k).find(|&j| a.applied[j] != b.applied[j]) {
                    panic!(
                        "PrefixConsistency: servers {} and {} diverge at index {d}: {} vs {} (at t={} ms)",
                        a.id, b.id, a.applied[d], b.applied[d], self.now
                    );
                }
            }
        }
    }

    fn crash(&mut self, i: usize) {
        self.report.crashes += 1;
        let id = self.nodes[i].id;
        if self.trace {
            println!("t={} CRASH {id}", self.now);
        }
        // Unsynced log writes are lost.
        self.nodes[i].unsynced.clear();
        self.nodes[i].up = false;
        self.nodes[i].serving = false;
        let conns: Vec<ServerId> = std::mem::take(&mut self.nodes[i].conns).into_iter().collect();
        for c in conns {
            let ci = self.idx(c);
            self.nodes[ci].conns.remove(&id);
            let acts = self.nodes[ci].peer.disconnected(id, self.now);
            self.peer_actions(c, acts);
        }
        self.net.retain(|m| m.to != id && m.from != id);
    }

    fn restart(&mut self, i: usize) {
        let id = self.nodes[i].id;
        let disk = self.nodes[i].disk.clone();
        self.nodes[i] = self.boot(id, disk);
        self.start_looking(i);
    }

    fn set_isolated(&mut self, id: ServerId, on: bool) {
        if self.trace {
            println!("t={} ISOLATE {id} {on}", self.now);
        }
        self.report.partitions += on as usize;
        if on {
            self.isolated.insert(id);
        } else {
            self.isolated.remove(&id);
        }
        // Election connections come back once the cut heals: the last notifications go again.
        if !on {
            let ids: Vec<ServerId> = self.nodes.iter().map(|n| n.id).filter(|&j| j != id).collect();
            for j in ids {
                if self.reachable(id, j) {
                    for (a, b) in [(id, j), (j, id)] {
                        self.seq += 1;
                        let at = self.now + 1 + self.rng.gen_range(0..20);
                        self.net.push(InFlight { at, seq: self.seq, from: a, to: b, chan: Channel::Election, msg: Msg::Resend });
                    }
                }
            }
        }
        // Connections across the cut break.
        let pairs: Vec<(ServerId, ServerId)> =
            self.nodes.iter().flat_map(|n| n.conns.iter().map(move |c| (n.id, *c))).filter(|(a, b)| self.isolated.contains(a) != self.isolated.contains(b)).collect();
        for (a, b) in pairs {
            let ai = self.idx(a);
            if self.nodes[ai].conns.remove(&b) {
                let acts = self.nodes[ai].peer.disconnected(b, self.now);
                self.peer_actions(a, acts);
            }
        }
    }

    fn deliver(&mut self, m: InFlight) {
        if !self.reachable(m.from, m.to) && !matches!(m.msg, Msg::Closed) {
            return;
        }
        let ti = self.idx(m.to);
        if !self.nodes[ti].up {
            return;
        }
        match m.msg {
            Msg::Resend => {
                if let Some(n) = self.last_note.get(&(m.from, m.to)).cloned() {
                    self.send(m.from, m.to, Channel::Election, Msg::Note(n));
                }
            }
            Msg::Note(n) => {
                let acts = self.nodes[ti].election.on_notification(m.from, &n, self.now);
                self.election_actions(m.to, acts);
            }
            Msg::Open => {
                if self.nodes[ti].conns.contains(&m.from) {
                    let acts = self.nodes[ti].peer.connected(m.from, self.now);
                    self.peer_actions(m.to, acts);
                }
            }
            Msg::Closed => {
                self.nodes[ti].conns.remove(&m.from);
                let acts = self.nodes[ti].peer.disconnected(m.from, self.now);
                self.peer_actions(m.to, acts);
            }
            Msg::Pkt(p) => {
                if !self.nodes[ti].conns.contains(&m.from) {
                    return;
                }
                // As the shell does (server/quorum.rs `serve_learner`): a learner's first packet
                // that arrives while this server is still finishing its election waits until it
                // leads, instead of being dropped.
                if matches!(p.kind, pk::FOLLOWERINFO | pk::OBSERVERINFO) && matches!(self.nodes[ti].peer.role, super::peer::Role::Looking) {
                    self.seq += 1;
                    self.net.push(InFlight { at: self.now + 5, seq: self.seq, from: m.from, to: m.to, chan: Channel::Quorum, msg: Msg::Pkt(p) });
                    return;
                }
                if p.kind == pk::DIFF {
                    self.report.diffs += 1;
                }
                let acts = self.nodes[ti].peer.on_packet(m.from, p, self.now);
                self.peer_actions(m.to, acts);
            }
        }
    }

    /// One millisecond of simulated time.
    pub fn step(&mut self, faults: bool) {
        self.now += 1;
        self.faults_on = faults;
        // Messages due now, in a seeded order among equals on different connections.
        let mut due: Vec<InFlight> = Vec::new();
        let mut k = 0;
        while k < self.net.len() {
            if self.net[k].at <= self.now {
                due.push(self.net.swap_remove(k));
            } else {
                k += 1;
            }
        }
        due.sort_by_key(|m| (m.at, m.seq));
        for m in due {
            self.deliver(m);
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].up && self.nodes[i].flush_at.is_some_and(|t| t <= self.now) {
                self.flush(i);
            }
        }
        if self.now.is_multiple_of(10) {
            for i in 0..self.nodes.len() {
                if !self.nodes[i].up {
                    continue;
                }
                let id = self.nodes[i].id;
                let acts = self.nodes[i].election.tick(self.now);
                self.election_actions(id, acts);
                let acts = self.nodes[i].peer.tick(self.now);
                self.peer_actions(id, acts);
            }
        }
        if faults {
            self.faults();
        }
        if self.rng.gen_bool(self.cfg.write_p) {
            self.client_write();
        }
    }

    fn faults(&mut self) {
        let n = self.nodes.len();
        if self.rng.gen_bool(self.cfg.crash_p) {
            let i = self.rng.gen_range(0..n);
            if self.nodes[i].up {
                // Keep a quorum's worth of disks alive most of the time, but allow anything.
                self.crash(i);
            }
        }
        for i in 0..n {
            if !self.nodes[i].up && self.rng.gen_bool(0.01) {
                self.restart(i);
            }
        }
        if self.rng.gen_bool(self.cfg.partition_p) {
            let id = ServerId(self.rng.gen_range(1..=n as u64));
            let on = !self.isolated.contains(&id);
            self.set_isolated(id, on);
        }
    }

    fn client_write(&mut self) {
        // A client talks to whichever server leads and is serving.
        let Some(i) = self.nodes.iter().position(|n| n.up && n.serving && n.peer.is_leader()) else { return };
        let id = self.nodes[i].id;
        let zxid = match &self.nodes[i].peer.role {
            super::peer::Role::Leading(_) => {
                let last = self.proposed_last(id);
                Zxid(last.0 + 1)
            }
            _ => return,
        };
        self.next_write += 1;
        let data = Bytes::from(format!("w{}", self.next_write));
        self.proposed.insert(data.clone(), zxid);
        self.report.proposed += 1;
        let acts = self.nodes[i].peer.propose(ZabTxn { zxid, data });
        self.peer_actions(id, acts);
    }

    fn proposed_last(&self, id: ServerId) -> Zxid {
        let i = self.idx(id);
        let epoch = self.nodes[i].peer.leader_epoch().unwrap_or(0);
        let base = Zxid::new(epoch, 0);
        self.proposed.values().filter(|z| z.epoch() == epoch).max().copied().unwrap_or(base).max(base)
    }

    /// Heal everything, restart everyone, and let the ensemble settle; then every server must
    /// have applied every acknowledged txn, in the same order.
    pub fn settle(&mut self) {
        let ids: Vec<ServerId> = self.isolated.iter().copied().collect();
        for id in ids {
            self.set_isolated(id, false);
        }
        for i in 0..self.nodes.len() {
            if !self.nodes[i].up {
                self.restart(i);
            }
        }
        for _ in 0..30_000 {
            self.step(false);
            if self.nodes.iter().all(|n| n.serving) && self.net.is_empty() && self.nodes.iter().all(|n| n.unsynced.is_empty()) {
                break;
            }
        }
        for n in &self.nodes {
            assert!(n.serving, "server {} did not rejoin within 30 s of simulated time (role {:?})", n.id, n.peer.role);
        }
        self.check_prefixes();
        let longest = self.nodes.iter().map(|n| n.applied.len()).max().unwrap_or(0);
        for n in &self.nodes {
            assert_eq!(n.applied.len(), longest, "server {} applied {} txns, another {}", n.id, n.applied.len(), longest);
            let have: BTreeSet<Zxid> = n.applied.iter().copied().collect();
            for (z, _) in &self.acked {
                assert!(have.contains(z), "acknowledged {z} lost on server {}", n.id);
            }
        }
        // One client (the sim's single writer) saw its acknowledged writes apply in send order.
        let order: Vec<u64> = self.acked.iter().map(|(_, d)| String::from_utf8_lossy(&d[1..]).parse::<u64>().unwrap()).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "client order broken: {order:?}");
    }

    /// Runs `steps` steps with faults, then settles; panics on a broken invariant.
    pub fn run(seed: u64, cfg: SimConfig) -> SimReport {
        let steps = cfg.steps;
        let mut sim = Sim::new(seed, cfg);
        for _ in 0..steps {
            sim.step(true);
        }
        sim.settle();
        sim.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_voters_elect_and_broadcast_without_faults() {
        let mut sim = Sim::new(1, SimConfig::default());
        for _ in 0..3000 {
            sim.step(false);
        }
        sim.settle();
        assert!(sim.report.acknowledged > 100, "{:?}", sim.report);
    }

    /// Seeds that once failed (found while building the peer: a stale DIFF history, a leader
    /// whose state lagged its log when it took over; 2084: a server that had accepted a later
    /// epoch than the established leader's could never rejoin; 5017782: the simulation did not
    /// give settled votes the new epoch as the shell does, so a restarted server never saw a
    /// quorum agree). They stay, whatever else changes.
    const REGRESSIONS: &[u64] = &[0, 1, 3, 5, 24, 28, 36, 40, 56, 64, 73, 74, 81, 94, 96, 97, 99, 2084, 5_017_782];

    #[test]
    fn seeds_that_once_failed_pass() {
        for &seed in REGRESSIONS {
            Sim::run(seed, SimConfig::default());
        }
        // Two voters (both needed for a quorum): a learner's FOLLOWERINFO that reached the
        // leader-to-be before it finished its election was lost, and the pair never formed.
        for seed in [600_583, 601_231, 603_351] {
            Sim::run(seed, SimConfig { voters: 2, ..SimConfig::default() });
        }
        // Five voters under heavy faults: a server cut off for long stopped hearing elections
        // (its resend timer had backed off) because lost notifications were never sent again;
        // the shell resends the last one when an election connection comes back, the
        // simulation now does too.
        Sim::run(2_000_042, SimConfig { voters: 5, crash_p: 0.01, partition_p: 0.01, drop_p: 0.2, ..SimConfig::default() });
    }

    #[test]
    fn two_voters_keep_every_invariant() {
        let r = sweep(20_000..20_200, SimConfig { voters: 2, ..SimConfig::default() });
        assert!(r.acknowledged > 5_000 && r.crashes > 100, "{r:?}");
    }

    fn sweep(seeds: std::ops::Range<u64>, cfg: SimConfig) -> SimReport {
        let mut total = SimReport::default();
        for seed in seeds {
            let r = std::panic::catch_unwind(|| Sim::run(seed, cfg.clone())).unwrap_or_else(|_| panic!("seed {seed} failed (replay: rzk-sim --start {seed} --seeds 1 --voters {} --observers {})", cfg.voters, cfg.observers));
            total.acknowledged += r.acknowledged;
            total.crashes += r.crashes;
            total.snaps += r.snaps;
            total.truncs += r.truncs;
            total.diffs += r.diffs;
            total.epochs = total.epochs.max(r.epochs);
            for (k, v) in r.crash_points {
                *total.crash_points.entry(k).or_default() += v;
            }
        }
        total
    }

    #[test]
    fn five_hundred_seeds_of_three_voters_keep_every_invariant() {
        let r = sweep(0..500, SimConfig::default());
        // The sweep must actually exercise what it claims to check.
        assert!(r.acknowledged > 80_000 && r.crashes > 1_000 && r.snaps > 100 && r.diffs > 100, "{r:?}");
        // Every named crash point of the common paths was hit somewhere in the sweep.
        for point in [
            "before sending ACK",
            "before sending ACKEPOCH",
            "before sending COMMIT",
            "before sending PROPOSAL",
            "before sending NEWLEADER",
            "before sending UPTODATE",
            "before sending LEADERINFO",
            "before writing acceptedEpoch",
            "before writing currentEpoch",
            "before logging",
            "before applying a commit",
            "before sending a snapshot",
            "before loading a snapshot",
            "before serving",
        ] {
            assert!(r.crash_points.get(point).copied().unwrap_or(0) > 0, "never crashed {point}: {:?}", r.crash_points);
        }
    }

    #[test]
    fn five_voters_and_an_observer_keep_every_invariant() {
        let r = sweep(10_000..10_100, SimConfig { voters: 5, observers: 1, ..SimConfig::default() });
        assert!(r.acknowledged > 10_000 && r.crashes > 100, "{r:?}");
    }
}

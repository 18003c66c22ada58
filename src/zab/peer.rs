//! One server's life in ZAB after an election: discovery, synchronisation and broadcast, as the
//! leader or as a learner (follower or observer). Pure: events in, actions out.
//!
//! The phases, in Apache's terms (Leader.lead / LearnerHandler / Learner.syncWithLeader):
//! 1. Discovery: learners send FOLLOWERINFO (their acceptedEpoch); once a quorum has, the leader
//!    picks `newEpoch = max(acceptedEpoch) + 1`, records it as its own acceptedEpoch and sends
//!    LEADERINFO; each learner records acceptedEpoch and answers ACKEPOCH with its last logged zxid.
//! 2. Synchronisation: per learner, the leader picks DIFF (send the txns it lacks), TRUNC (drop
//!    txns the leader never committed) or SNAP (the whole state), then NEWLEADER. The learner logs
//!    what it got, records currentEpoch and ACKs; once a quorum has, the leader records its
//!    currentEpoch, starts serving and sends UPTODATE.
//! 3. Broadcast: PROPOSAL → each follower logs and ACKs → at a quorum of ACKs (the leader's own
//!    durable log counts) the leader COMMITs, in zxid order; observers get INFORM.
//!
//! Durability rules the actions encode (the shell must carry actions out in order):
//! - `WriteAcceptedEpoch` / `WriteCurrentEpoch` are durable before the next action runs;
//! - an ACK for a zxid is sent only from `logged()`, i.e. after that txn is fsynced;
//! - NEWLEADER is ACKed only after every txn received before it is logged.

use super::packet::{self as pk, QuorumPacket};
use super::{LearnerType, QuorumVerifier, ServerId};
use crate::types::Zxid;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A txn as ZAB moves it: its zxid and its log-entry bytes (TxnHeader + record [+ digest]),
/// opaque to ZAB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZabTxn {
    pub zxid: Zxid,
    pub data: Bytes,
}

#[derive(Clone, Debug)]
pub struct PeerConfig {
    pub me: ServerId,
    pub verifier: QuorumVerifier,
    pub tick_ms: u64,
    pub init_limit: u64,
    pub sync_limit: u64,
    /// How many committed txns the leader keeps for DIFF (`zookeeper.commitLogCount`, 500).
    pub commit_log_count: usize,
}

impl PeerConfig {
    pub fn learner_type(&self) -> LearnerType {
        self.verifier.servers.get(&self.me).map_or(LearnerType::Participant, |s| s.learner_type)
    }
}

/// What the shell must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write a packet on the quorum connection to/from this server.
    Send { to: ServerId, pkt: QuorumPacket },
    /// Leader: write `SNAP(zxid)` followed by a snapshot of the state as applied up to `zxid`
    /// (which is everything delivered so far) to this learner.
    SendSnap { to: ServerId, zxid: Zxid },
    /// Open the quorum connection to the leader (a learner); `connected` or `disconnected` follows.
    Connect { leader: ServerId },
    /// Close the quorum connection with this server.
    Disconnect { peer: ServerId },
    /// Append to the txn log; report with `logged(last zxid)` once fsynced.
    Log(Vec<ZabTxn>),
    /// These txns are committed: apply them in order (leader: they are its own proposals).
    Deliver(Vec<ZabTxn>),
    /// Learner: drop every logged txn after this zxid and reload the state from disk.
    Truncate(Zxid),
    /// Learner: replace the whole state with this snapshot (as the SNAP stream carried it), and
    /// make it durable (a snapshot file) before going on.
    LoadSnapshot { zxid: Zxid, data: Bytes },
    WriteAcceptedEpoch(u32),
    WriteCurrentEpoch(u32),
    /// Leader: a learner forwarded a client request (REQUEST packet).
    Request { from: ServerId, pkt: QuorumPacket },
    /// Leader: session activity a learner reported in its PING reply.
    TouchSessions { from: ServerId, data: Bytes },
    /// Learner: answer the leader's PING (with the sessions touched since the last one).
    PingReply { zxid: i64 },
    /// Learner: REVALIDATE answer for a client reconnect.
    Revalidated { data: Bytes },
    /// Learner: the oldest pending client `sync` may be answered.
    SyncDone,
    /// Start serving clients (leader: the new epoch is established; learner: UPTODATE).
    Serving { epoch: u32 },
    /// Give up this role and start a new election.
    GoLooking { why: String },
}

/// Durable facts a server starts a role with.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    pub accepted_epoch: u32,
    pub current_epoch: u32,
    /// The last zxid in the txn log (after replay, also the last applied one).
    pub last_logged: Zxid,
    /// The most recent committed (or, after leaving a role, fast-forwarded) txns, oldest first,
    /// at most commit_log_count: what a leader can DIFF from. Kept up to date by the peer.
    pub recent: VecDeque<ZabTxn>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LeaderPhase {
    Discovery,
    Sync,
    Broadcast,
}

#[derive(Clone, Debug)]
struct LearnerHandle {
    learner_type: LearnerType,
    /// FOLLOWERINFO/OBSERVERINFO received.
    accepted_epoch: u32,
    /// ACKEPOCH received: its last logged zxid.
    last_zxid: Option<Zxid>,
    /// The sync and NEWLEADER have been queued; it gets proposals and commits from now on.
    forwarding: bool,
    /// Highest zxid sent to it before NEWLEADER (covered by its NEWLEADER ACK).
    sent_before_newleader: Zxid,
    newleader_acked: bool,
    uptodate_sent: bool,
    /// Highest zxid it has ACKed (it logs in order, so this covers everything before).
    acked: Zxid,
    last_heard_ms: u64,
}

#[derive(Debug)]
pub struct Leader {
    phase: LeaderPhase,
    epoch: Option<u32>,
    learners: BTreeMap<ServerId, LearnerHandle>,
    /// Proposed and not yet committed, in zxid order.
    outstanding: VecDeque<ZabTxn>,
    last_proposed: Zxid,
    last_committed: Zxid,
    self_logged: Zxid,
    /// Learners' client `sync`s waiting for the zxid proposed when they arrived to commit.
    pending_syncs: VecDeque<(Zxid, ServerId)>,
    started_ms: u64,
    last_ping_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LearnerPhase {
    Connecting,
    Discovery,
    Sync,
    Broadcast,
}

#[derive(Debug)]
pub struct Learner {
    pub leader: ServerId,
    phase: LearnerPhase,
    new_epoch: u32,
    /// Received (logged or being logged), not yet committed.
    pending: VecDeque<ZabTxn>,
    /// Received and not yet ACKed (followers in broadcast ACK each zxid once logged).
    unacked: VecDeque<Zxid>,
    last_received: Zxid,
    logged: Zxid,
    /// NEWLEADER waiting for the log to catch up before it is ACKed.
    newleader_pending: Option<i64>,
    newleader_acked: bool,
    last_heard_ms: u64,
}

#[derive(Debug)]
pub enum Role {
    Looking,
    Leading(Leader),
    Following(Learner),
}

pub struct Peer {
    pub cfg: PeerConfig,
    pub durable: Durable,
    pub role: Role,
}

fn epoch_zxid(epoch: u32) -> i64 {
    (epoch as i64) << 32
}

impl Peer {
    pub fn new(cfg: PeerConfig, durable: Durable) -> Peer {
        Peer { cfg, durable, role: Role::Looking }
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leading(_))
    }

    /// The last zxid this server has logged.
    pub fn last_logged(&self) -> Zxid {
        self.durable.last_logged
    }

    fn timeout_ms(&self, limit: u64) -> u64 {
        self.cfg.tick_ms * limit.max(1)
    }

    /// The election chose this server.
    pub fn lead(&mut self, now: u64) -> Vec<Action> {
        let last = self.durable.last_logged;
        self.role = Role::Leading(Leader {
            phase: LeaderPhase::Discovery,
            epoch: None,
            learners: BTreeMap::new(),
            outstanding: VecDeque::new(),
            last_proposed: last,
            last_committed: last,
            self_logged: last,
            pending_syncs: VecDeque::new(),
            started_ms: now,
            last_ping_ms: now,
        });
        let mut out = Vec::new();
        // A single-voter quorum (possible with observers) decides the epoch at once.
        self.leader_try_epoch(&mut out);
        out
    }

    /// The election chose `leader`; this server follows (or observes).
    pub fn follow(&mut self, leader: ServerId, now: u64) -> Vec<Action> {
        self.role = Role::Following(Learner {
            leader,
            phase: LearnerPhase::Connecting,
            new_epoch: 0,
            pending: VecDeque::new(),
            unacked: VecDeque::new(),
            last_received: self.durable.last_logged,
            logged: self.durable.last_logged,
            newleader_pending: None,
            newleader_acked: false,
            last_heard_ms: now,
        });
        vec![Action::Connect { leader }]
    }

    /// Back to LOOKING. Returns the txns this server has logged (or is logging) but not
    /// applied: the caller applies them now, as Apache's `fastForwardDataBase` does when a server
    /// leaves its role, so that the state, the vote (`last_logged`) and a later SNAP all agree. A
    /// txn a new leader does not have is then taken back by TRUNC, which reloads from disk.
    pub fn stop(&mut self) -> Vec<ZabTxn> {
        let rest: Vec<ZabTxn> = match std::mem::replace(&mut self.role, Role::Looking) {
            Role::Leading(ld) => ld.outstanding.into_iter().collect(),
            Role::Following(l) => l.pending.into_iter().collect(),
            Role::Looking => Vec::new(),
        };
        if let Some(last) = rest.last()
            && last.zxid > self.durable.last_logged {
                self.durable.last_logged = last.zxid;
            }
        for t in &rest {
            Self::remember(&self.cfg, &mut self.durable, t.clone());
        }
        rest
    }

    /// Keeps the newest `commit_log_count` applied txns for DIFF.
    fn remember(cfg: &PeerConfig, durable: &mut Durable, t: ZabTxn) {
        if durable.recent.back().is_some_and(|b| b.zxid >= t.zxid) {
            return;
        }
        durable.recent.push_back(t);
        while durable.recent.len() > cfg.commit_log_count {
            durable.recent.pop_front();
        }
    }

    /// Learner: the quorum connection to the leader is up.
    pub fn connected(&mut self, to: ServerId, now: u64) -> Vec<Action> {
        let me = self.cfg.me;
        let observer = self.cfg.learner_type() == LearnerType::Observer;
        let accepted = self.durable.accepted_epoch;
        let version = self.cfg.verifier.version;
        let Role::Following(l) = &mut self.role else { return vec![] };
        if l.leader != to || l.phase != LearnerPhase::Connecting {
            return vec![];
        }
        l.phase = LearnerPhase::Discovery;
        l.last_heard_ms = now;
        let kind = if observer { pk::OBSERVERINFO } else { pk::FOLLOWERINFO };
        vec![Action::Send { to, pkt: QuorumPacket::new(kind, epoch_zxid(accepted), Some(pk::LearnerInfo::new(me, version).to_bytes())) }]
    }

    /// A quorum connection closed (or could not be opened).
    pub fn disconnected(&mut self, peer: ServerId, _now: u64) -> Vec<Action> {
        match &mut self.role {
            Role::Following(l) if l.leader == peer => vec![Action::GoLooking { why: format!("lost the connection to leader {peer}") }],
            Role::Leading(ld) => {
                ld.learners.remove(&peer);
                vec![]
            }
            _ => vec![],
        }
    }

    /// Time passes: pings, and the liveness checks of initLimit/syncLimit.
    pub fn tick(&mut self, now: u64) -> Vec<Action> {
        let init_ms = self.timeout_ms(self.cfg.init_limit);
        let sync_ms = self.timeout_ms(self.cfg.sync_limit);
        let half_tick = (self.cfg.tick_ms / 2).max(1);
        let mut out = Vec::new();
        match &mut self.role {
            Role::Looking => {}
            Role::Leading(ld) => {
                if ld.phase != LeaderPhase::Broadcast {
                    if now.saturating_sub(ld.started_ms) > init_ms {
                        out.push(Action::GoLooking { why: "no quorum of followers synced within initLimit".into() });
                    }
                    return out;
                }
                if now.saturating_sub(ld.last_ping_ms) >= half_tick {
                    ld.last_ping_ms = now;
                    for (&id, h) in &ld.learners {
                        if h.forwarding {
                            out.push(Action::Send { to: id, pkt: QuorumPacket::new(pk::PING, ld.last_proposed.0, None) });
                        }
                    }
                }
                // Apache's "not sufficient followers synced": a leader that has not heard from a
                // quorum within syncLimit steps down, so a partitioned leader stops taking writes.
                let mut alive: BTreeSet<ServerId> = BTreeSet::new();
                alive.insert(self.cfg.me);
                for (&id, h) in &ld.learners {
                    if h.newleader_acked && now.saturating_sub(h.last_heard_ms) <= sync_ms {
                        alive.insert(id);
                    }
                }
                if !self.cfg.verifier.contains_quorum(&alive) {
                    out.push(Action::GoLooking { why: format!("not sufficient followers synced, only synced with sids: {alive:?}") });
                }
            }
            Role::Following(l) => {
                let limit = if l.phase == LearnerPhase::Broadcast { sync_ms } else { init_ms };
                if now.saturating_sub(l.last_heard_ms) > limit {
                    out.push(Action::GoLooking { why: format!("no message from leader {} for {} ms", l.leader, now - l.last_heard_ms) });
                }
            }
        }
        out
    }

    /// The txn log is durable up to `zxid`.
    pub fn logged(&mut self, zxid: Zxid, now: u64) -> Vec<Action> {
        if zxid > self.durable.last_logged {
            self.durable.last_logged = zxid;
        }
        let mut out = Vec::new();
        let me = self.cfg.me;
        let observer = self.cfg.learner_type() == LearnerType::Observer;
        match &mut self.role {
            Role::Leading(ld) => {
                if zxid > ld.self_logged {
                    ld.self_logged = zxid;
                }
                Self::leader_try_commit(&self.cfg, &mut self.durable, ld, now, &mut out);
            }
            Role::Following(l) => {
                if zxid > l.logged {
                    l.logged = zxid;
                }
                if !observer {
                    while l.unacked.front().is_some_and(|z| *z <= zxid) {
                        let z = l.unacked.pop_front().unwrap();
                        out.push(Action::Send { to: l.leader, pkt: QuorumPacket::new(pk::ACK, z.0, None) });
                    }
                }
                Self::learner_try_ack_newleader(me, &mut self.durable, l, &mut out);
            }
            Role::Looking => {}
        }
        out
    }

    /// Leader: the engine prepared a txn (zxid = last proposed + 1, in this epoch).
    pub fn propose(&mut self, txn: ZabTxn) -> Vec<Action> {
        let Role::Leading(ld) = &mut self.role else { return vec![] };
        debug_assert!(ld.phase == LeaderPhase::Broadcast);
        debug_assert!(txn.zxid > ld.last_proposed);
        ld.last_proposed = txn.zxid;
        ld.outstanding.push_back(txn.clone());
        let mut out = vec![Action::Log(vec![txn.clone()])];
        for (&id, h) in &ld.learners {
            if h.forwarding && h.learner_type == LearnerType::Participant {
                out.push(Action::Send { to: id, pkt: QuorumPacket::new(pk::PROPOSAL, txn.zxid.0, Some(txn.data.to_vec())) });
            }
        }
        out
    }

    /// Leader: the epoch's first zxid is `epoch << 32`; the engine's next zxid follows it.
    pub fn leader_epoch(&self) -> Option<u32> {
        match &self.role {
            Role::Leading(ld) => ld.epoch,
            _ => None,
        }
    }

    /// Leader figures for 4lw/mntr: (learners, synced followers, synced observers, pending syncs).
    pub fn leader_counts(&self) -> Option<(usize, usize, usize, usize)> {
        match &self.role {
            Role::Leading(ld) => Some((
                ld.learners.len(),
                ld.learners.values().filter(|h| h.learner_type == LearnerType::Participant && h.uptodate_sent).count(),
                ld.learners.values().filter(|h| h.learner_type == LearnerType::Observer && h.uptodate_sent).count(),
                ld.pending_syncs.len(),
            )),
            _ => None,
        }
    }

    pub fn on_packet(&mut self, from: ServerId, pkt: QuorumPacket, now: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(self.role, Role::Leading(_)) {
            self.leader_packet(from, pkt, now, &mut out);
        } else if matches!(self.role, Role::Following(_)) {
            self.learner_packet(from, pkt, now, &mut out);
        }
        out
    }

    // ---- leader ----

    fn leader_packet(&mut self, from: ServerId, pkt: QuorumPacket, now: u64, out: &mut Vec<Action>) {
        let Role::Leading(ld) = &mut self.role else { return };
        if let Some(h) = ld.learners.get_mut(&from) {
            h.last_heard_ms = now;
        }
        match pkt.kind {
            pk::FOLLOWERINFO | pk::OBSERVERINFO => {
                let learner_type = if pkt.kind == pk::OBSERVERINFO { LearnerType::Observer } else { LearnerType::Participant };
                // A server not in our view that claims to be a participant is not counted.
                let learner_type = if self.cfg.verifier.is_voter(from) { learner_type } else { LearnerType::Observer };
                let accepted_epoch = (pkt.zxid >> 32) as u32;
                ld.learners.insert(
                    from,
                    LearnerHandle {
                        learner_type,
                        accepted_epoch,
                        last_zxid: None,
                        forwarding: false,
                        sent_before_newleader: Zxid(0),
                        newleader_acked: false,
                        uptodate_sent: false,
                        acked: Zxid(0),
                        last_heard_ms: now,
                    },
                );
                match ld.epoch {
                    Some(e) if learner_type == LearnerType::Participant && accepted_epoch > e => {
                        // It promised a later epoch (a leader that fixed epoch e+1 and crashed
                        // before telling anyone): it can never follow this one, and Apache's
                        // learner would retry forever. Start over, so that the next epoch is
                        // above its promise and the whole ensemble can serve.
                        out.push(Action::GoLooking { why: format!("follower {from} has accepted epoch {accepted_epoch}, above ours ({e})") });
                    }
                    Some(e) => out.push(Action::Send { to: from, pkt: QuorumPacket::new(pk::LEADERINFO, epoch_zxid(e), Some(0x10000i32.to_be_bytes().to_vec())) }),
                    None => self.leader_try_epoch(out),
                }
            }
            pk::ACKEPOCH => {
                let Some(h) = ld.learners.get_mut(&from) else { return };
                let their_current = pkt.data.as_deref().and_then(|d| d.get(..4)).map(|b| i32::from_be_bytes(b.try_into().unwrap())).unwrap_or(-1);
                let their_last = Zxid(pkt.zxid);
                h.last_zxid = Some(their_last);
                // A follower ahead of the leader means the election went wrong: start over.
                if h.learner_type == LearnerType::Participant
                    && (their_current > self.durable.current_epoch as i32
                        || (their_current == self.durable.current_epoch as i32 && their_last > self.durable.last_logged))
                {
                    out.push(Action::GoLooking { why: format!("follower {from} is ahead of the leader (epoch {their_current}, zxid {their_last})") });
                    return;
                }
                if ld.phase == LeaderPhase::Discovery {
                    let acked: BTreeSet<ServerId> = ld.learners.iter().filter(|(_, h)| h.last_zxid.is_some()).map(|(id, _)| *id).chain([self.cfg.me]).collect();
                    if self.cfg.verifier.contains_quorum(&acked) {
                        ld.phase = LeaderPhase::Sync;
                        let ids: Vec<ServerId> = acked.into_iter().filter(|id| *id != self.cfg.me).collect();
                        for id in ids {
                            Self::sync_learner(&self.cfg, &self.durable, ld, id, out);
                        }
                    }
                } else {
                    Self::sync_learner(&self.cfg, &self.durable, ld, from, out);
                }
            }
            pk::ACK => {
                let Some(h) = ld.learners.get_mut(&from) else { return };
                let Some(epoch) = ld.epoch else { return };
                if pkt.zxid == epoch_zxid(epoch) {
                    if !h.newleader_acked {
                        h.newleader_acked = true;
                        if h.sent_before_newleader > h.acked {
                            h.acked = h.sent_before_newleader;
                        }
                        if ld.phase == LeaderPhase::Broadcast {
                            h.uptodate_sent = true;
                            out.push(Action::Send { to: from, pkt: QuorumPacket::new(pk::UPTODATE, -1, None) });
                        } else {
                            Self::leader_try_establish(&self.cfg, &mut self.durable, ld, epoch, out);
                        }
                    }
                    // The second ACK (after UPTODATE) needs nothing.
                    return;
                }
                if Zxid(pkt.zxid) > h.acked {
                    h.acked = Zxid(pkt.zxid);
                }
                Self::leader_try_commit(&self.cfg, &mut self.durable, ld, now, out);
            }
            pk::PING => {
                if let Some(d) = pkt.data
                    && !d.is_empty() {
                        out.push(Action::TouchSessions { from, data: Bytes::from(d) });
                    }
            }
            pk::REQUEST => {
                // A client `sync` forwarded by a learner: answered once everything proposed so far
                // has committed, so the learner has applied it when it answers its client.
                let is_sync = pkt.data.as_deref().and_then(|d| d.get(12..16)).is_some_and(|b| i32::from_be_bytes(b.try_into().unwrap()) == 9);
                if is_sync {
                    if ld.outstanding.is_empty() {
                        out.push(Action::Send { to: from, pkt: QuorumPacket::new(pk::SYNC, 0, None) });
                    } else {
                        ld.pending_syncs.push_back((ld.last_proposed, from));
                    }
                } else if ld.phase == LeaderPhase::Broadcast {
                    out.push(Action::Request { from, pkt });
                }
            }
            pk::REVALIDATE => out.push(Action::Request { from, pkt }),
            other => tracing::warn!("unexpected {} from learner {from}", pk::kind_name(other)),
        }
    }

    /// Discovery: once a quorum (with the leader) has sent its acceptedEpoch, fix the new epoch.
    fn leader_try_epoch(&mut self, out: &mut Vec<Action>) {
        let Role::Leading(ld) = &mut self.role else { return };
        if ld.epoch.is_some() {
            return;
        }
        let mut ids: BTreeSet<ServerId> = ld.learners.keys().copied().collect();
        ids.insert(self.cfg.me);
        if !self.cfg.verifier.contains_quorum(&ids) {
            return;
        }
        let max_accepted = ld
            .learners
            .values()
            .filter(|h| h.learner_type == LearnerType::Participant)
            .map(|h| h.accepted_epoch)
            .chain([self.durable.accepted_epoch])
            .max()
            .unwrap_or(0);
        let epoch = max_accepted + 1;
        ld.epoch = Some(epoch);
        self.durable.accepted_epoch = epoch;
        out.push(Action::WriteAcceptedEpoch(epoch));
        for &id in ld.learners.keys() {
            out.push(Action::Send { to: id, pkt: QuorumPacket::new(pk::LEADERINFO, epoch_zxid(epoch), Some(0x10000i32.to_be_bytes().to_vec())) });
        }
        // With no other voter needed (a quorum of one), sync is trivially done.
        let me = self.cfg.me;
        if self.cfg.verifier.contains_quorum(&[me]) {
            ld.phase = LeaderPhase::Sync;
            Self::leader_try_establish(&self.cfg, &mut self.durable, ld, epoch, out);
        }
    }

    /// Queues DIFF/TRUNC/SNAP, the txns the learner lacks, and NEWLEADER (LearnerHandler.syncFollower).
    fn sync_learner(cfg: &PeerConfig, durable: &Durable, ld: &mut Leader, id: ServerId, out: &mut Vec<Action>) {
        let Some(epoch) = ld.epoch else { return };
        let Some(h) = ld.learners.get_mut(&id) else { return };
        let Some(peer_last) = h.last_zxid else { return };
        if h.forwarding {
            return;
        }
        let committed = ld.last_committed;
        let send = |out: &mut Vec<Action>, pkt| out.push(Action::Send { to: id, pkt });
        let mut diff_from: Option<Zxid> = None;
        if peer_last == committed {
            send(out, QuorumPacket::new(pk::DIFF, committed.0, None));
        } else if peer_last > committed {
            // It has txns the leader never committed: drop them.
            send(out, QuorumPacket::new(pk::TRUNC, committed.0, None));
        } else {
            let min = durable.recent.front().map(|t| t.zxid);
            match min {
                Some(min) if peer_last >= min => {
                    if durable.recent.iter().any(|t| t.zxid == peer_last) {
                        send(out, QuorumPacket::new(pk::DIFF, committed.0, None));
                        diff_from = Some(peer_last);
                    } else {
                        // It has a txn the leader does not: truncate to the last common one,
                        // then send what follows. Never across an epoch (the common txn is ours).
                        let prev = durable.recent.iter().rev().find(|t| t.zxid < peer_last).map(|t| t.zxid).unwrap_or(min);
                        send(out, QuorumPacket::new(pk::TRUNC, prev.0, None));
                        diff_from = Some(prev);
                    }
                }
                _ => out.push(Action::SendSnap { to: id, zxid: committed }),
            }
        }
        let mut sent = committed;
        if let Some(from) = diff_from {
            for t in durable.recent.iter().filter(|t| t.zxid > from) {
                send(out, QuorumPacket::new(pk::PROPOSAL, t.zxid.0, Some(t.data.to_vec())));
                send(out, QuorumPacket::new(pk::COMMIT, t.zxid.0, None));
            }
        }
        // Proposals still in flight: a follower gets them now and ACKs them later;
        // an observer learns them through INFORM when they commit.
        if h.learner_type == LearnerType::Participant {
            for t in &ld.outstanding {
                send(out, QuorumPacket::new(pk::PROPOSAL, t.zxid.0, Some(t.data.to_vec())));
                sent = t.zxid;
            }
        }
        h.forwarding = true;
        h.sent_before_newleader = sent;
        send(out, QuorumPacket::new(pk::NEWLEADER, epoch_zxid(epoch), Some(cfg.verifier.to_config_text().into_bytes())));
    }

    /// A quorum has ACKed NEWLEADER: the epoch is established; serve and release UPTODATE.
    fn leader_try_establish(cfg: &PeerConfig, durable: &mut Durable, ld: &mut Leader, epoch: u32, out: &mut Vec<Action>) {
        if ld.phase != LeaderPhase::Sync {
            return;
        }
        let acked: BTreeSet<ServerId> = ld.learners.iter().filter(|(_, h)| h.newleader_acked).map(|(id, _)| *id).chain([cfg.me]).collect();
        if !cfg.verifier.contains_quorum(&acked) {
            return;
        }
        ld.phase = LeaderPhase::Broadcast;
        durable.current_epoch = epoch;
        out.push(Action::WriteCurrentEpoch(epoch));
        // The epoch's zxids start after epoch<<32 (counter 0 is NEWLEADER's).
        ld.last_proposed = Zxid(epoch_zxid(epoch));
        out.push(Action::Serving { epoch });
        for (&id, h) in ld.learners.iter_mut() {
            if h.newleader_acked && !h.uptodate_sent {
                h.uptodate_sent = true;
                out.push(Action::Send { to: id, pkt: QuorumPacket::new(pk::UPTODATE, -1, None) });
            }
        }
    }

    /// Commits, in zxid order, every outstanding proposal a quorum has logged.
    fn leader_try_commit(cfg: &PeerConfig, _durable: &mut Durable, ld: &mut Leader, _now: u64, out: &mut Vec<Action>) {
        let mut delivered = Vec::new();
        let mut ackers: Vec<ServerId> = Vec::with_capacity(ld.learners.len() + 1);
        while let Some(front) = ld.outstanding.front() {
            let z = front.zxid;
            ackers.clear();
            ackers.extend(ld.learners.iter().filter(|(_, h)| h.forwarding && h.acked >= z).map(|(id, _)| *id));
            if ld.self_logged >= z {
                ackers.push(cfg.me);
            }
            if !cfg.verifier.contains_quorum(&ackers) {
                break;
            }
            let t = ld.outstanding.pop_front().unwrap();
            ld.last_committed = z;
            for (&id, h) in &ld.learners {
                if !h.forwarding {
                    continue;
                }
                match h.learner_type {
                    LearnerType::Participant => out.push(Action::Send { to: id, pkt: QuorumPacket::new(pk::COMMIT, z.0, None) }),
                    LearnerType::Observer => out.push(Action::Send { to: id, pkt: QuorumPacket::new(pk::INFORM, z.0, Some(t.data.to_vec())) }),
                }
            }
            Self::remember(cfg, _durable, t.clone());
            delivered.push(t);
            while ld.pending_syncs.front().is_some_and(|(sz, _)| *sz <= z) {
                let (_, who) = ld.pending_syncs.pop_front().unwrap();
                out.push(Action::Send { to: who, pkt: QuorumPacket::new(pk::SYNC, 0, None) });
            }
        }
        if !delivered.is_empty() {
            // Deliver before the COMMITs are written is not required: the leader applies under the
            // same lock, and a learner answers its client only after applying the COMMIT itself.
            out.push(Action::Deliver(delivered));
        }
    }

    // ---- learner ----

    fn learner_packet(&mut self, from: ServerId, pkt: QuorumPacket, now: u64, out: &mut Vec<Action>) {
        let me = self.cfg.me;
        let observer = self.cfg.learner_type() == LearnerType::Observer;
        let Role::Following(l) = &mut self.role else { return };
        if from != l.leader {
            return;
        }
        l.last_heard_ms = now;
        let leader = l.leader;
        match pkt.kind {
            pk::LEADERINFO => {
                if l.phase != LearnerPhase::Discovery {
                    return;
                }
                let new_epoch = (pkt.zxid >> 32) as u32;
                let current = self.durable.current_epoch as i32;
                let data = if new_epoch > self.durable.accepted_epoch {
                    self.durable.accepted_epoch = new_epoch;
                    out.push(Action::WriteAcceptedEpoch(new_epoch));
                    current
                } else if new_epoch == self.durable.accepted_epoch {
                    // Already accepted this epoch (a reconnect within it): -1, as Apache.
                    -1
                } else {
                    out.push(Action::GoLooking { why: format!("leaders epoch, {new_epoch} is less than accepted epoch, {}", self.durable.accepted_epoch) });
                    return;
                };
                l.new_epoch = new_epoch;
                l.phase = LearnerPhase::Sync;
                out.push(Action::Send { to: leader, pkt: QuorumPacket::new(pk::ACKEPOCH, self.durable.last_logged.0, Some(data.to_be_bytes().to_vec())) });
            }
            pk::DIFF => {}
            pk::TRUNC => {
                let z = Zxid(pkt.zxid);
                if self.durable.last_logged > z {
                    self.durable.last_logged = z;
                }
                self.durable.recent.retain(|t| t.zxid <= z);
                l.last_received = self.durable.last_logged;
                l.logged = self.durable.last_logged;
                out.push(Action::Truncate(z));
            }
            pk::SNAP => {
                let z = Zxid(pkt.zxid);
                self.durable.last_logged = z;
                self.durable.recent.clear();
                l.last_received = z;
                l.logged = z;
                out.push(Action::LoadSnapshot { zxid: z, data: Bytes::from(pkt.data.unwrap_or_default()) });
            }
            pk::PROPOSAL => {
                let t = ZabTxn { zxid: Zxid(pkt.zxid), data: Bytes::from(pkt.data.unwrap_or_default()) };
                if t.zxid <= l.last_received {
                    return;
                }
                l.last_received = t.zxid;
                l.pending.push_back(t.clone());
                // Proposals after our NEWLEADER ACK are ACKed one by one (Apache's leader counts
                // each zxid separately); earlier ones are covered by the NEWLEADER ACK.
                if !observer && (l.phase == LearnerPhase::Broadcast || (l.newleader_pending.is_none() && l.newleader_acked)) {
                    l.unacked.push_back(t.zxid);
                }
                out.push(Action::Log(vec![t]));
            }
            pk::COMMIT => {
                let z = Zxid(pkt.zxid);
                let mut d = Vec::new();
                while l.pending.front().is_some_and(|t| t.zxid <= z) {
                    let t = l.pending.pop_front().unwrap();
                    Self::remember(&self.cfg, &mut self.durable, t.clone());
                    d.push(t);
                }
                if !d.is_empty() {
                    out.push(Action::Deliver(d));
                }
            }
            pk::INFORM => {
                // Observer: proposal and commit in one.
                let t = ZabTxn { zxid: Zxid(pkt.zxid), data: Bytes::from(pkt.data.unwrap_or_default()) };
                if t.zxid <= l.last_received {
                    return;
                }
                l.last_received = t.zxid;
                Self::remember(&self.cfg, &mut self.durable, t.clone());
                out.push(Action::Log(vec![t.clone()]));
                out.push(Action::Deliver(vec![t]));
            }
            pk::NEWLEADER => {
                if l.phase != LearnerPhase::Sync {
                    return;
                }
                l.newleader_pending = Some(pkt.zxid);
                Self::learner_try_ack_newleader(me, &mut self.durable, l, out);
            }
            pk::UPTODATE => {
                if l.phase != LearnerPhase::Sync || l.newleader_pending.is_some() {
                    return;
                }
                l.phase = LearnerPhase::Broadcast;
                out.push(Action::Serving { epoch: l.new_epoch });
                out.push(Action::Send { to: leader, pkt: QuorumPacket::new(pk::ACK, epoch_zxid(l.new_epoch), None) });
            }
            pk::PING => out.push(Action::PingReply { zxid: pkt.zxid }),
            pk::SYNC => out.push(Action::SyncDone),
            pk::REVALIDATE => out.push(Action::Revalidated { data: Bytes::from(pkt.data.unwrap_or_default()) }),
            other => tracing::warn!("unexpected {} from leader {from}", pk::kind_name(other)),
        }
    }

    /// NEWLEADER is ACKed once everything received before it is durable; currentEpoch is
    /// recorded first, so a restarted learner knows it took part in this epoch.
    fn learner_try_ack_newleader(_me: ServerId, durable: &mut Durable, l: &mut Learner, out: &mut Vec<Action>) {
        let Some(z) = l.newleader_pending else { return };
        if l.logged < l.last_received {
            return;
        }
        l.newleader_pending = None;
        l.newleader_acked = true;
        let epoch = (z >> 32) as u32;
        durable.current_epoch = epoch;
        out.push(Action::WriteCurrentEpoch(epoch));
        out.push(Action::Send { to: l.leader, pkt: QuorumPacket::new(pk::ACK, z, None) });
    }
}


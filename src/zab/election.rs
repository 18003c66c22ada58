//! Fast leader election (Apache's FastLeaderElection) as a pure state machine.
//!
//! Apache runs election as two threads: WorkerReceiver, which answers some notifications at once
//! (non-voters, lagging LOOKING peers, LOOKING peers once we are settled), and lookForLeader,
//! which takes the rest off a queue and tallies them. `on_notification` does both, in that order.
//! Apache delivers a server's notifications to itself through the same queue, which is how a
//! server's own vote enters its tally; here they go through an internal loopback queue that is
//! drained after every event, so the shell never sees a message addressed to this server.
//!
//! Time only enters through `now_ms`: the notification resend timeout (200 ms doubling up to
//! 60 s) and finalizeWait (200 ms of quiet after a quorum agrees before deciding).

use std::collections::{BTreeMap, VecDeque};

use super::packet::{NOTIFICATION_VERSION, Notification};
use super::{LearnerType, PeerState, QuorumVerifier, ServerId};
use crate::types::Zxid;

/// How long a quorum must agree, with nothing better arriving, before the vote is final.
pub const FINALIZE_WAIT_MS: u64 = 200;
/// `zookeeper.fastleader.minNotificationInterval`: the first resend timeout.
pub const MIN_NOTIFICATION_INTERVAL_MS: u64 = 200;
/// `zookeeper.fastleader.maxNotificationInterval`: the resend timeout stops doubling here.
pub const MAX_NOTIFICATION_INTERVAL_MS: u64 = 60_000;

/// Apache's `Long.MIN_VALUE` id, zxid and epoch that a server outside the voting view proposes,
/// so that its own vote loses to any real candidate.
const NO_CANDIDATE: ServerId = ServerId(i64::MIN as u64);
const NO_ZXID: Zxid = Zxid(i64::MIN);
const NO_EPOCH: u64 = i64::MIN as u64;

/// A vote: who should lead, with the candidate's last zxid and epoch, in which election round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vote {
    pub leader: ServerId,
    pub zxid: Zxid,
    pub election_epoch: u64,
    pub peer_epoch: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElectionAction {
    /// Send this notification to server `to` on the election port.
    Send { to: ServerId, n: Notification },
    /// The election is over: become `state` (LEADING, FOLLOWING or OBSERVING) with `vote`.
    Decided { state: PeerState, vote: Vote },
}

/// A vote as tallied, with the sender's state and message version, which decide how two votes
/// compare (Apache's `Vote.equals`).
#[derive(Clone, Copy, Debug)]
struct Ballot {
    vote: Vote,
    state: PeerState,
    version: i32,
}

impl Ballot {
    /// Votes from LOOKING servers must agree on everything; votes from servers out of election
    /// only on the leader (and its epoch, unless one side predates peerEpoch), because followers
    /// that joined at different times report different zxids and rounds for the same leader.
    fn agrees_with(&self, other: &Ballot) -> bool {
        if self.state == PeerState::Looking || other.state == PeerState::Looking {
            self.vote == other.vote
        } else if (self.version > 0) ^ (other.version > 0) {
            self.vote.leader == other.vote.leader
        } else {
            self.vote.leader == other.vote.leader && self.vote.peer_epoch == other.vote.peer_epoch
        }
    }
}

/// One server's side of fast leader election.
pub struct Election {
    me: ServerId,
    verifier: QuorumVerifier,
    learner_type: LearnerType,
    /// `verifier.to_config_text()`, sent in every notification.
    config: Vec<u8>,
    /// The election round (Apache's logicalclock).
    logicalclock: u64,
    /// What this server proposes in the current round; its election_epoch is not used (the round
    /// is `logicalclock`).
    proposal: Vote,
    /// This server's own candidacy for the round (getInitId/getInitLastLoggedZxid/getPeerEpoch).
    init: Vote,
    state: PeerState,
    /// Whether a round is running (lookForLeader is looping).
    looking: bool,
    /// Whether start() or settle() has been called at all.
    started: bool,
    /// The vote the server acts on once settled (QuorumPeer's currentVote).
    settled: Vote,
    /// Votes of the current round (and FOLLOWING/LEADING reports of the same round).
    recvset: BTreeMap<ServerId, Ballot>,
    /// FOLLOWING/LEADING reports from any round, to join an established ensemble.
    outofelection: BTreeMap<ServerId, Ballot>,
    not_timeout: u64,
    /// When the resend timeout fires if no notification arrives before.
    next_resend: u64,
    /// Set while a quorum agrees with our proposal: decide at this time unless something better
    /// arrives first.
    finalize_at: Option<u64>,
    /// Notifications this server sent to itself, not yet tallied.
    loopback: VecDeque<Notification>,
}

impl Election {
    pub fn new(me: ServerId, verifier: QuorumVerifier, learner_type: LearnerType) -> Election {
        let config = verifier.to_config_text().into_bytes();
        let none = Vote { leader: NO_CANDIDATE, zxid: NO_ZXID, election_epoch: 0, peer_epoch: NO_EPOCH };
        Election {
            me,
            verifier,
            learner_type,
            config,
            logicalclock: 0,
            proposal: none,
            init: none,
            state: PeerState::Looking,
            looking: false,
            started: false,
            settled: none,
            recvset: BTreeMap::new(),
            outofelection: BTreeMap::new(),
            not_timeout: MIN_NOTIFICATION_INTERVAL_MS,
            next_resend: 0,
            finalize_at: None,
            loopback: VecDeque::new(),
        }
    }

    pub fn logical_clock(&self) -> u64 {
        self.logicalclock
    }

    /// While looking, the current proposal in the current round; once settled, the settled vote.
    pub fn current_vote(&self) -> Vote {
        if self.looking { Vote { election_epoch: self.logicalclock, ..self.proposal } } else { self.settled }
    }

    pub fn state(&self) -> PeerState {
        self.state
    }

    /// Starts a round (lookForLeader): a new logicalclock, our own candidacy as the proposal, and
    /// notifications to every voter.
    pub fn start(&mut self, last_zxid: Zxid, current_epoch: u64, now_ms: u64) -> Vec<ElectionAction> {
        self.logicalclock += 1;
        self.state = PeerState::Looking;
        self.looking = true;
        self.started = true;
        self.recvset.clear();
        self.outofelection.clear();
        self.finalize_at = None;
        self.loopback.clear();
        // A server outside the voting view proposes nobody; a non-participant also hides its zxid
        // and epoch, so that any real candidate beats its proposal.
        let participant = self.learner_type == LearnerType::Participant;
        self.init = Vote {
            leader: if self.verifier.is_voter(self.me) { self.me } else { NO_CANDIDATE },
            zxid: if participant { last_zxid } else { NO_ZXID },
            election_epoch: 0,
            peer_epoch: if participant { current_epoch } else { NO_EPOCH },
        };
        self.proposal = self.init;
        self.not_timeout = MIN_NOTIFICATION_INTERVAL_MS;
        self.next_resend = now_ms + self.not_timeout;
        let mut out = Vec::new();
        self.send_notifications(&mut out);
        self.drain_loopback(now_ms, &mut out);
        out
    }

    pub fn on_notification(&mut self, from: ServerId, n: &Notification, now_ms: u64) -> Vec<ElectionAction> {
        let mut out = Vec::new();
        if !self.started {
            return out;
        }
        // WorkerReceiver: a non-voter (observer) is answered at once and never tallied.
        if !self.verifier.is_voter(from) {
            let v = self.current_vote();
            out.push(self.send(from, self.state, v, self.logicalclock));
            return out;
        }
        if self.looking {
            // A LOOKING peer in an older round gets our vote in our round, so it catches up.
            if n.state == PeerState::Looking && n.election_epoch < self.logicalclock {
                out.push(self.send(from, PeerState::Looking, self.proposal, self.logicalclock));
            }
            self.receive(from, n, now_ms, &mut out);
            self.drain_loopback(now_ms, &mut out);
        } else if n.state == PeerState::Looking && self.state != PeerState::Looking {
            // Settled: tell a LOOKING peer whom we follow (or that we lead), in the round we
            // decided in, so it can join through its recvset/outofelection tally.
            out.push(self.send(from, self.state, self.settled, self.settled.election_epoch));
        }
        out
    }

    pub fn tick(&mut self, now_ms: u64) -> Vec<ElectionAction> {
        let mut out = Vec::new();
        if !self.looking {
            return out;
        }
        if let Some(at) = self.finalize_at {
            if now_ms >= at {
                let vote = Vote { election_epoch: self.logicalclock, ..self.proposal };
                self.decide(self.state_for(vote.leader), vote, &mut out);
            }
            return out;
        }
        if now_ms >= self.next_resend {
            // Nothing arrived for a whole timeout: resend, and back off.
            self.send_notifications(&mut out);
            self.not_timeout = (self.not_timeout * 2).min(MAX_NOTIFICATION_INTERVAL_MS);
            self.next_resend = now_ms + self.not_timeout;
            self.drain_loopback(now_ms, &mut out);
        }
        out
    }

    pub fn settle(&mut self, state: PeerState, vote: Vote) {
        self.state = state;
        self.settled = vote;
        self.started = true;
        self.end_round();
    }

    /// The role has reached its new epoch (leader: established; learner: UPTODATE): the vote
    /// this server reports to LOOKING peers now carries that epoch as its peerEpoch, as Apache's
    /// QuorumPeer.updateElectionVote does (ZOOKEEPER-1732, called from Leader.startZkServer and
    /// Learner.syncWithLeader). A peer that (re)starts tallies the LEADING/FOLLOWING replies and
    /// counts only those that agree on the leader *and* its peerEpoch, so every member must
    /// report the same one: with Apache's members reporting the new epoch and ours the
    /// election's, a restarted server never finds a quorum for the leader.
    pub fn update_epoch(&mut self, new_epoch: u64) {
        if self.state != PeerState::Looking {
            self.settled.peer_epoch = new_epoch;
        }
    }

    fn end_round(&mut self) {
        self.looking = false;
        self.finalize_at = None;
        self.recvset.clear();
        self.outofelection.clear();
        self.loopback.clear();
    }

    fn send(&self, to: ServerId, state: PeerState, v: Vote, election_epoch: u64) -> ElectionAction {
        ElectionAction::Send {
            to,
            n: Notification {
                state,
                leader: v.leader,
                zxid: v.zxid,
                election_epoch,
                peer_epoch: v.peer_epoch,
                version: NOTIFICATION_VERSION,
                config: self.config.clone(),
            },
        }
    }

    /// Our proposal to every voter (Apache's getCurrentAndNextConfigVoters: observers are not
    /// told, they ask). The copy to ourselves goes through the loopback queue.
    fn send_notifications(&mut self, out: &mut Vec<ElectionAction>) {
        let voters: Vec<ServerId> = self.verifier.voters().collect();
        for sid in voters {
            let action = self.send(sid, PeerState::Looking, self.proposal, self.logicalclock);
            if sid == self.me {
                if let ElectionAction::Send { n, .. } = action {
                    self.loopback.push_back(n);
                }
            } else {
                out.push(action);
            }
        }
    }

    fn drain_loopback(&mut self, now_ms: u64, out: &mut Vec<ElectionAction>) {
        while self.looking {
            let Some(n) = self.loopback.pop_front() else { break };
            self.receive(self.me, &n, now_ms, out);
        }
    }

    /// totalOrderPredicate: whether candidate `new` beats `cur`. Compared as Java longs (signed),
    /// so the Long.MIN_VALUE "nobody" proposal loses to everyone; a non-voter never wins.
    fn beats(&self, new_leader: ServerId, new_zxid: Zxid, new_epoch: u64, cur: &Vote) -> bool {
        if !self.verifier.is_voter(new_leader) {
            return false;
        }
        let key = |leader: ServerId, zxid: Zxid, epoch: u64| (epoch as i64, zxid.0, leader.0 as i64);
        key(new_leader, new_zxid, new_epoch) > key(cur.leader, cur.zxid, cur.peer_epoch)
    }

    /// The state a decision for `leader` puts this server in.
    fn state_for(&self, leader: ServerId) -> PeerState {
        if leader == self.me {
            PeerState::Leading
        } else if self.learner_type == LearnerType::Participant {
            PeerState::Following
        } else {
            PeerState::Observing
        }
    }

    /// termPredicate: the voters whose ballots agree with `b` form a quorum.
    fn has_quorum(&self, votes: &BTreeMap<ServerId, Ballot>, b: &Ballot) -> bool {
        self.verifier.contains_quorum(votes.iter().filter(|(_, v)| v.agrees_with(b)).map(|(sid, _)| sid))
    }

    /// checkLeader: following someone needs that server's own word that it is LEADING, so that
    /// a crashed leader is not elected again from its followers' stale reports; leading needs
    /// the decision to be from our own round.
    fn check_leader(&self, votes: &BTreeMap<ServerId, Ballot>, leader: ServerId, election_epoch: u64) -> bool {
        if leader != self.me {
            votes.get(&leader).is_some_and(|b| b.state == PeerState::Leading)
        } else {
            self.logicalclock == election_epoch
        }
    }

    fn decide(&mut self, state: PeerState, vote: Vote, out: &mut Vec<ElectionAction>) {
        self.state = state;
        self.settled = vote;
        self.end_round();
        out.push(ElectionAction::Decided { state, vote });
    }

    /// One notification taken off lookForLeader's queue.
    fn receive(&mut self, from: ServerId, n: &Notification, now_ms: u64, out: &mut Vec<ElectionAction>) {
        if self.finalize_at.is_some() {
            // finalizeWait: only something better than our proposal interrupts it (and is then
            // handled as usual); anything else is dropped and the 200 ms of quiet start again.
            if self.beats(n.leader, n.zxid, n.peer_epoch, &self.proposal) {
                self.finalize_at = None;
            } else {
                self.finalize_at = Some(now_ms + FINALIZE_WAIT_MS);
                return;
            }
        }
        // A notification arrived, so the resend timeout starts again.
        self.next_resend = now_ms + self.not_timeout;
        if !(self.verifier.is_voter(from) && self.verifier.is_voter(n.leader)) {
            return;
        }
        let reported = Vote { leader: n.leader, zxid: n.zxid, election_epoch: n.election_epoch, peer_epoch: n.peer_epoch };
        match n.state {
            PeerState::Looking => {
                // A server that has not loaded its log, or a peer that has not, takes no part.
                if self.init.zxid == Zxid(-1) || n.zxid == Zxid(-1) {
                    return;
                }
                if n.election_epoch > self.logicalclock {
                    // A later round: join it, starting over from the better of its vote and our
                    // own candidacy, and forget the votes of our old round.
                    self.logicalclock = n.election_epoch;
                    self.recvset.clear();
                    let init = self.init;
                    self.proposal = if self.beats(n.leader, n.zxid, n.peer_epoch, &init) { reported } else { init };
                    self.send_notifications(out);
                } else if n.election_epoch < self.logicalclock {
                    return;
                } else if self.beats(n.leader, n.zxid, n.peer_epoch, &self.proposal) {
                    self.proposal = reported;
                    self.send_notifications(out);
                }
                self.recvset.insert(from, Ballot { vote: reported, state: PeerState::Looking, version: n.version });
                let mine = Ballot {
                    vote: Vote { election_epoch: self.logicalclock, ..self.proposal },
                    state: PeerState::Looking,
                    version: NOTIFICATION_VERSION,
                };
                if self.has_quorum(&self.recvset, &mine) {
                    self.finalize_at = Some(now_ms + FINALIZE_WAIT_MS);
                }
            }
            PeerState::Observing => {}
            PeerState::Following | PeerState::Leading => {
                let b = Ballot { vote: reported, state: n.state, version: n.version };
                // Reports from our own round count with the LOOKING votes of the round.
                if n.election_epoch == self.logicalclock {
                    self.recvset.insert(from, b);
                    if self.has_quorum(&self.recvset, &b) && self.check_leader(&self.recvset, n.leader, n.election_epoch) {
                        self.decide(self.state_for(n.leader), reported, out);
                        return;
                    }
                }
                // An ensemble that settled in another round: join it once a quorum reports the
                // same leader and the leader itself says it is leading (ZOOKEEPER-1732: this
                // map also holds the current round's reports).
                self.outofelection.insert(from, b);
                if self.has_quorum(&self.outofelection, &b)
                    && self.check_leader(&self.outofelection, n.leader, n.election_epoch)
                {
                    self.logicalclock = n.election_epoch;
                    self.decide(self.state_for(n.leader), reported, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::zab::QuorumServer;
    use crate::zab::packet::parse_frame;

    fn verifier(participants: &[u64], observers: &[u64]) -> QuorumVerifier {
        let server = |id: u64, learner_type| QuorumServer {
            id: ServerId(id),
            quorum_addr: format!("127.0.0.1:{}", 2880 + id),
            election_addr: format!("127.0.0.1:{}", 3880 + id),
            learner_type,
            client_addr: None,
        };
        QuorumVerifier::new(
            participants
                .iter()
                .map(|&id| server(id, LearnerType::Participant))
                .chain(observers.iter().map(|&id| server(id, LearnerType::Observer)))
                .collect(),
        )
    }

    /// A deterministic network: messages go through the real election-port bytes, are delivered
    /// after a latency (random when seeded, which reorders them), and may be dropped.
    struct Net {
        qv: QuorumVerifier,
        nodes: BTreeMap<ServerId, Election>,
        alive: BTreeSet<ServerId>,
        /// (deliver at, sequence, from, to, framed bytes)
        queue: Vec<(u64, u64, ServerId, ServerId, Vec<u8>)>,
        seq: u64,
        now: u64,
        rng: Option<ChaCha8Rng>,
        drop_percent: u32,
        decided: BTreeMap<ServerId, (PeerState, Vote)>,
        sent: u64,
    }

    impl Net {
        fn new(participants: &[u64], observers: &[u64]) -> Net {
            let qv = verifier(participants, observers);
            let mut net = Net {
                qv,
                nodes: BTreeMap::new(),
                alive: BTreeSet::new(),
                queue: Vec::new(),
                seq: 0,
                now: 1_000,
                rng: None,
                drop_percent: 0,
                decided: BTreeMap::new(),
                sent: 0,
            };
            for sid in participants.iter().chain(observers) {
                net.fresh(*sid);
            }
            net
        }

        fn seeded(mut self, seed: u64, drop_percent: u32) -> Net {
            self.rng = Some(ChaCha8Rng::seed_from_u64(seed));
            self.drop_percent = drop_percent;
            self
        }

        /// A new Election for `sid`, as after a process restart.
        fn fresh(&mut self, sid: u64) {
            let sid = ServerId(sid);
            let lt = self.qv.servers[&sid].learner_type;
            self.nodes.insert(sid, Election::new(sid, self.qv.clone(), lt));
            self.alive.remove(&sid);
            self.decided.remove(&sid);
        }

        fn start(&mut self, sid: u64, zxid: i64, epoch: u64) {
            let sid = ServerId(sid);
            self.alive.insert(sid);
            self.decided.remove(&sid);
            let now = self.now;
            let actions = self.nodes.get_mut(&sid).unwrap().start(Zxid(zxid), epoch, now);
            self.apply(sid, actions);
        }

        fn crash(&mut self, sid: u64) {
            self.alive.remove(&ServerId(sid));
            self.decided.remove(&ServerId(sid));
        }

        fn apply(&mut self, from: ServerId, actions: Vec<ElectionAction>) {
            for a in actions {
                match a {
                    ElectionAction::Send { to, n } => {
                        assert_ne!(to, from, "notifications to oneself stay inside Election");
                        self.sent += 1;
                        let (latency, dropped) = match &mut self.rng {
                            Some(r) => (r.gen_range(1..=40), r.gen_range(0..100) < self.drop_percent),
                            None => (1, false),
                        };
                        if !dropped {
                            self.seq += 1;
                            self.queue.push((self.now + latency, self.seq, from, to, n.to_frame()));
                        }
                    }
                    ElectionAction::Decided { state, vote } => {
                        // The shell (QuorumPeer) takes up the role and tells the election so.
                        self.nodes.get_mut(&from).unwrap().settle(state, vote);
                        self.decided.insert(from, (state, vote));
                    }
                }
            }
        }

        /// Advances 5 ms: delivers what is due, in (time, send order), then ticks every server.
        fn step(&mut self) {
            self.now += 5;
            self.queue.sort_by_key(|m| (m.0, m.1));
            let due = self.queue.iter().take_while(|m| m.0 <= self.now).count();
            let batch: Vec<_> = self.queue.drain(..due).collect();
            for (_, _, from, to, bytes) in batch {
                if !self.alive.contains(&to) {
                    continue;
                }
                let (payload, _) = parse_frame(&bytes).unwrap().unwrap();
                let n = Notification::decode(payload).unwrap();
                let now = self.now;
                let actions = self.nodes.get_mut(&to).unwrap().on_notification(from, &n, now);
                self.apply(to, actions);
            }
            let alive: Vec<ServerId> = self.alive.iter().copied().collect();
            for sid in alive {
                let now = self.now;
                let actions = self.nodes.get_mut(&sid).unwrap().tick(now);
                self.apply(sid, actions);
            }
        }

        fn run_for(&mut self, ms: u64) {
            let end = self.now + ms;
            while self.now < end {
                self.step();
            }
        }

        /// Runs until every live server has decided (or `limit_ms` passes).
        fn run_until_settled(&mut self, limit_ms: u64) -> bool {
            let end = self.now + limit_ms;
            while self.now < end {
                if self.alive.iter().all(|s| self.decided.contains_key(s)) {
                    return true;
                }
                self.step();
            }
            false
        }

        fn state(&self, sid: u64) -> Option<PeerState> {
            self.decided.get(&ServerId(sid)).map(|d| d.0)
        }
        fn leader_of(&self, sid: u64) -> Option<ServerId> {
            self.decided.get(&ServerId(sid)).map(|d| d.1.leader)
        }

        /// All decided servers name the same leader, which (if decided) is the only one LEADING.
        fn assert_one_leader(&self) -> ServerId {
            let leaders: BTreeSet<ServerId> = self.decided.values().map(|d| d.1.leader).collect();
            assert_eq!(leaders.len(), 1, "split decision: {:?}", self.decided);
            let leader = *leaders.iter().next().unwrap();
            for (sid, (state, _)) in &self.decided {
                let want = if *sid == leader {
                    PeerState::Leading
                } else if self.qv.is_voter(*sid) {
                    PeerState::Following
                } else {
                    PeerState::Observing
                };
                assert_eq!(*state, want, "state of {sid:?}");
            }
            leader
        }
    }

    fn looking(leader: u64, zxid: i64, ee: u64, pe: u64) -> Notification {
        Notification {
            state: PeerState::Looking,
            leader: ServerId(leader),
            zxid: Zxid(zxid),
            election_epoch: ee,
            peer_epoch: pe,
            version: 2,
            config: vec![],
        }
    }

    fn report(state: PeerState, leader: u64, ee: u64) -> Notification {
        Notification { state, ..looking(leader, 0x1_0000_0000, ee, 1) }
    }

    fn decided(actions: &[ElectionAction]) -> Option<(PeerState, Vote)> {
        actions.iter().find_map(|a| match a {
            ElectionAction::Decided { state, vote } => Some((*state, *vote)),
            _ => None,
        })
    }

    fn sends(actions: &[ElectionAction]) -> Vec<(ServerId, Notification)> {
        actions
            .iter()
            .filter_map(|a| match a {
                ElectionAction::Send { to, n } => Some((*to, n.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn vote_order_is_peer_epoch_then_zxid_then_sid_and_non_voters_never_win() {
        let e = Election::new(ServerId(1), verifier(&[1, 2, 3], &[4]), LearnerType::Participant);
        let cur = Vote { leader: ServerId(2), zxid: Zxid(0x2_0000_0005), election_epoch: 1, peer_epoch: 2 };
        assert!(e.beats(ServerId(1), Zxid(0x1_0000_0009), 3, &cur), "higher peerEpoch beats a higher zxid");
        assert!(!e.beats(ServerId(3), Zxid(0x3_0000_0000), 1, &cur), "lower peerEpoch loses whatever the zxid");
        assert!(e.beats(ServerId(1), Zxid(0x2_0000_0006), 2, &cur));
        assert!(e.beats(ServerId(3), Zxid(0x2_0000_0005), 2, &cur));
        assert!(!e.beats(ServerId(1), Zxid(0x2_0000_0005), 2, &cur));
        assert!(!e.beats(ServerId(4), Zxid(0x9_0000_0000), 9, &cur), "an observer has weight 0");
        let nobody = Vote { leader: NO_CANDIDATE, zxid: NO_ZXID, election_epoch: 1, peer_epoch: NO_EPOCH };
        assert!(e.beats(ServerId(1), Zxid(0), 0, &nobody), "any voter beats the Long.MIN_VALUE proposal");
    }

    #[test]
    fn start_notifies_every_other_voter_with_our_candidacy_and_config() {
        let qv = verifier(&[1, 2, 3], &[4]);
        let mut e = Election::new(ServerId(2), qv.clone(), LearnerType::Participant);
        let out = e.start(Zxid(0x1_0000_0007), 1, 0);
        let to: Vec<ServerId> = sends(&out).iter().map(|s| s.0).collect();
        assert_eq!(to, vec![ServerId(1), ServerId(3)]);
        let n = &sends(&out)[0].1;
        assert_eq!((n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch), (PeerState::Looking, ServerId(2), Zxid(0x1_0000_0007), 1, 1));
        assert_eq!(n.config, qv.to_config_text().into_bytes());
        assert_eq!(e.logical_clock(), 1);
        assert_eq!(e.state(), PeerState::Looking);
        assert_eq!(e.current_vote().leader, ServerId(2));
    }

    #[test]
    fn three_servers_with_equal_logs_elect_the_highest_sid() {
        let mut net = Net::new(&[1, 2, 3], &[]);
        for sid in 1..=3 {
            net.start(sid, 0x1_0000_0005, 1);
        }
        assert!(net.run_until_settled(10_000));
        assert_eq!(net.assert_one_leader(), ServerId(3));
        assert_eq!(net.state(3), Some(PeerState::Leading));
        for sid in 1..=3 {
            assert_eq!(net.nodes[&ServerId(sid)].logical_clock(), 1);
        }
    }

    /// (sid, zxid, currentEpoch) for five servers whose best is sid 4: sid 5 has the highest zxid
    /// but an older epoch, sid 2 ties sid 4 on (epoch, zxid) and loses on sid.
    const FIVE: [(u64, i64, u64); 5] =
        [(1, 0x2_0000_0005, 2), (2, 0x2_0000_0007, 2), (3, 0x1_0000_0009, 1), (4, 0x2_0000_0007, 2), (5, 0x3_0000_0001, 1)];

    #[test]
    fn five_servers_elect_the_highest_peer_epoch_then_zxid_then_sid() {
        let mut net = Net::new(&[1, 2, 3, 4, 5], &[]);
        for (sid, zxid, epoch) in FIVE {
            net.start(sid, zxid, epoch);
        }
        assert!(net.run_until_settled(10_000));
        assert_eq!(net.assert_one_leader(), ServerId(4));
        assert_eq!(net.decided[&ServerId(1)].1.zxid, Zxid(0x2_0000_0007));
        assert_eq!(net.decided[&ServerId(1)].1.peer_epoch, 2);
    }

    #[test]
    fn reordered_delivery_still_elects_the_best_server() {
        for seed in 0..30 {
            let mut net = Net::new(&[1, 2, 3, 4, 5], &[]).seeded(seed, 0);
            // Staggered starts, so rounds and notifications interleave differently per seed.
            for (i, (sid, zxid, epoch)) in FIVE.into_iter().enumerate() {
                net.start(sid, zxid, epoch);
                let gap = net.rng.as_mut().unwrap().gen_range(0..60) + i as u64;
                net.run_for(gap);
            }
            assert!(net.run_until_settled(30_000), "seed {seed}: {:?}", net.decided);
            assert_eq!(net.assert_one_leader(), ServerId(4), "seed {seed}");
        }
    }

    #[test]
    fn lossy_reordered_delivery_converges_on_one_leader() {
        for seed in 0..30 {
            let mut net = Net::new(&[1, 2, 3], &[]).seeded(1000 + seed, 20);
            for sid in 1..=3 {
                net.start(sid, 0x1_0000_0000 + sid as i64, 1);
            }
            assert!(net.run_until_settled(300_000), "seed {seed}: {:?}", net.decided);
            net.assert_one_leader();
        }
    }

    #[test]
    fn server_started_later_follows_the_established_leader() {
        let mut net = Net::new(&[1, 2, 3], &[]);
        net.start(1, 0x1_0000_0003, 1);
        net.start(2, 0x1_0000_0003, 1);
        assert!(net.run_until_settled(10_000));
        assert_eq!(net.assert_one_leader(), ServerId(2));
        // sid 3 would win an election (higher zxid and sid), but an ensemble is already serving:
        // the FOLLOWING/LEADING answers make it join.
        net.start(3, 0x1_0000_0009, 1);
        assert!(net.run_until_settled(10_000));
        assert_eq!(net.state(3), Some(PeerState::Following));
        assert_eq!(net.leader_of(3), Some(ServerId(2)));
        assert_eq!(net.assert_one_leader(), ServerId(2));
    }

    #[test]
    fn restarted_server_joins_a_leader_elected_in_a_later_round() {
        let mut net = Net::new(&[1, 2, 3], &[]);
        for sid in 1..=3 {
            net.start(sid, 0x1_0000_0003, 1);
        }
        assert!(net.run_until_settled(10_000));
        assert_eq!(net.assert_one_leader(), ServerId(3));
        // The leader dies; the others hold a second round and elect 2.
        net.crash(3);
        net.start(1, 0x1_0000_0003, 1);
        net.start(2, 0x1_0000_0003, 1);
        assert!(net.run_until_settled(10_000));
        assert_eq!(net.assert_one_leader(), ServerId(2));
        assert_eq!(net.nodes[&ServerId(2)].logical_clock(), 2);
        // sid 3 comes back with a fresh logicalclock of 1: the answers are from round 2, so it
        // joins through outofelection and adopts round 2.
        net.fresh(3);
        net.start(3, 0x1_0000_0003, 1);
        assert!(net.run_until_settled(10_000));
        assert_eq!(net.state(3), Some(PeerState::Following));
        assert_eq!(net.leader_of(3), Some(ServerId(2)));
        assert_eq!(net.nodes[&ServerId(3)].logical_clock(), 2);
    }

    #[test]
    fn server_with_a_lagging_logical_clock_catches_up_to_the_round() {
        let mut net = Net::new(&[1, 2, 3], &[]);
        // 1 and 2 went through several rounds that reached nobody.
        for _ in 0..4 {
            net.start(1, 0x1_0000_0003, 1);
            net.start(2, 0x1_0000_0003, 1);
            net.queue.clear();
        }
        net.start(3, 0x1_0000_0003, 1);
        assert_eq!(net.nodes[&ServerId(3)].logical_clock(), 1);
        assert!(net.run_until_settled(10_000));
        assert_eq!(net.assert_one_leader(), ServerId(3));
        for sid in 1..=3 {
            assert_eq!(net.nodes[&ServerId(sid)].logical_clock(), 4, "sid {sid}");
        }
    }

    #[test]
    fn observer_decides_observing_and_never_leads() {
        // The observer has by far the best log; it must still not be elected.
        let mut net = Net::new(&[1, 2, 3], &[4]);
        net.start(4, 0x9_0000_0000, 9);
        for sid in 1..=3 {
            net.start(sid, 0x1_0000_0003, 1);
        }
        assert!(net.run_until_settled(30_000), "{:?}", net.decided);
        assert_eq!(net.assert_one_leader(), ServerId(3));
        assert_eq!(net.state(4), Some(PeerState::Observing));

        // An observer started after the election learns the leader from the voters' answers.
        net.crash(4);
        net.fresh(4);
        net.start(4, 0x9_0000_0000, 9);
        assert!(net.run_until_settled(30_000));
        assert_eq!(net.state(4), Some(PeerState::Observing));
        assert_eq!(net.leader_of(4), Some(ServerId(3)));
    }

    #[test]
    fn minority_never_decides_and_backs_off() {
        let mut net = Net::new(&[1, 2, 3, 4, 5], &[]);
        net.start(1, 0x1_0000_0003, 1);
        net.start(2, 0x1_0000_0003, 1);
        net.run_for(300_000);
        assert!(net.decided.is_empty(), "{:?}", net.decided);
        // By now the resend timeout is 60 s: a minute brings each live server one more round of
        // notifications (to 4 voters), plus the answers they trigger.
        let before = net.sent;
        net.run_for(60_000);
        assert!(net.sent - before <= 2 * 2 * 4, "sent {} in the last minute", net.sent - before);
        // A third server makes a quorum and they elect it (highest sid).
        net.start(3, 0x1_0000_0003, 1);
        assert!(net.run_until_settled(10_000));
        assert_eq!(net.assert_one_leader(), ServerId(3));
    }

    #[test]
    fn better_vote_during_finalize_wait_cancels_the_decision() {
        let mut e = Election::new(ServerId(1), verifier(&[1, 2, 3], &[]), LearnerType::Participant);
        e.start(Zxid(0x1_0000_0001), 1, 0);
        // 2 proposes itself: we adopt it; with our own vote that is a quorum, so finalizeWait starts.
        let out = e.on_notification(ServerId(2), &looking(2, 0x1_0000_0001, 1, 1), 10);
        assert_eq!(sends(&out).len(), 2, "the changed vote goes to 2 and 3");
        assert_eq!(decided(&e.tick(100)), None);
        // Something no better (a repeat) is dropped and restarts the 200 ms.
        assert!(e.on_notification(ServerId(2), &looking(2, 0x1_0000_0001, 1, 1), 150).is_empty());
        assert_eq!(decided(&e.tick(300)), None);
        // Something better interrupts it.
        e.on_notification(ServerId(3), &looking(3, 0x1_0000_0001, 1, 1), 320);
        assert_eq!(e.current_vote().leader, ServerId(3));
        assert_eq!(decided(&e.tick(400)), None);
        let (state, vote) = decided(&e.tick(520)).unwrap();
        assert_eq!(state, PeerState::Following);
        assert_eq!(vote, Vote { leader: ServerId(3), zxid: Zxid(0x1_0000_0001), election_epoch: 1, peer_epoch: 1 });
        assert_eq!(e.state(), PeerState::Following);
    }

    #[test]
    fn quorum_without_finalize_wait_passing_does_not_decide() {
        let mut e = Election::new(ServerId(3), verifier(&[1, 2, 3], &[]), LearnerType::Participant);
        e.start(Zxid(0x1_0000_0001), 1, 0);
        e.on_notification(ServerId(1), &looking(3, 0x1_0000_0001, 1, 1), 10);
        assert_eq!(decided(&e.tick(209)), None);
        let (state, vote) = decided(&e.tick(210)).unwrap();
        assert_eq!((state, vote.leader, vote.election_epoch), (PeerState::Leading, ServerId(3), 1));
    }

    #[test]
    fn following_reports_need_the_leader_itself_to_say_leading() {
        let mut e = Election::new(ServerId(5), verifier(&[1, 2, 3, 4, 5], &[]), LearnerType::Participant);
        e.start(Zxid(0), 0, 0);
        for sid in [1, 3, 4] {
            let out = e.on_notification(ServerId(sid), &report(PeerState::Following, 2, 1), 10);
            assert_eq!(decided(&out), None, "a quorum of followers is not enough without 2 LEADING");
        }
        let out = e.on_notification(ServerId(2), &report(PeerState::Leading, 2, 1), 20);
        let (state, vote) = decided(&out).unwrap();
        assert_eq!((state, vote.leader), (PeerState::Following, ServerId(2)));
    }

    #[test]
    fn leading_from_reports_requires_our_own_round() {
        let mut e = Election::new(ServerId(2), verifier(&[1, 2, 3], &[]), LearnerType::Participant);
        e.start(Zxid(0), 0, 0);
        // Others say they follow 2 in round 3, but we are in round 1: we did not take part.
        for sid in [1, 3] {
            assert_eq!(decided(&e.on_notification(ServerId(sid), &report(PeerState::Following, 2, 3), 10)), None);
        }
        // The same reports in our round make us leader.
        let mut e = Election::new(ServerId(2), verifier(&[1, 2, 3], &[]), LearnerType::Participant);
        e.start(Zxid(0), 0, 0);
        e.on_notification(ServerId(1), &report(PeerState::Following, 2, 1), 10);
        let out = e.on_notification(ServerId(3), &report(PeerState::Following, 2, 1), 10);
        assert_eq!(decided(&out).map(|d| d.0), Some(PeerState::Leading));
    }

    #[test]
    fn notifications_from_non_voters_are_answered_not_tallied() {
        let mut e = Election::new(ServerId(1), verifier(&[1, 2, 3], &[4]), LearnerType::Participant);
        e.start(Zxid(0x1_0000_0001), 1, 0);
        let out = e.on_notification(ServerId(4), &looking(4, 0x9_0000_0000, 5, 9), 10);
        let s = sends(&out);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].0, s[0].1.state, s[0].1.leader, s[0].1.election_epoch), (ServerId(4), PeerState::Looking, ServerId(1), 1));
        assert_eq!(e.logical_clock(), 1, "a non-voter's round is not joined");
        assert_eq!(e.current_vote().leader, ServerId(1));
        // Votes for a non-voter from a voter are ignored too.
        e.on_notification(ServerId(2), &looking(4, 0x9_0000_0000, 1, 9), 20);
        assert_eq!(e.current_vote().leader, ServerId(1));
    }

    #[test]
    fn looking_server_answers_a_peer_in_an_older_round() {
        let mut e = Election::new(ServerId(1), verifier(&[1, 2, 3], &[]), LearnerType::Participant);
        e.start(Zxid(0x1_0000_0001), 1, 0);
        e.start(Zxid(0x1_0000_0001), 1, 5_000);
        let out = e.on_notification(ServerId(2), &looking(2, 0x1_0000_0009, 1, 1), 5_010);
        let s = sends(&out);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].0, s[0].1.state, s[0].1.leader, s[0].1.election_epoch), (ServerId(2), PeerState::Looking, ServerId(1), 2));
        // The old round's vote is not taken, even though it is better.
        assert_eq!(e.current_vote().leader, ServerId(1));
        // A peer in the same round with no better vote gets no answer.
        let out = e.on_notification(ServerId(3), &looking(1, 0x1_0000_0001, 2, 1), 5_020);
        assert!(sends(&out).is_empty(), "{out:?}");
    }

    #[test]
    fn settled_server_answers_looking_peers_with_its_vote_until_restarted() {
        let mut e = Election::new(ServerId(1), verifier(&[1, 2, 3], &[]), LearnerType::Participant);
        let v = Vote { leader: ServerId(3), zxid: Zxid(0x2_0000_0000), election_epoch: 4, peer_epoch: 2 };
        e.settle(PeerState::Following, v);
        let s = sends(&e.on_notification(ServerId(2), &looking(2, 0, 1, 0), 0));
        assert_eq!(s.len(), 1);
        let n = &s[0].1;
        assert_eq!((n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch), (PeerState::Following, ServerId(3), Zxid(0x2_0000_0000), 4, 2));
        // Non-LOOKING peers get nothing; ticks do nothing.
        assert!(e.on_notification(ServerId(3), &report(PeerState::Leading, 3, 4), 0).is_empty());
        assert!(e.tick(1_000_000).is_empty());
        assert_eq!(e.current_vote(), v);
        // A new round proposes ourselves again.
        e.start(Zxid(0x2_0000_0001), 2, 0);
        assert_eq!(e.state(), PeerState::Looking);
        assert_eq!(e.current_vote().leader, ServerId(1));
    }

    #[test]
    fn the_reported_vote_carries_the_new_epoch_once_the_role_is_established() {
        // Apache's updateElectionVote: after the sync, followers and leader report the epoch
        // they now serve in, so a restarted peer tallies their replies as agreeing.
        let mut e = Election::new(ServerId(2), verifier(&[1, 2, 3], &[]), LearnerType::Participant);
        let v = Vote { leader: ServerId(2), zxid: Zxid(0x1_0000_0024), election_epoch: 2, peer_epoch: 1 };
        e.settle(PeerState::Leading, v);
        e.update_epoch(2);
        let s = sends(&e.on_notification(ServerId(3), &looking(3, 0x1_0000_0024, 1, 1), 0));
        assert_eq!(s.len(), 1);
        let n = &s[0].1;
        assert_eq!((n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch), (PeerState::Leading, ServerId(2), Zxid(0x1_0000_0024), 2, 2));
        // While LOOKING there is no settled vote to update.
        e.start(Zxid(0x2_0000_0001), 2, 0);
        e.update_epoch(7);
        assert_eq!(e.current_vote().peer_epoch, 2);
    }

    #[test]
    fn resend_timeout_doubles_up_to_sixty_seconds() {
        let mut e = Election::new(ServerId(1), verifier(&[1, 2, 3], &[]), LearnerType::Participant);
        e.start(Zxid(0), 0, 0);
        let mut resends = Vec::new();
        for now in (0..=200_000).step_by(100) {
            if !sends(&e.tick(now)).is_empty() {
                resends.push(now);
            }
        }
        assert_eq!(&resends[..5], &[200, 600, 1400, 3000, 6200]);
        let gaps: Vec<u64> = resends.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(*gaps.iter().max().unwrap(), 60_000);
    }

    #[test]
    fn nothing_happens_before_start() {
        let mut e = Election::new(ServerId(1), verifier(&[1, 2, 3], &[]), LearnerType::Participant);
        assert!(e.on_notification(ServerId(2), &looking(2, 0, 1, 0), 0).is_empty());
        assert!(e.tick(10_000).is_empty());
        assert_eq!(e.logical_clock(), 0);
    }
}

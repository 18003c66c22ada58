//! ZAB, ZooKeeper's atomic broadcast, as a pure state machine: no sockets, files or clocks.
//!
//! - `packet`: the bytes on the election port (handshake, Notification) and the quorum port
//!   (QuorumPacket, LearnerInfo), as Apache 3.8/3.9 writes them.
//! - `election`: fast leader election (Apache's FastLeaderElection) over notifications.
//! - `peer`: one server's ZAB life after election: discovery, synchronisation (DIFF/TRUNC/SNAP),
//!   broadcast, as leader, follower or observer.
//!
//! Each part takes events (a message from a server, a tick with the time, "this is durable now")
//! and returns actions for the shell to carry out, so the quorum can be tested by a seeded,
//! deterministic simulation (`sim` in tests).

pub mod election;
pub mod packet;
pub mod peer;
pub mod sim;

use std::collections::BTreeMap;
use std::fmt;

/// A server id (`server.N` / myid).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ServerId(pub u64);

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl fmt::Debug for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sid{}", self.0)
    }
}

/// A server's state as announced in election notifications (the wire values).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum PeerState {
    Looking = 0,
    Following = 1,
    Leading = 2,
    Observing = 3,
}

impl PeerState {
    pub fn from_i32(v: i32) -> Option<PeerState> {
        Some(match v {
            0 => PeerState::Looking,
            1 => PeerState::Following,
            2 => PeerState::Leading,
            3 => PeerState::Observing,
            _ => return None,
        })
    }
    /// As `srvr` prints it (`Mode: ...`).
    pub fn mode(self) -> &'static str {
        match self {
            PeerState::Looking => "looking",
            PeerState::Following => "follower",
            PeerState::Leading => "leader",
            PeerState::Observing => "observer",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LearnerType {
    Participant,
    Observer,
}

/// One `server.N` line, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumServer {
    pub id: ServerId,
    /// host:port of the quorum (leader/learner) port.
    pub quorum_addr: String,
    /// host:port of the election port.
    pub election_addr: String,
    pub learner_type: LearnerType,
    /// `[clientAddr:]clientPort` after the `;`, as written.
    pub client_addr: Option<String>,
}

/// Apache's QuorumMaj: a strict majority of the voting members. Kept behind one type so that
/// dynamic reconfig (a later version number, joint quorums) can replace it without touching the
/// callers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumVerifier {
    pub servers: BTreeMap<ServerId, QuorumServer>,
    /// The `version=` of the config (0 for a static zoo.cfg).
    pub version: i64,
}

impl QuorumVerifier {
    pub fn new(servers: Vec<QuorumServer>) -> QuorumVerifier {
        QuorumVerifier { servers: servers.into_iter().map(|s| (s.id, s)).collect(), version: 0 }
    }
    pub fn voters(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.servers.values().filter(|s| s.learner_type == LearnerType::Participant).map(|s| s.id)
    }
    pub fn is_voter(&self, id: ServerId) -> bool {
        self.servers.get(&id).is_some_and(|s| s.learner_type == LearnerType::Participant)
    }
    /// Whether the voters in `ids` form a quorum (non-voters in `ids` are ignored).
    pub fn contains_quorum<'a>(&self, ids: impl IntoIterator<Item = &'a ServerId>) -> bool {
        let n = ids.into_iter().filter(|id| self.is_voter(**id)).collect::<std::collections::BTreeSet<_>>().len();
        n * 2 > self.voters().count()
    }
    /// Apache's QuorumVerifier text, as sent in notifications and NEWLEADER and stored in
    /// /zookeeper/config: `server.N=host:qport:eport:participant[;client]` lines, then `version=<hex>`.
    pub fn to_config_text(&self) -> String {
        let mut s = String::new();
        for q in self.servers.values() {
            let role = match q.learner_type {
                LearnerType::Participant => "participant",
                LearnerType::Observer => "observer",
            };
            let eport = q.election_addr.rsplit(':').next().unwrap_or("");
            s.push_str(&format!("server.{}={}:{}:{}", q.id.0, q.quorum_addr, eport, role));
            if let Some(c) = &q.client_addr {
                s.push(';');
                s.push_str(c);
            }
            s.push('\n');
        }
        s.push_str(&format!("version={:x}", self.version));
        s
    }
}

//! The bytes servers exchange with each other, as Apache ZooKeeper 3.8/3.9 writes them.
//!
//! - Election port (QuorumCnxManager): one handshake ("initial message") from the connecting
//!   side, then `int len` + payload frames carrying FastLeaderElection notifications.
//! - Quorum port (Leader/Learner): a bare stream of jute `QuorumPacket` records, no length prefix.
//!
//! All parsers are incremental: given the bytes received so far they return `Ok(None)` while only
//! a prefix has arrived, and they check every length against a limit before allocating, because
//! these ports face the network.

use thiserror::Error;

use super::{PeerState, ServerId};
use crate::jute::records::Id;
use crate::jute::{Jute, Writer};
use crate::types::Zxid;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PacketError {
    #[error("bad {field} length {len}")]
    BadLength { field: &'static str, len: i64 },
    #[error("{field} of {len} exceeds the limit of {max}")]
    TooLarge { field: &'static str, len: usize, max: usize },
    #[error("unrecognized election protocol version {0}")]
    BadProtocolVersion(i64),
    #[error("bad server id {0} in election handshake")]
    BadSid(i64),
    #[error("badly formed election address {0:?}")]
    BadAddress(String),
    #[error("notification of {0} bytes is shorter than the 28 every version sends")]
    ShortNotification(usize),
    #[error("malformed notification of {0} bytes")]
    MalformedNotification(usize),
    #[error("unknown peer state {0} in notification")]
    UnknownState(i32),
    #[error("LearnerInfo of {0} bytes has no server id")]
    ShortLearnerInfo(usize),
}

/// QuorumPacket types (Apache's `Leader` constants).
pub mod kind {
    pub const REQUEST: i32 = 1;
    pub const PROPOSAL: i32 = 2;
    pub const ACK: i32 = 3;
    pub const COMMIT: i32 = 4;
    pub const PING: i32 = 5;
    pub const REVALIDATE: i32 = 6;
    pub const SYNC: i32 = 7;
    pub const INFORM: i32 = 8;
    pub const COMMITANDACTIVATE: i32 = 9;
    pub const NEWLEADER: i32 = 10;
    pub const FOLLOWERINFO: i32 = 11;
    pub const UPTODATE: i32 = 12;
    pub const DIFF: i32 = 13;
    pub const TRUNC: i32 = 14;
    pub const SNAP: i32 = 15;
    pub const OBSERVERINFO: i32 = 16;
    pub const LEADERINFO: i32 = 17;
    pub const ACKEPOCH: i32 = 18;
    pub const INFORMANDACTIVATE: i32 = 19;
}

/// The name Apache's logs use for a packet type (`LearnerHandler.packetToString`).
pub use kind::*;

pub fn kind_name(k: i32) -> &'static str {
    match k {
        kind::REQUEST => "REQUEST",
        kind::PROPOSAL => "PROPOSAL",
        kind::ACK => "ACK",
        kind::COMMIT => "COMMIT",
        kind::PING => "PING",
        kind::REVALIDATE => "REVALIDATE",
        kind::SYNC => "SYNC",
        kind::INFORM => "INFORM",
        kind::COMMITANDACTIVATE => "COMMITANDACTIVATE",
        kind::NEWLEADER => "NEWLEADER",
        kind::FOLLOWERINFO => "FOLLOWERINFO",
        kind::UPTODATE => "UPTODATE",
        kind::DIFF => "DIFF",
        kind::TRUNC => "TRUNC",
        kind::SNAP => "SNAP",
        kind::OBSERVERINFO => "OBSERVERINFO",
        kind::LEADERINFO => "LEADERINFO",
        kind::ACKEPOCH => "ACKEPOCH",
        kind::INFORMANDACTIVATE => "INFORMANDACTIVATE",
        _ => "UNKNOWN",
    }
}

/// Why an incremental parse stopped: the buffer ends early (wait for more bytes) or the bytes
/// are malformed (drop the connection).
enum Stop {
    Incomplete,
    Bad(PacketError),
}

impl From<PacketError> for Stop {
    fn from(e: PacketError) -> Stop {
        Stop::Bad(e)
    }
}

fn finish<T>(r: std::result::Result<T, Stop>) -> Result<Option<T>, PacketError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Stop::Incomplete) => Ok(None),
        Err(Stop::Bad(e)) => Err(e),
    }
}

/// A cursor that reports a short buffer as `Stop::Incomplete` rather than an error.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0 }
    }
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], Stop> {
        if self.buf.len() - self.pos < n {
            return Err(Stop::Incomplete);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn i32(&mut self) -> std::result::Result<i32, Stop> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> std::result::Result<i64, Stop> {
        let b = self.take(8)?;
        Ok(i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }
    /// A jute length: -1 is null, other negatives and values above `max` are malformed. The limit
    /// is checked before waiting for the bytes, so a peer cannot make us buffer without bound.
    fn len(&mut self, field: &'static str, max: usize) -> std::result::Result<Option<usize>, Stop> {
        let n = self.i32()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 {
            return Err(PacketError::BadLength { field, len: n as i64 }.into());
        }
        if n as usize > max {
            return Err(PacketError::TooLarge { field, len: n as usize, max }.into());
        }
        Ok(Some(n as usize))
    }
    fn buffer(&mut self, field: &'static str, max: usize) -> std::result::Result<Option<&'a [u8]>, Stop> {
        match self.len(field, max)? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?)),
        }
    }
}

/// Most authinfo entries a REQUEST may carry (one per `addauth` on the client connection).
pub const MAX_AUTHINFO: usize = 1024;

/// One record on the quorum port (zookeeper.jute `QuorumPacket`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumPacket {
    pub kind: i32,
    pub zxid: i64,
    pub data: Option<Vec<u8>>,
    pub authinfo: Option<Vec<Id>>,
}

impl QuorumPacket {
    pub fn new(kind: i32, zxid: i64, data: Option<Vec<u8>>) -> QuorumPacket {
        QuorumPacket { kind, zxid, data, authinfo: None }
    }
    /// A REQUEST forwarded by a learner carries the client connection's auth ids.
    pub fn with_authinfo(mut self, authinfo: Vec<Id>) -> QuorumPacket {
        self.authinfo = Some(authinfo);
        self
    }
    pub fn kind_name(&self) -> &'static str {
        kind_name(self.kind)
    }

    /// `int type, long zxid, buffer data, vector<Id> authinfo`; null buffer and null vector are -1.
    pub fn encode(&self, w: &mut Writer) {
        w.write_i32(self.kind);
        w.write_i64(self.zxid);
        w.write_buffer(self.data.as_deref());
        match &self.authinfo {
            None => w.write_i32(-1),
            Some(ids) => {
                w.write_i32(ids.len() as i32);
                for id in ids {
                    id.write(w);
                }
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(24 + self.data.as_ref().map_or(0, |d| d.len()));
        self.encode(&mut w);
        w.into_inner()
    }

    /// Parses one packet from the front of `buf`. `Ok(None)`: only a prefix has arrived.
    /// `max_data` bounds the data buffer and each authinfo string (Apache's `jute.maxbuffer`).
    pub fn parse(buf: &[u8], max_data: usize) -> Result<Option<(QuorumPacket, usize)>, PacketError> {
        finish(Self::parse_inner(buf, max_data))
    }

    fn parse_inner(buf: &[u8], max_data: usize) -> std::result::Result<(QuorumPacket, usize), Stop> {
        let mut c = Cursor::new(buf);
        let kind = c.i32()?;
        let zxid = c.i64()?;
        let data = c.buffer("data", max_data)?.map(|d| d.to_vec());
        let authinfo = match c.len("authinfo", MAX_AUTHINFO)? {
            None => None,
            Some(n) => {
                // n is bounded by MAX_AUTHINFO, so this allocation is too.
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    let scheme = match c.buffer("authinfo scheme", max_data)? {
                        Some(b) => String::from_utf8_lossy(b).into_owned(),
                        None => return Err(PacketError::BadLength { field: "authinfo scheme", len: -1 }.into()),
                    };
                    // A null id reads as "", as in the client protocol's Id.
                    let id = c.buffer("authinfo id", max_data)?.map(|b| String::from_utf8_lossy(b).into_owned());
                    ids.push(Id { scheme, id: id.unwrap_or_default() });
                }
                Some(ids)
            }
        };
        Ok((QuorumPacket { kind, zxid, data, authinfo }, c.pos))
    }
}

/// The learner protocol version Apache 3.5+ announces in LearnerInfo and LEADERINFO.
pub const LEARNER_PROTOCOL_VERSION: i32 = 0x10000;

/// FOLLOWERINFO/OBSERVERINFO data: `long serverid, int protocolVersion, long configVersion`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LearnerInfo {
    pub server_id: u64,
    pub protocol_version: i32,
    pub config_version: i64,
}

impl LearnerInfo {
    pub fn new(server_id: ServerId, config_version: i64) -> LearnerInfo {
        LearnerInfo { server_id: server_id.0, protocol_version: LEARNER_PROTOCOL_VERSION, config_version }
    }
    pub fn encode(&self, w: &mut Writer) {
        w.write_i64(self.server_id as i64);
        w.write_i32(self.protocol_version);
        w.write_i64(self.config_version);
    }
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(20);
        self.encode(&mut w);
        w.into_inner()
    }
    /// Like LearnerHandler: older learners send only the sid (pre-3.4: protocol 0x1 assumed) or
    /// no config version (pre-3.5: 0, which never exceeds the leader's).
    pub fn decode(b: &[u8]) -> Result<LearnerInfo, PacketError> {
        let mut c = Cursor::new(b);
        let Ok(sid) = c.i64() else {
            return Err(PacketError::ShortLearnerInfo(b.len()));
        };
        let protocol_version = c.i32().unwrap_or(0x1);
        let config_version = c.i64().unwrap_or(0);
        Ok(LearnerInfo { server_id: sid as u64, protocol_version, config_version })
    }
}

/// Election handshake versions (QuorumCnxManager.PROTOCOL_VERSION_V1/V2).
pub const PROTOCOL_VERSION_V1: i64 = -65536;
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// QuorumCnxManager's `maxBuffer` for the advertised address string.
pub const MAX_INITIAL_MESSAGE_ADDR_LEN: usize = 2048;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeVersion {
    /// Before 3.5 the first long was the sid itself, with no address.
    Legacy,
    V1,
    /// Only with multiAddress enabled: several addresses joined by `|`.
    V2,
}

/// The election port handshake the connecting side sends once (no reply).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialMessage {
    pub version: HandshakeVersion,
    pub sid: ServerId,
    /// `host:port` election addresses the peer can be dialled back on; wildcard addresses are
    /// dropped, as Apache does.
    pub election_addrs: Vec<String>,
}

impl InitialMessage {
    /// What Apache sends by default (multiAddress off): V1 with one address.
    pub fn v1(sid: ServerId, election_addr: &str) -> InitialMessage {
        InitialMessage { version: HandshakeVersion::V1, sid, election_addrs: vec![election_addr.to_owned()] }
    }

    pub fn encode(&self, w: &mut Writer) {
        match self.version {
            HandshakeVersion::Legacy => w.write_i64(self.sid.0 as i64),
            HandshakeVersion::V1 | HandshakeVersion::V2 => {
                w.write_i64(if self.version == HandshakeVersion::V1 { PROTOCOL_VERSION_V1 } else { PROTOCOL_VERSION_V2 });
                w.write_i64(self.sid.0 as i64);
                w.write_str(&self.election_addrs.join("|"));
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.into_inner()
    }

    /// Parses the handshake from the front of `buf` (`Ok(None)` until it has all arrived).
    pub fn parse(buf: &[u8]) -> Result<Option<(InitialMessage, usize)>, PacketError> {
        finish(Self::parse_inner(buf))
    }

    fn parse_inner(buf: &[u8]) -> std::result::Result<(InitialMessage, usize), Stop> {
        let mut c = Cursor::new(buf);
        let first = c.i64()?;
        if first >= 0 {
            let msg = InitialMessage { version: HandshakeVersion::Legacy, sid: ServerId(first as u64), election_addrs: vec![] };
            return Ok((msg, c.pos));
        }
        let version = match first {
            PROTOCOL_VERSION_V1 => HandshakeVersion::V1,
            PROTOCOL_VERSION_V2 => HandshakeVersion::V2,
            v => return Err(PacketError::BadProtocolVersion(v).into()),
        };
        let sid = c.i64()?;
        if sid < 0 {
            return Err(PacketError::BadSid(sid).into());
        }
        // Apache rejects an empty address as well as one over maxBuffer.
        let len = c.i32()?;
        if len <= 0 {
            return Err(PacketError::BadLength { field: "election address", len: len as i64 }.into());
        }
        if len as usize > MAX_INITIAL_MESSAGE_ADDR_LEN {
            return Err(PacketError::TooLarge { field: "election address", len: len as usize, max: MAX_INITIAL_MESSAGE_ADDR_LEN }.into());
        }
        let raw = c.take(len as usize)?;
        let text = std::str::from_utf8(raw).map_err(|_| PacketError::BadAddress(String::from_utf8_lossy(raw).into_owned()))?;
        // Both versions split on '|' (InitialMessage.parse does not look at the version here).
        let mut election_addrs = Vec::new();
        for addr in text.split('|') {
            let host = check_host_port(addr)?;
            if !is_wildcard(host) {
                election_addrs.push(addr.to_owned());
            }
        }
        Ok((InitialMessage { version, sid: ServerId(sid as u64), election_addrs }, c.pos))
    }
}

/// ConfigUtils.getHostAndPort: `[v6]:port` or `host:port` with exactly one colon; the port must
/// make a valid InetSocketAddress. Returns the host.
fn check_host_port(addr: &str) -> Result<&str, PacketError> {
    let bad = || PacketError::BadAddress(addr.to_owned());
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
        (h, p)
    } else {
        let mut parts = addr.split(':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(h), Some(p), None) => (h, p),
            _ => return Err(bad()),
        }
    };
    port.parse::<u16>().map_err(|_| bad())?;
    Ok(host)
}

fn is_wildcard(host: &str) -> bool {
    matches!(host, "0.0.0.0" | "::" | "0:0:0:0:0:0:0:0")
}

/// QuorumCnxManager.PACKETMAXSIZE: the largest election message a peer accepts.
pub const MAX_ELECTION_MESSAGE: usize = 512 * 1024;

/// One election-port message: `int len` + payload.
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Splits one message off the front of `buf`: `Ok(Some((payload, consumed)))`, or `Ok(None)`
/// until it has all arrived. Like RecvWorker, a length of 0 or above 512 KiB is malformed.
pub fn parse_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, PacketError> {
    finish((|| {
        let mut c = Cursor::new(buf);
        let len = c.i32()?;
        if len <= 0 {
            return Err(PacketError::BadLength { field: "election message", len: len as i64 }.into());
        }
        if len as usize > MAX_ELECTION_MESSAGE {
            return Err(PacketError::TooLarge { field: "election message", len: len as usize, max: MAX_ELECTION_MESSAGE }.into());
        }
        let payload = c.take(len as usize)?;
        Ok((payload, c.pos))
    })())
}

/// The notification format version this server writes (Apache's `Notification.CURRENTVERSION`).
pub const NOTIFICATION_VERSION: i32 = 2;

/// A FastLeaderElection notification: the sender's state and the vote it currently holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub state: PeerState,
    pub leader: ServerId,
    pub zxid: Zxid,
    pub election_epoch: u64,
    pub peer_epoch: u64,
    /// The format version it was received in (0 for the 28- and 40-byte forms). Always sent as 2.
    pub version: i32,
    /// The sender's QuorumVerifier text (empty before version 2).
    pub config: Vec<u8>,
}

impl Notification {
    /// The version 2 payload: `int state, long leader, long zxid, long electionEpoch,
    /// long peerEpoch, int version, int configLen, byte[] config` (without the frame length).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(44 + self.config.len());
        w.write_i32(self.state as i32);
        w.write_i64(self.leader.0 as i64);
        w.write_i64(self.zxid.0);
        w.write_i64(self.election_epoch as i64);
        w.write_i64(self.peer_epoch as i64);
        w.write_i32(NOTIFICATION_VERSION);
        w.write_buffer(Some(&self.config));
        w.into_inner()
    }

    /// The payload framed for the election port.
    pub fn to_frame(&self) -> Vec<u8> {
        let payload = self.encode();
        let mut out = Vec::with_capacity(4 + payload.len());
        encode_frame(&payload, &mut out);
        out
    }

    /// Decodes a payload in any of the forms WorkerReceiver accepts. The form is told by the
    /// length, as Apache does: exactly 28 bytes has no peerEpoch (taken from the zxid), exactly
    /// 40 bytes has no version (its last int is not read), longer ones carry a version, and a
    /// version above 1 is followed by the config. A 36-byte message (peerEpoch, nothing else),
    /// which Apache would fail to read, is accepted as the 40-byte form.
    pub fn decode(b: &[u8]) -> Result<Notification, PacketError> {
        if b.len() < 28 {
            return Err(PacketError::ShortNotification(b.len()));
        }
        let malformed = || PacketError::MalformedNotification(b.len());
        let mut c = Cursor::new(b);
        let fixed = |r: std::result::Result<i64, Stop>| r.map_err(|_| malformed());
        let raw_state = c.i32().map_err(|_| malformed())?;
        let state = PeerState::from_i32(raw_state).ok_or(PacketError::UnknownState(raw_state))?;
        let leader = fixed(c.i64())?;
        let zxid = Zxid(fixed(c.i64())?);
        let election_epoch = fixed(c.i64())?;
        let mut n = Notification {
            state,
            leader: ServerId(leader as u64),
            zxid,
            election_epoch: election_epoch as u64,
            peer_epoch: zxid.epoch() as u64,
            version: 0,
            config: Vec::new(),
        };
        match b.len() {
            28 => return Ok(n),
            36 | 40 => {
                n.peer_epoch = fixed(c.i64())? as u64;
                return Ok(n);
            }
            l if l < 44 => return Err(malformed()),
            _ => {}
        }
        n.peer_epoch = fixed(c.i64())? as u64;
        n.version = c.i32().map_err(|_| malformed())?;
        if n.version > 1 {
            let len = c.i32().map_err(|_| malformed())?;
            if len < 0 || len as usize > b.len() - c.pos {
                return Err(PacketError::BadLength { field: "notification config", len: len as i64 });
            }
            n.config = c.take(len as usize).map_err(|_| malformed())?.to_vec();
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Every strict prefix of a complete record parses as "need more bytes".
    fn assert_prefixes_incomplete<T: std::fmt::Debug>(bytes: &[u8], parse: impl Fn(&[u8]) -> Result<Option<T>, PacketError>) {
        for cut in 0..bytes.len() {
            match parse(&bytes[..cut]) {
                Ok(None) => {}
                other => panic!("prefix of {cut}/{} bytes gave {other:?}", bytes.len()),
            }
        }
    }

    #[test]
    fn kind_names_match_apache() {
        assert_eq!(kind_name(kind::FOLLOWERINFO), "FOLLOWERINFO");
        assert_eq!(kind_name(kind::INFORMANDACTIVATE), "INFORMANDACTIVATE");
        assert_eq!(kind_name(0), "UNKNOWN");
        assert_eq!(kind::LEADERINFO, 17);
        assert_eq!(kind::ACKEPOCH, 18);
    }

    #[test]
    fn learner_info_matches_live_followerinfo() {
        let li = LearnerInfo::new(ServerId(1), 0);
        let golden = hex("0000000000000001 00010000 0000000000000000");
        assert_eq!(li.to_bytes(), golden);
        assert_eq!(LearnerInfo::decode(&golden).unwrap(), li);
        let pkt = QuorumPacket::new(kind::FOLLOWERINFO, 0, Some(golden.clone()));
        let mut want = hex("0000000b 0000000000000000 00000014");
        want.extend_from_slice(&golden);
        want.extend_from_slice(&hex("ffffffff"));
        assert_eq!(pkt.to_bytes(), want);
    }

    #[test]
    fn learner_info_from_older_learners() {
        let old = LearnerInfo::decode(&hex("0000000000000002")).unwrap();
        assert_eq!(old, LearnerInfo { server_id: 2, protocol_version: 1, config_version: 0 });
        let pre35 = LearnerInfo::decode(&hex("0000000000000002 00010000")).unwrap();
        assert_eq!(pre35.protocol_version, LEARNER_PROTOCOL_VERSION);
        assert_eq!(LearnerInfo::decode(&hex("00000000")), Err(PacketError::ShortLearnerInfo(4)));
    }

    #[test]
    fn forwarded_create_session_request_matches_live_bytes() {
        // A follower forwards createSession as `<sid> cxid=0 type=-10 timeout=30000`, no authinfo.
        let body = hex("010000957efe0000 00000000 fffffff6 00007530");
        let pkt = QuorumPacket::new(kind::REQUEST, -1, Some(body.clone()));
        let mut want = hex("00000001 ffffffffffffffff 00000014");
        want.extend_from_slice(&body);
        want.extend_from_slice(&hex("ffffffff"));
        let bytes = pkt.to_bytes();
        assert_eq!(bytes, want);
        assert_eq!(QuorumPacket::parse(&bytes, 1 << 20).unwrap(), Some((pkt, bytes.len())));
        assert_prefixes_incomplete(&bytes, |b| QuorumPacket::parse(b, 1 << 20));
    }

    #[test]
    fn quorum_packet_round_trips_with_authinfo_and_trailing_bytes() {
        let pkt = QuorumPacket::new(kind::REQUEST, -1, Some(vec![1, 2, 3]))
            .with_authinfo(vec![Id { scheme: "ip".into(), id: "127.0.0.1".into() }]);
        let mut bytes = pkt.to_bytes();
        let n = bytes.len();
        assert_prefixes_incomplete(&bytes, |b| QuorumPacket::parse(b, 1024));
        // The next packet's first bytes must not be consumed.
        bytes.extend_from_slice(&QuorumPacket::new(kind::PING, 7, None).to_bytes()[..5]);
        assert_eq!(QuorumPacket::parse(&bytes, 1024).unwrap(), Some((pkt, n)));
        // Empty data and an empty authinfo vector differ from null ones.
        let empty = QuorumPacket { kind: kind::PING, zxid: 0, data: Some(vec![]), authinfo: Some(vec![]) };
        let b = empty.to_bytes();
        assert_eq!(b, hex("00000005 0000000000000000 00000000 00000000"));
        assert_eq!(QuorumPacket::parse(&b, 0).unwrap(), Some((empty, b.len())));
    }

    #[test]
    fn quorum_packet_rejects_bad_lengths_before_buffering() {
        // data length -2
        let b = hex("00000002 0000000000000001 fffffffe");
        assert_eq!(QuorumPacket::parse(&b, 100), Err(PacketError::BadLength { field: "data", len: -2 }));
        // data longer than max_data is refused as soon as the length is seen
        let b = hex("00000002 0000000000000001 7fffffff");
        assert!(matches!(QuorumPacket::parse(&b, 100), Err(PacketError::TooLarge { field: "data", .. })));
        // too many authinfo entries
        let b = hex("00000001 ffffffffffffffff ffffffff 00100000");
        assert!(matches!(QuorumPacket::parse(&b, 100), Err(PacketError::TooLarge { field: "authinfo", .. })));
        // negative authinfo count
        let b = hex("00000001 ffffffffffffffff ffffffff fffffff0");
        assert!(matches!(QuorumPacket::parse(&b, 100), Err(PacketError::BadLength { field: "authinfo", .. })));
        // null scheme
        let b = hex("00000001 ffffffffffffffff ffffffff 00000001 ffffffff");
        assert!(QuorumPacket::parse(&b, 100).is_err());
        // oversized authinfo string
        let b = hex("00000001 ffffffffffffffff ffffffff 00000001 00001000");
        assert!(matches!(QuorumPacket::parse(&b, 100), Err(PacketError::TooLarge { field: "authinfo scheme", .. })));
    }

    #[test]
    fn initial_message_matches_live_handshake() {
        let golden = [hex("ffffffffffff0000 0000000000000003 0000000f"), b"127.0.0.1:13486".to_vec()].concat();
        let m = InitialMessage::v1(ServerId(3), "127.0.0.1:13486");
        assert_eq!(m.to_bytes(), golden);
        assert_eq!(InitialMessage::parse(&golden).unwrap(), Some((m, golden.len())));
        assert_prefixes_incomplete(&golden, InitialMessage::parse);
    }

    #[test]
    fn initial_message_legacy_and_v2_forms() {
        let legacy = hex("0000000000000005 00000001");
        let (m, used) = InitialMessage::parse(&legacy).unwrap().unwrap();
        assert_eq!((m.version, m.sid, m.election_addrs.len(), used), (HandshakeVersion::Legacy, ServerId(5), 0, 8));

        let v2 = InitialMessage {
            version: HandshakeVersion::V2,
            sid: ServerId(2),
            election_addrs: vec!["10.0.0.2:3888".into(), "[fe80::1]:3888".into()],
        };
        let b = v2.to_bytes();
        assert_eq!(&b[..8], &hex("ffffffffffff0001")[..]);
        assert_eq!(InitialMessage::parse(&b).unwrap(), Some((v2, b.len())));

        // Wildcard addresses are dropped, as Apache cannot dial back to them.
        let w = InitialMessage { version: HandshakeVersion::V2, sid: ServerId(2), election_addrs: vec!["0.0.0.0:3888".into()] };
        assert_eq!(InitialMessage::parse(&w.to_bytes()).unwrap().unwrap().0.election_addrs, Vec::<String>::new());
    }

    #[test]
    fn initial_message_rejects_bad_versions_lengths_and_addresses() {
        assert_eq!(InitialMessage::parse(&hex("fffffffffffffffe")), Err(PacketError::BadProtocolVersion(-2)));
        let too_long = hex("ffffffffffff0000 0000000000000003 00000801");
        assert!(matches!(InitialMessage::parse(&too_long), Err(PacketError::TooLarge { .. })));
        let empty = hex("ffffffffffff0000 0000000000000003 00000000");
        assert!(matches!(InitialMessage::parse(&empty), Err(PacketError::BadLength { .. })));
        for bad in ["nocolon", "a:b:c", "host:99999", "host:"] {
            let m = InitialMessage::v1(ServerId(1), bad);
            assert_eq!(InitialMessage::parse(&m.to_bytes()), Err(PacketError::BadAddress(bad.into())), "{bad}");
        }
    }

    #[test]
    fn election_frames_are_bounded() {
        let mut out = Vec::new();
        encode_frame(b"abc", &mut out);
        assert_eq!(out, hex("00000003 616263"));
        assert_eq!(parse_frame(&out).unwrap(), Some((&b"abc"[..], 7)));
        assert_prefixes_incomplete(&out, |b| parse_frame(b).map(|o| o.map(|(p, n)| (p.to_vec(), n))));
        assert!(parse_frame(&hex("00000000")).is_err());
        assert!(parse_frame(&hex("ffffffff")).is_err());
        assert!(matches!(parse_frame(&hex("00080001")), Err(PacketError::TooLarge { .. })));
        assert_eq!(parse_frame(&hex("00080000")).unwrap(), None);
    }

    fn sample() -> Notification {
        Notification {
            state: PeerState::Looking,
            leader: ServerId(3),
            zxid: Zxid(0x1_0000_001d),
            election_epoch: 1,
            peer_epoch: 1,
            version: 2,
            config: b"server.1=127.0.0.1:2888:3888:participant\nversion=0".to_vec(),
        }
    }

    #[test]
    fn notification_version_2_layout() {
        let n = sample();
        let b = n.encode();
        let mut want = hex(
            "00000000 0000000000000003 000000010000001d 0000000000000001 0000000000000001 00000002",
        );
        want.extend_from_slice(&(n.config.len() as i32).to_be_bytes());
        want.extend_from_slice(&n.config);
        assert_eq!(b, want);
        assert_eq!(b.len(), 44 + n.config.len());
        assert_eq!(Notification::decode(&b).unwrap(), n);
        let f = n.to_frame();
        let (payload, used) = parse_frame(&f).unwrap().unwrap();
        assert_eq!((payload, used), (&b[..], f.len()));
    }

    #[test]
    fn notification_older_forms() {
        // 28 bytes: no peerEpoch, taken from the zxid's epoch.
        let b28 = hex("00000001 0000000000000002 0000000500000009 0000000000000004");
        let n = Notification::decode(&b28).unwrap();
        assert_eq!((n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch, n.version), (PeerState::Following, ServerId(2), Zxid(0x5_0000_0009), 4, 5, 0));
        // 40 bytes: peerEpoch; the trailing int is not read as a version.
        let b40 = [b28.clone(), hex("0000000000000006 00000001")].concat();
        let n = Notification::decode(&b40).unwrap();
        assert_eq!((n.peer_epoch, n.version), (6, 0));
        // Version 1 with something after it: no config.
        let b44 = [b28.clone(), hex("0000000000000006 00000001 00000000")].concat();
        let n = Notification::decode(&b44).unwrap();
        assert_eq!((n.peer_epoch, n.version, n.config.len()), (6, 1, 0));
    }

    #[test]
    fn notification_rejects_short_unknown_state_and_bad_config_length() {
        assert_eq!(Notification::decode(&[0; 27]), Err(PacketError::ShortNotification(27)));
        let mut b = sample().encode();
        b[3] = 9;
        assert_eq!(Notification::decode(&b), Err(PacketError::UnknownState(9)));
        let mut b = sample().encode();
        b.truncate(50);
        assert!(matches!(Notification::decode(&b), Err(PacketError::BadLength { .. })));
        assert!(Notification::decode(&[0; 30]).is_err());
    }
}

//! Session table with Apache's expiry buckets: a session's deadline is `now + timeout` rounded up
//! to the next multiple of tickTime, and the expirer handles whole buckets. Time is passed in.

use crate::types::SessionId;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Clone, Debug)]
pub struct Session {
    pub id: SessionId,
    pub timeout_ms: i32,
    pub passwd: [u8; 16],
    /// Monotonic ms of the bucket this session expires in.
    pub expires_at: u64,
    /// Set once a closeSession txn is under way: no more requests are accepted.
    pub closing: bool,
}

pub struct Sessions {
    map: HashMap<SessionId, Session>,
    buckets: BTreeMap<u64, BTreeSet<SessionId>>,
    tick_ms: u64,
    next_id: i64,
}

/// Apache's session id: `sid << 56 | (ms & 0xFF_FFFF_FFFF) << 16`, then +1 per session.
pub fn initial_session_id(server_id: u8, monotonic_ms: u64) -> i64 {
    let id = ((server_id as i64) << 56) | (((monotonic_ms as i64) << 24) as u64 >> 8) as i64;
    if id == i64::MIN { id + 1 } else { id }
}

/// The session password: 16 bytes of `java.util.Random(sessionId ^ 0xB3415C00).nextBytes`, so a
/// session can move between rzk and Apache servers.
pub fn session_password(id: SessionId) -> [u8; 16] {
    let mut seed = ((id.0 ^ 0xB341_5C00) ^ 0x5_DEEC_E66D) & ((1 << 48) - 1);
    let mut out = [0u8; 16];
    for chunk in out.chunks_mut(4) {
        seed = (seed.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & ((1 << 48) - 1);
        let r = (seed >> 16) as i32;
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = (r >> (8 * i)) as u8;
        }
    }
    out
}

impl Sessions {
    pub fn new(server_id: u8, tick_ms: u64, monotonic_ms: u64) -> Sessions {
        Sessions { map: HashMap::new(), buckets: BTreeMap::new(), tick_ms: tick_ms.max(1), next_id: initial_session_id(server_id, monotonic_ms) }
    }

    fn deadline(&self, now: u64, timeout_ms: i32) -> u64 {
        (now + timeout_ms.max(0) as u64) / self.tick_ms * self.tick_ms + self.tick_ms
    }

    pub fn next_id(&mut self) -> SessionId {
        let id = self.next_id;
        self.next_id += 1;
        if self.next_id == i64::MIN {
            self.next_id += 1;
        }
        SessionId(id)
    }

    /// After a restore: new ids must not collide with restored sessions of this server.
    pub fn skip_past(&mut self, restored: impl Iterator<Item = SessionId>) {
        for id in restored {
            if id.0 >> 56 == self.next_id >> 56 && id.0 >= self.next_id {
                self.next_id = id.0 + 1;
            }
        }
    }

    pub fn add(&mut self, id: SessionId, timeout_ms: i32, now: u64) -> &Session {
        let expires_at = self.deadline(now, timeout_ms);
        self.buckets.entry(expires_at).or_default().insert(id);
        self.map.insert(id, Session { id, timeout_ms, passwd: session_password(id), expires_at, closing: false });
        &self.map[&id]
    }

    pub fn get(&self, id: SessionId) -> Option<&Session> {
        self.map.get(&id)
    }

    /// Any packet from the client moves the deadline.
    pub fn touch(&mut self, id: SessionId, now: u64) -> bool {
        let Some(s) = self.map.get(&id) else { return false };
        if s.closing {
            return false;
        }
        let new = self.deadline(now, s.timeout_ms);
        let old = s.expires_at;
        if new != old {
            if let Some(b) = self.buckets.get_mut(&old) {
                b.remove(&id);
                if b.is_empty() {
                    self.buckets.remove(&old);
                }
            }
            self.buckets.entry(new).or_default().insert(id);
            self.map.get_mut(&id).unwrap().expires_at = new;
        }
        true
    }

    /// A reconnect may negotiate a new timeout.
    pub fn set_timeout(&mut self, id: SessionId, timeout_ms: i32, now: u64) {
        if let Some(s) = self.map.get_mut(&id) {
            s.timeout_ms = timeout_ms;
        }
        self.touch(id, now);
    }

    pub fn set_closing(&mut self, id: SessionId) {
        if let Some(s) = self.map.get_mut(&id) {
            s.closing = true;
        }
    }

    pub fn remove(&mut self, id: SessionId) {
        if let Some(s) = self.map.remove(&id)
            && let Some(b) = self.buckets.get_mut(&s.expires_at) {
                b.remove(&id);
                if b.is_empty() {
                    self.buckets.remove(&s.expires_at);
                }
            }
    }

    /// Sessions whose bucket has passed and that are not already closing.
    pub fn expired(&self, now: u64) -> Vec<SessionId> {
        self.buckets.range(..=now).flat_map(|(_, s)| s.iter().copied()).filter(|id| !self.map[id].closing).collect()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.map.values()
    }
    pub fn buckets(&self) -> &BTreeMap<u64, BTreeSet<SessionId>> {
        &self.buckets
    }
    pub fn tick_ms(&self) -> u64 {
        self.tick_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_matches_apache() {
        // Reference §1.3: sid 0x10000706b880000 -> 0ae6ec5bcf1f5884f850ee02309279a6.
        let p = session_password(SessionId(0x10000706b880000));
        let hex: String = p.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "0ae6ec5bcf1f5884f850ee02309279a6");
    }

    #[test]
    fn expiry_is_rounded_up_to_the_tick() {
        let mut s = Sessions::new(1, 2000, 0);
        let id = s.next_id();
        s.add(id, 4000, 100);
        assert_eq!(s.get(id).unwrap().expires_at, 6000);
        assert!(s.expired(5999).is_empty());
        assert_eq!(s.expired(6000), vec![id]);
        s.touch(id, 3000);
        assert!(s.expired(6000).is_empty());
        assert_eq!(s.expired(8000), vec![id]);
    }

    #[test]
    fn session_ids_carry_the_server_id() {
        let id = initial_session_id(1, 0x706b88);
        assert_eq!(id >> 56, 1);
        assert_eq!(id & 0xffff, 0);
    }
}

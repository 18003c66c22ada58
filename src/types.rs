//! Newtypes for ZooKeeper's protocol numbers, so that a session id can never be passed where a zxid
//! is expected. All print in hex (`0x…`) as ZooKeeper's own logs do.

use std::fmt;

/// A transaction id: `epoch << 32 | counter`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Zxid(pub i64);

impl Zxid {
    pub const ZERO: Zxid = Zxid(0);
    pub fn new(epoch: u32, counter: u32) -> Zxid {
        Zxid(((epoch as i64) << 32) | counter as i64)
    }
    pub fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }
    pub fn counter(self) -> u32 {
        self.0 as u32
    }
    pub fn next(self) -> Zxid {
        Zxid(self.0 + 1)
    }
}

/// A client session id. Standalone servers use server id 1 in the top byte.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SessionId(pub i64);

/// The `ephemeralOwner` value that marks a container node.
pub const CONTAINER_EPHEMERAL_OWNER: i64 = i64::MIN;
/// The top byte that marks a TTL node's `ephemeralOwner` (extended types).
pub const TTL_MASK: i64 = 0xFF00_0000_0000_0000u64 as i64;
/// Largest TTL that fits in an extended ephemeralOwner.
pub const MAX_TTL: i64 = 0x0000_00FF_FFFF_FFFF;

/// A request's client-chosen id. Negative values are reserved (see `xid` constants).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Xid(pub i32);

impl Xid {
    pub const NOTIFICATION: Xid = Xid(-1);
    pub const PING: Xid = Xid(-2);
    pub const AUTH: Xid = Xid(-4);
    pub const SET_WATCHES: Xid = Xid(-8);
}

macro_rules! hex_fmt {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "0x{:x}", self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "0x{:x}", self.0)
            }
        }
    };
}
hex_fmt!(Zxid);
hex_fmt!(SessionId);

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn zxid_parts_and_hex() {
        let z = Zxid::new(1, 0x16);
        assert_eq!(z.epoch(), 1);
        assert_eq!(z.counter(), 0x16);
        assert_eq!(z.to_string(), "0x100000016");
        assert_eq!(SessionId(0x10000706b880000).to_string(), "0x10000706b880000");
    }
}

//! Apache's tree digest (3.6+): CRC32 per node over path ‖ data ‖ stat fields, summed (wrapping)
//! over the tree. Nodes under `/zookeeper/` count as 0. Kept incrementally: callers subtract a
//! node's digest before changing it and add it back after.

use super::{DataTree, Node, NodeId};

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeDigest {
    pub value: u64,
}

pub const DIGEST_VERSION: i32 = 2;

pub fn node_digest(path: &str, node: &Node) -> u64 {
    if path.starts_with("/zookeeper/") {
        return 0;
    }
    image_digest(path, &node.stat, DataSum::of(path, node.data().unwrap_or(&[])))
}

/// The CRC32 (and length) of a node's path ‖ data: the part of its digest that does not change
/// with its stat. A pending change record keeps this instead of the data, so the node can still
/// be digested exactly as it will be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataSum {
    pub crc: u32,
    pub len: u64,
}

impl DataSum {
    pub fn of(path: &str, data: &[u8]) -> DataSum {
        // The root is digested as "" (Apache's DigestCalculator).
        let path = if path == "/" { "" } else { path };
        let mut h = crc32fast::Hasher::new();
        h.update(path.as_bytes());
        h.update(data);
        DataSum { crc: h.finalize(), len: (path.len() + data.len()) as u64 }
    }
}

/// The digest of the node at `path` with this stat and path ‖ data sum: CRC32 over
/// path ‖ data ‖ stat fields; nodes under /zookeeper/ count as 0.
pub fn image_digest(path: &str, s: &super::NodeStat, sum: DataSum) -> u64 {
    if path.starts_with("/zookeeper/") {
        return 0;
    }
    let mut h = crc32fast::Hasher::new_with_initial_len(sum.crc, sum.len);
    let mut b = [0u8; 60];
    b[0..8].copy_from_slice(&s.czxid.to_be_bytes());
    b[8..16].copy_from_slice(&s.mzxid.to_be_bytes());
    b[16..24].copy_from_slice(&s.pzxid.to_be_bytes());
    b[24..32].copy_from_slice(&s.ctime.to_be_bytes());
    b[32..40].copy_from_slice(&s.mtime.to_be_bytes());
    b[40..44].copy_from_slice(&s.version.to_be_bytes());
    b[44..48].copy_from_slice(&s.cversion.to_be_bytes());
    b[48..52].copy_from_slice(&s.aversion.to_be_bytes());
    b[52..60].copy_from_slice(&s.ephemeral_owner.to_be_bytes());
    h.update(&b);
    h.finalize() as u64
}

impl TreeDigest {
    pub fn add(&mut self, path: &str, node: &Node) {
        self.value = self.value.wrapping_add(node_digest(path, node));
    }
    pub fn remove(&mut self, path: &str, node: &Node) {
        self.value = self.value.wrapping_sub(node_digest(path, node));
    }
    pub fn recompute(&mut self, tree: &DataTree) {
        let mut v = 0u64;
        for id in tree.walk() {
            v = v.wrapping_add(node_digest(&tree.path_of(id), tree.node(id)));
        }
        self.value = v;
    }
}

impl DataTree {
    /// Runs `f` on a node, keeping the tree digest in step with the change.
    pub(crate) fn modify_node(&mut self, id: NodeId, path: &str, f: impl FnOnce(&mut Node)) {
        let mut d = self.digest;
        d.remove(path, self.node(id));
        f(self.node_mut(id));
        d.add(path, self.node(id));
        self.digest = d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn empty_tree_digest_matches_apache() {
        // Reference §6.6: crc32(60 zero bytes) + crc32("/zookeeper" + 60 zeros) = 0x51c6d660.
        let t = DataTree::new();
        assert_eq!(t.digest.value, 0x51c6d660);

    }
}

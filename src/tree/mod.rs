//! The znode tree.
//!
//! Layout for millions of nodes: nodes live in one slab (`Vec<Node>`) and refer to each other by
//! 32-bit index. A node stores only its own name (never its full path) and its data; a parent with
//! children owns a hash table of child indices keyed by the child's name (the name itself is not
//! duplicated: the table hashes and compares through the child node). Leaves allocate nothing for
//! children. Lookup walks the path one segment at a time; getChildren reads one table.

pub mod acl;
pub mod apply;
pub mod digest;
pub mod load;
pub mod quota;

use crate::jute::records::{Acl, Stat, StatPersisted};
use crate::types::{SessionId, CONTAINER_EPHEMERAL_OWNER, TTL_MASK};
use acl::{AclCache, OPEN_ACL_ID};
use hashbrown::HashTable;
use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;

pub type NodeId = u32;
const NO_PARENT: NodeId = u32::MAX;

/// What a snapshot stores per node, in Apache's field order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    /// The *stored* cversion: counts child creations only (see `Stat::cversion`).
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Persistent,
    Ephemeral(SessionId),
    Container,
    Ttl(i64),
}

impl NodeStat {
    pub fn kind(&self, extended_types: bool) -> NodeKind {
        let o = self.ephemeral_owner;
        if o == 0 {
            NodeKind::Persistent
        } else if o == CONTAINER_EPHEMERAL_OWNER {
            NodeKind::Container
        } else if extended_types && (o & TTL_MASK) == TTL_MASK && (o >> 40) & 0xFFFF == 0 {
            NodeKind::Ttl(o & 0x0000_00FF_FFFF_FFFF)
        } else {
            NodeKind::Ephemeral(SessionId(o))
        }
    }

    pub fn persisted(&self) -> StatPersisted {
        StatPersisted {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion,
            aversion: self.aversion,
            ephemeral_owner: self.ephemeral_owner,
            pzxid: self.pzxid,
        }
    }
}

/// One znode. Its name and data share one allocation (`bytes` = name ‖ data), so a node costs a
/// single heap block beyond its slot in the slab.
pub struct Node {
    bytes: Box<[u8]>,
    name_len: u32,
    /// Null data (jute buffer -1) differs from empty data.
    has_data: bool,
    parent: NodeId,
    acl: u32,
    pub stat: NodeStat,
    children: Option<Box<HashTable<NodeId>>>,
}

/// The ACL-cache id -1 (the built-in open ACL) as stored in a node.
const OPEN_ACL_SLOT: u32 = u32::MAX;

impl Node {
    fn new(name: &str, data: Option<&[u8]>, parent: NodeId, acl: i64, stat: NodeStat) -> Node {
        let mut n = Node { bytes: Box::new([]), name_len: 0, has_data: false, parent, acl: 0, stat, children: None };
        n.set_acl(acl);
        n.set_name_and_data(name.as_bytes(), data);
        n
    }
    fn set_name_and_data(&mut self, name: &[u8], data: Option<&[u8]>) {
        let mut v = Vec::with_capacity(name.len() + data.map_or(0, |d| d.len()));
        v.extend_from_slice(name);
        if let Some(d) = data {
            v.extend_from_slice(d);
        }
        self.bytes = v.into_boxed_slice();
        self.name_len = name.len() as u32;
        self.has_data = data.is_some();
    }
    fn name_bytes(&self) -> &[u8] {
        &self.bytes[..self.name_len as usize]
    }
    pub fn name(&self) -> &str {
        // Names are only ever set from `&str`.
        std::str::from_utf8(self.name_bytes()).unwrap_or("")
    }
    pub fn data(&self) -> Option<&[u8]> {
        self.has_data.then(|| &self.bytes[self.name_len as usize..])
    }
    pub fn set_data(&mut self, data: Option<&[u8]>) {
        let name = self.name_bytes().to_vec();
        self.set_name_and_data(&name, data);
    }
    pub fn acl(&self) -> i64 {
        if self.acl == OPEN_ACL_SLOT { OPEN_ACL_ID } else { self.acl as i64 }
    }
    pub fn set_acl(&mut self, id: i64) {
        self.acl = if id == OPEN_ACL_ID { OPEN_ACL_SLOT } else { id as u32 };
    }
    pub fn num_children(&self) -> usize {
        self.children.as_ref().map_or(0, |c| c.len())
    }
    pub fn data_len(&self) -> usize {
        if self.has_data { self.bytes.len() - self.name_len as usize } else { 0 }
    }
}

pub struct DataTree {
    nodes: Vec<Node>,
    free: Vec<NodeId>,
    live: usize,
    hasher: hashbrown::DefaultHashBuilder,
    pub acls: AclCache,
    /// Ephemeral nodes by owner, for closeSession, getEphemerals and `dump`.
    ephemerals: HashMap<SessionId, BTreeSet<NodeId>>,
    /// Containers and TTL nodes, the reaper's candidates.
    pub(crate) containers: BTreeSet<NodeId>,
    pub(crate) ttls: BTreeSet<NodeId>,
    pub quotas: quota::Quotas,
    pub digest: digest::TreeDigest,
    pub extended_types: bool,
    /// Highest zxid applied; only moves forward.
    pub last_processed_zxid: i64,
}

pub const ROOT: NodeId = 0;
pub const ZOOKEEPER: &str = "/zookeeper";
pub const QUOTA_ROOT: &str = "/zookeeper/quota";
pub const CONFIG_NODE: &str = "/zookeeper/config";

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

impl DataTree {
    /// A tree with no nodes at all (not even the root); `new` and the snapshot loader build on it.
    pub(crate) fn empty(extended_types: bool) -> DataTree {
        DataTree {
            nodes: Vec::new(),
            free: Vec::new(),
            live: 0,
            hasher: Default::default(),
            acls: AclCache::new(),
            ephemerals: HashMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            quotas: quota::Quotas::default(),
            digest: digest::TreeDigest::default(),
            extended_types,
            last_processed_zxid: 0,
        }
    }

    /// A new tree with Apache's initial nodes: `/`, `/zookeeper`, `/zookeeper/quota`, and
    /// `/zookeeper/config` (READ for anyone, aversion -1).
    pub fn new() -> DataTree {
        let mut t = DataTree::empty(false);
        t.alloc(Node::new("", Some(&[]), NO_PARENT, OPEN_ACL_ID, NodeStat::default()));
        let zk = t.add_child(ROOT, "zookeeper", Some(Vec::new()), OPEN_ACL_ID, NodeStat::default());
        t.add_child(zk, "quota", Some(Vec::new()), OPEN_ACL_ID, NodeStat::default());
        let cfg_acl = t.acls.intern(&acl::read_acl_unsafe());
        t.add_child(zk, "config", Some(Vec::new()), cfg_acl, NodeStat { aversion: -1, ..Default::default() });
        // Apache creates these by hand, without touching the parents' counters: the visible cversion
        // of `/` is -1 and of `/zookeeper` is -2 because only the child count moves.
        let mut d = t.digest;
        d.recompute(&t);
        t.digest = d;
        t
    }

    fn alloc(&mut self, node: Node) -> NodeId {
        self.live += 1;
        if let Some(id) = self.free.pop() {
            self.nodes[id as usize] = node;
            id
        } else {
            self.nodes.push(node);
            (self.nodes.len() - 1) as NodeId
        }
    }

    fn hash_name(&self, name: &[u8]) -> u64 {
        self.hasher.hash_one(name)
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id as usize]
    }

    pub fn parent(&self, id: NodeId) -> Option<NodeId> {
        let p = self.nodes[id as usize].parent;
        (p != NO_PARENT).then_some(p)
    }

    /// Real znodes (the root counted once).
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// What Apache reports as `Node count`: it stores the root under both "" and "/".
    pub fn reported_node_count(&self) -> usize {
        self.live + 1
    }

    pub fn child(&self, parent: NodeId, name: &str) -> Option<NodeId> {
        let table = self.nodes[parent as usize].children.as_ref()?;
        let h = self.hash_name(name.as_bytes());
        table.find(h, |&c| self.nodes[c as usize].name_bytes() == name.as_bytes()).copied()
    }

    /// Finds a node by path. Paths that are not well-formed simply are not found.
    pub fn lookup(&self, path: &str) -> Option<NodeId> {
        // Apache keeps the root under both "" and "/", so reads of "" see the root.
        if path == "/" || path.is_empty() {
            return Some(ROOT);
        }
        let rest = path.strip_prefix('/')?;
        let mut cur = ROOT;
        for seg in rest.split('/') {
            cur = self.child(cur, seg)?;
        }
        Some(cur)
    }

    pub fn path_of(&self, id: NodeId) -> String {
        if id == ROOT {
            return "/".to_string();
        }
        let mut segs = Vec::new();
        let mut cur = id;
        while cur != ROOT {
            segs.push(self.nodes[cur as usize].name());
            cur = self.nodes[cur as usize].parent;
        }
        let mut s = String::new();
        for seg in segs.iter().rev() {
            s.push('/');
            s.push_str(seg);
        }
        s
    }

    pub fn children(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes[id as usize].children.iter().flat_map(|t| t.iter().copied())
    }

    pub fn child_names(&self, id: NodeId) -> Vec<String> {
        self.children(id).map(|c| self.nodes[c as usize].name().to_string()).collect()
    }

    /// The Stat a client sees: visible cversion = stored*2 - numChildren, and containers/TTL nodes
    /// show ephemeralOwner 0.
    pub fn stat(&self, id: NodeId) -> Stat {
        let n = &self.nodes[id as usize];
        let s = &n.stat;
        let num_children = n.num_children() as i32;
        let ephemeral_owner = match s.kind(self.extended_types) {
            NodeKind::Ephemeral(sid) => sid.0,
            _ => 0,
        };
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: s.aversion,
            ephemeral_owner,
            data_length: n.data_len() as i32,
            num_children,
            pzxid: s.pzxid,
        }
    }

    pub fn acl(&self, id: NodeId) -> &[Acl] {
        self.acls.get(self.nodes[id as usize].acl())
    }

    pub fn kind(&self, id: NodeId) -> NodeKind {
        self.nodes[id as usize].stat.kind(self.extended_types)
    }

    /// Adds a node under `parent` (no counters touched; callers do that). Returns its id.
    pub(crate) fn add_child(&mut self, parent: NodeId, name: &str, data: Option<Vec<u8>>, acl: i64, stat: NodeStat) -> NodeId {
        let id = self.alloc(Node::new(name, data.as_deref(), parent, acl, stat));
        let h = self.hash_name(name.as_bytes());
        let mut table = self.nodes[parent as usize].children.take().unwrap_or_default();
        {
            let nodes = &self.nodes;
            let hasher = &self.hasher;
            table.insert_unique(h, id, |&c| hasher.hash_one(nodes[c as usize].name_bytes()));
        }
        self.nodes[parent as usize].children = Some(table);
        match stat.kind(self.extended_types) {
            NodeKind::Ephemeral(sid) => {
                self.ephemerals.entry(sid).or_default().insert(id);
            }
            NodeKind::Container => {
                self.containers.insert(id);
            }
            NodeKind::Ttl(_) => {
                self.ttls.insert(id);
            }
            NodeKind::Persistent => {}
        }
        id
    }

    /// Unlinks a leaf node and frees its slot.
    pub(crate) fn remove_leaf(&mut self, id: NodeId) {
        debug_assert_eq!(self.nodes[id as usize].num_children(), 0);
        let parent = self.nodes[id as usize].parent;
        let h = self.hash_name(self.nodes[id as usize].name_bytes());
        if let Some(table) = self.nodes[parent as usize].children.as_mut() {
            if let Ok(e) = table.find_entry(h, |&c| c == id) {
                e.remove();
            }
            if table.is_empty() {
                self.nodes[parent as usize].children = None;
            }
        }
        let stat = self.nodes[id as usize].stat;
        match stat.kind(self.extended_types) {
            NodeKind::Ephemeral(sid) => {
                if let Some(set) = self.ephemerals.get_mut(&sid) {
                    set.remove(&id);
                    if set.is_empty() {
                        self.ephemerals.remove(&sid);
                    }
                }
            }
            NodeKind::Container => {
                self.containers.remove(&id);
            }
            NodeKind::Ttl(_) => {
                self.ttls.remove(&id);
            }
            NodeKind::Persistent => {}
        }
        let acl = self.nodes[id as usize].acl();
        self.acls.release(acl);
        let n = &mut self.nodes[id as usize];
        n.bytes = Box::new([]);
        n.name_len = 0;
        n.has_data = false;
        n.parent = NO_PARENT;
        self.free.push(id);
        self.live -= 1;
    }

    /// Paths of a session's ephemerals, sorted.
    pub fn ephemerals_of(&self, session: SessionId) -> Vec<String> {
        let mut v: Vec<String> =
            self.ephemerals.get(&session).map(|s| s.iter().map(|&id| self.path_of(id)).collect()).unwrap_or_default();
        v.sort();
        v
    }

    pub fn ephemeral_sessions(&self) -> impl Iterator<Item = (SessionId, usize)> + '_ {
        self.ephemerals.iter().map(|(s, set)| (*s, set.len()))
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    /// All descendants of a node (not counting itself).
    pub fn count_descendants(&self, id: NodeId) -> usize {
        let mut stack = vec![id];
        let mut n = 0;
        while let Some(cur) = stack.pop() {
            for c in self.children(cur) {
                n += 1;
                stack.push(c);
            }
        }
        n
    }

    /// Σ path length + data length over Apache's node map, as mntr's `approximate_data_size`:
    /// the root is in that map twice, as "" and as "/".
    pub fn approximate_data_size(&self) -> usize {
        let mut total = 1 + self.nodes[ROOT as usize].data_len();
        let mut stack = vec![(ROOT, 0usize)];
        while let Some((id, path_len)) = stack.pop() {
            total += path_len + self.nodes[id as usize].data_len();
            for c in self.children(id) {
                stack.push((c, path_len + 1 + self.nodes[c as usize].name_len as usize));
            }
        }
        total
    }

    /// Node ids depth-first from the root, parents before children (snapshot order).
    pub fn walk(&self) -> Vec<NodeId> {
        let mut out = Vec::with_capacity(self.live);
        let mut stack = vec![ROOT];
        while let Some(id) = stack.pop() {
            out.push(id);
            stack.extend(self.children(id));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tree_matches_apache_initial_state() {
        let t = DataTree::new();
        assert_eq!(t.reported_node_count(), 5);
        let root = t.stat(ROOT);
        assert_eq!((root.cversion, root.num_children), (-1, 1));
        let zk = t.stat(t.lookup("/zookeeper").unwrap());
        assert_eq!(zk.cversion, -2);
        let cfg = t.lookup("/zookeeper/config").unwrap();
        assert_eq!(t.stat(cfg).aversion, -1);
        assert_eq!(t.acl(cfg), acl::read_acl_unsafe().as_slice());
        assert_eq!(t.path_of(cfg), "/zookeeper/config");
        assert!(t.lookup("/zookeeper/").is_none());
        assert!(t.lookup("zookeeper").is_none());
    }

    #[test]
    fn children_are_found_by_name_without_scanning() {
        let mut t = DataTree::new();
        let a = t.add_child(ROOT, "a", None, OPEN_ACL_ID, NodeStat::default());
        for i in 0..1000 {
            t.add_child(a, &format!("c{i}"), None, OPEN_ACL_ID, NodeStat::default());
        }
        assert_eq!(t.node(a).num_children(), 1000);
        let c = t.lookup("/a/c517").unwrap();
        assert_eq!(t.path_of(c), "/a/c517");
        t.remove_leaf(c);
        assert!(t.lookup("/a/c517").is_none());
        assert_eq!(t.node(a).num_children(), 999);
        // The freed slot is reused.
        let d = t.add_child(a, "d", None, OPEN_ACL_ID, NodeStat::default());
        assert_eq!(d, c);
        assert_eq!(t.lookup("/a/d"), Some(d));
    }
}

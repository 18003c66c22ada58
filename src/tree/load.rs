//! What snapshots need from the tree: a parent-before-child walk with snapshot paths, the ACL
//! lists in use, and a loader that rebuilds a tree from snapshot records (Apache's
//! `DataTree.serialize`/`deserialize` and `ReferenceCountedACLCache.serialize`/`deserialize`).
//!
//! The loader never touches node internals from outside this module tree: it uses the same
//! `alloc`/`add_child` as live creates, so ephemeral/container/TTL indexes are filled in the same
//! way, then rebuilds the quota usage nodes and recomputes the digest from scratch.

use super::acl::OPEN_ACL_ID;
use super::quota::LIMIT_NODE;
use super::digest::node_digest;
use super::{DataTree, Node, NodeId, NodeStat, NO_PARENT, QUOTA_ROOT, ROOT};
use crate::jute::records::{Acl, StatPersisted};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Why a snapshot's node records cannot form a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("invalid DataTree: unable to find parent {parent:?} of path {path:?}")]
    MissingParent { path: String, parent: String },
    #[error("invalid DataTree: path {0:?} appears twice")]
    Duplicate(String),
    #[error("invalid DataTree: bad path {0:?}")]
    BadPath(String),
    #[error("invalid DataTree: node {path:?} refers to ACL id {acl_id}, which is not in the ACL cache")]
    UnknownAcl { path: String, acl_id: i64 },
    #[error("invalid DataTree: no root node")]
    NoRoot,
}

impl From<&NodeStat> for StatPersisted {
    fn from(s: &NodeStat) -> StatPersisted {
        s.persisted()
    }
}

impl From<&StatPersisted> for NodeStat {
    fn from(s: &StatPersisted) -> NodeStat {
        NodeStat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion,
            aversion: s.aversion,
            ephemeral_owner: s.ephemeral_owner,
            pzxid: s.pzxid,
        }
    }
}

impl DataTree {
    /// Visits every node depth-first, parents before children, with its snapshot path (`""` for
    /// the root, `/a/b` otherwise), data (None = null), ACL-cache id and stored stat. Children are
    /// visited in byte order of their names, so the same tree always serialises to the same bytes
    /// (Apache uses Java HashSet order, which any reader accepts). Stops at the first error.
    pub fn for_each_snapshot_node<E>(
        &self,
        mut f: impl FnMut(&str, Option<&[u8]>, i64, &StatPersisted) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.nodes.is_empty() {
            return Ok(());
        }
        let mut path = String::new();
        // (node, length of its parent's path in `path`)
        let mut stack: Vec<(NodeId, usize)> = vec![(ROOT, 0)];
        let mut kids: Vec<NodeId> = Vec::new();
        while let Some((id, parent_len)) = stack.pop() {
            let n = &self.nodes[id as usize];
            path.truncate(parent_len);
            if id != ROOT {
                path.push('/');
                path.push_str(n.name());
            }
            f(&path, n.data(), n.acl(), &n.stat.persisted())?;
            kids.clear();
            kids.extend(self.children(id));
            // Pushed in reverse so that they pop in ascending name order.
            kids.sort_unstable_by(|a, b| self.nodes[*b as usize].name_bytes().cmp(self.nodes[*a as usize].name_bytes()));
            let len = path.len();
            stack.extend(kids.iter().map(|&c| (c, len)));
        }
        Ok(())
    }

    /// The ACL-cache entries in use, `(id, list)` sorted by id; the built-in open ACL (-1) is not
    /// part of the cache and is never listed. Our cache drops a list as soon as its last node goes,
    /// so the lists referenced by nodes are exactly the cache's contents.
    pub fn acl_cache_entries(&self) -> Vec<(i64, Vec<Acl>)> {
        let mut ids = BTreeSet::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if n.parent == NO_PARENT && i as NodeId != ROOT {
                continue; // a free slot
            }
            let a = n.acl();
            if a != OPEN_ACL_ID {
                ids.insert(a);
            }
        }
        ids.into_iter().map(|id| (id, self.acls.get(id).to_vec())).collect()
    }
}

/// Rebuilds a tree from snapshot records: first every ACL-cache entry (`insert_acl`), then every
/// node parent-before-child (`insert_node`), then `finish`.
///
/// ACL ids: the cache is rebuilt by interning the snapshot's lists in ascending id order, so ids
/// 1..n stay the same; lists no node uses are dropped (Apache's `purgeUnused`), and a gap in the
/// snapshot's ids closes up (ids are internal: clients never see them). Reference counts come from
/// the nodes, one per node.
pub struct TreeLoader {
    tree: DataTree,
    snapshot_acls: BTreeMap<i64, Vec<Acl>>,
    /// Snapshot id -> our id, filled when the first node arrives.
    remap: Option<HashMap<i64, i64>>,
    /// The tree digest of the nodes inserted so far.
    digest: u64,
    /// The parent of the last node inserted: a snapshot lists a node's children one after
    /// another (depth first), so most nodes have the same parent as the node before them.
    last_parent: Option<(String, NodeId)>,
}

impl TreeLoader {
    /// `extended_types` (zoo.cfg `extendedTypesEnabled`) decides whether an ephemeralOwner with the
    /// TTL bits set is a TTL node or an ephemeral, as Apache's `EphemeralType.get`.
    pub fn new(extended_types: bool) -> TreeLoader {
        let tree = DataTree::empty(extended_types);
        TreeLoader { tree, snapshot_acls: BTreeMap::new(), remap: None, digest: 0, last_parent: None }
    }

    /// One ACL-cache entry of the snapshot. A later entry with the same id replaces an earlier one.
    pub fn insert_acl(&mut self, id: i64, acl: Vec<Acl>) {
        self.snapshot_acls.insert(id, acl);
    }

    fn remap(&mut self) -> &HashMap<i64, i64> {
        if self.remap.is_none() {
            // One "loader" reference per list keeps the ids in snapshot order; released in finish.
            let mut m = HashMap::new();
            for (id, list) in &self.snapshot_acls {
                m.insert(*id, self.tree.acls.intern(list));
            }
            self.remap = Some(m);
        }
        self.remap.as_ref().unwrap()
    }

    /// One node record. `path` is the snapshot path: `""` for the root (which must come first),
    /// otherwise `/a/b` whose parent was inserted before.
    pub fn insert_node(&mut self, path: &str, data: Option<Vec<u8>>, acl_id: i64, stat: NodeStat) -> Result<NodeId, LoadError> {
        let acl = if acl_id == OPEN_ACL_ID {
            OPEN_ACL_ID
        } else {
            match self.remap().get(&acl_id) {
                Some(&ours) => ours,
                None => return Err(LoadError::UnknownAcl { path: path.to_string(), acl_id }),
            }
        };
        let Some(slash) = path.rfind('/') else {
            // Apache: a path without '/' is the root.
            if !self.tree.nodes.is_empty() {
                return Err(LoadError::Duplicate(path.to_string()));
            }
            if !path.is_empty() {
                return Err(LoadError::BadPath(path.to_string()));
            }
            if acl != OPEN_ACL_ID {
                self.tree.acls.add_ref(acl);
            }
            let id = self.tree.alloc(Node::new("", data.as_deref(), NO_PARENT, acl, stat));
            self.digest = self.digest.wrapping_add(node_digest("/", self.tree.node(id)));
            return Ok(id);
        };
        let (ppath, name) = (&path[..slash], &path[slash + 1..]);
        if name.is_empty() {
            return Err(LoadError::BadPath(path.to_string()));
        }
        let parent = if self.tree.nodes.is_empty() {
            None
        } else if ppath.is_empty() {
            Some(ROOT)
        } else {
            match &self.last_parent {
                Some((p, id)) if p == ppath => Some(*id),
                _ => {
                    let found = self.tree.lookup(ppath);
                    if let Some(id) = found {
                        self.last_parent = Some((ppath.to_string(), id));
                    }
                    found
                }
            }
        };
        let Some(parent) = parent else {
            return Err(LoadError::MissingParent { path: path.to_string(), parent: ppath.to_string() });
        };
        if self.tree.child(parent, name).is_some() {
            return Err(LoadError::Duplicate(path.to_string()));
        }
        if acl != OPEN_ACL_ID {
            self.tree.acls.add_ref(acl);
        }
        let id = self.tree.add_child(parent, name, data, acl, stat);
        // The digest as the nodes arrive: the snapshot gives each node's full path, which
        // recomputing afterwards would have to rebuild node by node.
        self.digest = self.digest.wrapping_add(node_digest(path, self.tree.node(id)));
        Ok(id)
    }

    /// Drops unused ACL lists, rebuilds quota usage (Apache's `setupQuota`: every leaf
    /// `/zookeeper/quota/**/zookeeper_limits` registers its path and recounts its subtree into the
    /// `zookeeper_stats` node) and recomputes the tree digest. `last_processed_zxid` is left 0 for
    /// the caller to set (it comes from the snapshot's file name).
    pub fn finish(mut self) -> Result<DataTree, LoadError> {
        if self.tree.nodes.is_empty() {
            return Err(LoadError::NoRoot);
        }
        let remap = self.remap().clone();
        // One loader reference per snapshot entry (duplicated lists share one of our ids but took
        // one reference each).
        for ours in remap.values() {
            self.tree.acls.release(*ours);
        }
        let mut tree = self.tree;
        let mut limits = Vec::new();
        if let Some(q) = tree.lookup(QUOTA_ROOT) {
            let mut stack = vec![(q, QUOTA_ROOT.to_string())];
            while let Some((id, p)) = stack.pop() {
                let n = tree.node(id);
                if n.num_children() == 0 {
                    if let Some(target) = p.strip_prefix(QUOTA_ROOT).and_then(|r| r.strip_suffix(&format!("/{LIMIT_NODE}"))) {
                        limits.push((p.clone(), target.to_string()));
                    }
                    continue;
                }
                for c in tree.children(id) {
                    stack.push((c, format!("{p}/{}", tree.node(c).name())));
                }
            }
        }
        for (limit_path, target) in limits {
            tree.quota_on_create(&limit_path, 0);
            if target.is_empty() {
                continue;
            }
            if tree.lookup(&format!("{QUOTA_ROOT}{target}/{}", super::quota::STAT_NODE)).is_none() {
                tracing::warn!("Missing quota stat node {QUOTA_ROOT}{target}/{}", super::quota::STAT_NODE);
            }
            tree.recount_quota(&target);
        }
        // Quota usage lives under /zookeeper/, which the digest leaves out: rebuilding it above
        // did not change the sum taken while loading.
        tree.digest.value = self.digest;
        debug_assert_eq!(tree.digest.value, {
            let mut d = tree.digest;
            d.recompute(&tree);
            d.value
        });
        Ok(tree)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::records::Id;
    use crate::jute::txn::{Txn, TxnHeader};
    use crate::tree::acl::{open_acl_unsafe, read_acl_unsafe};

    type Dump = Vec<(String, Option<Vec<u8>>, Vec<Acl>, StatPersisted)>;
    fn dump(t: &DataTree) -> Dump {
        let mut v = Vec::new();
        t.for_each_snapshot_node::<()>(|p, d, a, s| {
            v.push((p.to_string(), d.map(|d| d.to_vec()), t.acls.get(a).to_vec(), s.clone()));
            Ok(())
        })
        .unwrap();
        v
    }

    fn reload(t: &DataTree) -> DataTree {
        let mut l = TreeLoader::new(t.extended_types);
        for (id, list) in t.acl_cache_entries() {
            l.insert_acl(id, list);
        }
        t.for_each_snapshot_node::<LoadError>(|p, d, a, s| {
            l.insert_node(p, d.map(|d| d.to_vec()), a, s.into()).map(|_| ())
        })
        .unwrap();
        l.finish().unwrap()
    }

    #[test]
    fn new_tree_walks_in_snapshot_order() {
        let t = DataTree::new();
        let paths: Vec<String> = dump(&t).into_iter().map(|x| x.0).collect();
        assert_eq!(paths, ["", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"]);
        assert_eq!(t.acl_cache_entries(), vec![(1, read_acl_unsafe())]);
    }

    #[test]
    fn reload_rebuilds_the_same_tree() {
        let mut t = DataTree::new();
        let mut tr = Vec::new();
        let h = |zxid: i64, sid: i64| TxnHeader { client_id: sid, cxid: 1, zxid, time: 1000 + zxid, txn_type: 0 };
        let digest_acl = vec![Acl { perms: 31, id: Id { scheme: "digest".into(), id: "u:x".into() } }];
        let mk = |p: &str, acl: Vec<Acl>, eph: bool| Txn::Create {
            create2: false, path: p.into(), data: Some(p.as_bytes().to_vec()), acl, ephemeral: eph, parent_cversion: -1,
        };
        t.apply(&h(1, 5), &mk("/a", open_acl_unsafe(), false), &mut tr);
        t.apply(&h(2, 5), &mk("/a/b", digest_acl.clone(), false), &mut tr);
        t.apply(&h(3, 5), &mk("/a/e", digest_acl.clone(), true), &mut tr);
        t.apply(&h(4, 5), &Txn::SetData { reconfig: false, path: "/a".into(), data: None, version: 1 }, &mut tr);
        t.apply(&h(5, 5), &mk("/zookeeper/quota/a", open_acl_unsafe(), false), &mut tr);
        t.apply(&h(6, 5), &Txn::Create { create2: false, path: "/zookeeper/quota/a/zookeeper_limits".into(), data: Some(b"count=10,bytes=-1".to_vec()), acl: open_acl_unsafe(), ephemeral: false, parent_cversion: -1 }, &mut tr);
        t.apply(&h(7, 5), &Txn::Create { create2: false, path: "/zookeeper/quota/a/zookeeper_stats".into(), data: Some(b"count=0,bytes=0".to_vec()), acl: open_acl_unsafe(), ephemeral: false, parent_cversion: -1 }, &mut tr);
        t.apply(&h(8, 5), &mk("/a/c", open_acl_unsafe(), false), &mut tr);
        let stats = t.lookup("/zookeeper/quota/a/zookeeper_stats").unwrap();
        assert_eq!(t.node(stats).data(), Some(&b"count=4,bytes=12"[..]));

        let r = reload(&t);
        assert_eq!(dump(&r), dump(&t));
        assert_eq!(r.digest, t.digest);
        assert_eq!(r.len(), t.len());
        assert_eq!(r.ephemerals_of(crate::types::SessionId(5)), vec!["/a/e".to_string()]);
        assert_eq!(r.acl_cache_entries(), t.acl_cache_entries());
        // Quota tracking works on the loaded tree.
        let mut r = r;
        r.apply(&h(9, 5), &mk("/a/d", open_acl_unsafe(), false), &mut tr);
        let stats = r.lookup("/zookeeper/quota/a/zookeeper_stats").unwrap();
        assert_eq!(r.node(stats).data(), Some(&b"count=5,bytes=16"[..]));
        // Refcounts came from the nodes: removing both users frees the list.
        r.apply(&h(10, 5), &Txn::Delete { container: false, path: "/a/b".into() }, &mut tr);
        r.apply(&h(11, 5), &Txn::Delete { container: false, path: "/a/e".into() }, &mut tr);
        assert!(r.acl_cache_entries().iter().all(|(_, l)| *l != digest_acl));
    }

    #[test]
    fn loader_rejects_malformed_trees() {
        let mut l = TreeLoader::new(false);
        assert!(matches!(l.insert_node("/a", None, -1, NodeStat::default()), Err(LoadError::MissingParent { .. })));
        l.insert_node("", None, -1, NodeStat::default()).unwrap();
        l.insert_node("/a", None, -1, NodeStat::default()).unwrap();
        assert!(matches!(l.insert_node("/a", None, -1, NodeStat::default()), Err(LoadError::Duplicate(_))));
        assert!(matches!(l.insert_node("/b/c", None, -1, NodeStat::default()), Err(LoadError::MissingParent { .. })));
        assert!(matches!(l.insert_node("/a", None, 7, NodeStat::default()), Err(LoadError::UnknownAcl { .. })));
        assert!(matches!(TreeLoader::new(false).finish(), Err(LoadError::NoRoot)));
    }

    #[test]
    fn unused_and_duplicate_acl_entries_are_dropped() {
        let mut l = TreeLoader::new(false);
        l.insert_acl(1, read_acl_unsafe());
        l.insert_acl(2, open_acl_unsafe());
        l.insert_acl(3, read_acl_unsafe());
        l.insert_node("", Some(vec![]), -1, NodeStat::default()).unwrap();
        l.insert_node("/x", None, 3, NodeStat::default()).unwrap();
        l.insert_node("/y", None, 1, NodeStat::default()).unwrap();
        let t = l.finish().unwrap();
        assert_eq!(t.acl_cache_entries(), vec![(1, read_acl_unsafe())]);
        assert_eq!(t.acl(t.lookup("/x").unwrap()), read_acl_unsafe().as_slice());
    }
}

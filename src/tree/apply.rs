//! Applying a txn to the tree. This one function serves live commits and log replay, so it must be
//! idempotent on replay of a fuzzy snapshot: creating an existing node still moves the parent's
//! cversion/pzxid forward, deleting a missing node is ignored.

use super::{DataTree, NodeId, NodeStat, ROOT};
use crate::error::ErrorCode;
use crate::jute::records::Stat;
use crate::jute::txn::{Txn, TxnHeader};
use crate::types::{CONTAINER_EPHEMERAL_OWNER, TTL_MASK};

/// Watch event types (server-sent ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    NodeCreated = 1,
    NodeDeleted = 2,
    NodeDataChanged = 3,
    NodeChildrenChanged = 4,
}

/// A change that may fire watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    pub kind: EventType,
    pub path: String,
    /// The ACL of the node the event is about (the parent's for NodeChildrenChanged): a
    /// connection without READ on it gets no event (CVE-2024-23944, Apache 3.8.4+/3.9.2+).
    pub acl: Vec<crate::jute::records::Acl>,
}

/// What applying one txn produced, for building the reply (Apache's ProcessTxnResult).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnResult {
    pub txn_type: i32,
    pub err: i32,
    pub path: String,
    pub stat: Option<Stat>,
    pub multi: Vec<TxnResult>,
}

fn parent_path(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

impl DataTree {
    pub fn apply(&mut self, hdr: &TxnHeader, txn: &Txn, triggers: &mut Vec<Trigger>) -> TxnResult {
        let mut r = TxnResult { txn_type: txn.type_code(), ..Default::default() };
        let res = self.apply_inner(hdr, txn, triggers, &mut r);
        if let Err(e) = res {
            r.err = e.code();
        }
        if hdr.zxid > self.last_processed_zxid {
            self.last_processed_zxid = hdr.zxid;
        }
        r
    }

    fn apply_inner(&mut self, hdr: &TxnHeader, txn: &Txn, triggers: &mut Vec<Trigger>, r: &mut TxnResult) -> Result<(), ErrorCode> {
        match txn {
            Txn::Create { path, data, acl, ephemeral, parent_cversion, .. } => {
                let owner = if *ephemeral { hdr.client_id } else { 0 };
                r.path = path.clone();
                r.stat = Some(self.create_node(path, data.clone(), acl, owner, *parent_cversion, hdr.zxid, hdr.time, triggers)?);
            }
            Txn::CreateContainer { path, data, acl, parent_cversion } => {
                r.path = path.clone();
                r.stat = Some(self.create_node(path, data.clone(), acl, CONTAINER_EPHEMERAL_OWNER, *parent_cversion, hdr.zxid, hdr.time, triggers)?);
            }
            Txn::CreateTtl { path, data, acl, parent_cversion, ttl } => {
                r.path = path.clone();
                r.stat = Some(self.create_node(path, data.clone(), acl, TTL_MASK | ttl, *parent_cversion, hdr.zxid, hdr.time, triggers)?);
            }
            Txn::Delete { path, .. } => {
                r.path = path.clone();
                self.delete_node(path, hdr.zxid, triggers)?;
            }
            Txn::SetData { path, data, version, .. } => {
                r.path = path.clone();
                let id = self.lookup(path).ok_or(ErrorCode::NoNode)?;
                let old_len = self.node(id).data_len() as i64;
                let new_len = data.as_ref().map_or(0, |d| d.len()) as i64;
                self.modify_node(id, path, |n| {
                    n.set_data(data.as_deref());
                    n.stat.mtime = hdr.time;
                    n.stat.mzxid = hdr.zxid;
                    n.stat.version = *version;
                });
                self.quota_update(path, 0, new_len - old_len);
                triggers.push(Trigger { kind: EventType::NodeDataChanged, path: path.clone(), acl: self.acl(id).to_vec() });
                r.stat = Some(self.stat(id));
            }
            Txn::SetAcl { path, acl, version } => {
                r.path = path.clone();
                let id = self.lookup(path).ok_or(ErrorCode::NoNode)?;
                let new_acl = self.acls.intern(acl);
                let old_acl = self.node(id).acl();
                self.acls.release(old_acl);
                self.modify_node(id, path, |n| {
                    n.set_acl(new_acl);
                    n.stat.aversion = *version;
                });
                r.stat = Some(self.stat(id));
            }
            Txn::Check { path, .. } => {
                r.path = path.clone();
            }
            Txn::CreateSession { .. } => {}
            Txn::Error { err } => r.err = *err,
            Txn::CloseSession { paths } => {
                for p in paths {
                    // A path that is already gone (replay) is skipped, as Apache does.
                    let _ = self.delete_node(p, hdr.zxid, triggers);
                }
            }
            Txn::Multi(txns) => {
                let failed = txns.iter().any(|t| matches!(t, Txn::Error { .. }));
                for t in txns {
                    if failed {
                        // Nothing is applied; ops before the failing one report 0.
                        let err = if let Txn::Error { err } = t { *err } else { 0 };
                        r.multi.push(TxnResult { txn_type: -1, err, ..Default::default() });
                    } else {
                        r.multi.push(self.apply(hdr, t, triggers));
                    }
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn create_node(
        &mut self,
        path: &str,
        data: Option<Vec<u8>>,
        acl: &[crate::jute::records::Acl],
        ephemeral_owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<Stat, ErrorCode> {
        let ppath = parent_path(path);
        let name = &path[path.rfind('/').ok_or(ErrorCode::BadArguments)? + 1..];
        let parent = self.lookup(ppath).ok_or(ErrorCode::NoNode)?;
        let cversion = if parent_cversion == -1 { self.node(parent).stat.cversion + 1 } else { parent_cversion };
        if self.child(parent, name).is_some() {
            // Replay over a fuzzy snapshot: the parent's counters still move forward.
            if cversion > self.node(parent).stat.cversion {
                self.modify_node(parent, ppath, |n| {
                    n.stat.cversion = cversion;
                    n.stat.pzxid = zxid;
                });
            }
            return Err(ErrorCode::NodeExists);
        }
        let acl_id = self.acls.intern(acl);
        let data_len = data.as_ref().map_or(0, |d| d.len()) as i64;
        let stat = NodeStat { czxid: zxid, mzxid: zxid, ctime: time, mtime: time, pzxid: zxid, ephemeral_owner, ..Default::default() };
        self.modify_node(parent, ppath, |n| {
            n.stat.cversion = cversion;
            n.stat.pzxid = zxid;
        });
        let id = self.add_child(parent, name, data, acl_id, stat);
        let mut d = self.digest;
        d.add(path, self.node(id));
        self.digest = d;
        self.quota_on_create(path, data_len);
        triggers.push(Trigger { kind: EventType::NodeCreated, path: path.to_string(), acl: acl.to_vec() });
        triggers.push(Trigger { kind: EventType::NodeChildrenChanged, path: ppath.to_string(), acl: self.acl(parent).to_vec() });
        Ok(self.stat(id))
    }

    fn delete_node(&mut self, path: &str, zxid: i64, triggers: &mut Vec<Trigger>) -> Result<(), ErrorCode> {
        let Some(id) = self.lookup(path) else {
            // Replay over a fuzzy snapshot: the child may already be gone from the snapshot while
            // its parent was written earlier; the parent's pzxid still moves forward (as Apache's
            // DataTree.deleteNode).
            if let Some(parent) = self.lookup(parent_path(path))
                && path != "/" && zxid > self.node(parent).stat.pzxid {
                    self.modify_node(parent, parent_path(path), |n| n.stat.pzxid = zxid);
                }
            return Err(ErrorCode::NoNode);
        };
        let id: NodeId = id;
        if id == ROOT || self.node(id).num_children() > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        let ppath = parent_path(path);
        let parent = self.parent(id).ok_or(ErrorCode::BadArguments)?;
        let data_len = self.node(id).data_len() as i64;
        let acl = self.acl(id).to_vec();
        let mut d = self.digest;
        d.remove(path, self.node(id));
        self.digest = d;
        self.remove_leaf(id);
        if zxid > self.node(parent).stat.pzxid {
            self.modify_node(parent, ppath, |n| n.stat.pzxid = zxid);
        }
        self.quota_on_delete(path, data_len);
        triggers.push(Trigger { kind: EventType::NodeDeleted, path: path.to_string(), acl });
        triggers.push(Trigger { kind: EventType::NodeChildrenChanged, path: ppath.to_string(), acl: self.acl(parent).to_vec() });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::acl::open_acl_unsafe;

    fn hdr(zxid: i64) -> TxnHeader {
        TxnHeader { client_id: 0x1234, cxid: 1, zxid, time: 1000 + zxid, txn_type: 0 }
    }
    fn create(path: &str, pcv: i32, eph: bool) -> Txn {
        Txn::Create { create2: false, path: path.into(), data: Some(b"hi".to_vec()), acl: open_acl_unsafe(), ephemeral: eph, parent_cversion: pcv }
    }

    #[test]
    fn create_and_delete_update_parent_as_apache() {
        let mut t = DataTree::new();
        let mut tr = Vec::new();
        let r = t.apply(&hdr(2), &create("/a", 1, false), &mut tr);
        assert_eq!(r.err, 0);
        let s = r.stat.unwrap();
        assert_eq!((s.czxid, s.mzxid, s.pzxid, s.ctime, s.data_length), (2, 2, 2, 1002, 2));
        let root = t.stat(ROOT);
        // stored cversion 1, two children: visible 1*2-2 = 0.
        assert_eq!((root.cversion, root.num_children, root.pzxid), (0, 2, 2));
        let got: Vec<(EventType, &str)> = tr.iter().map(|t| (t.kind, t.path.as_str())).collect();
        assert_eq!(got, vec![(EventType::NodeCreated, "/a"), (EventType::NodeChildrenChanged, "/")]);
        t.apply(&hdr(3), &create("/a/e", 1, true), &mut tr);
        assert_eq!(t.ephemerals_of(crate::types::SessionId(0x1234)), vec!["/a/e".to_string()]);
        tr.clear();
        let r = t.apply(&hdr(4), &Txn::Delete { container: false, path: "/a/e".into() }, &mut tr);
        assert_eq!(r.err, 0);
        let a = t.stat(t.lookup("/a").unwrap());
        // Deletes leave the stored counter alone: stored 1, no children -> visible 2.
        assert_eq!((a.cversion, a.pzxid, a.num_children), (2, 4, 0));
        assert!(t.ephemerals_of(crate::types::SessionId(0x1234)).is_empty());
    }

    #[test]
    fn replaying_an_existing_create_moves_parent_counters() {
        let mut t = DataTree::new();
        let mut tr = Vec::new();
        t.apply(&hdr(2), &create("/a", 1, false), &mut tr);
        let r = t.apply(&hdr(5), &create("/a", 4, false), &mut tr);
        assert_eq!(r.err, ErrorCode::NodeExists.code());
        assert_eq!(t.node(ROOT).stat.cversion, 4);
        assert_eq!(t.node(ROOT).stat.pzxid, 5);
        assert_eq!(t.last_processed_zxid, 5);
    }

    #[test]
    fn replaying_a_delete_of_a_missing_node_moves_the_parent_pzxid() {
        let mut t = DataTree::new();
        let mut tr = Vec::new();
        t.apply(&hdr(2), &create("/p", 1, false), &mut tr);
        let r = t.apply(&hdr(9), &Txn::Delete { container: false, path: "/p/gone".into() }, &mut tr);
        assert_eq!(r.err, ErrorCode::NoNode.code());
        assert_eq!(t.node(t.lookup("/p").unwrap()).stat.pzxid, 9);
    }

    #[test]
    fn failed_multi_applies_nothing() {
        let mut t = DataTree::new();
        let mut tr = Vec::new();
        let m = Txn::Multi(vec![create("/m1", 1, false), Txn::Error { err: -103 }, Txn::Error { err: -2 }]);
        let r = t.apply(&hdr(2), &m, &mut tr);
        assert!(t.lookup("/m1").is_none());
        assert_eq!(r.multi.iter().map(|x| x.err).collect::<Vec<_>>(), vec![0, -103, -2]);
        assert!(tr.is_empty());
    }

    #[test]
    fn digest_tracks_incremental_changes() {
        let mut t = DataTree::new();
        let mut tr = Vec::new();
        t.apply(&hdr(2), &create("/a", 1, false), &mut tr);
        t.apply(&hdr(3), &Txn::SetData { reconfig: false, path: "/a".into(), data: None, version: 1 }, &mut tr);
        t.apply(&hdr(4), &create("/a/b", 1, false), &mut tr);
        t.apply(&hdr(5), &Txn::Delete { container: false, path: "/a/b".into() }, &mut tr);
        let incremental = t.digest;
        let mut full = t.digest;
        full.recompute(&t);
        assert_eq!(incremental, full);
    }
}

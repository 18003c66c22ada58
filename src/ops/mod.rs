//! One file per opcode. A write's `prep` checks the request in Apache's order against a pending
//! view of the tree and returns the txn to log and apply (or the error code, which becomes an
//! error txn: failed writes consume a zxid). A read's `read` answers from the tree and may
//! register a watch.

pub mod add_watch;
pub mod check;
pub mod create;
pub mod delete;
pub mod exists;
pub mod get_acl;
pub mod get_all_children_number;
pub mod get_children;
pub mod get_data;
pub mod get_ephemerals;
pub mod multi;
pub mod multi_read;
pub mod reconfig;
pub mod remove_watches;
pub mod set_acl;
pub mod set_data;
pub mod set_watches;
pub mod sync;
pub mod who_am_i;

use crate::auth::AuthContext;
use crate::error::ErrorCode;
use crate::jute::records::Acl;
use crate::jute::{Jute, Reader};
use crate::tree::digest::{image_digest, DataSum};
use crate::tree::{DataTree, NodeStat};
use crate::types::SessionId;
use crate::watch::{Watches, WatcherId};
use std::collections::{HashMap, VecDeque};

/// Settings the ops consult.
#[derive(Clone, Debug, Default)]
pub struct OpsConfig {
    pub extended_types: bool,
    pub enforce_quota: bool,
    pub reconfig_enabled: bool,
}

/// A node as the pending view sees it (Apache's ChangeRecord).
#[derive(Clone, Debug)]
pub struct Rec {
    pub stat: NodeStat,
    pub num_children: i32,
    pub acl: Vec<Acl>,
    /// The data's CRC32 and length: enough to digest the node as it will be.
    pub data: DataSum,
}

/// Changes of writes that have been prepared but not yet applied (Apache's outstandingChanges).
/// A write is checked against the tree as it will be once every earlier write has been applied,
/// so writes can be pipelined while earlier ones wait for their fsync.
#[derive(Default)]
pub struct Pending {
    changes: HashMap<String, (i64, Option<Rec>)>,
    order: VecDeque<(i64, String)>,
    /// Previous values, kept while a multi is being prepared so a failed multi leaves no trace.
    undo: Option<Vec<(String, Option<(i64, Option<Rec>)>)>>,
    /// The tree digest once every prepared write is applied (None: nothing pending, so the
    /// tree's own). A proposal carries it (TxnDigest), as Apache's leader does.
    digest: Option<u64>,
    /// `digest` when the multi being prepared began.
    undo_digest: Option<u64>,
}

impl Pending {
    /// Forgets changes made by txns up to `zxid`, now applied to the tree.
    pub fn committed(&mut self, zxid: i64) {
        while let Some((z, _)) = self.order.front() {
            if *z > zxid {
                break;
            }
            let (z, path) = self.order.pop_front().unwrap();
            if self.changes.get(&path).is_some_and(|(cz, _)| *cz == z) {
                self.changes.remove(&path);
            }
        }
        if self.order.is_empty() {
            // Everything is applied: the tree's digest is the truth again.
            self.digest = None;
        }
    }

    /// The tree digest after every prepared write, given the applied tree's.
    pub fn digest(&self, tree_digest: u64) -> u64 {
        self.digest.unwrap_or(tree_digest)
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Pending creates (and deletes) of a session's ephemerals, for closeSession.
    pub fn ephemerals_of(&self, owner: i64) -> (Vec<String>, Vec<String>) {
        let mut created = Vec::new();
        let mut deleted = Vec::new();
        for (path, (_, rec)) in &self.changes {
            match rec {
                Some(r) if r.stat.ephemeral_owner == owner => created.push(path.clone()),
                None => deleted.push(path.clone()),
                _ => {}
            }
        }
        (created, deleted)
    }
}

/// The tree plus the pending changes.
pub struct PendingView<'a> {
    pub tree: &'a DataTree,
    pending: &'a mut Pending,
    zxid: i64,
}

impl<'a> PendingView<'a> {
    pub fn new(tree: &'a DataTree, pending: &'a mut Pending, zxid: i64) -> Self {
        PendingView { tree, pending, zxid }
    }

    /// Apache's getRecordForPath: NoNode when absent. The root is also found as "".
    pub fn get(&self, path: &str) -> Result<Rec, ErrorCode> {
        let path = if path.is_empty() { "/" } else { path };
        if let Some((_, c)) = self.pending.changes.get(path) {
            return c.clone().ok_or(ErrorCode::NoNode);
        }
        let id = self.tree.lookup(path).ok_or(ErrorCode::NoNode)?;
        let n = self.tree.node(id);
        Ok(Rec { stat: n.stat, num_children: n.num_children() as i32, acl: self.tree.acl(id).to_vec(), data: DataSum::of(path, n.data().unwrap_or(&[])) })
    }

    /// The digest of the node at `path` as the pending view sees it (0 when absent).
    fn digest_of(&self, path: &str) -> u64 {
        if let Some((_, c)) = self.pending.changes.get(path) {
            return c.as_ref().map_or(0, |r| image_digest(path, &r.stat, r.data));
        }
        match self.tree.lookup(path) {
            Some(id) => crate::tree::digest::node_digest(path, self.tree.node(id)),
            None => 0,
        }
    }

    pub fn put(&mut self, path: &str, rec: Option<Rec>) {
        let path = if path.is_empty() { "/" } else { path };
        // Keep the predicted digest in step: the node as it was (pending or applied) out, as it
        // will be in.
        let before = self.digest_of(path);
        let after = rec.as_ref().map_or(0, |r| image_digest(path, &r.stat, r.data));
        let d = self.pending.digest(self.tree.digest.value);
        self.pending.digest = Some(d.wrapping_sub(before).wrapping_add(after));
        let old = self.pending.changes.insert(path.to_string(), (self.zxid, rec));
        if let Some(undo) = self.pending.undo.as_mut() {
            undo.push((path.to_string(), old));
        }
        self.pending.order.push_back((self.zxid, path.to_string()));
    }

    pub fn begin_undo(&mut self) {
        self.pending.undo = Some(Vec::new());
        self.pending.undo_digest = self.pending.digest;
    }

    pub fn end_undo(&mut self, rollback: bool) {
        let Some(undo) = self.pending.undo.take() else { return };
        if rollback {
            self.pending.digest = self.pending.undo_digest;
            for (path, old) in undo.into_iter().rev() {
                match old {
                    Some(v) => self.pending.changes.insert(path, v),
                    None => self.pending.changes.remove(&path),
                };
            }
            // Order entries for the rolled-back zxid are harmless: `committed` only removes a
            // change whose zxid matches.
        }
    }
}

/// Everything a write's checks may consult.
pub struct WriteCtx<'a> {
    pub view: PendingView<'a>,
    pub auth: AuthContext<'a>,
    pub session: SessionId,
    pub cfg: &'a OpsConfig,
    pub zxid: i64,
    pub time: i64,
}

/// Everything a read may consult or change (watch registration).
pub struct ReadCtx<'a> {
    pub tree: &'a DataTree,
    pub watches: &'a mut Watches,
    pub watcher: WatcherId,
    pub auth: AuthContext<'a>,
    pub session: SessionId,
    pub last_zxid: i64,
}

pub fn decode<T: Jute>(body: &[u8]) -> Result<T, ErrorCode> {
    T::read(&mut Reader::new(body)).map_err(|_| ErrorCode::MarshallingError)
}

/// Apache's PathUtils.validatePath, over UTF-16 code units.
pub fn validate_path(path: &str) -> Result<(), ErrorCode> {
    let bad = Err(ErrorCode::BadArguments);
    if !path.starts_with('/') {
        return bad;
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return bad;
    }
    let chars: Vec<char> = path.chars().collect();
    for i in 1..chars.len() {
        let c = chars[i];
        let last = chars[i - 1];
        let next_is_end = i + 1 == chars.len() || chars[i + 1] == '/';
        if c == '\0' || (c == '/' && last == '/') {
            return bad;
        }
        if c == '.' && last == '.' && i >= 2 && chars[i - 2] == '/' && next_is_end {
            return bad;
        }
        if c == '.' && last == '/' && next_is_end {
            return bad;
        }
        let u = c as u32;
        if (0x01..=0x1f).contains(&u)
            || (0x7f..=0x9f).contains(&u)
            || (0xd800..=0xf8ff).contains(&u)
            || (0xfff0..=0xffff).contains(&u)
            || u > 0xffff
        {
            return bad;
        }
    }
    Ok(())
}

/// Apache's checkAndIncVersion: -1 matches any version; the next version skips -1.
pub fn check_and_inc_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    let next = current.wrapping_add(1);
    Ok(if next == -1 { 0 } else { next })
}

pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn path_validation_matches_apache() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/.a", "/a/..b", "/zookeeper"] {
            assert!(validate_path(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "/a/", "//", "/a//b", "/.", "/a/.", "/..", "/a/../b", "/a\u{1}", "/a\u{e000}", "/a\u{1F600}", "/\u{fffd}"] {
            assert!(validate_path(bad).is_err(), "{bad:?}");
        }
    }
}

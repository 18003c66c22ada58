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
use crate::tree::{DataTree, NodeStat};
use crate::types::SessionId;
use crate::watch::{Watches, WatcherId};
use std::collections::HashMap;

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
}

/// The tree plus the changes of ops prepared earlier in the same multi.
pub struct PendingView<'a> {
    pub tree: &'a DataTree,
    changes: HashMap<String, Option<Rec>>,
}

impl<'a> PendingView<'a> {
    pub fn new(tree: &'a DataTree) -> Self {
        PendingView { tree, changes: HashMap::new() }
    }

    /// Apache's getRecordForPath: NoNode when absent. The root is also found as "".
    pub fn get(&self, path: &str) -> Result<Rec, ErrorCode> {
        let path = if path.is_empty() { "/" } else { path };
        if let Some(c) = self.changes.get(path) {
            return c.clone().ok_or(ErrorCode::NoNode);
        }
        let id = self.tree.lookup(path).ok_or(ErrorCode::NoNode)?;
        let n = self.tree.node(id);
        Ok(Rec { stat: n.stat, num_children: n.num_children() as i32, acl: self.tree.acl(id).to_vec() })
    }

    pub fn put(&mut self, path: &str, rec: Option<Rec>) {
        let path = if path.is_empty() { "/" } else { path };
        self.changes.insert(path.to_string(), rec);
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

//! The ACL cache: every distinct ACL list is stored once and nodes refer to it by id, as Apache's
//! snapshot format does (`long aclId`; -1 = the built-in open ACL of `/`, `/zookeeper`,
//! `/zookeeper/quota`).

use crate::jute::records::{Acl, Id};
use std::collections::HashMap;

pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = 31;
}

/// The id stored for the built-in open ACL (snapshot aclId -1).
pub const OPEN_ACL_ID: i64 = -1;

pub fn open_acl_unsafe() -> Vec<Acl> {
    vec![Acl { perms: perms::ALL, id: Id { scheme: "world".into(), id: "anyone".into() } }]
}

pub fn read_acl_unsafe() -> Vec<Acl> {
    vec![Acl { perms: perms::READ, id: Id { scheme: "world".into(), id: "anyone".into() } }]
}

#[derive(Default)]
pub struct AclCache {
    lists: HashMap<i64, (Vec<Acl>, u64)>,
    ids: HashMap<Vec<Acl>, i64>,
    next_id: i64,
    open: Vec<Acl>,
}

impl AclCache {
    pub fn new() -> AclCache {
        AclCache { next_id: 1, open: open_acl_unsafe(), ..Default::default() }
    }

    /// Interns a list and takes one reference to it.
    pub fn intern(&mut self, acl: &[Acl]) -> i64 {
        if let Some(&id) = self.ids.get(acl) {
            self.lists.get_mut(&id).unwrap().1 += 1;
            return id;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.ids.insert(acl.to_vec(), id);
        self.lists.insert(id, (acl.to_vec(), 1));
        id
    }

    /// One more reference to a list already in the cache (by its id).
    pub fn add_ref(&mut self, id: i64) {
        if let Some(e) = self.lists.get_mut(&id) {
            e.1 += 1;
        }
    }

    /// Drops one reference. Unused lists are kept until the next snapshot, as Apache does; we drop
    /// them at once since nothing can refer to them.
    pub fn release(&mut self, id: i64) {
        if id == OPEN_ACL_ID {
            return;
        }
        if let Some(e) = self.lists.get_mut(&id) {
            e.1 -= 1;
            if e.1 == 0 {
                let (list, _) = self.lists.remove(&id).unwrap();
                self.ids.remove(&list);
            }
        }
    }

    pub fn get(&self, id: i64) -> &[Acl] {
        if id == OPEN_ACL_ID {
            return &self.open;
        }
        self.lists.get(&id).map(|e| e.0.as_slice()).unwrap_or(&[])
    }

    pub fn len(&self) -> usize {
        self.lists.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn equal_lists_share_an_id_and_are_freed_when_unused() {
        let mut c = AclCache::new();
        let a = c.intern(&open_acl_unsafe());
        let b = c.intern(&open_acl_unsafe());
        assert_eq!(a, b);
        assert_eq!(a, 1);
        let r = c.intern(&read_acl_unsafe());
        assert_eq!(r, 2);
        c.release(a);
        c.release(b);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(OPEN_ACL_ID), open_acl_unsafe().as_slice());
    }
}

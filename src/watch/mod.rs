//! Watch tables (3.9 semantics: standard and persistent watches on one path live side by side).
//!
//! Two tables as in Apache: the data table (getData/exists watches, persistent and
//! persistent-recursive) and the child table (getChildren watches, persistent). A watch belongs to
//! a connection (`WatcherId`) and dies with it unless the client re-registers it with SetWatches.

use crate::tree::apply::{EventType, Trigger};
use std::collections::{BTreeMap, HashMap};

pub type WatcherId = u64;

pub const STANDARD: u8 = 1;
pub const PERSISTENT: u8 = 2;
pub const PERSISTENT_RECURSIVE: u8 = 4;

#[derive(Default)]
pub struct Table {
    /// path -> watcher -> modes. BTreeMap for the watchers so event order is deterministic.
    by_path: HashMap<String, BTreeMap<WatcherId, u8>>,
    by_watcher: HashMap<WatcherId, HashMap<String, u8>>,
    recursive: usize,
}

impl Table {
    pub fn add(&mut self, path: &str, w: WatcherId, mode: u8) {
        let m = self.by_path.entry(path.to_string()).or_default().entry(w).or_insert(0);
        if mode == PERSISTENT_RECURSIVE && *m & PERSISTENT_RECURSIVE == 0 {
            self.recursive += 1;
        }
        *m |= mode;
        *self.by_watcher.entry(w).or_default().entry(path.to_string()).or_insert(0) |= mode;
    }

    fn set_modes(&mut self, path: &str, w: WatcherId, modes: u8) {
        let old = self.by_path.get(path).and_then(|m| m.get(&w)).copied().unwrap_or(0);
        if old & PERSISTENT_RECURSIVE != 0 && modes & PERSISTENT_RECURSIVE == 0 {
            self.recursive -= 1;
        }
        if modes == 0 {
            if let Some(m) = self.by_path.get_mut(path) {
                m.remove(&w);
                if m.is_empty() {
                    self.by_path.remove(path);
                }
            }
            if let Some(m) = self.by_watcher.get_mut(&w) {
                m.remove(path);
                if m.is_empty() {
                    self.by_watcher.remove(&w);
                }
            }
        } else {
            self.by_path.get_mut(path).unwrap().insert(w, modes);
            self.by_watcher.get_mut(&w).unwrap().insert(path.to_string(), modes);
        }
    }

    pub fn modes(&self, path: &str, w: WatcherId) -> u8 {
        self.by_path.get(path).and_then(|m| m.get(&w)).copied().unwrap_or(0)
    }

    /// Removes the given modes; returns whether any were present.
    pub fn remove(&mut self, path: &str, w: WatcherId, modes: u8) -> bool {
        let old = self.modes(path, w);
        if old & modes == 0 {
            return false;
        }
        self.set_modes(path, w, old & !modes);
        true
    }

    pub fn remove_watcher(&mut self, w: WatcherId) {
        if let Some(paths) = self.by_watcher.remove(&w) {
            for (p, modes) in paths {
                if modes & PERSISTENT_RECURSIVE != 0 {
                    self.recursive -= 1;
                }
                if let Some(m) = self.by_path.get_mut(&p) {
                    m.remove(&w);
                    if m.is_empty() {
                        self.by_path.remove(&p);
                    }
                }
            }
        }
    }

    /// Watchers to notify for a change at `path`; standard watches on `path` are consumed.
    /// Ancestors are visited only for persistent-recursive watches.
    fn trigger(&mut self, path: &str, out: &mut Vec<WatcherId>) {
        if let Some(ws) = self.by_path.get(path) {
            let hits: Vec<(WatcherId, u8)> = ws.iter().map(|(w, m)| (*w, *m)).collect();
            for (w, m) in hits {
                if !out.contains(&w) {
                    out.push(w);
                }
                if m & STANDARD != 0 {
                    self.set_modes(path, w, m & !STANDARD);
                }
            }
        }
        if self.recursive > 0 {
            let mut p = path;
            while p != "/" && !p.is_empty() {
                p = match p.rfind('/') {
                    Some(0) => "/",
                    Some(i) => &p[..i],
                    None => break,
                };
                if let Some(ws) = self.by_path.get(p) {
                    for (w, m) in ws {
                        if m & PERSISTENT_RECURSIVE != 0 && !out.contains(w) {
                            out.push(*w);
                        }
                    }
                }
            }
        }
    }

    pub fn watch_count(&self) -> usize {
        self.by_path.values().map(|m| m.len()).sum()
    }
    pub fn path_count(&self) -> usize {
        self.by_path.len()
    }
    pub fn watcher_count(&self) -> usize {
        self.by_watcher.len()
    }
    pub fn by_watcher(&self) -> &HashMap<WatcherId, HashMap<String, u8>> {
        &self.by_watcher
    }
    pub fn by_path(&self) -> &HashMap<String, BTreeMap<WatcherId, u8>> {
        &self.by_path
    }
}

#[derive(Default)]
pub struct Watches {
    pub data: Table,
    pub child: Table,
}

/// A notification to deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub watcher: WatcherId,
    pub kind: EventType,
    pub path: String,
    /// Index of the trigger (in the caller's list) that produced it.
    pub trigger: usize,
}

impl Watches {
    /// addWatch: persistent watches go in both tables, persistent-recursive only in the data table
    /// (they never receive NodeChildrenChanged).
    pub fn add_persistent(&mut self, path: &str, w: WatcherId, recursive: bool) {
        if recursive {
            self.data.add(path, w, PERSISTENT_RECURSIVE);
        } else {
            self.data.add(path, w, PERSISTENT);
            self.child.add(path, w, PERSISTENT);
        }
    }

    pub fn remove_watcher(&mut self, w: WatcherId) {
        self.data.remove_watcher(w);
        self.child.remove_watcher(w);
    }

    /// Fires the watches for one change. A delete notifies data and child watchers once each.
    pub fn trigger(&mut self, t: &Trigger, index: usize, out: &mut Vec<Notification>) {
        let mut ws = Vec::new();
        match t.kind {
            EventType::NodeCreated | EventType::NodeDataChanged => self.data.trigger(&t.path, &mut ws),
            EventType::NodeChildrenChanged => self.child.trigger(&t.path, &mut ws),
            EventType::NodeDeleted => {
                self.data.trigger(&t.path, &mut ws);
                self.child.trigger(&t.path, &mut ws);
            }
        }
        out.extend(ws.into_iter().map(|w| Notification { watcher: w, kind: t.kind, path: t.path.clone(), trigger: index }));
    }

    pub fn total(&self) -> usize {
        self.data.watch_count() + self.child.watch_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Watches {
        fn trigger_test(&mut self, t: &Trigger, out: &mut Vec<Notification>) {
            self.trigger(t, 0, out)
        }
    }

    fn t(kind: EventType, p: &str) -> Trigger {
        Trigger { kind, path: p.into(), acl: Vec::new() }
    }

    #[test]
    fn standard_watch_fires_once() {
        let mut w = Watches::default();
        w.data.add("/a", 1, STANDARD);
        let mut out = Vec::new();
        w.trigger_test(&t(EventType::NodeDataChanged, "/a"), &mut out);
        w.trigger_test(&t(EventType::NodeDataChanged, "/a"), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(w.total(), 0);
    }

    #[test]
    fn delete_notifies_a_watcher_once_for_both_tables() {
        let mut w = Watches::default();
        w.data.add("/a", 1, STANDARD);
        w.child.add("/a", 1, STANDARD);
        let mut out = Vec::new();
        w.trigger_test(&t(EventType::NodeDeleted, "/a"), &mut out);
        assert_eq!(out, vec![Notification { watcher: 1, kind: EventType::NodeDeleted, path: "/a".into(), trigger: 0 }]);
        assert_eq!(w.total(), 0);
    }

    #[test]
    fn persistent_recursive_sees_descendants_but_not_child_events() {
        let mut w = Watches::default();
        w.add_persistent("/w", 7, true);
        let mut out = Vec::new();
        w.trigger_test(&t(EventType::NodeCreated, "/w/deep/x"), &mut out);
        w.trigger_test(&t(EventType::NodeChildrenChanged, "/w/deep"), &mut out);
        w.trigger_test(&t(EventType::NodeDataChanged, "/w"), &mut out);
        w.trigger_test(&t(EventType::NodeDataChanged, "/other"), &mut out);
        let kinds: Vec<_> = out.iter().map(|n| (n.kind, n.path.as_str())).collect();
        assert_eq!(kinds, vec![(EventType::NodeCreated, "/w/deep/x"), (EventType::NodeDataChanged, "/w")]);
        assert_eq!(w.data.watch_count(), 1);
    }

    #[test]
    fn standard_and_persistent_coexist_on_one_path() {
        let mut w = Watches::default();
        w.add_persistent("/p", 1, false);
        w.data.add("/p", 1, STANDARD);
        let mut out = Vec::new();
        w.trigger_test(&t(EventType::NodeDataChanged, "/p"), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(w.data.modes("/p", 1), PERSISTENT);
        w.trigger_test(&t(EventType::NodeChildrenChanged, "/p"), &mut out);
        assert_eq!(out.len(), 2);
        w.remove_watcher(1);
        assert_eq!(w.total(), 0);
    }
}

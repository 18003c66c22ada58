//! Quotas (reference §3). Limits and usage live in ordinary znodes under `/zookeeper/quota<path>`;
//! the server keeps the set of quota'd paths and rewrites the `zookeeper_stats` node's data in
//! memory (no txn, no mzxid change) whenever the subtree changes.

use super::{DataTree, NodeId, QUOTA_ROOT};
use crate::error::ErrorCode;
use std::collections::{BTreeMap, HashSet};

pub const LIMIT_NODE: &str = "zookeeper_limits";
pub const STAT_NODE: &str = "zookeeper_stats";

/// Apache's StatsTrack: `count=N,bytes=M` plus optional extra keys after a stray `=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsTrack {
    pub values: BTreeMap<String, i64>,
}

impl StatsTrack {
    pub fn parse(s: &str) -> StatsTrack {
        let mut values = BTreeMap::new();
        for piece in s.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut kv = piece.split('=');
            let k = kv.next().unwrap_or("").trim();
            if k.is_empty() {
                continue;
            }
            let v = kv.next().map(str::trim).unwrap_or("");
            let v = if v.is_empty() { -1 } else { v.parse().unwrap_or(-1) };
            values.insert(k.to_string(), v);
        }
        StatsTrack { values }
    }
    pub fn get(&self, k: &str) -> i64 {
        self.values.get(k).copied().unwrap_or(-1)
    }
    pub fn count(&self) -> i64 {
        self.get("count")
    }
    pub fn bytes(&self) -> i64 {
        self.get("bytes")
    }
    pub fn count_hard_limit(&self) -> i64 {
        self.get("countHardLimit")
    }
    pub fn byte_hard_limit(&self) -> i64 {
        self.get("byteHardLimit")
    }
    pub fn format_usage(count: i64, bytes: i64) -> String {
        format!("count={count},bytes={bytes}")
    }
}

#[derive(Default)]
pub struct Quotas {
    /// Paths with a `zookeeper_limits` node.
    prefixes: HashSet<String>,
    /// Soft and hard limit breaches seen, for logging and metrics.
    pub soft_exceeded: u64,
    pub hard_exceeded: u64,
}

impl Quotas {
    /// The longest quota'd prefix of `path` (by whole segments), never `/` or under `/zookeeper`.
    pub fn max_prefix<'a>(&self, path: &'a str) -> Option<&'a str> {
        if self.prefixes.is_empty() || path == "/zookeeper" || path.starts_with("/zookeeper/") {
            return None;
        }
        let mut p = path;
        loop {
            if p.is_empty() || p == "/" {
                return None;
            }
            if self.prefixes.contains(p) {
                return Some(p);
            }
            p = &p[..p.rfind('/')?];
        }
    }
}

impl DataTree {
    fn data_string(&self, path: &str) -> Option<String> {
        let id = self.lookup(path)?;
        Some(String::from_utf8_lossy(self.node(id).data().unwrap_or(&[])).into_owned())
    }

    /// Called after a node is created: registers quota nodes and updates usage.
    pub(crate) fn quota_on_create(&mut self, path: &str, data_len: i64) {
        if let Some(rest) = path.strip_prefix(QUOTA_ROOT) {
            if let Some(target) = rest.strip_suffix(&format!("/{LIMIT_NODE}")) {
                if !target.is_empty() {
                    self.quotas.prefixes.insert(target.to_string());
                }
            } else if let Some(target) = rest.strip_suffix(&format!("/{STAT_NODE}"))
                && !target.is_empty() {
                    self.recount_quota(target);
                }
            return;
        }
        self.quota_update(path, 1, data_len);
    }

    pub(crate) fn quota_on_delete(&mut self, path: &str, data_len: i64) {
        if let Some(rest) = path.strip_prefix(QUOTA_ROOT) {
            if let Some(target) = rest.strip_suffix(&format!("/{LIMIT_NODE}")) {
                self.quotas.prefixes.remove(target);
            }
            return;
        }
        self.quota_update(path, -1, -data_len);
    }

    /// Adds to the usage of the quota covering `path`, rewriting its stats node in memory.
    pub(crate) fn quota_update(&mut self, path: &str, count_diff: i64, bytes_diff: i64) {
        let Some(prefix) = self.quotas.max_prefix(path) else { return };
        let stat_path = format!("{QUOTA_ROOT}{prefix}/{STAT_NODE}");
        let Some(id) = self.lookup(&stat_path) else { return };
        let cur = StatsTrack::parse(&self.data_string(&stat_path).unwrap_or_default());
        let count = cur.count() + count_diff;
        let bytes = cur.bytes() + bytes_diff;
        self.set_quota_stats(id, count, bytes);
        let limits = StatsTrack::parse(&self.data_string(&format!("{QUOTA_ROOT}{prefix}/{LIMIT_NODE}")).unwrap_or_default());
        let soft_count = limits.count() > -1 && count > limits.count();
        let soft_bytes = limits.bytes() > -1 && bytes > limits.bytes();
        if soft_count || soft_bytes {
            self.quotas.soft_exceeded += 1;
        }
    }

    fn set_quota_stats(&mut self, stat_node: NodeId, count: i64, bytes: i64) {
        let s = StatsTrack::format_usage(count, bytes);
        // Under /zookeeper/, so outside the digest: a plain in-memory write.
        self.node_mut(stat_node).set_data(Some(s.as_bytes()));
    }

    /// Recomputes the usage of the subtree at `target` (count includes `target` itself).
    pub(crate) fn recount_quota(&mut self, target: &str) {
        let stat_path = format!("{QUOTA_ROOT}{target}/{STAT_NODE}");
        let Some(stat_id) = self.lookup(&stat_path) else { return };
        let (mut count, mut bytes) = (0i64, 0i64);
        if let Some(root) = self.lookup(target) {
            let mut stack = vec![root];
            while let Some(id) = stack.pop() {
                count += 1;
                bytes += self.node(id).data_len() as i64;
                stack.extend(self.children(id));
            }
        }
        self.set_quota_stats(stat_id, count, bytes);
    }

    /// Enforcement (only with enforceQuota): a create adds one node and its bytes, a setData the
    /// byte difference. Hard limits fail with QuotaExceeded; soft limits only log.
    pub fn check_quota(&self, path: &str, count_diff: i64, bytes_diff: i64) -> Result<(), ErrorCode> {
        let Some(prefix) = self.quotas.max_prefix(path) else { return Ok(()) };
        let Some(limits) = self.data_string(&format!("{QUOTA_ROOT}{prefix}/{LIMIT_NODE}")) else { return Ok(()) };
        let limits = StatsTrack::parse(&limits);
        let check_count = count_diff != 0 && (limits.count() > -1 || limits.count_hard_limit() > -1);
        let check_bytes = bytes_diff != 0 && (limits.bytes() > -1 || limits.byte_hard_limit() > -1);
        if !check_count && !check_bytes {
            return Ok(());
        }
        let Some(cur) = self.data_string(&format!("{QUOTA_ROOT}{prefix}/{STAT_NODE}")) else { return Ok(()) };
        let cur = StatsTrack::parse(&cur);
        if check_count {
            let new = cur.count() + count_diff;
            let hard = limits.count_hard_limit() > -1;
            let limit = if hard { limits.count_hard_limit() } else { limits.count() };
            if new > limit {
                let kind = if hard { "hard" } else { "soft" };
                tracing::warn!("Quota exceeded: {prefix} [current count={new}, {kind}CountLimit={limit}]");
                if hard {
                    return Err(ErrorCode::QuotaExceeded);
                }
            }
        }
        if check_bytes {
            let new = cur.bytes() + bytes_diff;
            let hard = limits.byte_hard_limit() > -1;
            let limit = if hard { limits.byte_hard_limit() } else { limits.bytes() };
            if new > limit {
                let kind = if hard { "hard" } else { "soft" };
                tracing::warn!("Quota exceeded: {prefix} [current bytes={new}, {kind}ByteLimit={limit}]");
                if hard {
                    return Err(ErrorCode::QuotaExceeded);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn stats_track_parses_apache_forms() {
        let s = StatsTrack::parse("count=5,bytes=100=;byteHardLimit=-1;countHardLimit=-1");
        assert_eq!((s.count(), s.bytes(), s.byte_hard_limit(), s.count_hard_limit()), (5, 100, -1, -1));
        let s = StatsTrack::parse("count=-1,bytes=-1=;byteHardLimit=50;countHardLimit=2");
        assert_eq!((s.count(), s.byte_hard_limit(), s.count_hard_limit()), (-1, 50, 2));
        let s = StatsTrack::parse("count=2,bytes=5");
        assert_eq!((s.count(), s.bytes()), (2, 5));
        assert_eq!(StatsTrack::parse("count=,bytes=3").count(), -1);
    }
}

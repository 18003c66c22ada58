//! Counters for the four-letter words and metrics.

use crate::jute::opcode::OpCode;

#[derive(Clone, Debug, Default)]
pub struct ConnStats {
    pub received: u64,
    pub sent: u64,
    pub last_op: Option<&'static str>,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_response_ms: u64,
    pub established_wall_ms: i64,
    pub last_latency: u64,
    pub min_latency: u64,
    pub max_latency: u64,
    pub total_latency: u64,
    pub count: u64,
}

impl ConnStats {
    /// One answered request; `latency_ms` from its arrival to its reply (a write waits for its
    /// fsync; reads are answered as they are handled).
    pub fn record(&mut self, op: OpCode, cxid: i32, zxid: i64, now_ms: u64, latency_ms: u64) {
        self.last_op = Some(op.short_name());
        if cxid >= 0 {
            self.last_cxid = cxid;
        }
        self.last_zxid = zxid;
        self.last_response_ms = now_ms;
        self.last_latency = latency_ms;
        self.min_latency = if self.count == 0 { latency_ms } else { self.min_latency.min(latency_ms) };
        self.max_latency = self.max_latency.max(latency_ms);
        self.total_latency += latency_ms;
        self.count += 1;
    }

    pub fn reset(&mut self) {
        let est = self.established_wall_ms;
        *self = ConnStats { established_wall_ms: est, ..Default::default() };
    }
}

#[derive(Clone, Debug, Default)]
pub struct ServerStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub commits: u64,
    pub auth_failed: u64,
    /// Applied txns whose TxnDigest did not match the tree (Apache's digest mismatches).
    pub digest_mismatches: u64,
    pub expired_sessions: u64,
    pub min_latency: u64,
    pub max_latency: u64,
    pub total_latency: u64,
    pub latency_count: u64,
    /// Sizes (header + body, without the length prefix) of responses sent; -1 until the first.
    pub response_sizes: ResponseSizes,
}

#[derive(Clone, Copy, Debug)]
pub struct ResponseSizes {
    pub last: i64,
    pub min: i64,
    pub max: i64,
}

impl Default for ResponseSizes {
    fn default() -> Self {
        ResponseSizes { last: -1, min: -1, max: -1 }
    }
}

impl ResponseSizes {
    pub fn record(&mut self, size: i64) {
        self.last = size;
        self.min = if self.min < 0 { size } else { self.min.min(size) };
        self.max = self.max.max(size);
    }
}

impl ServerStats {
    pub fn record_latency(&mut self, ms: u64) {
        self.min_latency = if self.latency_count == 0 { ms } else { self.min_latency.min(ms) };
        self.max_latency = self.max_latency.max(ms);
        self.total_latency += ms;
        self.latency_count += 1;
    }

    pub fn reset(&mut self) {
        *self = ServerStats::default();
    }
}

//! Per-server normalisation of values that legitimately differ between two servers fed the same
//! stream, and the self-consistency checks that keep the normalisation honest.
//!
//! * zxids: each distinct value is replaced by its order of first appearance (`z1`, `z2`, ...);
//!   0 and -1 stay literal. Both servers consume zxids for the same ops (failed writes,
//!   createSession and closeSession included) and the runner makes every zxid visible in a reply
//!   header as it is consumed, so a server that skips or adds a zxid gets a different index and
//!   the comparison fails. New zxids must also appear densely (each one the previous maximum + 1),
//!   which catches a txn whose zxid no reply ever showed.
//! * ctime/mtime: wall-clock values. Each must be plausible (inside the run's time window) and a
//!   function of the zxid that set it (ctime of czxid, mtime of mzxid): two stats that name the same
//!   zxid must carry the same time. They are then shown as `t(<zxid index>)`.
//! * session ids (ConnectResponse, ephemeralOwner): replaced by the runner's session index `S<n>`.

use rzk::jute::records::Stat;
use std::collections::HashMap;

pub struct Norm {
    zxids: HashMap<i64, usize>,
    sessions: HashMap<i64, usize>,
    /// zxid -> the wall time a stat showed for it.
    times: HashMap<i64, i64>,
    pub t_lo: i64,
    pub t_hi: i64,
    /// Self-consistency failures found while normalising (drained by the runner per op).
    pub problems: Vec<String>,
    pub max_zxid: i64,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

impl Norm {
    pub fn new() -> Norm {
        Norm {
            zxids: HashMap::new(),
            sessions: HashMap::new(),
            times: HashMap::new(),
            // The servers are started just before the run; allow for a slow JVM start and some
            // clock slack.
            t_lo: now_ms() - 120_000,
            t_hi: i64::MAX,
            problems: Vec::new(),
            max_zxid: 0,
        }
    }

    pub fn zxid(&mut self, z: i64) -> String {
        if z == 0 || z == -1 {
            return z.to_string();
        }
        let n = self.zxids.len() + 1;
        if let Some(i) = self.zxids.get(&z) {
            return format!("z{i}");
        }
        // Every txn's zxid shows up in a reply header as it is consumed (the runner pings after
        // createSession), so new zxids must appear densely: a gap means a txn nobody saw.
        if self.max_zxid != 0 && z != self.max_zxid + 1 {
            self.problems.push(format!(
                "zxid {z:#x} appeared right after {:#x}: zxids were consumed invisibly or out of order",
                self.max_zxid
            ));
        }
        self.max_zxid = self.max_zxid.max(z);
        self.zxids.insert(z, n);
        format!("z{n}")
    }

    pub fn add_session(&mut self, id: i64, index: usize) {
        if let Some(old) = self.sessions.insert(id, index)
            && old != index
        {
            self.problems.push(format!("session id {id:#x} handed out twice (S{old} and S{index})"));
        }
    }

    pub fn session(&self, id: i64) -> String {
        match self.sessions.get(&id) {
            Some(i) => format!("S{i}"),
            None if id == 0 => "0".into(),
            None => format!("UNKNOWN-SESSION({id:#x})"),
        }
    }

    fn time(&mut self, what: &str, zxid: i64, t: i64) -> String {
        if zxid == 0 {
            // The initial nodes (/, /zookeeper, ...): Apache shows 0 for them.
            return if t == 0 { "0".into() } else { format!("t0({t})") };
        }
        let hi = if self.t_hi == i64::MAX { now_ms() + 5_000 } else { self.t_hi };
        if t < self.t_lo || t > hi {
            self.problems.push(format!("{what}={t} for zxid {zxid:#x} is not a plausible wall-clock time"));
        }
        match self.times.get(&zxid) {
            Some(&prev) if prev != t => self.problems.push(format!(
                "{what}={t} for zxid {zxid:#x}, but another stat showed {prev} for the same zxid"
            )),
            Some(_) => {}
            None => {
                self.times.insert(zxid, t);
            }
        }
        format!("t({})", self.zxid(zxid))
    }

    pub fn stat(&mut self, s: &Stat) -> String {
        let cz = self.zxid(s.czxid);
        let mz = self.zxid(s.mzxid);
        let ct = self.time("ctime", s.czxid, s.ctime);
        let mt = self.time("mtime", s.mzxid, s.mtime);
        let pz = self.zxid(s.pzxid);
        let eo = if s.ephemeral_owner == 0 { "0".to_string() } else { self.session(s.ephemeral_owner) };
        format!(
            "{{cz={cz} mz={mz} ct={ct} mt={mt} v={} cv={} av={} eo={eo} len={} nc={} pz={pz}}}",
            s.version, s.cversion, s.aversion, s.data_length, s.num_children
        )
    }

    /// Later zxids must not carry earlier times.
    pub fn check_time_order(&self) -> Vec<String> {
        let mut v: Vec<(i64, i64)> = self.times.iter().map(|(z, t)| (*z, *t)).collect();
        v.sort();
        v.windows(2)
            .filter(|w| w[1].1 < w[0].1)
            .map(|w| format!("zxid {:#x} has time {} but the earlier zxid {:#x} has {}", w[1].0, w[1].1, w[0].0, w[0].1))
            .collect()
    }
}

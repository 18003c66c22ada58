//! The seeded operation stream.
//!
//! Sessions (index = the `S<n>` shown in reports):
//! * S0: digest `alice:pa`; standard watches.
//! * S1: digest `bob:pb` and `carol:pc`; standard watches.
//! * S2: no auth; persistent watches only (addWatch), its reads never set watches.
//! * S3: digest `alice:wrong` (a wrong password is a different digest id); standard watches;
//!   closed near the end.
//! * S4: opened near the end (after S3 closes); no auth; standard watches.
//! * S5: a throwaway session: bad auth scheme, reconnect with a bad password, unknown opcode,
//!   reconnects and a closeSession.
//!
//! Watch usage is split by session on purpose: Apache 3.8.0 keeps one watch mode per (connection,
//! path) (a later standard watch replaces a persistent one and vice versa; persistent and
//! persistent-recursive replace each other) while 3.9 (ZOOKEEPER-4466) keeps them side by side.
//! rzk follows 3.9, so the stream never mixes modes on one (connection, path): S2 alone uses
//! addWatch, with a fixed mode per path, and removes/checks its watches only with type 3 (Any).
//!
//! ACLs: only nodes in the /d/c subtree may get ACLs that deny READ to some sessions. Notifications
//! are filtered by READ on the node (CVE-2024-23944, ZOOKEEPER-4799: in 3.8.4+/3.9.2+ and in
//! Debian's 3.8.0-11+deb12u2, the oracle), so watches there are still exercised; `exists`, which
//! checks READ only since 3.8.4/3.9.2 (ZOOKEEPER-2590, not in Debian's 3.8.0), stays outside /d/c.
//!
//! The stream is a pure function of the seed and the paths servers return for creates (the
//! generator learns sequential names so later ops can hit them): two servers that answer the same
//! get the same stream.

use crate::ops::{Req, Sub};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rzk::jute::records::{Acl, Id, SetWatches, SetWatches2};
use std::collections::VecDeque;

pub const QUOTA_STATS: &str = "/zookeeper/quota/d/zookeeper_stats";
pub const QUOTA_LIMITS: &str = "/zookeeper/quota/d/zookeeper_limits";
/// Hard limits for /d (zkCli `setquota -N`/`-B` format).
pub const QUOTA_LIMITS_DATA: &str = "count=-1,bytes=-1=;byteHardLimit=3000;countHardLimit=60";

const NAMES: [&str; 3] = ["a", "b", "c"];

#[derive(Clone, Debug)]
pub enum Step {
    /// A new session; `auths` are pipelined right after the ConnectRequest.
    Connect { s: usize, auths: Vec<(String, Vec<u8>)> },
    /// Resume a session on a new connection (old socket dropped without closeSession), re-sending
    /// its auths plus `auths`, and `watches` (SetWatches/SetWatches2, relativeZxid filled in by the
    /// runner).
    Reconnect { s: usize, watches: Option<Req>, bad_password: bool, auths: Vec<(String, Vec<u8>)> },
    /// Drop the socket without closeSession.
    Disconnect { s: usize },
    /// One request; `then_close`: the server is expected to close the connection after replying.
    Op { s: usize, req: Req, then_close: bool },
    /// Several requests from one session, pipelined.
    Batch { s: usize, reqs: Vec<Req> },
    /// Ping every live session.
    Drain,
}

impl Step {
    pub fn describe(&self) -> (usize, String) {
        match self {
            Step::Connect { s, auths } => (*s, format!("connect new session, auth {:?}", show_auths(auths))),
            Step::Reconnect { s, watches, bad_password, auths } => (
                *s,
                format!(
                    "reconnect{} (+auth {:?}){}",
                    if *bad_password { " with a WRONG password" } else { "" },
                    show_auths(auths),
                    watches.as_ref().map(|w| format!(" + {}", w.describe())).unwrap_or_default()
                ),
            ),
            Step::Disconnect { s } => (*s, "drop socket (no closeSession)".into()),
            Step::Op { s, req, then_close } => {
                (*s, format!("{}{}", req.describe(), if *then_close { " (server should close)" } else { "" }))
            }
            Step::Batch { s, reqs } => (
                *s,
                format!("pipelined batch: {}", reqs.iter().map(|r| r.describe()).collect::<Vec<_>>().join(" ; ")),
            ),
            Step::Drain => (usize::MAX, "ping every live session".into()),
        }
    }
}

fn show_auths(a: &[(String, Vec<u8>)]) -> Vec<String> {
    a.iter().map(|(s, v)| format!("{s}:{}", String::from_utf8_lossy(v))).collect()
}

pub fn digest_id(user_password: &str) -> String {
    use base64::Engine as _;
    use sha1::{Digest, Sha1};
    let user = user_password.split(':').next().unwrap();
    let hash = Sha1::digest(user_password.as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
    Acl { perms, id: Id { scheme: scheme.into(), id: id.into() } }
}

pub fn open_acl() -> Vec<Acl> {
    vec![acl(31, "world", "anyone")]
}

fn digest_auth(up: &str) -> (String, Vec<u8>) {
    ("digest".into(), up.as_bytes().to_vec())
}

/// ACLs that still let every session READ (all connections come from 127.0.0.1).
fn readable_acls() -> Vec<Vec<Acl>> {
    vec![
        vec![acl(1, "world", "anyone")],
        vec![acl(1, "world", "anyone"), acl(31, "digest", &digest_id("alice:pa"))],
        vec![acl(31, "ip", "127.0.0.1")],
        vec![acl(13, "ip", "127.0.0.0/8")],
        vec![acl(15, "world", "anyone")],
        vec![acl(17, "world", "anyone"), acl(14, "digest", &digest_id("bob:pb"))],
        vec![acl(31, "world", "anyone"), acl(31, "world", "anyone")],
    ]
}

/// ACLs that deny READ to some or all sessions (used only under /d/c).
fn restricted_acls() -> Vec<Vec<Acl>> {
    vec![
        vec![acl(31, "digest", &digest_id("alice:pa"))],
        vec![acl(3, "digest", &digest_id("bob:pb")), acl(31, "digest", &digest_id("carol:pc"))],
        vec![acl(31, "ip", "10.0.0.0/8")],
        vec![acl(31, "auth", "")],
        vec![acl(2, "world", "anyone")],
        vec![acl(30, "world", "anyone")],
        vec![acl(31, "digest", &digest_id("alice:wrong")), acl(7, "ip", "127.0.0.1/32")],
        // Accepted although useless: no permission at all.
        vec![acl(0, "world", "anyone")],
        // `auth` ignores the id and expands to the creator's authenticated ids (InvalidACL if none).
        vec![acl(31, "auth", "ignored-id")],
    ]
}

/// ACLs Apache rejects (or might): empty, unknown scheme, bad ids.
fn invalid_acls() -> Vec<Vec<Acl>> {
    vec![
        vec![],
        vec![acl(31, "foo", "bar")],
        vec![acl(31, "digest", "nocolon")],
        vec![acl(31, "digest", "a:b:c")],
        vec![acl(31, "ip", "300.1.1.1")],
        vec![acl(31, "ip", "127.0.0.1/33")],
        vec![acl(31, "world", "someone")],
    ]
}

fn restricted_zone(path: &str) -> bool {
    path == "/d/c" || path.starts_with("/d/c/")
}

pub struct Gen {
    rng: ChaCha8Rng,
    n_steps: usize,
    i: usize,
    queue: VecDeque<Step>,
    /// Sessions that can be picked for random ops.
    active: Vec<usize>,
    /// (session, step index at which to reconnect it).
    disconnected: Vec<(usize, usize)>,
    learned: VecDeque<String>,
    /// Generating a multi-write pipelined batch: paths go under /e instead of /d.
    in_e: bool,
    all_paths: Vec<String>,
    done: bool,
    /// Step indices of the scripted phases.
    at_disconnect: [usize; 3],
    at_throwaway: usize,
    at_close_s3: usize,
    at_close_s1: usize,
}

impl Gen {
    pub fn new(seed: u64, n_steps: usize) -> Gen {
        let mut all_paths = Vec::new();
        for a in NAMES {
            all_paths.push(format!("/d/{a}"));
            for b in NAMES {
                all_paths.push(format!("/d/{a}/{b}"));
                for c in NAMES {
                    all_paths.push(format!("/d/{a}/{b}/{c}"));
                }
            }
        }
        let n = n_steps.max(100);
        let mut queue = VecDeque::new();
        queue.push_back(Step::Connect { s: 0, auths: vec![digest_auth("alice:pa")] });
        queue.push_back(Step::Connect { s: 1, auths: vec![digest_auth("bob:pb"), digest_auth("carol:pc")] });
        queue.push_back(Step::Connect { s: 2, auths: vec![] });
        queue.push_back(Step::Connect { s: 3, auths: vec![digest_auth("alice:wrong")] });
        let setup = [
            Req::Create { op: 1, path: "/d".into(), data: Some(b"root".to_vec()), acl: open_acl(), flags: 0, ttl: None },
            // /e mirrors /d without a quota, for pipelined batches of writes.
            Req::Create { op: 1, path: "/e".into(), data: None, acl: open_acl(), flags: 0, ttl: None },
            // As zkCli setquota: the intermediate node with null data, then limits, then stats.
            Req::Create { op: 1, path: "/zookeeper/quota/d".into(), data: None, acl: open_acl(), flags: 0, ttl: None },
            Req::Create {
                op: 1,
                path: QUOTA_LIMITS.into(),
                data: Some(QUOTA_LIMITS_DATA.as_bytes().to_vec()),
                acl: open_acl(),
                flags: 0,
                ttl: None,
            },
            Req::Create {
                op: 1,
                path: QUOTA_STATS.into(),
                data: Some(b"count=0,bytes=0".to_vec()),
                acl: open_acl(),
                flags: 0,
                ttl: None,
            },
            Req::GetData { path: QUOTA_STATS.into(), watch: false },
            Req::GetData { path: QUOTA_LIMITS.into(), watch: false },
            Req::GetData { path: "/zookeeper/config".into(), watch: false },
            Req::GetChildren2 { path: "/".into(), watch: false },
            Req::GetAcl { path: "/zookeeper/config".into() },
        ];
        for req in setup {
            queue.push_back(Step::Op { s: 0, req, then_close: false });
        }
        queue.push_back(Step::Op { s: 0, req: Req::WhoAmI, then_close: false });
        queue.push_back(Step::Op { s: 1, req: Req::WhoAmI, then_close: false });
        queue.push_back(Step::Op { s: 3, req: Req::WhoAmI, then_close: false });
        Gen {
            rng: ChaCha8Rng::seed_from_u64(seed),
            n_steps: n,
            i: 0,
            queue,
            active: vec![0, 1, 2, 3],
            disconnected: Vec::new(),
            learned: VecDeque::new(),
            in_e: false,
            all_paths,
            done: false,
            at_disconnect: [n * 20 / 100, n * 45 / 100, n * 70 / 100],
            at_throwaway: n * 55 / 100,
            at_close_s3: n * 85 / 100,
            at_close_s1: n * 95 / 100,
        }
    }

    /// Paths returned by successful creates (sequential names in particular).
    pub fn learn(&mut self, created: &[String]) {
        for p in created {
            if (p.starts_with("/d/") || p.starts_with("/e/")) && !self.all_paths.contains(p) && !self.learned.contains(p) {
                self.learned.push_back(p.clone());
                if self.learned.len() > 24 {
                    self.learned.pop_front();
                }
            }
        }
    }

    pub fn next(&mut self) -> Option<Step> {
        if let Some(s) = self.queue.pop_front() {
            self.i += 1;
            return Some(s);
        }
        if self.done {
            return None;
        }
        if self.i >= self.n_steps {
            self.done = true;
            for (s, _) in std::mem::take(&mut self.disconnected) {
                let step = self.reconnect_step(s);
                self.queue.push_back(step);
                self.active.push(s);
            }
            self.queue.push_back(Step::Drain);
            self.active.sort();
            for &s in &self.active.clone() {
                self.queue.push_back(Step::Op { s, req: Req::GetEphemerals { prefix: None }, then_close: false });
            }
            self.queue.push_back(Step::Op {
                s: self.active[0],
                req: Req::GetData { path: QUOTA_STATS.into(), watch: false },
                then_close: false,
            });
            // Close every session; each close is a txn that deletes its ephemerals.
            for s in std::mem::take(&mut self.active) {
                self.queue.push_back(Step::Op { s, req: Req::CloseSession, then_close: true });
            }
            return self.next();
        }
        self.schedule();
        if let Some(s) = self.queue.pop_front() {
            self.i += 1;
            return Some(s);
        }
        self.i += 1;
        Some(self.random_step())
    }

    /// Scripted phases at fixed points of the stream.
    fn schedule(&mut self) {
        let i = self.i;
        // Reconnects due now.
        let due: Vec<usize> = self.disconnected.iter().filter(|(_, at)| *at <= i).map(|(s, _)| *s).collect();
        for s in due {
            self.disconnected.retain(|(x, _)| *x != s);
            let step = self.reconnect_step(s);
            self.queue.push_back(step);
            self.active.push(s);
            self.active.sort();
        }
        if let Some(k) = self.at_disconnect.iter().position(|&at| at == i) {
            let s = [2, 0, 1][k];
            if self.active.contains(&s) {
                self.active.retain(|&x| x != s);
                self.disconnected.push((s, i + 25));
                self.queue.push_back(Step::Disconnect { s });
            }
        }
        if i == self.at_throwaway {
            let t = 5;
            let q = &mut self.queue;
            q.push_back(Step::Connect { s: t, auths: vec![] });
            q.push_back(Step::Op {
                s: t,
                req: Req::Create {
                    op: 1,
                    path: "/d/w".into(),
                    data: None,
                    acl: open_acl(),
                    flags: 1,
                    ttl: None,
                },
                then_close: false,
            });
            // Unknown auth scheme: AuthFailed and the connection is closed (the session lives on).
            q.push_back(Step::Op {
                s: t,
                req: Req::Auth { scheme: "nosuchscheme".into(), auth: b"x".to_vec() },
                then_close: true,
            });
            q.push_back(Step::Reconnect { s: t, watches: None, bad_password: true, auths: vec![] });
            q.push_back(Step::Reconnect {
                s: t,
                watches: Some(Req::SetWatches(SetWatches {
                    relative_zxid: 0,
                    data_watches: vec!["/d/w".into(), "/d/a".into()],
                    exist_watches: vec!["/d/c".into(), "/d/nothing".into()],
                    child_watches: vec!["/d".into(), "/d/gone".into()],
                })),
                bad_password: false,
                auths: vec![digest_auth("dave:pd")],
            });
            q.push_back(Step::Op { s: t, req: Req::WhoAmI, then_close: false });
            q.push_back(Step::Op { s: t, req: Req::GetEphemerals { prefix: Some("/d".into()) }, then_close: false });
            // Opcode 10 does not exist: Unimplemented, then the connection is closed.
            q.push_back(Step::Op { s: t, req: Req::Raw { op: 10, body: vec![] }, then_close: true });
            q.push_back(Step::Reconnect { s: t, watches: None, bad_password: false, auths: vec![] });
            q.push_back(Step::Op { s: t, req: Req::WhoAmI, then_close: false });
            q.push_back(Step::Op { s: t, req: Req::CloseSession, then_close: true });
        }
        if i == self.at_close_s3 && self.active.contains(&3) {
            self.active.retain(|&x| x != 3);
            self.queue.push_back(Step::Op { s: 3, req: Req::CloseSession, then_close: true });
            self.queue.push_back(Step::Connect { s: 4, auths: vec![] });
            self.active.push(4);
        }
        if i == self.at_close_s1 && self.active.contains(&1) {
            self.active.retain(|&x| x != 1);
            self.queue.push_back(Step::Op { s: 1, req: Req::GetEphemerals { prefix: Some("/".into()) }, then_close: false });
            self.queue.push_back(Step::Op { s: 1, req: Req::CloseSession, then_close: true });
        }
    }

    fn reconnect_step(&mut self, s: usize) -> Step {
        let watches = if s == 2 {
            let mut persistent = Vec::new();
            let mut recursive = Vec::new();
            for _ in 0..self.rng.gen_range(0..5) {
                let p = self.pick_watchable_path(s);
                if persistent_mode(&p) == 1 {
                    recursive.push(p);
                } else {
                    persistent.push(p);
                }
            }
            Req::SetWatches2(SetWatches2 {
                relative_zxid: 0,
                data_watches: vec![],
                exist_watches: vec![],
                child_watches: vec![],
                persistent_watches: persistent,
                persistent_recursive_watches: recursive,
            })
        } else {
            let mut lists = [Vec::new(), Vec::new(), Vec::new()];
            for l in lists.iter_mut() {
                for _ in 0..self.rng.gen_range(0..6) {
                    let p = self.pick_watchable_path(s);
                    l.push(p);
                }
            }
            let [data_watches, exist_watches, child_watches] = lists;
            Req::SetWatches(SetWatches { relative_zxid: 0, data_watches, exist_watches, child_watches })
        };
        Step::Reconnect { s, watches: Some(watches), bad_password: false, auths: vec![] }
    }

    fn pick_fixed(&mut self) -> String {
        let depth = match self.rng.gen_range(0..100) {
            0..=44 => 1,
            45..=79 => 2,
            _ => 3,
        };
        let mut p = String::from("/d");
        for _ in 0..depth {
            p.push('/');
            p.push_str(NAMES.choose(&mut self.rng).unwrap());
        }
        p
    }

    /// A path from the stream's path space; inside a multi-write batch moved from /d to /e.
    fn pick_path(&mut self) -> String {
        let p = self.pick_path_d();
        if self.in_e && (p == "/d" || p.starts_with("/d/")) { format!("/e{}", &p[2..]) } else { p }
    }

    fn pick_path_d(&mut self) -> String {
        match self.rng.gen_range(0..100) {
            0..=9 if !self.learned.is_empty() => {
                let i = self.rng.gen_range(0..self.learned.len());
                self.learned[i].clone()
            }
            10..=13 => "/d".into(),
            14..=16 => {
                const ODD: [&str; 12] = [
                    "/",
                    "/zookeeper",
                    "/zookeeper/quota",
                    // Not the stats node itself: garbage written there makes Apache fail every
                    // later write under /d (see docs/compatibility.md).
                    "/zookeeper/quota/d",
                    "/nope/x",
                    "/d/a/",
                    "/d//a",
                    "/d/./a",
                    "d/a",
                    "/d/a\u{1}",
                    "",
                    "/d/zookeeper_limits",
                ];
                ODD.choose(&mut self.rng).unwrap().to_string()
            }
            _ => self.pick_fixed(),
        }
    }

    fn pick_data(&mut self) -> Option<Vec<u8>> {
        match self.rng.gen_range(0..100) {
            0..=14 => None,
            15..=24 => Some(vec![]),
            25..=69 => {
                let n = self.rng.gen_range(1..12);
                Some((0..n).map(|_| self.rng.gen_range(b'a'..=b'z')).collect())
            }
            70..=89 => {
                let n = self.rng.gen_range(20..60);
                Some((0..n).map(|_| self.rng.gen_range(0u8..=255)).collect())
            }
            _ => Some(vec![b'Q'; self.rng.gen_range(100..200)]),
        }
    }

    fn pick_acl(&mut self, path: &str) -> Vec<Acl> {
        let r = self.rng.gen_range(0..100);
        if r < 60 {
            open_acl()
        } else if r < 75 {
            readable_acls().choose(&mut self.rng).unwrap().clone()
        } else if r < 85 && restricted_zone(path) {
            restricted_acls().choose(&mut self.rng).unwrap().clone()
        } else if r < 96 {
            invalid_acls().choose(&mut self.rng).unwrap().clone()
        } else {
            open_acl()
        }
    }

    fn pick_version(&mut self) -> i32 {
        *[-1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 1, 1, 2, 3, 5, -2].choose(&mut self.rng).unwrap()
    }

    /// A create (any of the four create opcodes) with mostly valid, sometimes invalid flags.
    fn gen_create(&mut self, op: i32, in_multi: bool) -> (String, Option<Vec<u8>>, Vec<Acl>, i32, Option<i64>) {
        let path = self.pick_path();
        let data = self.pick_data();
        let acl = self.pick_acl(&path);
        let odd = self.rng.gen_range(0..100) < 8;
        let flags = match op {
            19 => {
                if odd {
                    *[0, 1, 5, 7].choose(&mut self.rng).unwrap()
                } else {
                    4
                }
            }
            21 => {
                if odd {
                    *[0, 1, 2, 3, 4, 7, -1].choose(&mut self.rng).unwrap()
                } else {
                    *[5, 6].choose(&mut self.rng).unwrap()
                }
            }
            _ => {
                if odd {
                    // 4 (container) via op 1/15 makes a persistent node on Apache; 5/6 (TTL)
                    // need op 21; 7 and -1 are not modes at all.
                    *[4, 5, 6, 7, -1, 100].choose(&mut self.rng).unwrap()
                } else {
                    *[0, 0, 0, 1, 1, 2, 3].choose(&mut self.rng).unwrap()
                }
            }
        };
        let ttl = if op == 21 {
            Some(match self.rng.gen_range(0..100) {
                0..=84 => 3_600_000,
                85..=89 => 0,
                // A negative TTL with a non-TTL mode passes Apache's checks and then kills the
                // server while it logs the txn ("ttl must be positive", SyncThread exits): not
                // at top level (inside multi the mode makes it a plain create).
                90..=94 if flags == 5 || flags == 6 || in_multi => -5,
                90..=94 => 0,
                _ => 0x100_0000_0000,
            })
        } else {
            None
        };
        (path, data, acl, flags, ttl)
    }

    fn gen_sub(&mut self) -> Sub {
        match self.rng.gen_range(0..100) {
            0..=39 => {
                let op = *[1, 1, 1, 15, 15, 19, 21].choose(&mut self.rng).unwrap();
                let (path, data, acl, flags, ttl) = self.gen_create(op, true);
                Sub::Create { op, path, data, acl, flags, ttl }
            }
            40..=59 => Sub::Delete { path: self.pick_path(), version: self.pick_version() },
            60..=79 => Sub::SetData { path: self.pick_path(), data: self.pick_data(), version: self.pick_version() },
            _ => Sub::Check { path: self.pick_path(), version: self.pick_version() },
        }
    }

    fn watch_flag(&mut self, s: usize, path: &str) -> bool {
        s != 2 && may_watch(s, path) && self.rng.gen_bool(0.7)
    }

    /// A path only `s` may watch (see `path_owner`), for checkWatches. Always absolute: 3.8's
    /// checkWatches walks parent paths when any recursive watch exists and fails with -5 on a
    /// path without a leading '/' (3.9 answers -121).
    fn pick_own_path(&mut self, s: usize) -> String {
        for _ in 0..50 {
            let p = self.pick_path();
            if p.starts_with('/') && path_owner(&p) == Some(owner_class(s)) {
                return p;
            }
        }
        format!("/d/never-watched-{s}")
    }

    /// A path `s` may watch (shared or its own).
    fn pick_watchable_path(&mut self, s: usize) -> String {
        for _ in 0..50 {
            let p = self.pick_path();
            if may_watch(s, &p) {
                return p;
            }
        }
        "/d".into()
    }

    /// One random request for session `s`. `in_batch`: nothing that bypasses the request pipeline
    /// (auth is answered straight away by Apache, so its reply could overtake earlier replies).
    fn gen_req(&mut self, s: usize, in_batch: bool) -> Req {
        loop {
            let r = self.rng.gen_range(0..1000);
            let req = match r {
                0..=89 => {
                    let (path, data, acl, flags, ttl) = self.gen_create(1, false);
                    Req::Create { op: 1, path, data, acl, flags, ttl }
                }
                90..=129 => {
                    let (path, data, acl, flags, ttl) = self.gen_create(15, false);
                    Req::Create { op: 15, path, data, acl, flags, ttl }
                }
                130..=154 => {
                    let (path, data, acl, flags, ttl) = self.gen_create(19, false);
                    Req::Create { op: 19, path, data, acl, flags, ttl }
                }
                155..=179 => {
                    let (path, data, acl, flags, ttl) = self.gen_create(21, false);
                    Req::Create { op: 21, path, data, acl, flags, ttl }
                }
                180..=329 => {
                    // Deletes prefer learned (sequential) names so they do not pile up.
                    let path = if !self.learned.is_empty() && self.rng.gen_bool(0.3) {
                        let i = self.rng.gen_range(0..self.learned.len());
                        self.learned[i].clone()
                    } else {
                        self.pick_path()
                    };
                    Req::Delete { path, version: self.pick_version() }
                }
                330..=429 => Req::SetData { path: self.pick_path(), data: self.pick_data(), version: self.pick_version() },
                430..=479 => {
                    // 3.8.4+/3.9.2+ (ZOOKEEPER-2590) make exists check READ; Debian's 3.8.0 does
                    // not. Only nodes outside /d/c can lack READ, so exists stays outside it.
                    let mut path = self.pick_path();
                    if restricted_zone(&path) {
                        path = path.replacen("/d/c", "/d/b", 1);
                    }
                    Req::Exists { watch: self.watch_flag(s, &path), path }
                }
                480..=529 => {
                    let path = self.pick_path();
                    Req::GetData { watch: self.watch_flag(s, &path), path }
                }
                530..=564 => {
                    let path = self.pick_path();
                    Req::GetChildren { watch: self.watch_flag(s, &path), path }
                }
                565..=599 => {
                    let path = self.pick_path();
                    Req::GetChildren2 { watch: self.watch_flag(s, &path), path }
                }
                600..=624 => Req::GetAcl { path: self.pick_path() },
                625..=664 => {
                    let path = self.pick_path();
                    let acl = self.pick_acl(&path);
                    Req::SetAcl { path, acl, version: *[-1, -1, -1, 0, 0, 1, 2].choose(&mut self.rng).unwrap() }
                }
                665..=739 => {
                    let n = if self.rng.gen_range(0..100) == 0 { 0 } else { self.rng.gen_range(1..=5) };
                    Req::Multi((0..n).map(|_| self.gen_sub()).collect())
                }
                740..=769 => {
                    let n = self.rng.gen_range(1..=4);
                    Req::MultiRead(
                        (0..n)
                            .map(|_| {
                                if self.rng.gen_bool(0.5) {
                                    Sub::GetChildren { path: self.pick_path() }
                                } else {
                                    Sub::GetData { path: self.pick_path() }
                                }
                            })
                            .collect(),
                    )
                }
                770..=784 => Req::Sync { path: self.pick_path() },
                785..=794 => Req::Ping,
                795..=814 => Req::CheckWatches { path: self.pick_own_path(s), kind: self.watch_type(s) },
                815..=839 => Req::RemoveWatches { path: self.pick_path(), kind: self.watch_type(s) },
                840..=859 => {
                    let prefix = match self.rng.gen_range(0..8) {
                        0 => None,
                        1 => Some(String::new()),
                        2 => Some("/".into()),
                        3 => Some("/d".into()),
                        4 => Some("/d/a".into()),
                        5 => Some("/x".into()),
                        6 => Some("d".into()),
                        _ => Some(self.pick_path()),
                    };
                    Req::GetEphemerals { prefix }
                }
                860..=874 => Req::GetAllChildrenNumber { path: self.pick_path() },
                875..=884 => Req::WhoAmI,
                885..=889 => Req::Reconfig {
                    joining: Some("server.2=127.0.0.1:2888:3888:participant;2181".into()),
                    leaving: None,
                    members: None,
                    config_id: -1,
                },
                890..=914 => Req::GetData { path: QUOTA_STATS.into(), watch: false },
                915..=939 if s == 2 => {
                    let path = self.pick_watchable_path(s);
                    if restricted_zone(&path) && persistent_mode(&path) == 1 {
                        continue;
                    }
                    // Mode 2 is not a mode (-5 on Apache 3.8.0).
                    let mode = if self.rng.gen_range(0..40) == 0 { 2 } else { persistent_mode(&path) };
                    Req::AddWatch { path, mode }
                }
                945..=949 if !in_batch => Req::Sasl { token: b"probe".to_vec() },
                950..=952 => {
                    // A read inside multi / a write inside multiRead: MarshallingError (-5); the
                    // multi still consumes a zxid on Apache.
                    let path = self.pick_path();
                    if self.rng.gen_bool(0.5) {
                        Req::Multi(vec![self.gen_sub(), Sub::GetData { path }])
                    } else {
                        Req::MultiRead(vec![Sub::GetChildren { path: path.clone() }, Sub::Check { path, version: -1 }])
                    }
                }
                940..=944 if !in_batch => {
                    let up = *["alice:pa", "bob:pb", "dave:pd", "carol:pc"].choose(&mut self.rng).unwrap();
                    Req::Auth { scheme: "digest".into(), auth: up.as_bytes().to_vec() }
                }
                _ => continue,
            };
            return req;
        }
    }

    fn watch_type(&mut self, s: usize) -> i32 {
        if s == 2 {
            // Type 3 only: 3.8 lets types 1/2 remove persistent watches, 3.9 does not.
            *[3, 3, 3, 3, 0, 9].choose(&mut self.rng).unwrap()
        } else {
            *[1, 2, 3, 1, 2, 3, 0, 9].choose(&mut self.rng).unwrap()
        }
    }

    fn random_step(&mut self) -> Step {
        let s = *self.active.choose(&mut self.rng).unwrap();
        if self.rng.gen_range(0..100) < 5 {
            // Apache checks quotas against the applied tree, not against the writes still in its
            // pipeline, so two pipelined writes under the quota'd /d race. A batch is therefore
            // either one write plus reads under /d, or any mix under /e (no quota).
            let n = self.rng.gen_range(2..=6);
            self.in_e = self.rng.gen_bool(0.4);
            let mut reqs = Vec::new();
            let mut writes = 0;
            while reqs.len() < n {
                let r = self.gen_req(s, true);
                if !self.in_e && r.is_write() {
                    if writes > 0 {
                        continue;
                    }
                    writes += 1;
                }
                reqs.push(r);
            }
            self.in_e = false;
            return Step::Batch { s, reqs };
        }
        let req = self.gen_req(s, false);
        Step::Op { s, req, then_close: false }
    }
}

/// Apache 3.8's checkWatches answers OK when *any* connection watches the path (its
/// `WatchManager.containsWatcher` only checks `watchTable.get(path) != null`); 3.9 fixed that and
/// checks the caller's own watches. So that both answer alike, about half of the paths are private
/// to one session class (only it ever watches them) and checkWatches targets only the caller's
/// private paths; the other half are shared and anyone may watch them. S4 takes over S3's class
/// (they never coexist); the throwaway S5 watches only shared paths.
pub fn path_owner(path: &str) -> Option<usize> {
    // FNV-1a: stable across runs and platforms.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in path.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    if h.is_multiple_of(2) { None } else { Some(((h / 2) % 4) as usize) }
}

pub fn owner_class(s: usize) -> usize {
    if s == 4 { 3 } else { s }
}

pub fn may_watch(s: usize, path: &str) -> bool {
    match path_owner(path) {
        None => true,
        Some(o) => o == owner_class(s),
    }
}

/// S2's watch mode for a path, fixed so that one (connection, path) never holds two modes:
/// recursive on /d/a and /d/b, plain persistent elsewhere (including /d/c, whose subtree may deny
/// READ).
pub fn persistent_mode(path: &str) -> i32 {
    if path == "/d/a" || path == "/d/b" { 1 } else { 0 }
}

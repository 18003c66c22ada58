//! Executes a stream of steps against one server, one step at a time, and records every frame
//! each session receives, normalised.
//!
//! Determinism: a step is sent and all its replies are read before the next step starts, so the
//! server sees one global order. A server queues the notifications a txn fires before it answers
//! any later request on the same connection, so after every step that may have fired watches the
//! runner pings each other live session and reads up to the ping's reply: every notification the
//! step fired has then arrived, and is recorded under this step.

use crate::client::{self, Conn, Frame, RawOrEnd, SESSION_TIMEOUT_MS};
use crate::stream::Step;
use crate::norm::Norm;
use crate::ops::{self, Req};
use rzk::jute::records::ConnectRequest;
use std::collections::BTreeMap;
use std::time::Duration;

/// One received frame: which session got it, its normalised form (what is compared) and its raw
/// form (for the failure message).
#[derive(Clone, Debug)]
pub struct FrameRec {
    pub session: usize,
    pub norm: String,
    pub raw: String,
    pub is_event: bool,
}

#[derive(Clone, Debug)]
pub struct OpRecord {
    pub index: usize,
    pub session: usize,
    pub desc: String,
    pub frames: Vec<FrameRec>,
    /// Compare each session's notifications in this step as a multiset (a closeSession deletes
    /// its ephemerals in hash order).
    pub unordered_events: bool,
    /// Self-consistency failures on this server during this step.
    pub problems: Vec<String>,
}

pub struct Outcome {
    pub records: Vec<OpRecord>,
    /// Set when the run stopped early (a connection died unexpectedly).
    pub aborted: Option<String>,
    /// (op name, err) -> count, over every reply.
    pub err_histogram: BTreeMap<(String, i32), usize>,
    pub requests_sent: usize,
    pub time_order_problems: Vec<String>,
}

#[derive(Default)]
struct Sess {
    conn: Option<Conn>,
    id: i64,
    passwd: Vec<u8>,
    /// Highest reply-header zxid seen on this session (lastZxidSeen / relativeZxid on reconnect).
    last_zxid: i64,
    auths: Vec<(String, Vec<u8>)>,
    last_xid: i32,
}

pub struct Runner {
    port: u16,
    sessions: Vec<Sess>,
    pub norm: Norm,
    rec: Option<OpRecord>,
    dead: Option<String>,
    err_histogram: BTreeMap<(String, i32), usize>,
    requests_sent: usize,
    /// Raw zxids of the notifications received during the current step.
    event_zxids: Vec<i64>,
}

fn op_label(req: &Req) -> String {
    let d = req.describe();
    d.split(['(', '[']).next().unwrap_or(&d).to_string()
}

impl Runner {
    pub fn new(port: u16) -> Runner {
        Runner {
            port,
            sessions: Vec::new(),
            norm: Norm::new(),
            rec: None,
            dead: None,
            err_histogram: BTreeMap::new(),
            requests_sent: 0,
            event_zxids: Vec::new(),
        }
    }

    fn sess(&mut self, s: usize) -> &mut Sess {
        while self.sessions.len() <= s {
            self.sessions.push(Sess::default());
        }
        &mut self.sessions[s]
    }

    fn push(&mut self, session: usize, norm: String, raw: String, is_event: bool) {
        let r = self.rec.as_mut().unwrap();
        r.frames.push(FrameRec { session, norm, raw, is_event });
    }

    fn problem(&mut self, p: String) {
        self.rec.as_mut().unwrap().problems.push(p);
    }

    /// The session's connection died unexpectedly: record it and stop the run.
    fn die(&mut self, s: usize, what: &str) {
        self.push(s, format!("CONNECTION {what}"), format!("connection {what}"), false);
        self.sess(s).conn = None;
        if self.dead.is_none() {
            self.dead = Some(format!("session S{s}: connection {what}"));
        }
    }

    fn record_event(&mut self, s: usize, zxid: i64, err: i32, ev: &rzk::jute::records::WatcherEvent) {
        self.event_zxids.push(zxid);
        // The header zxid is not compared: 3.8 sends -1, 3.9 the firing txn's zxid (checked
        // separately in `check_event_zxids`).
        let norm = format!("event type={} state={} path={:?} err={err}", ev.event_type, ev.state, ev.path);
        let raw = format!("event zxid={zxid:#x} type={} state={} path={:?} err={err}", ev.event_type, ev.state, ev.path);
        self.push(s, norm, raw, true);
    }

    /// Records a non-reply frame (notification, EOF, garbage). Returns false if the connection is
    /// gone.
    fn record_other(&mut self, s: usize, f: &Frame) -> bool {
        match f {
            Frame::Event { zxid, err, event } => {
                self.record_event(s, *zxid, *err, event);
                true
            }
            Frame::BadEvent { zxid, err, body } => {
                let h = client::hex(body);
                self.push(s, format!("BAD EVENT err={err} {h}"), format!("bad event zxid={zxid:#x} {h}"), true);
                true
            }
            Frame::Eof => {
                self.die(s, "closed by server (EOF)");
                false
            }
            Frame::Io(e) => {
                self.die(s, &format!("error: {e}"));
                false
            }
            Frame::Reply { .. } => unreachable!(),
        }
    }

    fn record_reply(&mut self, s: usize, req: &Req, xid: i32, zxid: i64, err: i32, body: &[u8]) -> Vec<String> {
        let mut created = Vec::new();
        let zn = self.norm.zxid(zxid);
        let b = ops::decode_body(req, err, body, &mut self.norm, &mut created);
        let norm = format!("reply xid={xid} zxid={zn} err={err} {b}");
        let raw = format!("reply xid={xid} zxid={zxid:#x} err={err} body={}", client::hex(body));
        self.push(s, norm, raw, false);
        *self.err_histogram.entry((op_label(req), err)).or_default() += 1;
        let sess = self.sess(s);
        if zxid > sess.last_zxid {
            sess.last_zxid = zxid;
        }
        created
    }

    /// Reads frames on session `s` until the reply with `xid` arrives. Returns (zxid, err) of that
    /// reply, or None if the connection died.
    fn await_reply(&mut self, s: usize, req: &Req, xid: i32, created: &mut Vec<String>) -> Option<(i64, i32)> {
        loop {
            let f = match self.sess(s).conn.as_mut() {
                Some(c) => c.read_frame(),
                None => return None,
            };
            match f {
                Frame::Reply { xid: x, zxid, err, body } => {
                    if x == xid {
                        created.extend(self.record_reply(s, req, x, zxid, err, &body));
                        return Some((zxid, err));
                    }
                    let raw = format!("reply xid={x} zxid={zxid:#x} err={err} body={}", client::hex(&body));
                    self.push(s, format!("UNEXPECTED REPLY xid={x} (waiting for {xid}) err={err}"), raw, false);
                }
                other => {
                    if !self.record_other(s, &other) {
                        return None;
                    }
                }
            }
        }
    }

    fn send(&mut self, s: usize, bytes: &[u8], n: usize) -> bool {
        self.requests_sent += n;
        let ok = match self.sess(s).conn.as_mut() {
            Some(c) => c.send_raw(bytes).is_ok(),
            None => false,
        };
        if !ok {
            self.die(s, "write failed");
        }
        ok
    }

    fn xid_for(&mut self, s: usize, req: &Req) -> i32 {
        match req.special_xid() {
            Some(x) => x,
            // Like the Java client, xids keep increasing across reconnects of a session.
            None => {
                let sess = self.sess(s);
                sess.last_xid += 1;
                sess.last_xid
            }
        }
    }

    /// A setWatches request carries the session's last seen zxid, which only the runner knows.
    fn fill_relative_zxid(&mut self, s: usize, req: &Req) -> Req {
        let rel = self.sess(s).last_zxid;
        match req {
            Req::SetWatches(w) => {
                let mut w = w.clone();
                w.relative_zxid = rel;
                Req::SetWatches(w)
            }
            Req::SetWatches2(w) => {
                let mut w = w.clone();
                w.relative_zxid = rel;
                Req::SetWatches2(w)
            }
            r => r.clone(),
        }
    }

    fn op(&mut self, s: usize, req: &Req, then_close: bool, created: &mut Vec<String>) -> Option<(i64, i32)> {
        let req = self.fill_relative_zxid(s, req);
        let xid = self.xid_for(s, &req);
        let bytes = client::request_frame(xid, req.op(), &req.body());
        if !self.send(s, &bytes, 1) {
            return None;
        }
        let r = self.await_reply(s, &req, xid, created);
        if r.is_some() && then_close {
            self.expect_close(s);
        }
        r
    }

    /// After a reply that should make the server close the connection: wait for EOF.
    fn expect_close(&mut self, s: usize) {
        let Some(mut c) = self.sess(s).conn.take() else { return };
        let (frames, eof) = c.expect_close(Duration::from_secs(3));
        for f in &frames {
            match f {
                Frame::Reply { xid, zxid, err, body } => {
                    let raw = format!("reply xid={xid} zxid={zxid:#x} err={err} body={}", client::hex(body));
                    self.push(s, format!("UNEXPECTED REPLY AFTER CLOSE xid={xid} err={err}"), raw, false);
                }
                f => {
                    self.record_other(s, f);
                }
            }
        }
        if eof {
            self.push(s, "EOF".into(), "EOF".into(), false);
        } else {
            self.push(s, "STILL OPEN (no EOF within 3 s)".into(), "still open".into(), false);
            c.drop_socket();
        }
    }

    /// Pings every live session except `except`, so that all notifications fired so far are read.
    fn drain(&mut self, except: Option<usize>) {
        for s in 0..self.sessions.len() {
            if Some(s) == except || self.sessions[s].conn.is_none() {
                continue;
            }
            let mut created = Vec::new();
            self.op(s, &Req::Ping, false, &mut created);
        }
    }

    fn connect_request(&mut self, s: usize, resume: bool, bad_password: bool) -> ConnectRequest {
        let sess = self.sess(s);
        if !resume {
            return ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                time_out: SESSION_TIMEOUT_MS,
                session_id: 0,
                passwd: Some(vec![0; 16]),
                read_only: Some(false),
            };
        }
        let mut passwd = sess.passwd.clone();
        if bad_password {
            passwd[0] ^= 0xff;
        }
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: sess.last_zxid,
            time_out: SESSION_TIMEOUT_MS,
            session_id: sess.id,
            passwd: Some(passwd),
            read_only: Some(false),
        }
    }

    /// Opens a connection (new session or resume), pipelining auth packets and an optional
    /// setWatches after the ConnectRequest, as the Java client does.
    fn open(&mut self, s: usize, resume: bool, bad_password: bool, auths: Vec<(String, Vec<u8>)>, watches: Option<Req>) {
        let creq = self.connect_request(s, resume, bad_password);
        if !resume {
            self.sess(s).auths.clear();
        }
        let all_auths: Vec<(String, Vec<u8>)> = if resume {
            let mut a = self.sess(s).auths.clone();
            a.extend(auths.iter().cloned());
            a
        } else {
            auths.clone()
        };
        let watches = watches.map(|w| self.fill_relative_zxid(s, &w));
        let mut pipelined = Vec::new();
        let mut expected: Vec<(i32, Req)> = Vec::new();
        if !bad_password {
            for (scheme, auth) in &all_auths {
                let r = Req::Auth { scheme: scheme.clone(), auth: auth.clone() };
                pipelined.push(client::request_frame(client::AUTH_XID, 100, &r.body()));
                expected.push((client::AUTH_XID, r));
            }
            if let Some(w) = &watches {
                pipelined.push(client::request_frame(client::SET_WATCHES_XID, w.op(), &w.body()));
                expected.push((client::SET_WATCHES_XID, w.clone()));
            }
        }
        self.requests_sent += 1 + pipelined.len();
        let (conn, first) = match Conn::open(self.port, &creq, &pipelined) {
            Ok(x) => x,
            Err(e) => {
                self.die(s, &format!("connect failed: {e}"));
                return;
            }
        };
        self.sess(s).conn = Some(conn);
        let buf = match first {
            RawOrEnd::Raw(b) => b,
            RawOrEnd::Eof => return self.die(s, "closed before ConnectResponse (EOF)"),
            RawOrEnd::Io(e) => return self.die(s, &format!("error before ConnectResponse: {e}")),
        };
        let Some(resp) = client::parse_connect_response(&buf) else {
            let h = client::hex(&buf);
            self.push(s, format!("BAD CONNECT RESPONSE {h}"), h, false);
            return self.die(s, "bad ConnectResponse");
        };
        if !resume {
            self.norm.add_session(resp.session_id, s);
            let sess = self.sess(s);
            sess.id = resp.session_id;
            sess.passwd = resp.passwd.clone();
        }
        let norm = format!(
            "connected proto={} timeout={} session={} passwd={}B readOnly={:?}",
            resp.protocol_version,
            resp.time_out,
            self.norm.session(resp.session_id),
            resp.passwd.len(),
            resp.read_only
        );
        let raw = format!("ConnectResponse {}", client::hex(&buf));
        self.push(s, norm, raw, false);
        if bad_password {
            self.expect_close(s);
            return;
        }
        if resp.session_id == 0 {
            // Refused (expired or unknown session): the server closes.
            self.expect_close(s);
            return;
        }
        if !resume {
            self.sess(s).auths = auths.clone();
        } else {
            for a in auths {
                if !self.sess(s).auths.contains(&a) {
                    self.sess(s).auths.push(a);
                }
            }
        }
        for (xid, req) in expected {
            let mut created = Vec::new();
            if self.await_reply(s, &req, xid, &mut created).is_none() {
                return;
            }
        }
    }

    fn check_event_zxids(&mut self, expected: Option<i64>) {
        let zs = std::mem::take(&mut self.event_zxids);
        let max = self.norm.max_zxid;
        for z in zs {
            let ok = z == -1
                || match expected {
                    Some(e) => z == e,
                    None => z > 0 && z <= max,
                };
            if !ok {
                self.problem(format!(
                    "notification header zxid {z:#x}: expected -1 (3.8) or the firing txn's zxid ({})",
                    expected.map(|e| format!("{e:#x}")).unwrap_or_else(|| format!("<= {max:#x}"))
                ));
            }
        }
    }

    pub fn execute(&mut self, index: usize, step: &Step) -> (OpRecord, Vec<String>) {
        let (session, desc) = step.describe();
        self.rec = Some(OpRecord {
            index,
            session,
            desc,
            frames: Vec::new(),
            unordered_events: false,
            problems: Vec::new(),
        });
        self.event_zxids.clear();
        let mut created = Vec::new();
        let mut expected_event_zxid = None;
        match step {
            Step::Connect { s, auths } => {
                self.open(*s, false, false, auths.clone(), None);
                // createSession consumed a zxid: a ping shows it, so the zxid mapping sees it.
                if self.sess(*s).conn.is_some() {
                    self.op(*s, &Req::Ping, false, &mut created);
                }
            }
            Step::Reconnect { s, watches, bad_password, auths } => {
                if let Some(c) = self.sess(*s).conn.take() {
                    c.drop_socket();
                }
                self.open(*s, true, *bad_password, auths.clone(), watches.clone());
            }
            Step::Disconnect { s } => {
                if let Some(c) = self.sess(*s).conn.take() {
                    c.drop_socket();
                }
            }
            Step::Op { s, req, then_close } => {
                if matches!(req, Req::CloseSession) {
                    self.rec.as_mut().unwrap().unordered_events = true;
                }
                if let Req::Auth { scheme, auth } = req {
                    let a = (scheme.clone(), auth.clone());
                    if !then_close && !self.sess(*s).auths.contains(&a) {
                        self.sess(*s).auths.push(a);
                    }
                }
                let r = self.op(*s, req, *then_close, &mut created);
                if req.is_write() {
                    if let Some((zxid, 0)) = r {
                        expected_event_zxid = Some(zxid);
                    }
                    self.drain(Some(*s));
                }
                if matches!(req, Req::CloseSession) {
                    self.sess(*s).conn = None;
                }
            }
            Step::Batch { s, reqs } => {
                let mut bytes = Vec::new();
                let mut xids = Vec::new();
                for req in reqs {
                    let xid = self.xid_for(*s, req);
                    bytes.extend(client::request_frame(xid, req.op(), &req.body()));
                    xids.push(xid);
                }
                if self.send(*s, &bytes, reqs.len()) {
                    for (req, xid) in reqs.iter().zip(xids) {
                        if self.await_reply(*s, req, xid, &mut created).is_none() {
                            break;
                        }
                    }
                }
                if reqs.iter().any(Req::is_write) {
                    self.drain(Some(*s));
                }
            }
            Step::Drain => self.drain(None),
        }
        self.check_event_zxids(expected_event_zxid);
        let mut rec = self.rec.take().unwrap();
        rec.problems.append(&mut self.norm.problems);
        (rec, created)
    }

    pub fn is_dead(&self) -> Option<&String> {
        self.dead.as_ref()
    }

    pub fn finish(self, records: Vec<OpRecord>) -> Outcome {
        Outcome {
            records,
            aborted: self.dead.clone(),
            err_histogram: self.err_histogram,
            requests_sent: self.requests_sent,
            time_order_problems: self.norm.check_time_order(),
        }
    }
}

/// Runs a whole generated stream against the server on `port`.
pub fn run_stream(port: u16, mut generator: crate::stream::Gen) -> Outcome {
    let mut runner = Runner::new(port);
    let mut records = Vec::new();
    let mut index = 0;
    while let Some(step) = generator.next() {
        let (rec, created) = runner.execute(index, &step);
        generator.learn(&created);
        records.push(rec);
        index += 1;
        if runner.is_dead().is_some() {
            break;
        }
    }
    runner.finish(records)
}

/// Runs a fixed list of steps (probes).
pub fn run_steps(port: u16, steps: &[Step]) -> Outcome {
    let mut runner = Runner::new(port);
    let mut records = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let (rec, _) = runner.execute(i, step);
        records.push(rec);
    }
    runner.finish(records)
}

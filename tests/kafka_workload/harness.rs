//! Runs the workload against one server and records a transcript: every reply and every
//! notification each session receives, normalised (tests/differential/norm.rs: zxids by order of
//! first appearance, times by the zxid that set them, session ids by session slot).
//!
//! Determinism: the workload is causally sequenced. A session reads its socket only while it
//! waits for one of its own replies, for a ping barrier (`sync`) or for an expected event, so
//! what it has received at that point is fixed by the order of operations, not by timing. The
//! only concurrent parts are `group`s (several sessions racing); their results are recorded in a
//! canonical form chosen by the caller, and their zxids are fed to the normaliser sorted.
//!
//! Entries are `Exact` (compared in order), `Unordered` (a run of consecutive such entries of
//! one session in one step is compared as a multiset: the notifications fired by one
//! closeSession/expiry, which deletes its ephemerals in hash order) or `Loose` (shown, never
//! compared: what a session receives after the workload stopped servicing it, before the server
//! closes its connection on expiry — Apache closes the socket without flushing queued events).

use crate::client::{self, Frame, SET_WATCHES_XID};
use crate::conn::{Conn, In, KeepAlive};
use crate::norm::Norm;
use crate::ops::{self, Req};
use rzk::jute::records::*;
use rzk::jute::{Jute, Reader};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

pub const NODE_CREATED: i32 = 1;
pub const NODE_DELETED: i32 = 2;
pub const NODE_DATA_CHANGED: i32 = 3;
pub const NODE_CHILDREN_CHANGED: i32 = 4;

pub const OK: i32 = 0;
pub const RUNTIME_INCONSISTENCY: i32 = -2;
pub const NONODE: i32 = -101;
pub const BADVERSION: i32 = -103;
pub const NODEEXISTS: i32 = -110;
pub const NOTEMPTY: i32 = -111;

/// How long to wait for any reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Exact,
    Unordered,
    Loose,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub step: String,
    pub who: String,
    pub text: String,
    pub raw: String,
    pub mode: Mode,
}

#[derive(Debug)]
pub struct Abort(pub String);
pub type R<T> = Result<T, Abort>;

pub fn ev_name(t: i32) -> &'static str {
    match t {
        -1 => "None",
        NODE_CREATED => "NodeCreated",
        NODE_DELETED => "NodeDeleted",
        NODE_DATA_CHANGED => "NodeDataChanged",
        NODE_CHILDREN_CHANGED => "NodeChildrenChanged",
        5 => "DataWatchRemoved",
        6 => "ChildWatchRemoved",
        7 => "PersistentWatchRemoved",
        _ => "?",
    }
}

/// The client-side watch registrations (the Java client's ZKWatchManager), used to build
/// SetWatches on reconnect and to assert preconditions.
#[derive(Default, Clone, Debug)]
pub struct Watches {
    pub data: BTreeSet<String>,
    pub exist: BTreeSet<String>,
    pub child: BTreeSet<String>,
}

impl Watches {
    fn on_reply(&mut self, req: &Req, err: i32) {
        match req {
            Req::Exists { path, watch: true } if err == OK => {
                self.data.insert(path.clone());
            }
            Req::Exists { path, watch: true } if err == NONODE => {
                self.exist.insert(path.clone());
            }
            Req::GetData { path, watch: true } if err == OK => {
                self.data.insert(path.clone());
            }
            Req::GetChildren { path, watch: true } | Req::GetChildren2 { path, watch: true } if err == OK => {
                self.child.insert(path.clone());
            }
            _ => {}
        }
    }

    fn on_event(&mut self, t: i32, path: &str) {
        match t {
            NODE_CREATED | NODE_DATA_CHANGED => {
                self.data.remove(path);
                self.exist.remove(path);
            }
            NODE_DELETED => {
                self.data.remove(path);
                self.exist.remove(path);
                self.child.remove(path);
            }
            NODE_CHILDREN_CHANGED => {
                self.child.remove(path);
            }
            _ => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty() && self.exist.is_empty() && self.child.is_empty()
    }
}

pub struct Sess {
    pub label: String,
    conn: Option<Conn>,
    pub id: i64,
    passwd: Vec<u8>,
    /// Highest reply-header zxid seen (lastZxidSeen / SetWatches relativeZxid).
    pub last_zxid: i64,
    xid: i32,
    pub requested: i32,
    pub negotiated: i32,
    pub watches: Watches,
    /// When the workload stopped servicing this session (no pings, no requests).
    pub suspended_at: Option<Instant>,
    /// When the socket was dropped without closeSession.
    pub dropped_at: Option<Instant>,
}

#[derive(Clone, Debug)]
pub struct Rep {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
    pub body: Vec<u8>,
}

/// One result of a multi.
#[derive(Clone, Debug)]
pub struct MRes {
    pub op: i32,
    pub err: i32,
    pub stat: Option<Stat>,
    pub path: Option<String>,
}

impl Rep {
    pub fn stat(&self) -> Option<Stat> {
        exact::<Stat>(&self.body)
    }
    pub fn data(&self) -> Option<(Option<Vec<u8>>, Stat)> {
        exact::<GetDataResponse>(&self.body).map(|r| (r.data, r.stat))
    }
    pub fn data_str(&self) -> String {
        match self.data() {
            Some((Some(d), _)) => String::from_utf8_lossy(&d).into_owned(),
            _ => String::new(),
        }
    }
    pub fn children(&self) -> Vec<String> {
        let mut v = exact::<GetChildren2Response>(&self.body).map(|r| r.children).unwrap_or_default();
        v.sort();
        v
    }
    pub fn children_stat(&self) -> Option<Stat> {
        exact::<GetChildren2Response>(&self.body).map(|r| r.stat)
    }
    pub fn path(&self) -> Option<String> {
        exact::<CreateResponse>(&self.body).map(|r| r.path)
    }
    /// Per-op results of a multi (empty if the body is not a multi response).
    pub fn multi(&self) -> Vec<MRes> {
        let mut r = Reader::new(&self.body);
        let mut out = Vec::new();
        while let Ok(h) = MultiHeader::read(&mut r) {
            if h.done {
                break;
            }
            let mut m = MRes { op: h.op, err: h.err, stat: None, path: None };
            match h.op {
                -1 => m.err = ErrorResponse::read(&mut r).map(|e| e.err).unwrap_or(i32::MIN),
                1 => m.path = CreateResponse::read(&mut r).ok().map(|c| c.path),
                15 => {
                    if let Ok(c) = Create2Response::read(&mut r) {
                        m.path = Some(c.path);
                        m.stat = Some(c.stat);
                    }
                }
                5 => m.stat = Stat::read(&mut r).ok(),
                _ => {}
            }
            out.push(m);
        }
        out
    }
    /// The per-op error codes of a multi (0 for success results).
    pub fn multi_errs(&self) -> Vec<i32> {
        self.multi().iter().map(|m| if m.op == -1 { m.err } else { 0 }).collect()
    }
    /// What the Java client reports as the multi's rc: the first non-zero per-op code.
    pub fn multi_rc(&self) -> i32 {
        if self.err != 0 {
            return self.err;
        }
        self.multi_errs().into_iter().find(|&e| e != 0).unwrap_or(0)
    }
}

fn exact<T: Jute>(body: &[u8]) -> Option<T> {
    let mut r = Reader::new(body);
    let v = T::read(&mut r).ok()?;
    (r.remaining() == 0).then_some(v)
}

/// Result of a concurrent group, per participating session.
pub struct GroupOut {
    pub s: usize,
    pub reqs: Vec<Req>,
    pub reps: Vec<Rep>,
}

pub struct H {
    pub server: String,
    port: u16,
    pub sessions: Vec<Sess>,
    pub norm: Norm,
    pub log: Vec<Entry>,
    step: String,
    keepalive: KeepAlive,
    /// Header zxids of every notification (3.8 sends -1, 3.9 the firing txn's zxid).
    event_zxids: Vec<(String, i64)>,
    /// Record notifications as `Unordered` while set.
    pub unordered_events: bool,
    pub check_failures: Vec<String>,
    pub timings: Vec<(String, Duration)>,
    pub requests_sent: usize,
    pub started: Instant,
    /// Race-dependent zxids (raw value, what to show instead) that Stat fields may carry.
    masks: Vec<(i64, String)>,
    /// Race-dependent session ids (raw id, what to show instead) in ephemeralOwner.
    session_masks: Vec<(i64, String)>,
}

impl H {
    pub fn new(server: &str, port: u16) -> H {
        H {
            server: server.to_string(),
            port,
            sessions: Vec::new(),
            norm: Norm::new(),
            log: Vec::new(),
            step: "setup".into(),
            keepalive: KeepAlive::start(),
            event_zxids: Vec::new(),
            unordered_events: false,
            check_failures: Vec::new(),
            timings: Vec::new(),
            requests_sent: 0,
            started: Instant::now(),
            masks: Vec::new(),
            session_masks: Vec::new(),
        }
    }

    // ----------------------------------------------------------------------------------------
    // Recording
    // ----------------------------------------------------------------------------------------

    pub fn step(&mut self, name: &str) {
        self.step = name.to_string();
    }

    fn push(&mut self, s: Option<usize>, text: String, raw: String, mode: Mode) {
        let who = match s {
            Some(s) => self.sessions[s].label.clone(),
            None => "-".into(),
        };
        self.log.push(Entry { step: self.step.clone(), who, text, raw, mode });
        for p in std::mem::take(&mut self.norm.problems) {
            self.log.push(Entry {
                step: self.step.clone(),
                who: "-".into(),
                text: format!("SELF-CONSISTENCY PROBLEM: {p}"),
                raw: String::new(),
                mode: Mode::Exact,
            });
        }
    }

    /// A line in the transcript (compared).
    pub fn note(&mut self, text: impl Into<String>) {
        let t = text.into();
        self.push(None, t.clone(), t, Mode::Exact);
    }

    /// An expectation from the reference (§7). Recorded (so a server that fails it diverges) and
    /// collected (so a failure on both servers also fails the test: then the expectation, not
    /// rzk, is wrong).
    pub fn check(&mut self, cond: bool, what: impl Into<String>) -> bool {
        let what = what.into();
        if cond {
            self.push(None, format!("check ok: {what}"), String::new(), Mode::Exact);
        } else {
            self.push(None, format!("CHECK FAILED: {what}"), String::new(), Mode::Exact);
            self.check_failures.push(format!("[{}] {what}", self.step));
        }
        cond
    }

    pub fn label(&self, s: usize) -> &str {
        &self.sessions[s].label
    }

    /// Feeds a zxid to the normaliser (e.g. a group's zxids in order).
    pub fn see_zxid(&mut self, z: i64) -> String {
        self.norm.zxid(z)
    }

    fn record_event(&mut self, s: usize, zxid: i64, err: i32, ev: &WatcherEvent, mode: Mode) {
        self.event_zxids.push((format!("{} {} {}", self.label(s), ev_name(ev.event_type), ev.path), zxid));
        if mode != Mode::Loose {
            self.sessions[s].watches.on_event(ev.event_type, &ev.path);
        }
        let text = format!(
            "EVENT {} {:?} (type={} state={} err={err})",
            ev_name(ev.event_type),
            ev.path,
            ev.event_type,
            ev.state
        );
        let raw = format!("event zxid={zxid:#x} type={} state={} path={:?} err={err}", ev.event_type, ev.state, ev.path);
        self.push(Some(s), text, raw, mode);
    }

    fn event_mode(&self) -> Mode {
        if self.unordered_events { Mode::Unordered } else { Mode::Exact }
    }

    /// Records a frame that is not the awaited reply. Err if the connection is gone.
    fn record_other(&mut self, s: usize, msg: In, mode: Mode) -> R<()> {
        match msg {
            In::Frame(Frame::Event { zxid, err, event }) => {
                self.record_event(s, zxid, err, &event, mode);
                Ok(())
            }
            In::Frame(Frame::BadEvent { zxid, err, body }) => {
                let h = client::hex(&body);
                self.push(Some(s), format!("BAD EVENT err={err} {h}"), format!("bad event zxid={zxid:#x} {h}"), mode);
                Ok(())
            }
            In::Frame(Frame::Reply { xid, zxid, err, body }) => {
                let raw = format!("reply xid={xid} zxid={zxid:#x} err={err} body={}", client::hex(&body));
                self.push(Some(s), format!("UNEXPECTED REPLY xid={xid} err={err}"), raw, Mode::Exact);
                Err(Abort(format!("{}: unexpected reply xid={xid}", self.label(s))))
            }
            In::Frame(Frame::Eof) | In::Eof => {
                self.push(Some(s), "CONNECTION CLOSED BY SERVER (EOF)".into(), "eof".into(), Mode::Exact);
                self.sessions[s].conn = None;
                Err(Abort(format!("{}: connection closed by the server", self.label(s))))
            }
            In::Frame(Frame::Io(e)) | In::Io(e) => {
                self.push(Some(s), format!("CONNECTION ERROR {e}"), e.clone(), Mode::Exact);
                self.sessions[s].conn = None;
                Err(Abort(format!("{}: connection error {e}", self.label(s))))
            }
            In::ConnectResp(b) => {
                self.push(Some(s), "UNEXPECTED CONNECT RESPONSE".into(), client::hex(&b), Mode::Exact);
                Err(Abort("unexpected connect response".into()))
            }
            In::Pong { .. } => Ok(()),
        }
    }

    fn recv(&mut self, s: usize, timeout: Duration) -> R<In> {
        let label = self.label(s).to_string();
        let Some(c) = self.sessions[s].conn.as_ref() else {
            return Err(Abort(format!("{label}: no connection")));
        };
        match c.rx.recv_timeout(timeout) {
            Ok(m) => Ok(m),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                self.push(Some(s), format!("TIMEOUT: nothing received within {timeout:?}"), String::new(), Mode::Exact);
                Err(Abort(format!("{label}: timeout after {timeout:?}")))
            }
            Err(_) => {
                self.push(Some(s), "CONNECTION GONE".into(), String::new(), Mode::Exact);
                Err(Abort(format!("{label}: reader thread gone")))
            }
        }
    }

    fn reply_text(&mut self, req: &Req, rep: &Rep) -> (String, String) {
        self.reply_text_opt(req, rep, true)
    }

    fn reply_text_opt(&mut self, req: &Req, rep: &Rep, show_zxid: bool) -> (String, String) {
        let zn = self.norm.zxid(rep.zxid);
        let zn = if show_zxid { zn } else { "(race)".to_string() };
        let mut created = Vec::new();
        let mut body = ops::decode_body(req, rep.err, &rep.body, &mut self.norm, &mut created);
        if body.len() > 2000 {
            body = format!("<{} chars, fnv64={:016x}>", body.len(), fnv(body.as_bytes()));
        }
        for (z, label) in &self.masks {
            let zn = self.norm.zxid(*z);
            for f in ["cz", "mz", "pz"] {
                body = body.replace(&format!(" {f}={zn} "), &format!(" {f}=<{label}> "));
                body = body.replace(&format!(" {f}={zn}}}"), &format!(" {f}=<{label}>}}"));
                body = body.replace(&format!("{{{f}={zn} "), &format!("{{{f}=<{label}> "));
            }
            body = body.replace(&format!("t({zn})"), &format!("t(<{label}>)"));
        }
        for (id, label) in &self.session_masks {
            let sn = self.norm.session(*id);
            body = body.replace(&format!(" eo={sn} "), &format!(" eo=<{label}> "));
        }
        let mut desc = req.describe();
        if desc.len() > 300 {
            desc = format!("{}...", &desc[..300]);
        }
        let text = format!("{desc} -> err={} zxid={zn} {body}", rep.err);
        let shown = &rep.body[..rep.body.len().min(256)];
        let raw = format!("xid={} zxid={:#x} err={} body={}{}", rep.xid, rep.zxid, rep.err, client::hex(shown),
            if rep.body.len() > 256 { "..." } else { "" });
        (text, raw)
    }

    fn record_reply(&mut self, s: usize, req: &Req, rep: &Rep) {
        let (text, raw) = self.reply_text(req, rep);
        self.push(Some(s), text, raw, Mode::Exact);
        self.sessions[s].watches.on_reply(req, rep.err);
        if rep.zxid > self.sessions[s].last_zxid {
            self.sessions[s].last_zxid = rep.zxid;
        }
    }

    /// Reads until the reply with `xid`; records everything on the way.
    fn await_reply(&mut self, s: usize, req: &Req, xid: i32) -> R<Rep> {
        loop {
            match self.recv(s, REPLY_TIMEOUT)? {
                In::Frame(Frame::Reply { xid: x, zxid, err, body }) if x == xid => {
                    let rep = Rep { xid: x, zxid, err, body };
                    self.record_reply(s, req, &rep);
                    return Ok(rep);
                }
                In::Frame(Frame::Reply { xid: x, zxid, err, body }) => {
                    let raw = format!("reply xid={x} zxid={zxid:#x} err={err} body={}", client::hex(&body));
                    self.push(Some(s), format!("OUT-OF-ORDER REPLY xid={x} while waiting for xid={xid}"), raw, Mode::Exact);
                    return Err(Abort(format!("{}: reply xid {x} out of order (expected {xid})", self.label(s))));
                }
                m => {
                    let mode = self.event_mode();
                    self.record_other(s, m, mode)?;
                }
            }
        }
    }

    fn next_xid(&mut self, s: usize) -> i32 {
        self.sessions[s].xid += 1;
        self.sessions[s].xid
    }

    fn write(&mut self, s: usize, bytes: &[u8], n: usize) -> R<()> {
        self.requests_sent += n;
        let label = self.label(s).to_string();
        let Some(c) = self.sessions[s].conn.as_ref() else {
            return Err(Abort(format!("{label}: no connection")));
        };
        if self.sessions[s].suspended_at.is_some() {
            return Err(Abort(format!("{label}: workload bug: request on a suspended session")));
        }
        c.write(bytes).map_err(|e| Abort(format!("{label}: write failed: {e}")))
    }

    // ----------------------------------------------------------------------------------------
    // Requests
    // ----------------------------------------------------------------------------------------

    /// One request, wait for its reply.
    pub fn call(&mut self, s: usize, req: Req) -> R<Rep> {
        let xid = self.next_xid(s);
        self.write(s, &client::request_frame(xid, req.op(), &req.body()), 1)?;
        self.await_reply(s, &req, xid)
    }

    /// Pipelined requests on one session with at most `window` in flight (Kafka's
    /// ZooKeeperClient: 10); replies must come back in request order.
    pub fn pipe(&mut self, s: usize, reqs: Vec<Req>, window: usize) -> R<Vec<Rep>> {
        let xids: Vec<i32> = reqs.iter().map(|_| self.next_xid(s)).collect();
        let frame = |i: usize| client::request_frame(xids[i], reqs[i].op(), &reqs[i].body());
        let first = window.min(reqs.len());
        let mut bytes = Vec::new();
        for i in 0..first {
            bytes.extend(frame(i));
        }
        if !bytes.is_empty() {
            self.write(s, &bytes, first)?;
        }
        let mut next = first;
        let mut out = Vec::with_capacity(reqs.len());
        for i in 0..reqs.len() {
            let rep = self.await_reply(s, &reqs[i], xids[i])?;
            out.push(rep);
            if next < reqs.len() {
                self.write(s, &frame(next), 1)?;
                next += 1;
            }
        }
        Ok(out)
    }

    /// Ping barrier: every notification fired for `s` by operations completed so far has arrived
    /// (and is recorded) when this returns. The ping reply's zxid is recorded too, which is how
    /// zxids consumed without a reply (createSession, expiry) become visible.
    pub fn sync(&mut self, s: usize) -> R<()> {
        let label = self.label(s).to_string();
        let n = {
            let Some(c) = self.sessions[s].conn.as_ref() else {
                return Err(Abort(format!("{label}: sync on a closed session")));
            };
            c.ping().map_err(|e| Abort(format!("{label}: ping failed: {e}")))?
        };
        self.requests_sent += 1;
        loop {
            match self.recv(s, REPLY_TIMEOUT)? {
                In::Pong { n: m, zxid, err } if m == n => {
                    let zn = self.norm.zxid(zxid);
                    // Like the Java client, ping replies do not advance lastZxidSeen.
                    self.push(Some(s), format!("ping -> err={err} zxid={zn}"), format!("pong zxid={zxid:#x}"), Mode::Exact);
                    return Ok(());
                }
                In::Pong { .. } => {}
                m => {
                    let mode = self.event_mode();
                    self.record_other(s, m, mode)?;
                }
            }
        }
    }

    /// `sync` every session that is connected and serviced.
    pub fn sync_all(&mut self) -> R<()> {
        for s in 0..self.sessions.len() {
            if self.sessions[s].conn.is_some() && self.sessions[s].suspended_at.is_none() {
                self.sync(s)?;
            }
        }
        Ok(())
    }

    /// Waits (no fixed sleep: blocks on the socket) for a notification of `typ` on `path`,
    /// recording everything received meanwhile. Returns the time waited.
    pub fn wait_event(&mut self, s: usize, typ: i32, path: &str, timeout: Duration) -> R<Duration> {
        let t0 = Instant::now();
        loop {
            let left = timeout.saturating_sub(t0.elapsed());
            if left.is_zero() {
                self.push(Some(s), format!("TIMEOUT waiting for {} {path:?}", ev_name(typ)), String::new(), Mode::Exact);
                return Err(Abort(format!("{}: no {} {path} within {timeout:?}", self.label(s), ev_name(typ))));
            }
            let m = match self.recv(s, left) {
                Ok(m) => m,
                Err(_) => {
                    return Err(Abort(format!("{}: no {} {path} within {timeout:?}", self.label(s), ev_name(typ))));
                }
            };
            let hit = matches!(&m, In::Frame(Frame::Event { event, .. }) if event.event_type == typ && event.path == path);
            let mode = self.event_mode();
            self.record_other(s, m, mode)?;
            if hit {
                return Ok(t0.elapsed());
            }
        }
    }

    /// Several sessions send their requests concurrently (each pipelined with `window` in
    /// flight). Nothing is recorded here except each session's notifications, sorted (their
    /// interleaving with the replies is a race); the zxids of all replies are fed to the
    /// normaliser in ascending order. The caller records the replies in a canonical form.
    pub fn group(&mut self, jobs: Vec<(usize, Vec<Req>)>, window: usize) -> R<Vec<GroupOut>> {
        struct Job {
            s: usize,
            reqs: Vec<Req>,
            frames: Vec<Vec<u8>>,
            xids: Vec<i32>,
            sent: usize,
            reps: Vec<Rep>,
            events: Vec<(i64, i32, WatcherEvent)>,
        }
        let mut js: Vec<Job> = Vec::new();
        for (s, reqs) in jobs {
            let xids: Vec<i32> = reqs.iter().map(|_| self.next_xid(s)).collect();
            let frames = reqs.iter().zip(&xids).map(|(r, x)| client::request_frame(*x, r.op(), &r.body())).collect();
            js.push(Job { s, reqs, frames, xids, sent: 0, reps: Vec::new(), events: Vec::new() });
        }
        // Fire the first windows back to back.
        for j in js.iter_mut() {
            let n = window.min(j.frames.len());
            let bytes: Vec<u8> = j.frames[..n].concat();
            j.sent = n;
            self.write(j.s, &bytes, n)?;
        }
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            // Read before scanning the channels: anything delivered after this wakes the wait below.
            let seen = super::conn::ARRIVALS.count();
            let mut progress = false;
            let mut all_done = true;
            for job in js.iter_mut() {
                let s = job.s;
                while job.reps.len() < job.reqs.len() {
                    all_done = false;
                    let m = match self.sessions[s].conn.as_ref().map(|c| c.rx.try_recv()) {
                        Some(Ok(m)) => m,
                        Some(Err(std::sync::mpsc::TryRecvError::Empty)) => break,
                        _ => return Err(Abort(format!("{}: connection gone during a group", self.label(s)))),
                    };
                    progress = true;
                    match m {
                        In::Frame(Frame::Reply { xid, zxid, err, body }) => {
                            let want = job.xids[job.reps.len()];
                            if xid != want {
                                let raw = format!("reply xid={xid} zxid={zxid:#x} err={err}");
                                self.push(Some(s), format!("OUT-OF-ORDER REPLY xid={xid} while waiting for xid={want}"), raw, Mode::Exact);
                                return Err(Abort("out-of-order reply in a group".into()));
                            }
                            job.reps.push(Rep { xid, zxid, err, body });
                            if job.sent < job.frames.len() {
                                let f = job.frames[job.sent].clone();
                                job.sent += 1;
                                self.write(s, &f, 1)?;
                            }
                        }
                        In::Frame(Frame::Event { zxid, err, event }) => job.events.push((zxid, err, event)),
                        In::Pong { .. } => {}
                        other => {
                            self.record_other(s, other, Mode::Exact)?;
                        }
                    }
                }
                if job.reps.len() < job.reqs.len() {
                    all_done = false;
                }
            }
            if all_done {
                break;
            }
            if Instant::now() > deadline {
                self.note("TIMEOUT in a concurrent group");
                return Err(Abort("timeout in a concurrent group".into()));
            }
            if !progress {
                super::conn::ARRIVALS.wait_past(seen, deadline);
            }
        }
        // Zxids in ascending order, so that first appearance follows the server's txn order.
        let mut zs: Vec<i64> = js.iter().flat_map(|j| j.reps.iter().map(|r| r.zxid)).collect();
        zs.sort();
        zs.dedup();
        for z in zs {
            self.norm.zxid(z);
        }
        let mut out = Vec::new();
        for j in js {
            let s = j.s;
            for (req, rep) in j.reqs.iter().zip(&j.reps) {
                self.sessions[s].watches.on_reply(req, rep.err);
                if rep.zxid > self.sessions[s].last_zxid {
                    self.sessions[s].last_zxid = rep.zxid;
                }
            }
            let mut evs: Vec<(String, String)> = Vec::new();
            for (zxid, err, ev) in &j.events {
                self.event_zxids.push((format!("{} {} {}", self.label(s), ev_name(ev.event_type), ev.path), *zxid));
                self.sessions[s].watches.on_event(ev.event_type, &ev.path);
                evs.push((
                    format!("EVENT {} {:?} (type={} state={} err={err}) [during the race]", ev_name(ev.event_type), ev.path, ev.event_type, ev.state),
                    format!("event zxid={zxid:#x}"),
                ));
            }
            evs.sort();
            for (t, r) in evs {
                self.push(Some(s), t, r, Mode::Exact);
            }
            out.push(GroupOut { s, reqs: j.reqs, reps: j.reps });
        }
        Ok(out)
    }

    /// Records one reply of a group (after the group fed its zxids). With `show_zxid` false the
    /// header zxid is left out (which contender got which zxid is a race).
    pub fn record_group_reply(&mut self, s: usize, req: &Req, rep: &Rep, tag: &str, show_zxid: bool) {
        let (text, raw) = self.reply_text_opt(req, rep, show_zxid);
        self.push(Some(s), format!("{tag}{text}"), raw, Mode::Exact);
    }

    /// From now on, Stat fields holding zxid `z` are shown as `<label>`: `z` is the outcome of a
    /// race (e.g. which of several racing deletes came last), not a property of the server.
    pub fn mask_zxid(&mut self, z: i64, label: &str) {
        self.masks.push((z, label.to_string()));
    }

    /// From now on, an ephemeralOwner equal to session `id` is shown as `<label>` (the winner
    /// of a race with a free winner).
    pub fn mask_session(&mut self, id: i64, label: &str) {
        self.session_masks.push((id, label.to_string()));
    }

    /// Records one reply of a group without naming the session (a race with a free winner).
    pub fn record_group_reply_anon(&mut self, req: &Req, rep: &Rep, tag: &str) {
        let (text, raw) = self.reply_text(req, rep);
        self.push(None, format!("{tag}{text}"), raw, Mode::Exact);
    }

    // ----------------------------------------------------------------------------------------
    // Sessions
    // ----------------------------------------------------------------------------------------

    fn connect_request(&self, s: usize, resume: bool) -> ConnectRequest {
        let x = &self.sessions[s];
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: if resume { x.last_zxid } else { 0 },
            time_out: x.requested,
            session_id: if resume { x.id } else { 0 },
            passwd: Some(if resume { x.passwd.clone() } else { vec![0; 16] }),
            read_only: Some(false),
        }
    }

    /// Opens the TCP connection, sends the ConnectRequest plus `extra` frames in one write, reads
    /// and records the ConnectResponse.
    fn open(&mut self, s: usize, resume: bool, extra: &[u8]) -> R<ConnectResponse> {
        let creq = self.connect_request(s, resume);
        let mut bytes = client::connect_frame(&creq);
        bytes.extend_from_slice(extra);
        self.requests_sent += 1;
        let conn = Conn::open(self.port, &bytes).map_err(|e| Abort(format!("connect failed: {e}")))?;
        self.sessions[s].conn = Some(conn);
        self.sessions[s].suspended_at = None;
        self.sessions[s].dropped_at = None;
        let first = self.recv(s, Duration::from_secs(20))?;
        let buf = match first {
            In::ConnectResp(b) => b,
            other => {
                self.record_other(s, other, Mode::Exact)?;
                return Err(Abort("no ConnectResponse".into()));
            }
        };
        let Some(resp) = client::parse_connect_response(&buf) else {
            self.push(Some(s), format!("BAD CONNECT RESPONSE {}", client::hex(&buf)), String::new(), Mode::Exact);
            return Err(Abort("bad ConnectResponse".into()));
        };
        if !resume && resp.session_id != 0 {
            self.norm.add_session(resp.session_id, s);
        }
        let text = format!(
            "{} (timeout={}) -> proto={} timeout={} session={} passwd={}B readOnly={:?}",
            if resume { "reconnect with the session's id and password" } else { "connect (new session)" },
            creq.time_out,
            resp.protocol_version,
            resp.time_out,
            self.norm.session(resp.session_id),
            resp.passwd.len(),
            resp.read_only
        );
        self.push(Some(s), text, format!("ConnectResponse {}", client::hex(&buf)), Mode::Exact);
        Ok(resp)
    }

    /// A new session named `label` asking for `timeout_ms`.
    pub fn connect(&mut self, label: &str, timeout_ms: i32) -> R<usize> {
        let s = self.sessions.len();
        self.sessions.push(Sess {
            label: label.to_string(),
            conn: None,
            id: 0,
            passwd: Vec::new(),
            last_zxid: 0,
            xid: 0,
            requested: timeout_ms,
            negotiated: 0,
            watches: Watches::default(),
            suspended_at: None,
            dropped_at: None,
        });
        let resp = self.open(s, false, &[])?;
        if resp.session_id == 0 {
            return Err(Abort(format!("{label}: session refused")));
        }
        self.sessions[s].id = resp.session_id;
        self.sessions[s].passwd = resp.passwd.clone();
        self.sessions[s].negotiated = resp.time_out;
        self.start_keepalive(s);
        // createSession consumed a zxid: the ping shows it.
        self.sync(s)?;
        Ok(s)
    }

    fn start_keepalive(&mut self, s: usize) {
        let idle = (self.sessions[s].negotiated.max(300) / 3) as u64;
        if let Some(c) = self.sessions[s].conn.as_ref() {
            self.keepalive.register(c, idle);
        }
    }

    fn set_watches_req(&self, s: usize) -> Option<Req> {
        let w = &self.sessions[s].watches;
        if w.is_empty() {
            return None;
        }
        Some(Req::SetWatches(SetWatches {
            relative_zxid: self.sessions[s].last_zxid,
            data_watches: w.data.iter().cloned().collect(),
            exist_watches: w.exist.iter().cloned().collect(),
            child_watches: w.child.iter().cloned().collect(),
        }))
    }

    /// The Java client's reconnect of a live session: ConnectRequest with the session id,
    /// password and lastZxidSeen, then SetWatches (xid -8, relativeZxid = lastZxidSeen) for every
    /// registered watch, then the queued requests `pending` — all in one write. Returns the
    /// replies to `pending`, or None if the server refused the session (expired): then it expects
    /// the server to close the connection.
    pub fn resume(&mut self, s: usize, pending: Vec<Req>) -> R<Option<Vec<Rep>>> {
        let sw = self.set_watches_req(s);
        let mut extra = Vec::new();
        if let Some(w) = &sw {
            extra.extend(client::request_frame(SET_WATCHES_XID, w.op(), &w.body()));
        }
        let xids: Vec<i32> = pending.iter().map(|_| self.next_xid(s)).collect();
        for (r, x) in pending.iter().zip(&xids) {
            extra.extend(client::request_frame(*x, r.op(), &r.body()));
        }
        self.requests_sent += pending.len() + sw.is_some() as usize;
        let resp = self.open(s, true, &extra)?;
        if resp.session_id == 0 {
            self.expect_eof(s, Duration::from_secs(10))?;
            return Ok(None);
        }
        self.sessions[s].negotiated = resp.time_out;
        if let Some(w) = &sw {
            self.await_reply(s, w, SET_WATCHES_XID)?;
        }
        let mut out = Vec::new();
        for (r, x) in pending.iter().zip(xids) {
            out.push(self.await_reply(s, r, x)?);
        }
        self.start_keepalive(s);
        Ok(Some(out))
    }

    /// Reads until the server closes the connection; frames before it are recorded with `mode`.
    fn expect_eof_mode(&mut self, s: usize, timeout: Duration, mode: Mode) -> R<()> {
        let t0 = Instant::now();
        loop {
            let left = timeout.saturating_sub(t0.elapsed());
            let msg = {
                let Some(c) = self.sessions[s].conn.as_ref() else { return Ok(()) };
                c.rx.recv_timeout(left.max(Duration::from_millis(1)))
            };
            match msg {
                Ok(In::Eof) | Ok(In::Frame(Frame::Eof)) => {
                    self.push(Some(s), "server closed the connection (EOF)".into(), "eof".into(), Mode::Exact);
                    self.sessions[s].conn = None;
                    return Ok(());
                }
                Ok(In::Pong { .. }) => {}
                Ok(In::Io(e)) | Ok(In::Frame(Frame::Io(e))) => {
                    self.push(Some(s), format!("connection error instead of EOF: {e}"), e, Mode::Exact);
                    self.sessions[s].conn = None;
                    return Ok(());
                }
                Ok(In::Frame(Frame::Event { zxid, err, event })) => self.record_event(s, zxid, err, &event, mode),
                Ok(In::Frame(Frame::Reply { xid, zxid, err, body })) => {
                    let raw = format!("reply xid={xid} zxid={zxid:#x} err={err} body={}", client::hex(&body));
                    self.push(Some(s), format!("reply xid={xid} err={err} before EOF"), raw, mode);
                }
                Ok(other) => {
                    self.push(Some(s), format!("{other:?} before EOF"), String::new(), mode);
                }
                Err(_) => {
                    self.push(Some(s), format!("NO EOF: connection still open after {timeout:?}"), String::new(), Mode::Exact);
                    if let Some(c) = self.sessions[s].conn.take() {
                        c.drop_socket();
                    }
                    return Ok(());
                }
            }
        }
    }

    pub fn expect_eof(&mut self, s: usize, timeout: Duration) -> R<()> {
        self.expect_eof_mode(s, timeout, Mode::Exact)
    }

    /// The broker process stalls: no more requests, no pings. The connection stays open.
    pub fn suspend(&mut self, s: usize) {
        if let Some(c) = self.sessions[s].conn.as_ref() {
            c.shared.keepalive.store(false, std::sync::atomic::Ordering::SeqCst);
        }
        self.sessions[s].suspended_at = Some(Instant::now());
        let label = self.label(s).to_string();
        self.note(format!("{label} stops sending (no pings, no requests); its socket stays open"));
    }

    /// After a suspended session expired: what it received until the server closed its
    /// connection is shown but not compared (Apache closes the socket without flushing), the EOF
    /// itself is compared.
    pub fn collect_expired(&mut self, s: usize, timeout: Duration) -> R<()> {
        self.expect_eof_mode(s, timeout, Mode::Loose)?;
        self.sessions[s].suspended_at = None;
        Ok(())
    }

    /// The process dies: the TCP connection goes away without closeSession.
    pub fn drop_tcp(&mut self, s: usize) {
        if let Some(c) = self.sessions[s].conn.take() {
            c.drop_socket();
        }
        self.sessions[s].dropped_at = Some(Instant::now());
        let label = self.label(s).to_string();
        self.note(format!("{label}: TCP connection dropped (no closeSession)"));
    }

    /// Graceful close: closeSession (the notifications it fires are compared as a multiset per
    /// session), then the server closes the connection.
    pub fn close(&mut self, s: usize) -> R<Rep> {
        let was = self.unordered_events;
        self.unordered_events = true;
        let rep = self.call(s, Req::CloseSession);
        self.unordered_events = was;
        let rep = rep?;
        self.expect_eof(s, Duration::from_secs(10))?;
        Ok(rep)
    }

    /// Checks the notification header zxids: -1 (3.8) or a zxid the server has used (3.9 sends
    /// the firing txn's zxid).
    pub fn finish(&mut self) {
        self.step("final checks");
        let max = self.norm.max_zxid;
        let bad: Vec<String> = self
            .event_zxids
            .iter()
            .filter(|(_, z)| !(*z == -1 || (*z > 0 && *z <= max)))
            .map(|(w, z)| format!("{w}: header zxid {z:#x} (max zxid {max:#x})"))
            .collect();
        let n = bad.len();
        self.check(n == 0, format!("notification header zxids are -1 or an issued zxid ({n} bad: {:?})", &bad[..n.min(3)]));
        for p in self.norm.check_time_order() {
            self.note(format!("SELF-CONSISTENCY PROBLEM: {p}"));
        }
    }
}

pub fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

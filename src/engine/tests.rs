//! Engine behaviour with no socket and no clock: requests in, frames out, time passed in.

use super::*;
use crate::jute::{Jute, Reader, Writer};
use crate::server::config::ServerConfig;
use crate::tree::acl::open_acl_unsafe;

pub(super) fn server_config(extra: &str) -> ServerConfig {
    let text = format!("tickTime=2000\ndataDir=/tmp/rzk-engine-test\nclientPort=2181\nextendedTypesEnabled=true\n{extra}");
    ServerConfig::parse(&text, "zoo.cfg").unwrap()
}

pub(super) fn engine_with(extra: &str) -> Engine {
    Engine::new(EngineConfig::from_server_config(&server_config(extra)), at(0))
}

pub(super) fn at(ms: u64) -> Now {
    Now { mono_ms: 1_000_000 + ms, wall_ms: 1_700_000_000_000 + ms as i64 }
}

/// A reply or notification as received.
#[derive(Debug)]
pub(super) struct Frame {
    pub(super) xid: i32,
    pub(super) zxid: i64,
    pub(super) err: i32,
    pub(super) body: Vec<u8>,
}

pub(super) fn frames_for(out: &[Output], conn: ConnId) -> Vec<Frame> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(c, f) if *c == conn => {
                let mut r = Reader::new(&f[4..]);
                let h = ReplyHeader::read(&mut r).unwrap();
                Some(Frame { xid: h.xid, zxid: h.zxid, err: h.err, body: r.rest().to_vec() })
            }
            _ => None,
        })
        .collect()
}

pub(super) struct Client {
    pub(super) conn: ConnId,
    pub(super) xid: i32,
    pub(super) session: i64,
    pub(super) passwd: Vec<u8>,
}

pub(super) fn connect(e: &mut Engine, conn: ConnId, t: u64) -> Client {
    e.open(conn, "127.0.0.1:5000".parse().unwrap(), at(t));
    let req = ConnectRequest { time_out: 4000, passwd: Some(vec![0; 16]), read_only: Some(false), ..Default::default() };
    let out = e.connect(conn, &req.to_bytes(), at(t));
    let Output::Send(_, f) = &out[0] else { panic!("no connect response") };
    let resp = ConnectResponse::from_bytes(&f[4..]).unwrap();
    assert_eq!(resp.time_out, 4000);
    Client { conn, xid: 0, session: resp.session_id, passwd: resp.passwd }
}

impl Client {
    pub(super) fn send(&mut self, e: &mut Engine, op: i32, body: &[u8], t: u64) -> Vec<Output> {
        self.xid += 1;
        let mut w = Writer::new();
        RequestHeader { xid: self.xid, op }.write(&mut w);
        w.buf.extend_from_slice(body);
        e.request(self.conn, &w.buf, at(t))
    }
    /// Sends a request and returns this client's reply to it.
    pub(super) fn call(&mut self, e: &mut Engine, op: i32, body: &[u8]) -> Frame {
        let out = self.send(e, op, body, 0);
        let xid = self.xid;
        frames_for(&out, self.conn).into_iter().find(|f| f.xid == xid).expect("reply")
    }
    pub(super) fn create(&mut self, e: &mut Engine, path: &str, data: &[u8], flags: i32) -> Frame {
        let req = CreateRequest { path: path.into(), data: Some(data.to_vec()), acl: open_acl_unsafe(), flags };
        self.call(e, 1, &req.to_bytes())
    }
    pub(super) fn get_data(&mut self, e: &mut Engine, path: &str, watch: bool) -> Frame {
        self.call(e, 4, &PathWatchRequest { path: path.into(), watch }.to_bytes())
    }
}

fn stat_of(f: &Frame) -> Stat {
    GetDataResponse::from_bytes(&f.body).unwrap().stat
}

#[test]
fn sequential_names_come_from_the_stored_cversion() {
    let mut e = engine_with("");
    let mut c = connect(&mut e, 1, 0);
    c.create(&mut e, "/x", b"", 0);
    let a = c.create(&mut e, "/x/s-", b"", 2);
    c.create(&mut e, "/x/t", b"", 0);
    let b = c.create(&mut e, "/x/s-", b"", 2);
    assert_eq!(CreateResponse::from_bytes(&a.body).unwrap().path, "/x/s-0000000000");
    assert_eq!(CreateResponse::from_bytes(&b.body).unwrap().path, "/x/s-0000000002");
    c.call(&mut e, 2, &PathVersionRequest { path: "/x/t".into(), version: -1 }.to_bytes());
    let d = c.create(&mut e, "/x/s-", b"", 2);
    assert_eq!(CreateResponse::from_bytes(&d.body).unwrap().path, "/x/s-0000000003");
}

#[test]
fn failed_writes_consume_a_zxid() {
    let mut e = engine_with("");
    let mut c = connect(&mut e, 1, 0);
    let ok = c.create(&mut e, "/a", b"1", 0);
    let dup = c.create(&mut e, "/a", b"1", 0);
    assert_eq!(dup.err, ErrorCode::NodeExists.code());
    assert_eq!(dup.zxid, ok.zxid + 1);
    let next = c.create(&mut e, "/b", b"", 0);
    assert_eq!(next.zxid, ok.zxid + 2);
    // Reads do not.
    let r = c.get_data(&mut e, "/a", false);
    assert_eq!(r.zxid, next.zxid);
}

#[test]
fn visible_cversion_counts_creates_and_deletes() {
    let mut e = engine_with("");
    let mut c = connect(&mut e, 1, 0);
    c.create(&mut e, "/p", b"", 0);
    c.create(&mut e, "/p/a", b"", 0);
    c.create(&mut e, "/p/b", b"", 0);
    c.call(&mut e, 2, &PathVersionRequest { path: "/p/a".into(), version: -1 }.to_bytes());
    let s = stat_of(&c.get_data(&mut e, "/p", false));
    assert_eq!((s.cversion, s.num_children), (3, 1));
    let root = stat_of(&c.get_data(&mut e, "/", false));
    assert_eq!(root.cversion, 0);
}

#[test]
fn failed_multi_reports_per_op_results_and_applies_nothing() {
    let mut e = engine_with("");
    let mut c = connect(&mut e, 1, 0);
    c.create(&mut e, "/m", b"", 0);
    let mut w = Writer::new();
    MultiHeader { op: 1, done: false, err: -1 }.write(&mut w);
    CreateRequest { path: "/m/1".into(), data: None, acl: open_acl_unsafe(), flags: 0 }.write(&mut w);
    MultiHeader { op: 13, done: false, err: -1 }.write(&mut w);
    PathVersionRequest { path: "/m".into(), version: 7 }.write(&mut w);
    MultiHeader { op: 5, done: false, err: -1 }.write(&mut w);
    SetDataRequest { path: "/m".into(), data: None, version: -1 }.write(&mut w);
    MultiHeader { op: -1, done: true, err: -1 }.write(&mut w);
    let f = c.call(&mut e, 14, &w.buf);
    assert_eq!(f.err, 0);
    let hex: Vec<u8> = [
        &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
        &[0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0x99, 0xff, 0xff, 0xff, 0x99],
        &[0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xfe],
        &[0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff],
    ]
    .concat();
    assert_eq!(f.body, hex, "reference §1.7 bytes");
    assert_eq!(c.get_data(&mut e, "/m/1", false).err, ErrorCode::NoNode.code());
}

#[test]
fn exists_watches_a_missing_node_but_get_data_does_not() {
    let mut e = engine_with("");
    let mut c = connect(&mut e, 1, 0);
    let mut other = connect(&mut e, 2, 0);
    assert_eq!(c.call(&mut e, 3, &PathWatchRequest { path: "/w".into(), watch: true }.to_bytes()).err, -101);
    assert_eq!(c.get_data(&mut e, "/v", true).err, -101);
    let out = other.send(&mut e, 1, &CreateRequest { path: "/w".into(), data: None, acl: open_acl_unsafe(), flags: 0 }.to_bytes(), 0);
    let got = frames_for(&out, 1);
    assert_eq!(got.len(), 1);
    let ev = WatcherEvent::from_bytes(&got[0].body).unwrap();
    assert_eq!((got[0].xid, ev.event_type, ev.state, ev.path.as_str()), (-1, 1, 3, "/w"));
    let create_zxid = frames_for(&out, 2)[0].zxid;
    assert_eq!(got[0].zxid, create_zxid, "3.9: notifications carry the txn zxid");
    let out = other.send(&mut e, 1, &CreateRequest { path: "/v".into(), data: None, acl: open_acl_unsafe(), flags: 0 }.to_bytes(), 0);
    assert!(frames_for(&out, 1).is_empty());
}

#[test]
fn notification_precedes_the_writers_own_reply() {
    let mut e = engine_with("");
    let mut c = connect(&mut e, 1, 0);
    c.create(&mut e, "/n", b"a", 0);
    c.get_data(&mut e, "/n", true);
    let out = c.send(&mut e, 5, &SetDataRequest { path: "/n".into(), data: Some(b"b".to_vec()), version: -1 }.to_bytes(), 0);
    let f = frames_for(&out, 1);
    assert_eq!(f.iter().map(|f| f.xid).collect::<Vec<_>>(), vec![-1, c.xid]);
}

#[test]
fn expiry_deletes_ephemerals_and_fires_watches() {
    let mut e = engine_with("");
    let mut owner = connect(&mut e, 1, 0);
    let mut watcher = connect(&mut e, 2, 0);
    owner.create(&mut e, "/e", b"", 1);
    watcher.get_data(&mut e, "/e", true);
    // The watcher keeps its session alive; the owner goes silent.
    watcher.send(&mut e, 11, &[], 3000);
    assert!(e.tick(at(5999)).is_empty());
    let out = e.tick(at(6000));
    let ev = frames_for(&out, 2);
    assert_eq!(WatcherEvent::from_bytes(&ev[0].body).unwrap().event_type, 2);
    assert!(out.contains(&Output::Close(1)));
    assert_eq!(watcher.get_data(&mut e, "/e", false).err, -101);
    // Reconnecting to the expired session gets the timeout-0 reply, then close.
    e.open(3, "127.0.0.1:5001".parse().unwrap(), at(6001));
    let req = ConnectRequest { session_id: owner.session, passwd: Some(owner.passwd.clone()), time_out: 4000, ..Default::default() };
    let out = e.connect(3, &req.to_bytes(), at(6001));
    let Output::Send(_, f) = &out[0] else { panic!() };
    let resp = ConnectResponse::from_bytes(&f[4..]).unwrap();
    assert_eq!((resp.time_out, resp.session_id, resp.read_only), (0, 0, None));
    assert_eq!(out[1], Output::Close(3));
}

#[test]
fn reconnect_resumes_the_session_and_closes_the_old_connection() {
    let mut e = engine_with("");
    let mut c = connect(&mut e, 1, 0);
    c.create(&mut e, "/keep", b"", 1);
    e.open(2, "127.0.0.1:5001".parse().unwrap(), at(100));
    let req = ConnectRequest { session_id: c.session, passwd: Some(c.passwd.clone()), time_out: 4000, read_only: Some(false), ..Default::default() };
    let out = e.connect(2, &req.to_bytes(), at(100));
    assert!(out.contains(&Output::Close(1)));
    let Output::Send(_, f) = out.iter().find(|o| matches!(o, Output::Send(2, _))).unwrap() else { panic!() };
    assert_eq!(ConnectResponse::from_bytes(&f[4..]).unwrap().session_id, c.session);
    let mut bad = req.clone();
    bad.passwd = Some(vec![1; 16]);
    e.open(3, "127.0.0.1:5002".parse().unwrap(), at(100));
    let out = e.connect(3, &bad.to_bytes(), at(100));
    assert_eq!(out.last(), Some(&Output::Close(3)));
    let mut c2 = Client { conn: 2, xid: 10, session: c.session, passwd: c.passwd.clone() };
    let eph = c2.call(&mut e, 103, &GetEphemeralsRequest { prefix_path: None }.to_bytes());
    assert_eq!(GetEphemeralsResponse::from_bytes(&eph.body).unwrap().ephemerals, vec!["/keep".to_string()]);
}

#[test]
fn close_session_deletes_ephemerals_in_one_txn() {
    let mut e = engine_with("");
    let mut c = connect(&mut e, 1, 0);
    c.create(&mut e, "/e1", b"", 1);
    c.create(&mut e, "/e2", b"", 1);
    let before = e.last_zxid().0;
    let out = c.send(&mut e, -11, &[], 0);
    assert_eq!(frames_for(&out, 1)[0].zxid, before + 1);
    assert_eq!(out.last(), Some(&Output::Close(1)));
    assert!(e.tree.lookup("/e1").is_none() && e.tree.lookup("/e2").is_none());
}

#[test]
fn digest_acls_deny_other_sessions_and_mask_get_acl() {
    let mut e = engine_with("");
    let mut bob = connect(&mut e, 1, 0);
    let mut eve = connect(&mut e, 2, 0);
    let out = bob.send(&mut e, 100, &AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Some(b"bob:secret".to_vec()) }.to_bytes(), 0);
    let f = &frames_for(&out, 1)[0];
    assert_eq!((f.xid, f.zxid, f.err), (-4, 0, 0));
    let id = Id { scheme: "digest".into(), id: "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=".into() };
    let acl = vec![Acl { perms: 31, id: id.clone() }, Acl { perms: 1, id: Id { scheme: "world".into(), id: "anyone".into() } }];
    let f = bob.call(&mut e, 1, &CreateRequest { path: "/s".into(), data: None, acl, flags: 0 }.to_bytes());
    assert_eq!(f.err, 0);
    let w = eve.call(&mut e, 5, &SetDataRequest { path: "/s".into(), data: None, version: -1 }.to_bytes());
    assert_eq!(w.err, ErrorCode::NoAuth.code());
    let g = eve.call(&mut e, 6, &PathRequest { path: "/s".into() }.to_bytes());
    let acl = GetAclResponse::from_bytes(&g.body).unwrap().acl;
    assert_eq!(acl[0].id.id, "bob:x");
    let who = bob.call(&mut e, 107, &[]);
    let info = WhoAmIResponse::from_bytes(&who.body).unwrap().client_info;
    assert_eq!(info.iter().map(|i| (i.auth_scheme.as_str(), i.user.as_str())).collect::<Vec<_>>(), vec![("digest", "bob"), ("ip", "127.0.0.1")]);
    let out = bob.send(&mut e, 100, &AuthPacket { auth_type: 0, scheme: "nosuch".into(), auth: Some(vec![]) }.to_bytes(), 0);
    assert_eq!(frames_for(&out, 1)[0].err, ErrorCode::AuthFailed.code());
    assert_eq!(out.last(), Some(&Output::Close(1)));
}

#[test]
fn unknown_opcode_gets_unimplemented_then_close() {
    let mut e = engine_with("");
    let mut c = connect(&mut e, 1, 0);
    let out = c.send(&mut e, 55, &[], 0);
    assert_eq!(frames_for(&out, 1)[0].err, ErrorCode::Unimplemented.code());
    assert_eq!(out.last(), Some(&Output::Close(1)));
}

#[test]
fn hard_quota_is_enforced_only_when_enabled() {
    for (enforce, expect) in [(true, ErrorCode::QuotaExceeded.code()), (false, 0)] {
        let mut e = engine_with(&format!("enforceQuota={enforce}"));
        let mut c = connect(&mut e, 1, 0);
        c.create(&mut e, "/q", b"", 0);
        let null = |p: &str| CreateRequest { path: p.into(), data: None, acl: open_acl_unsafe(), flags: 0 }.to_bytes();
        c.call(&mut e, 1, &null("/zookeeper/quota/q"));
        c.create(&mut e, "/zookeeper/quota/q/zookeeper_limits", b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2", 0);
        c.create(&mut e, "/zookeeper/quota/q/zookeeper_stats", b"count=0,bytes=0", 0);
        let stats = c.get_data(&mut e, "/zookeeper/quota/q/zookeeper_stats", false);
        assert_eq!(GetDataResponse::from_bytes(&stats.body).unwrap().data.unwrap(), b"count=1,bytes=0");
        assert_eq!(c.create(&mut e, "/q/a", b"xyz", 0).err, 0);
        assert_eq!(c.create(&mut e, "/q/b", b"", 0).err, expect);
        let stats = c.get_data(&mut e, "/zookeeper/quota/q/zookeeper_stats", false);
        let want: &[u8] = if enforce { b"count=2,bytes=3" } else { b"count=3,bytes=3" };
        assert_eq!(GetDataResponse::from_bytes(&stats.body).unwrap().data.unwrap(), want);
    }
}

#[test]
fn containers_are_reaped_after_their_last_child_goes() {
    let mut e = engine_with("znode.container.checkIntervalMs=1000");
    let mut c = connect(&mut e, 1, 0);
    let f = c.call(&mut e, 19, &CreateRequest { path: "/c".into(), data: None, acl: open_acl_unsafe(), flags: 4 }.to_bytes());
    assert_eq!(Create2Response::from_bytes(&f.body).unwrap().stat.ephemeral_owner, 0);
    c.send(&mut e, 11, &[], 500);
    e.tick(at(1000));
    assert!(e.tree.lookup("/c").is_some(), "never-used containers stay");
    c.create(&mut e, "/c/x", b"", 0);
    c.call(&mut e, 2, &PathVersionRequest { path: "/c/x".into(), version: -1 }.to_bytes());
    c.send(&mut e, 11, &[], 1500);
    e.tick(at(2000));
    assert!(e.tree.lookup("/c").is_none());
}

#[test]
fn ttl_nodes_need_extended_types_and_expire() {
    let mut e = engine_with("znode.container.checkIntervalMs=1000");
    let mut c = connect(&mut e, 1, 0);
    let req = CreateTtlRequest { path: "/t".into(), data: None, acl: open_acl_unsafe(), flags: 5, ttl: 1500 };
    assert_eq!(c.call(&mut e, 21, &req.to_bytes()).err, 0);
    assert_eq!(c.create(&mut e, "/t2", b"", 5).err, ErrorCode::BadArguments.code());
    c.send(&mut e, 11, &[], 900);
    e.tick(at(1000));
    assert!(e.tree.lookup("/t").is_some());
    c.send(&mut e, 11, &[], 1900);
    e.tick(at(2000));
    assert!(e.tree.lookup("/t").is_none());
    let mut plain = engine_with("extendedTypesEnabled=false");
    let mut c = connect(&mut plain, 1, 0);
    assert_eq!(c.call(&mut plain, 21, &req.to_bytes()).err, ErrorCode::Unimplemented.code());
}

#[test]
fn set_watches_replays_missed_events_before_its_reply() {
    let mut e = engine_with("");
    let mut c = connect(&mut e, 1, 0);
    c.create(&mut e, "/d", b"", 0);
    let rel = e.last_zxid().0;
    c.call(&mut e, 5, &SetDataRequest { path: "/d".into(), data: None, version: -1 }.to_bytes());
    let sw = SetWatches { relative_zxid: rel, data_watches: vec!["/d".into(), "/gone".into()], exist_watches: vec!["/d".into()], child_watches: vec![] };
    let mut w = Writer::new();
    RequestHeader { xid: -8, op: 101 }.write(&mut w);
    sw.write(&mut w);
    let out = e.request(1, &w.buf, at(0));
    let f = frames_for(&out, 1);
    let kinds: Vec<i32> = f.iter().filter(|f| f.xid == -1).map(|f| WatcherEvent::from_bytes(&f.body).unwrap().event_type).collect();
    assert_eq!(kinds, vec![3, 2, 1]);
    assert_eq!(f.last().unwrap().xid, -8);
}

/// Commits everything proposed so far and returns the outputs.
fn commit_all(e: &mut Engine) -> Vec<Output> {
    let mut out = Vec::new();
    let props = e.take_proposals();
    if let Some(last) = props.last() {
        e.committed(last.hdr.zxid, at(0), &mut out);
    }
    out
}

fn logged_engine() -> (Engine, Client, Client) {
    let mut e = engine_with("");
    let a = connect(&mut e, 1, 0);
    let b = connect(&mut e, 2, 0);
    e.auto_commit = false;
    (e, a, b)
}

#[test]
fn a_session_waits_for_its_create_session_txn() {
    let mut e = engine_with("");
    e.auto_commit = false;
    e.open(1, "127.0.0.1:5000".parse().unwrap(), at(0));
    let req = ConnectRequest { time_out: 4000, passwd: Some(vec![0; 16]), ..Default::default() };
    assert!(e.connect(1, &req.to_bytes(), at(0)).is_empty(), "no reply before createSession is durable");
    // A request pipelined behind the ConnectRequest waits too.
    let mut w = Writer::new();
    RequestHeader { xid: 1, op: 3 }.write(&mut w);
    PathWatchRequest { path: "/".into(), watch: false }.write(&mut w);
    assert!(e.request(1, &w.buf, at(0)).is_empty());
    let props = e.take_proposals();
    assert_eq!(props.len(), 1);
    assert_eq!(props[0].txn, Txn::CreateSession { timeout: 4000 });
    let mut out = Vec::new();
    e.committed(props[0].hdr.zxid, at(0), &mut out);
    assert_eq!(out.len(), 2, "connect response, then the exists reply");
}

#[test]
fn reads_wait_for_their_sessions_writes_but_not_for_others() {
    let (mut e, mut a, mut b) = logged_engine();
    let out = a.send(&mut e, 1, &CreateRequest { path: "/a".into(), data: Some(b"v".to_vec()), acl: open_acl_unsafe(), flags: 0 }.to_bytes(), 0);
    assert!(out.is_empty(), "no reply before the txn is durable");
    let out = a.send(&mut e, 4, &PathWatchRequest { path: "/a".into(), watch: false }.to_bytes(), 0);
    assert!(out.is_empty(), "the session's read waits for its write");
    let other = b.get_data(&mut e, "/a", false);
    assert_eq!(other.err, ErrorCode::NoNode.code(), "another session reads the applied tree");
    let out = commit_all(&mut e);
    let f = frames_for(&out, 1);
    assert_eq!(f.iter().map(|f| (f.xid, f.err)).collect::<Vec<_>>(), vec![(1, 0), (2, 0)]);
    assert_eq!(GetDataResponse::from_bytes(&f[1].body).unwrap().data.unwrap(), b"v");
}

#[test]
fn pipelined_writes_see_earlier_pending_writes() {
    let (mut e, mut a, _) = logged_engine();
    let mk = |p: &str, flags| CreateRequest { path: p.into(), data: None, acl: open_acl_unsafe(), flags }.to_bytes();
    a.send(&mut e, 1, &mk("/p", 0), 0);
    a.send(&mut e, 1, &mk("/p/c", 0), 0);
    a.send(&mut e, 1, &mk("/p/s-", 2), 0);
    a.send(&mut e, 1, &mk("/p/c", 0), 0);
    a.send(&mut e, 2, &PathVersionRequest { path: "/p".into(), version: -1 }.to_bytes(), 0);
    let props = e.take_proposals();
    assert_eq!(props.len(), 5, "one txn each, in one batch for the log");
    let mut out = Vec::new();
    e.committed(props[4].hdr.zxid, at(0), &mut out);
    let f = frames_for(&out, 1);
    let errs: Vec<i32> = f.iter().map(|f| f.err).collect();
    assert_eq!(errs, vec![0, 0, 0, -110, -111]);
    assert_eq!(CreateResponse::from_bytes(&f[2].body).unwrap().path, "/p/s-0000000001");
}

#[test]
fn a_failed_multi_leaves_no_pending_changes() {
    let (mut e, mut a, _) = logged_engine();
    let mut w = Writer::new();
    MultiHeader { op: 1, done: false, err: -1 }.write(&mut w);
    CreateRequest { path: "/x".into(), data: None, acl: open_acl_unsafe(), flags: 0 }.write(&mut w);
    MultiHeader { op: 2, done: false, err: -1 }.write(&mut w);
    PathVersionRequest { path: "/missing".into(), version: -1 }.write(&mut w);
    MultiHeader { op: -1, done: true, err: -1 }.write(&mut w);
    a.send(&mut e, 14, &w.buf, 0);
    // The rolled-back create must not make this one fail.
    a.send(&mut e, 1, &CreateRequest { path: "/x".into(), data: None, acl: open_acl_unsafe(), flags: 0 }.to_bytes(), 0);
    let out = commit_all(&mut e);
    let f = frames_for(&out, 1);
    assert_eq!(f[1].err, 0);
    assert!(e.tree.lookup("/x").is_some());
}

#[test]
fn close_session_includes_pending_ephemerals() {
    let (mut e, mut a, _) = logged_engine();
    a.send(&mut e, 1, &CreateRequest { path: "/eph".into(), data: None, acl: open_acl_unsafe(), flags: 1 }.to_bytes(), 0);
    a.send(&mut e, -11, &[], 0);
    let props = e.take_proposals();
    assert_eq!(props[1].txn, Txn::CloseSession { paths: vec!["/eph".into()] });
    let mut out = Vec::new();
    e.committed(props[1].hdr.zxid, at(0), &mut out);
    assert!(e.tree.lookup("/eph").is_none());
    assert_eq!(out.last(), Some(&Output::Close(1)));
}

#[test]
fn exists_needs_read_on_an_existing_node() {
    let mut e = engine_with("");
    let mut c = connect(&mut e, 1, 0);
    let nobody = vec![Acl { perms: 31, id: Id { scheme: "digest".into(), id: "x:y".into() } }];
    c.call(&mut e, 1, &CreateRequest { path: "/secret".into(), data: None, acl: nobody, flags: 0 }.to_bytes());
    let f = c.call(&mut e, 3, &PathWatchRequest { path: "/secret".into(), watch: true }.to_bytes());
    assert_eq!(f.err, ErrorCode::NoAuth.code());
    assert_eq!(e.watches.data.watch_count(), 0, "a denied exists registers no watch");
    let f = c.call(&mut e, 3, &PathWatchRequest { path: "/missing".into(), watch: true }.to_bytes());
    assert_eq!(f.err, ErrorCode::NoNode.code());
    assert_eq!(e.watches.data.watch_count(), 1);
}

/// Pipelined writes of every kind, prepared long before they are applied: each proposal carries
/// the digest the tree has once it is applied (Apache's TxnDigest), including failed multis,
/// closeSession with ephemerals and an expiry.
#[test]
fn every_proposal_carries_the_digest_the_tree_has_after_it() {
    use rand::{Rng, SeedableRng};
    let mut e = engine_with("");
    e.auto_commit = false;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let commit_all = |e: &mut Engine| {
        let props = e.take_proposals();
        assert!(props.iter().all(|p| p.digest.is_some()), "every proposal has a digest");
        if let Some(last) = props.last() {
            let mut out = Vec::new();
            e.committed(last.hdr.zxid, at(0), &mut out);
        }
    };
    let mut clients = Vec::new();
    for conn in 1..=3 {
        e.open(conn, "127.0.0.1:5000".parse().unwrap(), at(0));
        let req = ConnectRequest { time_out: 4000, passwd: Some(vec![0; 16]), read_only: Some(false), ..Default::default() };
        e.connect(conn, &req.to_bytes(), at(0));
        commit_all(&mut e);
        let sid = e.conns[&conn].session.unwrap().0;
        clients.push(Client { conn, xid: 0, session: sid, passwd: vec![] });
    }
    let names = ["/a", "/a/b", "/a/c", "/d", "/d/e", "/zookeeper/quota/x"];
    for round in 0..300 {
        let c = &mut clients[rng.gen_range(0..3)];
        let path = names[rng.gen_range(0..names.len())];
        let data = vec![b'x'; rng.gen_range(0..40)];
        match rng.gen_range(0..8) {
            0 | 1 => {
                let flags = [0, 1, 2, 3, 4][rng.gen_range(0..5)];
                let req = CreateRequest { path: path.into(), data: Some(data), acl: open_acl_unsafe(), flags };
                c.send(&mut e, 1, &req.to_bytes(), 0);
            }
            2 => {
                let req = SetDataRequest { path: path.into(), data: Some(data), version: -1 };
                c.send(&mut e, 5, &req.to_bytes(), 0);
            }
            3 => {
                let req = PathVersionRequest { path: path.into(), version: -1 };
                c.send(&mut e, 2, &req.to_bytes(), 0);
            }
            4 => {
                let acl = vec![Acl { perms: 31, id: Id { scheme: "world".into(), id: "anyone".into() } }];
                let req = SetAclRequest { path: path.into(), acl, version: -1 };
                c.send(&mut e, 7, &req.to_bytes(), 0);
            }
            5 => {
                // A multi that may fail half way: nothing of it is applied then.
                let mut w = Writer::new();
                MultiHeader { op: 1, done: false, err: -1 }.write(&mut w);
                CreateRequest { path: format!("{path}-m{round}"), data: Some(data), acl: open_acl_unsafe(), flags: 0 }.write(&mut w);
                MultiHeader { op: 5, done: false, err: -1 }.write(&mut w);
                SetDataRequest { path: names[rng.gen_range(0..names.len())].into(), data: Some(b"m".to_vec()), version: -1 }.write(&mut w);
                MultiHeader { op: -1, done: true, err: -1 }.write(&mut w);
                c.send(&mut e, 14, &w.buf, 0);
            }
            6 => {
                let req = CreateRequest { path: format!("{path}-seq"), data: Some(data), acl: open_acl_unsafe(), flags: 2 };
                c.send(&mut e, 1, &req.to_bytes(), 0);
            }
            _ => {
                // Sometimes let everything prepared so far be applied.
                commit_all(&mut e);
            }
        }
    }
    // A session closes with its ephemerals while other writes are pending behind it.
    let c = &mut clients[0];
    c.send(&mut e, -11, &[], 0);
    let c = &mut clients[1];
    c.send(&mut e, 1, &CreateRequest { path: "/after-close".into(), data: None, acl: open_acl_unsafe(), flags: 1 }.to_bytes(), 0);
    commit_all(&mut e);
    // Another expires (no pings): its closeSession is proposed by the expirer.
    e.tick(at(20_000));
    commit_all(&mut e);
    assert_eq!(e.stats.digest_mismatches, 0);
    let mut full = e.tree.digest;
    full.recompute(&e.tree);
    assert_eq!(full, e.tree.digest);
    assert!(e.tree.len() > 5, "the workload made nodes");
}

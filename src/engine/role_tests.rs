//! A leader and a learner driven by hand, with no ZAB code: the test moves `Forward`s to the
//! leader and the leader's proposals, once "committed", to the learner, as the ZAB layer would
//! with an instant quorum.

use super::tests::{at, connect, engine_with, frames_for, server_config, Client, Frame};
use super::*;
use crate::jute::{Jute, Writer};
use crate::tree::acl::open_acl_unsafe;

const LEADER: u8 = 2;

fn member(myid: u8, role: Role) -> Engine {
    let mut cfg = EngineConfig::from_server_config(&server_config(""));
    cfg.server_id = myid;
    let mut e = Engine::new(cfg, at(0));
    e.auto_commit = false;
    e.set_role(role, at(0));
    e
}

/// A leader (myid 2) and a learner (myid 1: its session ids are a standalone server's, so their
/// replies can be compared byte for byte).
fn ensemble() -> (Engine, Engine) {
    (member(LEADER, Role::Leader), member(1, Role::Learner))
}

/// One round of the ZAB layer: the learner's forwards go to the leader, every txn the leader
/// proposed is committed there and applied on the learner, in zxid order. Returns the leader's
/// and the learner's outputs.
fn relay(leader: &mut Engine, learner: &mut Engine, t: u64) -> (Vec<Output>, Vec<Output>) {
    let mut on_leader = Vec::new();
    let mut on_learner = Vec::new();
    for f in learner.take_forwards() {
        on_leader.extend(leader.forwarded(f.session, f.cxid, f.op_type, &f.body, f.auth, at(t)));
    }
    for p in leader.take_proposals() {
        leader.committed(p.hdr.zxid, at(t), &mut on_leader);
        on_learner.extend(learner.apply_committed(&p.hdr, &p.txn, p.digest, at(t)));
    }
    (on_leader, on_learner)
}

fn connect_request() -> Vec<u8> {
    ConnectRequest { time_out: 4000, passwd: Some(vec![0; 16]), read_only: Some(false), ..Default::default() }.to_bytes()
}

fn connect_response(out: &[Output], conn: ConnId) -> ConnectResponse {
    let f = out.iter().find_map(|o| match o {
        Output::Send(c, f) if *c == conn => Some(f),
        _ => None,
    });
    ConnectResponse::from_bytes(&f.expect("connect response")[4..]).unwrap()
}

/// A client of the learner, once the leader has committed its session.
fn connect_via_learner(leader: &mut Engine, learner: &mut Engine, conn: ConnId, t: u64) -> Client {
    learner.open(conn, "127.0.0.1:6000".parse().unwrap(), at(t));
    assert!(learner.connect(conn, &connect_request(), at(t)).is_empty());
    let (_, out) = relay(leader, learner, t);
    let resp = connect_response(&out, conn);
    Client { conn, xid: 0, session: resp.session_id, passwd: resp.passwd }
}

/// A client of the leader (its session is committed and applied on the learner too).
fn connect_to_leader(leader: &mut Engine, learner: &mut Engine, conn: ConnId, t: u64) -> Client {
    leader.open(conn, "127.0.0.1:7000".parse().unwrap(), at(t));
    assert!(leader.connect(conn, &connect_request(), at(t)).is_empty());
    let (out, _) = relay(leader, learner, t);
    let resp = connect_response(&out, conn);
    Client { conn, xid: 0, session: resp.session_id, passwd: resp.passwd }
}

/// Sends a request through the learner, relays, and returns the learner's outputs.
fn send_via(c: &mut Client, leader: &mut Engine, learner: &mut Engine, op: i32, body: &[u8], t: u64) -> Vec<Output> {
    let mut out = c.send(learner, op, body, t);
    out.extend(relay(leader, learner, t).1);
    out
}

fn reply(out: &[Output], c: &Client) -> Frame {
    frames_for(out, c.conn).into_iter().find(|f| f.xid == c.xid).expect("reply")
}

fn create_req(path: &str, data: &[u8], flags: i32) -> Vec<u8> {
    CreateRequest { path: path.into(), data: Some(data.to_vec()), acl: open_acl_unsafe(), flags }.to_bytes()
}

fn multi_req() -> Vec<u8> {
    let mut w = Writer::new();
    MultiHeader { op: 1, done: false, err: -1 }.write(&mut w);
    CreateRequest { path: "/a/m".into(), data: None, acl: open_acl_unsafe(), flags: 0 }.write(&mut w);
    MultiHeader { op: 5, done: false, err: -1 }.write(&mut w);
    SetDataRequest { path: "/a".into(), data: Some(b"3".to_vec()), version: -1 }.write(&mut w);
    MultiHeader { op: 13, done: false, err: -1 }.write(&mut w);
    PathVersionRequest { path: "/a".into(), version: 2 }.write(&mut w);
    MultiHeader { op: -1, done: true, err: -1 }.write(&mut w);
    w.buf
}

#[test]
fn a_learners_session_is_created_by_the_leader() {
    let (mut leader, mut learner) = (member(LEADER, Role::Leader), member(3, Role::Learner));
    learner.open(1, "127.0.0.1:6000".parse().unwrap(), at(0));
    assert!(learner.connect(1, &connect_request(), at(0)).is_empty(), "no reply before the leader commits the session");
    let fw = learner.take_forwards();
    assert_eq!(fw.len(), 1);
    let f = &fw[0];
    assert_eq!((f.op_type, f.cxid, f.body.as_slice(), f.auth.is_empty()), (-10, 0, &4000i32.to_be_bytes()[..], true));
    assert_eq!(f.session.0 >> 56, 3, "the learner's myid is the session id's high byte");
    assert!(leader.forwarded(f.session, f.cxid, f.op_type, &f.body, f.auth.clone(), at(0)).is_empty());
    assert_eq!(leader.sessions.get(f.session).unwrap().timeout_ms, 4000);
    let props = leader.take_proposals();
    assert_eq!(props.len(), 1);
    assert_eq!(props[0].txn, Txn::CreateSession { timeout: 4000 });
    assert_eq!((props[0].hdr.client_id, props[0].hdr.cxid), (f.session.0, 0));
    let mut out = Vec::new();
    leader.committed(props[0].hdr.zxid, at(0), &mut out);
    assert!(out.is_empty(), "a forwarded request is answered by its learner");
    let out = learner.apply_committed(&props[0].hdr, &props[0].txn, props[0].digest, at(0));
    let resp = connect_response(&out, 1);
    assert_eq!((resp.session_id, resp.time_out), (f.session.0, 4000));
    assert_eq!(learner.last_zxid(), leader.last_zxid());
}

#[test]
fn learner_replies_equal_standalone_replies() {
    let mut solo = engine_with("");
    let (mut leader, mut learner) = ensemble();
    let mut s = connect(&mut solo, 1, 0);
    let mut c = connect_via_learner(&mut leader, &mut learner, 1, 0);
    assert_eq!((c.session, &c.passwd), (s.session, &s.passwd));
    let steps: Vec<(i32, Vec<u8>)> = vec![
        (1, create_req("/a", b"1", 0)),
        (15, create_req("/a/e", b"x", 1)),
        (1, create_req("/a", b"1", 0)),
        (5, SetDataRequest { path: "/a".into(), data: Some(b"2".to_vec()), version: -1 }.to_bytes()),
        (4, PathWatchRequest { path: "/a".into(), watch: true }.to_bytes()),
        (14, multi_req()),
        (4, PathWatchRequest { path: "/a".into(), watch: false }.to_bytes()),
        (2, PathVersionRequest { path: "/a/e".into(), version: -1 }.to_bytes()),
        // One child: the order of several is the hash order of each server's tree.
        (12, PathWatchRequest { path: "/a".into(), watch: false }.to_bytes()),
        (3, PathWatchRequest { path: "/a/e".into(), watch: false }.to_bytes()),
    ];
    for (op, body) in steps {
        let want = s.send(&mut solo, op, &body, 0);
        let got = send_via(&mut c, &mut leader, &mut learner, op, &body, 0);
        assert_eq!(got, want, "op {op}: same frames, zxids included");
    }
    assert_eq!(learner.last_zxid(), solo.last_zxid());
    assert_eq!(leader.last_zxid(), solo.last_zxid());
}

#[test]
fn a_leader_side_write_fires_a_learner_side_watch() {
    let (mut leader, mut learner) = ensemble();
    let mut watcher = connect_via_learner(&mut leader, &mut learner, 1, 0);
    let mut writer = connect_to_leader(&mut leader, &mut learner, 1, 0);
    assert!(learner.sessions.get(SessionId(writer.session)).is_some(), "sessions made elsewhere are known here");
    let f = watcher.call(&mut learner, 3, &PathWatchRequest { path: "/w".into(), watch: true }.to_bytes());
    assert_eq!(f.err, ErrorCode::NoNode.code());
    assert!(writer.send(&mut leader, 1, &create_req("/w", b"", 0), 0).is_empty());
    let (on_leader, on_learner) = relay(&mut leader, &mut learner, 0);
    let written = reply(&on_leader, &writer);
    let ev = frames_for(&on_learner, watcher.conn);
    assert_eq!(ev.len(), 1);
    let event = WatcherEvent::from_bytes(&ev[0].body).unwrap();
    assert_eq!((ev[0].xid, ev[0].zxid, event.event_type, event.path.as_str()), (-1, written.zxid, 1, "/w"));
}

#[test]
fn a_read_waits_behind_its_connections_forwarded_write() {
    let (mut leader, mut learner) = ensemble();
    let mut a = connect_via_learner(&mut leader, &mut learner, 1, 0);
    let mut b = connect_via_learner(&mut leader, &mut learner, 2, 0);
    assert!(a.send(&mut learner, 1, &create_req("/q", b"v", 0), 0).is_empty());
    assert!(a.send(&mut learner, 4, &PathWatchRequest { path: "/q".into(), watch: false }.to_bytes(), 0).is_empty(), "held behind the write");
    assert_eq!(learner.outstanding_requests(), 2);
    assert_eq!(b.get_data(&mut learner, "/q", false).err, ErrorCode::NoNode.code(), "another connection reads the applied tree");
    let (_, out) = relay(&mut leader, &mut learner, 0);
    let f = frames_for(&out, a.conn);
    assert_eq!(f.iter().map(|f| (f.xid, f.err)).collect::<Vec<_>>(), vec![(1, 0), (2, 0)]);
    assert_eq!(GetDataResponse::from_bytes(&f[1].body).unwrap().data.unwrap(), b"v");
    assert_eq!(learner.outstanding_requests(), 0);
}

#[test]
fn a_failed_forwarded_write_gets_its_error() {
    let (mut leader, mut learner) = ensemble();
    let mut c = connect_via_learner(&mut leader, &mut learner, 1, 0);
    let ok = reply(&send_via(&mut c, &mut leader, &mut learner, 1, &create_req("/d", b"", 0), 0), &c);
    let dup = reply(&send_via(&mut c, &mut leader, &mut learner, 1, &create_req("/d", b"", 0), 0), &c);
    assert_eq!((dup.err, dup.zxid), (ErrorCode::NodeExists.code(), ok.zxid + 1));
}

#[test]
fn forwarded_writes_are_checked_with_the_clients_auth() {
    let (mut leader, mut learner) = ensemble();
    let mut bob = connect_via_learner(&mut leader, &mut learner, 1, 0);
    let mut eve = connect_via_learner(&mut leader, &mut learner, 2, 0);
    bob.send(&mut learner, 100, &AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Some(b"bob:secret".to_vec()) }.to_bytes(), 0);
    let acl = vec![Acl { perms: 31, id: Id { scheme: "digest".into(), id: "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=".into() } }];
    let body = CreateRequest { path: "/s".into(), data: None, acl, flags: 0 }.to_bytes();
    assert_eq!(reply(&send_via(&mut bob, &mut leader, &mut learner, 1, &body, 0), &bob).err, 0);
    let set = SetDataRequest { path: "/s".into(), data: None, version: -1 }.to_bytes();
    assert_eq!(reply(&send_via(&mut eve, &mut leader, &mut learner, 5, &set, 0), &eve).err, ErrorCode::NoAuth.code());
    assert_eq!(reply(&send_via(&mut bob, &mut leader, &mut learner, 5, &set, 0), &bob).err, 0);
}

#[test]
fn close_session_through_the_learner_removes_ephemerals_on_both() {
    let (mut leader, mut learner) = ensemble();
    let mut c = connect_via_learner(&mut leader, &mut learner, 1, 0);
    send_via(&mut c, &mut leader, &mut learner, 1, &create_req("/eph", b"", 1), 0);
    assert!(leader.tree.lookup("/eph").is_some() && learner.tree.lookup("/eph").is_some());
    let out = send_via(&mut c, &mut leader, &mut learner, -11, &[], 0);
    assert_eq!(reply(&out, &c).err, 0);
    assert_eq!(out.last(), Some(&Output::Close(c.conn)));
    assert!(leader.tree.lookup("/eph").is_none() && learner.tree.lookup("/eph").is_none());
    let sid = SessionId(c.session);
    assert!(leader.sessions.get(sid).is_none() && learner.sessions.get(sid).is_none());
}

#[test]
fn the_leader_expires_a_learners_session_and_the_learner_drops_its_client() {
    let (mut leader, mut learner) = ensemble();
    let mut c = connect_via_learner(&mut leader, &mut learner, 1, 0);
    send_via(&mut c, &mut leader, &mut learner, 1, &create_req("/eph", b"", 1), 0);
    // A learner never expires sessions nor reaps containers, however late it is.
    assert!(learner.tick(at(1_000_000)).is_empty());
    assert!(learner.take_forwards().is_empty());
    assert!(learner.sessions.get(SessionId(c.session)).is_some());
    assert!(leader.tick(at(5999)).is_empty());
    assert!(leader.take_proposals().is_empty());
    assert!(leader.tick(at(6000)).is_empty(), "no local connection to close on the leader");
    let (_, out) = relay(&mut leader, &mut learner, 6000);
    assert_eq!(out, vec![Output::Close(c.conn)]);
    assert!(!learner.conns.contains_key(&c.conn));
    assert!(learner.tree.lookup("/eph").is_none());
    let sid = SessionId(c.session);
    assert!(leader.sessions.get(sid).is_none() && learner.sessions.get(sid).is_none());
}

#[test]
fn learners_report_touched_sessions_and_the_leader_postpones_expiry() {
    let (mut leader, mut learner) = ensemble();
    let mut c = connect_via_learner(&mut leader, &mut learner, 1, 0);
    assert!(learner.take_touched().is_empty());
    c.send(&mut learner, 11, &[], 3000);
    assert_eq!(learner.take_touched(), vec![(SessionId(c.session), 4000)]);
    assert!(learner.take_touched().is_empty(), "reported once");
    leader.touch_sessions(&[(SessionId(c.session), 4000), (SessionId(12345), 4000)], at(3000));
    leader.tick(at(6000));
    assert!(leader.take_proposals().is_empty(), "the ping moved the deadline to 8000");
    leader.tick(at(8000));
    assert_eq!(leader.take_proposals()[0].txn, Txn::CloseSession { paths: vec![] });
}

#[test]
fn dropping_clients_and_becoming_leader_keeps_sessions_and_zxids() {
    let (mut leader, mut learner) = ensemble();
    let mut c = connect_via_learner(&mut leader, &mut learner, 1, 0);
    send_via(&mut c, &mut leader, &mut learner, 1, &create_req("/x", b"", 0), 0);
    // A write still on its way to the leader when the election starts is abandoned.
    c.send(&mut learner, 1, &create_req("/y", b"", 0), 0);
    assert_eq!(learner.drop_clients(), vec![Output::Close(c.conn)]);
    assert!(learner.take_forwards().is_empty());
    assert_eq!(learner.outstanding_requests(), 0);
    let applied = learner.last_zxid().0;
    learner.set_role(Role::Leader, at(10_000));
    // Every session gets a fresh deadline from the moment it became leader.
    learner.tick(at(15_999));
    assert!(learner.take_proposals().is_empty());
    learner.tick(at(16_000));
    let props = learner.take_proposals();
    assert_eq!((props.len(), props[0].hdr.client_id, props[0].hdr.zxid), (1, c.session, applied + 1));
}

#[test]
fn the_myid_is_the_session_ids_high_byte() {
    let mut cfg = server_config("");
    assert_eq!(EngineConfig::from_server_config(&cfg).server_id, 1, "standalone, as Apache");
    cfg.server_id = 3;
    let mut e = Engine::new(EngineConfig::from_server_config(&cfg), at(0));
    assert_eq!(e.sessions.next_id().0 >> 56, 3);
}

#[test]
fn a_learner_asks_the_leader_about_a_session_it_has_not_seen() {
    let (mut leader, _) = ensemble();
    let mut other = member(3, Role::Learner);
    // A session made on the leader that this learner never heard of (it was elsewhere).
    let c = connect_to_leader(&mut leader, &mut other, 10, 0);
    let mut stranger = member(4, Role::Learner);
    stranger.open(20, "127.0.0.1:6001".parse().unwrap(), at(5));
    let req = ConnectRequest { time_out: 4000, session_id: c.session, passwd: Some(c.passwd.clone()), read_only: Some(false), ..Default::default() };
    assert!(stranger.connect(20, &req.to_bytes(), at(5)).is_empty(), "no answer before the leader's");
    let rv = stranger.take_revalidations();
    assert_eq!(rv, vec![(SessionId(c.session), 4000)]);
    let valid = leader.revalidate(SessionId(c.session), 4000, at(5));
    assert!(valid);
    let out = stranger.revalidated(SessionId(c.session), valid, at(5));
    let resp = connect_response(&out, 20);
    assert_eq!((resp.session_id, resp.time_out), (c.session, 4000));
    assert_eq!(resp.passwd, c.passwd);

    // A session the leader does not know: Apache's expired answer, and the connection closes.
    let ghost = SessionId(c.session + 77);
    stranger.open(21, "127.0.0.1:6002".parse().unwrap(), at(6));
    let req = ConnectRequest { time_out: 4000, session_id: ghost.0, passwd: Some(crate::session::session_password(ghost).to_vec()), read_only: Some(false), ..Default::default() };
    assert!(stranger.connect(21, &req.to_bytes(), at(6)).is_empty());
    assert_eq!(stranger.take_revalidations(), vec![(ghost, 4000)]);
    assert!(!leader.revalidate(ghost, 4000, at(6)));
    let out = stranger.revalidated(ghost, false, at(6));
    let resp = connect_response(&out, 21);
    assert_eq!((resp.session_id, resp.time_out), (0, 0));
    assert!(out.contains(&Output::Close(21)));
    assert!(stranger.sessions.get(ghost).is_none());

    // A wrong password is refused at once, without asking.
    stranger.open(22, "127.0.0.1:6003".parse().unwrap(), at(7));
    let req = ConnectRequest { time_out: 4000, session_id: ghost.0 + 1, passwd: Some(vec![1; 16]), read_only: Some(false), ..Default::default() };
    let out = stranger.connect(22, &req.to_bytes(), at(7));
    assert!(out.contains(&Output::Close(22)));
    assert!(stranger.take_revalidations().is_empty());
}

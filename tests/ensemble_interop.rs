//! Mixed ensembles of Apache ZooKeeper 3.8 (Debian's `zookeeper` package) and rzk on 127.0.0.1:
//! the election and quorum ports must speak the same bytes (reference §7), so that either kind
//! can lead the other. Each case starts three members with the same `server.N` lines, checks
//! that the expected kind leads, writes through a client on every member, and checks through a
//! client on every member (after `sync`) that every znode is there with the same data and the
//! same Stat. A session made on each member moves to every other member (a follower asks the
//! leader with REVALIDATE) and is closed there. Then the leader is killed (-9), the other two
//! elect a leader and keep taking writes, and the old leader is restarted and rejoins with a
//! DIFF. Two more cases wipe a follower of the other kind than the leader, so that it rejoins
//! through a SNAP.
//!
//! With every member starting empty (zxid 0, epoch 0) FastLeaderElection picks the highest sid,
//! so the kind that should lead gets sid 3. The JVM takes a second or two to start, so Apache
//! members are launched first and the rzk members only once every Apache member has started its
//! first election; otherwise two quick rzk members could elect one of themselves before sid 3
//! runs.

mod common;

use common::ensemble::{Ensemble, Kind, apache_available};
use rzk::cli::client::{Client, CreateMode};
use rzk::jute::records::Stat;
use rzk::tree::acl::open_acl_unsafe;
use std::collections::BTreeMap;
use rzk::jute::Jute;
use rzk::jute::records::{ConnectRequest, ConnectResponse};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Every znode under `/t` as member `i` sees it after a `sync`: name → (data, Stat).
fn contents(e: &Ensemble, i: usize) -> BTreeMap<String, (Option<Vec<u8>>, Stat)> {
    let c = e.connect(i);
    assert_eq!(c.sync("/t").unwrap(), 0, "sync through {}", e.describe(i));
    let mut out = BTreeMap::new();
    for name in c.get_children("/t", false).unwrap() {
        // A child listed a moment ago may be gone now (an ephemeral whose session is
        // closing while this polls): then it is simply not there.
        match c.get_data(&format!("/t/{name}"), false) {
            Ok((data, stat)) => {
                out.insert(name, (data, stat));
            }
            Err(err) if err.code() == Some(-101) => {}
            Err(err) => panic!("getData /t/{name} through {}: {err:?}", e.describe(i)),
        }
    }
    let (_, stat) = c.get_data("/t", false).unwrap();
    out.insert(String::new(), (None, stat));
    c.close();
    out
}

/// Every running member has the same `/t`, and it holds at least `expect`.
fn check_same_everywhere(e: &Ensemble, running: &[usize], expect: &[String]) {
    let first = contents(e, running[0]);
    for name in expect {
        assert!(first.contains_key(name), "{} lacks /t/{name}: {:?}", e.describe(running[0]), first.keys());
    }
    for &i in &running[1..] {
        let other = contents(e, i);
        assert_eq!(
            other.keys().collect::<Vec<_>>(),
            first.keys().collect::<Vec<_>>(),
            "{} and {} list different children",
            e.describe(running[0]),
            e.describe(i)
        );
        for (k, v) in &first {
            assert_eq!(&other[k], v, "/t/{k} differs between {} and {}", e.describe(running[0]), e.describe(i));
        }
    }
}


/// Writes through a client on each of `through`: a znode with data, an ephemeral and a
/// sequential one. Returns the created names (under /t) and the clients (the ephemerals live as
/// long as they do).
fn write_through(e: &Ensemble, through: &[usize], tag: &str) -> (Vec<String>, Vec<Client>) {
    let mut names = Vec::new();
    let mut clients = Vec::new();
    let acl = open_acl_unsafe();
    for &i in through {
        let id = e.members[i].id;
        let c = e.connect(i);
        let base = format!("/t/{tag}-s{id}");
        let data = format!("written through {}", e.describe(i));
        c.create(&base, Some(data.as_bytes()), &acl, CreateMode::Persistent, None)
            .unwrap_or_else(|err| panic!("create {base} through {}: {err:?}", e.describe(i)));
        c.create(&format!("{base}-eph"), Some(b"e"), &acl, CreateMode::Ephemeral, None).unwrap();
        let seq = c.create(&format!("{base}-seq-"), Some(b"s"), &acl, CreateMode::PersistentSequential, None).unwrap();
        names.push(format!("{tag}-s{id}"));
        names.push(format!("{tag}-s{id}-eph"));
        names.push(seq.trim_start_matches("/t/").to_string());
        // The data comes back through the same member at once (it applied the commit).
        let (got, _) = c.get_data(&base, false).unwrap();
        assert_eq!(got.as_deref(), Some(data.as_bytes()));
        clients.push(c);
    }
    (names, clients)
}

/// Is Debian's zookeeper package installed? If not, the test is skipped with a note, unless
/// `RZK_REQUIRE_APACHE=1` (as in common's ApacheZk), which makes it fail.
/// Opens a raw client connection to member `i` that takes over session `session_id` (with the
/// password every server derives from the id, ZooKeeperServer.generatePasswd) and returns the
/// server's answer and the connection. A follower that does not own the session asks the
/// leader with REVALIDATE (Apache's Learner.validateSession); an invalid session is answered
/// with timeOut 0.
fn reattach(e: &Ensemble, i: usize, session_id: i64) -> (ConnectResponse, TcpStream) {
    let mut s = TcpStream::connect(("127.0.0.1", e.members[i].client_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 4000,
        session_id,
        passwd: Some(rzk::session::session_password(rzk::types::SessionId(session_id)).to_vec()),
        read_only: Some(false),
    };
    let body = req.to_bytes();
    s.write_all(&(body.len() as i32).to_be_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap_or_else(|err| panic!("no ConnectResponse from {}: {err}", e.describe(i)));
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    (ConnectResponse::from_bytes(&body).unwrap(), s)
}

/// A session made on one member moves to each other member in turn and stays valid; a made-up
/// one is refused everywhere; closing it on the last member removes its ephemeral everywhere.
fn check_session_moves(e: &Ensemble, all: &[usize], from: usize) {
    let mover = e.connect(from);
    let id = mover.session_id();
    let path = format!("/t/mover-s{}", e.members[from].id);
    mover.create(&path, None, &open_acl_unsafe(), CreateMode::Ephemeral, None).unwrap();
    let mut last = None;
    for &j in all.iter().filter(|&&j| j != from) {
        let (resp, conn) = reattach(e, j, id);
        assert_eq!((resp.session_id, resp.time_out > 0), (id, true), "session {id:#x} moving to {}: {resp:?}", e.describe(j));
        last = Some(conn);
        let (bogus, _) = reattach(e, j, id ^ 0x5a5a);
        assert_eq!(bogus.time_out, 0, "{} took a made-up session: {bogus:?}", e.describe(j));
    }
    // closeSession (op -11) on the member that holds the session now.
    let mut conn = last.unwrap();
    let mut w = rzk::jute::Writer::new();
    w.write_i32(1);
    w.write_i32(-11);
    let body = w.into_inner();
    conn.write_all(&(body.len() as i32).to_be_bytes()).unwrap();
    conn.write_all(&body).unwrap();
    let mut len = [0u8; 4];
    conn.read_exact(&mut len).unwrap();
    let mut reply = vec![0u8; i32::from_be_bytes(len) as usize];
    conn.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[12..16], &[0, 0, 0, 0], "closeSession failed: {reply:?}");
    // The reply came once the close was committed: after a `sync`, no member has the node.
    for &i in all {
        assert!(!contents(e, i).contains_key(path.trim_start_matches("/t/")), "{} still has {path}", e.describe(i));
    }
    mover.close();
}

fn run(kinds: [Kind; 3]) {
    if !apache_available() {
        return;
    }
    let mut e = Ensemble::start(&kinds);
    let all = [0, 1, 2];
    let leader = e.wait_stable(&all);
    assert_eq!(leader, 2, "the highest sid should lead, but {} does", e.describe(leader));
    eprintln!("{} leads", e.describe(leader));

    // Writes through every member, visible on every member.
    {
        let c = e.connect(0);
        c.create("/t", None, &open_acl_unsafe(), CreateMode::Persistent, None).unwrap();
        c.close();
    }
    let (mut names, clients) = write_through(&e, &all, "a");
    check_same_everywhere(&e, &all, &names);
    // Closing the sessions (closeSession, forwarded by the followers) removes the ephemerals
    // on every member.
    for c in clients {
        c.close();
    }
    names.retain(|n| !n.ends_with("-eph"));
    // close() returns once closeSession is answered, i.e. committed: a `sync` on any member
    // then shows the ephemerals gone.
    for &i in &all {
        assert!(contents(&e, i).keys().all(|k| !k.ends_with("-eph")), "{} still has an ephemeral of a closed session", e.describe(i));
    }
    check_same_everywhere(&e, &all, &names);
    // Sessions move between the kinds: one made on each member.
    for &i in &all {
        check_session_moves(&e, &all, i);
    }

    // Kill the leader: the other two elect one of themselves and go on taking writes.
    let mark = e.log(leader).len();
    e.kill(leader);
    let rest: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
    let t = Instant::now();
    let new_leader = e.wait_stable(&rest);
    eprintln!("killed {}; {} leads after {:?}", e.describe(leader), e.describe(new_leader), t.elapsed());
    let (more, clients) = write_through(&e, &rest, "b");
    names.extend(more);
    check_same_everywhere(&e, &rest, &names);
    for c in clients {
        c.close();
    }
    names.retain(|n| !n.ends_with("-eph"));

    // The old leader comes back as a follower and catches up with a DIFF.
    e.launch(leader);
    let now_leader = e.wait_stable(&all);
    assert_ne!(now_leader, leader, "the restarted server should follow");
    let log = e.log(leader);
    let log = &log[mark.min(log.len())..];
    assert!(log.contains("Getting a diff from the leader"), "{} did not rejoin with a DIFF:\n{log}", e.describe(leader));
    let (more, _clients) = write_through(&e, &all, "c");
    names.extend(more);
    check_same_everywhere(&e, &all, &names);
    // Every txn carried the leader's tree digest and every member's tree agreed with it: Apache
    // logs "First digest mismatch on txn" (DataTree.compareDigest), rzk "Digest mismatch".
    for &i in &all {
        let log = e.log(i);
        assert!(!log.to_ascii_lowercase().contains("digest mismatch"), "{} saw a digest mismatch:\n{log}", e.describe(i));
    }
}

#[test]
fn two_apache_and_one_rzk_with_apache_leading() {
    run([Kind::Rzk, Kind::Apache, Kind::Apache]);
}

#[test]
fn two_apache_and_one_rzk_with_rzk_leading() {
    run([Kind::Apache, Kind::Apache, Kind::Rzk]);
}

#[test]
fn one_apache_and_two_rzk_with_apache_leading() {
    run([Kind::Rzk, Kind::Rzk, Kind::Apache]);
}

#[test]
fn one_apache_and_two_rzk_with_rzk_leading() {
    run([Kind::Apache, Kind::Rzk, Kind::Rzk]);
}

/// A follower of the other kind than the leader loses its dataDir and comes back empty: the
/// leader's committed log no longer reaches back to zxid 0, so it gets a SNAP, whose stream
/// (sessions, ACL cache, nodes, "/", "BenWasHere"; no digest in 3.8's
/// ZKDatabase.serializeSnapshot) the two kinds must read from each other.
fn run_snap(kinds: [Kind; 3]) {
    if !apache_available() {
        return;
    }
    let mut e = Ensemble::start(&kinds);
    let all = [0, 1, 2];
    let leader = e.wait_stable(&all);
    assert_eq!(leader, 2, "the highest sid should lead, but {} does", e.describe(leader));
    let wiped = (0..3).find(|&i| i != leader && kinds[i] != kinds[leader]).expect("a follower of the other kind");
    let acl = open_acl_unsafe();
    let c = e.connect(leader);
    c.create("/t", None, &acl, CreateMode::Persistent, None).unwrap();
    let mut names = Vec::new();
    for n in 0..30 {
        let name = format!("n{n:02}");
        c.create(&format!("/t/{name}"), Some(&vec![n as u8; n * 10]), &acl, CreateMode::Persistent, None).unwrap();
        names.push(name);
    }
    // A second ACL list, so that the ACL cache has more than one entry.
    let read_only = vec![rzk::jute::records::Acl { perms: 1, id: rzk::jute::records::Id { scheme: "world".into(), id: "anyone".into() } }];
    c.create("/t/read-only", Some(b"r"), &read_only, CreateMode::Persistent, None).unwrap();
    names.push("read-only".into());
    // An ephemeral whose session is open while the snapshot is taken: the session travels in it.
    let owner = e.connect((leader + 1) % 3);
    owner.create("/t/eph", Some(b"e"), &acl, CreateMode::Ephemeral, None).unwrap();
    names.push("eph".into());
    c.close();

    e.kill(wiped);
    fs::remove_dir_all(e.members[wiped].data_dir.join("version-2")).unwrap();
    let mark = e.log(wiped).len();
    e.launch(wiped);
    assert_eq!(e.wait_stable(&all), leader);
    let log = e.log(wiped);
    let log = &log[mark.min(log.len())..];
    assert!(log.contains("Getting a snapshot from leader"), "{} did not get a SNAP:\n{log}", e.describe(wiped));
    check_same_everywhere(&e, &all, &names);
    let (more, _clients) = write_through(&e, &all, "after-snap");
    names.extend(more);
    check_same_everywhere(&e, &all, &names);
    // The ephemeral goes everywhere, the wiped member included, when its session ends: closed,
    // or expired if the owner's member was the wiped one and the client had not reconnected yet.
    // A watch on every member sees it go.
    let watchers: Vec<_> = all.iter().map(|&i| e.connect_watched(i)).collect();
    for (c, _) in &watchers {
        c.sync("/t").unwrap();
        assert!(c.exists("/t/eph", true).unwrap().is_some());
    }
    owner.close();
    for (k, (c, events)) in watchers.iter().enumerate() {
        common::next_event(events, Duration::from_secs(30), &format!("NodeDeleted /t/eph on {}", e.describe(all[k])), |ev| {
            ev.kind == rzk::cli::client::EventType::NodeDeleted && ev.path.as_deref() == Some("/t/eph")
        });
        assert!(c.exists("/t/eph", false).unwrap().is_none());
    }
}

#[test]
fn an_rzk_follower_with_a_wiped_data_dir_gets_a_snapshot_from_an_apache_leader() {
    run_snap([Kind::Rzk, Kind::Apache, Kind::Apache]);
}

#[test]
fn an_apache_follower_with_a_wiped_data_dir_gets_a_snapshot_from_an_rzk_leader() {
    run_snap([Kind::Apache, Kind::Rzk, Kind::Rzk]);
}

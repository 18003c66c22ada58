//! Real-process ensembles on 127.0.0.1: rzk servers started as an operator would (zoo.cfg with
//! server.N lines, myid in dataDir), under write load, with the leader killed (-9) again and
//! again, a follower wiped, and a minority frozen (SIGSTOP). Every acknowledged write must be on
//! every member afterwards.

mod common;

use common::ensemble::{Ensemble, Kind, Layout};
use common::{connect_watched, next_event, rzk_server_bin, try_four_letter};
use rzk::cli::client::{EventType, KeeperState};
use rzk::cli::client::{Client, CreateMode, States};
use rzk::tree::acl::open_acl_unsafe;
use std::collections::BTreeSet;
use std::fs;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The children of /load as member `i` sees them after a `sync`.
fn children(e: &Ensemble, i: usize) -> BTreeSet<String> {
    let c = e.connect(i);
    assert_eq!(c.sync("/load").unwrap(), 0);
    let kids = c.get_children("/load", false).unwrap().into_iter().collect();
    c.close();
    kids
}

/// One writer per member: sequential creates of /load/w<member>-<n>; the acknowledged ones are
/// recorded. A write that fails (connection loss while the leader changes) may or may not have
/// happened; it is not counted either way.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<(Mutex<BTreeSet<String>>, Condvar)>,
    threads: Vec<std::thread::JoinHandle<usize>>,
}

impl Load {
    fn start(e: &Ensemble) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new((Mutex::new(BTreeSet::new()), Condvar::new()));
        let hosts = e.hosts();
        let mut threads = Vec::new();
        for m in &e.members {
            let (stop, acked, hosts, id) = (stop.clone(), acked.clone(), hosts.clone(), m.id);
            threads.push(std::thread::spawn(move || {
                let c = Client::connect(&hosts, 10_000, false, Arc::new(|_| {})).unwrap();
                let mut n = 0usize;
                let mut failures = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    if c.wait_connected(Duration::from_secs(5), false) != States::Connected {
                        continue;
                    }
                    n += 1;
                    let name = format!("w{id}-{n:06}");
                    match c.create(&format!("/load/{name}"), Some(b"v"), &open_acl_unsafe(), CreateMode::Persistent, None) {
                        Ok(_) => {
                            acked.0.lock().unwrap().insert(name);
                            acked.1.notify_all();
                        }
                        Err(_) => failures += 1,
                    }
                }
                c.close();
                failures
            }));
        }
        Load { stop, acked, threads }
    }

    fn acked(&self) -> usize {
        self.acked.0.lock().unwrap().len()
    }

    /// Blocks until `n` writes have been acknowledged in all (woken by each acknowledgement).
    fn wait_acked(&self, n: usize, limit: Duration) {
        let (m, cv) = &*self.acked;
        let (g, t) = cv.wait_timeout_while(m.lock().unwrap(), limit, |a| a.len() < n).unwrap();
        assert!(!t.timed_out(), "timed out after {limit:?} waiting for {n} acknowledged writes ({} so far)", g.len());
    }

    fn finish(self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        Arc::try_unwrap(self.acked).ok().unwrap().0.into_inner().unwrap()
    }
}

fn check_every_member_has(e: &Ensemble, running: &[usize], acked: &BTreeSet<String>) {
    let first = children(e, running[0]);
    for &i in running {
        let kids = children(e, i);
        let missing: Vec<&String> = acked.difference(&kids).take(5).collect();
        assert!(missing.is_empty(), "member {} lacks acknowledged writes, e.g. {missing:?}", e.members[i].id);
        assert_eq!(kids, first, "members {} and {} differ", e.members[running[0]].id, e.members[i].id);
    }
}

fn run_leader_kills(voters: usize, rounds: usize) {
    let mut e = Ensemble::rzk(voters, 0);
    let all: Vec<usize> = (0..voters).collect();
    let leader = e.wait_stable(&all);
    {
        let c = e.connect(leader);
        c.create("/load", None, &open_acl_unsafe(), CreateMode::Persistent, None).unwrap();
        c.close();
    }
    let load = Load::start(&e);
    let mut rejoined = Vec::new();
    for round in 0..rounds {
        load.wait_acked(load.acked() + 50, Duration::from_secs(30));
        let leader = e.wait_stable(&all);
        let mark = e.log(leader).len();
        e.kill(leader);
        let rest: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
        let t = Instant::now();
        let new_leader = e.wait_stable(&rest);
        assert_ne!(new_leader, leader);
        eprintln!("round {round}: killed leader {}, member {} leads after {:?}", e.members[leader].id, e.members[new_leader].id, t.elapsed());
        e.launch(leader);
        e.wait_stable(&all);
        let log = e.log(leader)[mark..].to_string();
        let how = ["Getting a diff", "Truncating log", "Getting a snapshot"].into_iter().find(|w| log.contains(w)).unwrap_or("?");
        rejoined.push(how);
    }
    let acked = load.finish();
    eprintln!("{} acknowledged writes; old leaders rejoined via {rejoined:?}", acked.len());
    assert!(acked.len() >= 50 * rounds);
    // The old leaders came back as learners through a sync with the new leader.
    assert!(rejoined.iter().all(|h| *h != "?"), "{rejoined:?}");
    check_every_member_has(&e, &all, &acked);
}

#[test]
fn three_members_lose_their_leader_again_and_again_and_lose_no_acknowledged_write() {
    run_leader_kills(3, 4);
}

#[test]
fn five_members_lose_their_leader_and_lose_no_acknowledged_write() {
    run_leader_kills(5, 2);
}

#[test]
fn a_follower_with_a_wiped_data_dir_rejoins_through_a_snapshot() {
    let mut e = Ensemble::rzk(3, 0);
    let all = [0, 1, 2];
    let leader = e.wait_stable(&all);
    let c = e.connect(leader);
    c.create("/load", None, &open_acl_unsafe(), CreateMode::Persistent, None).unwrap();
    let mut acked = BTreeSet::new();
    for n in 0..200 {
        c.create(&format!("/load/n{n:04}"), Some(&[n as u8; 100]), &open_acl_unsafe(), CreateMode::Persistent, None).unwrap();
        acked.insert(format!("n{n:04}"));
    }
    c.close();
    let f = (leader + 1) % 3;
    e.kill(f);
    let v2 = e.members[f].data_dir.join("version-2");
    match fs::remove_dir_all(&v2) {
        Ok(()) => {}
        // Seen once in a full run; what matters is that nothing of it is left.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => panic!("cannot wipe {}: {err}", v2.display()),
    }
    assert!(!v2.exists(), "{} still there", v2.display());
    let mark = e.log(f).len();
    e.launch(f);
    e.wait_stable(&all);
    assert!(e.log(f)[mark..].contains("Getting a snapshot from leader"), "{}", &e.log(f)[mark..]);
    check_every_member_has(&e, &all, &acked);
    // The data came along, not only the names.
    let c = e.connect(f);
    let (data, stat) = c.get_data("/load/n0123", false).unwrap();
    assert_eq!(data.unwrap(), vec![123u8; 100]);
    assert_eq!(stat.data_length, 100);
}

#[test]
fn a_leader_cut_off_from_its_followers_stops_taking_writes_and_the_ensemble_recovers() {
    let mut e = Ensemble::rzk(3, 0);
    let all = [0, 1, 2];
    let leader = e.wait_stable(&all);
    let followers: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
    let c = e.connect(leader);
    c.create("/load", None, &open_acl_unsafe(), CreateMode::Persistent, None).unwrap();
    c.create("/load/before", None, &open_acl_unsafe(), CreateMode::Persistent, None).unwrap();
    c.close();
    // Freeze both followers: the leader is now a minority of one.
    for &f in &followers {
        e.signal(f, libc::SIGSTOP);
    }
    // Within syncLimit it gives up leading and stops serving.
    e.wait_not_serving(leader);
    let refused = Client::connect(&format!("127.0.0.1:{}", e.members[leader].client_port), 4_000, false, Arc::new(|_| {})).unwrap();
    assert_ne!(refused.wait_connected(Duration::from_secs(2), true), States::Connected, "a minority member must not take clients");
    refused.close();
    for &f in &followers {
        e.signal(f, libc::SIGCONT);
    }
    let leader = e.wait_stable(&all);
    let c = e.connect(leader);
    c.create("/load/after", None, &open_acl_unsafe(), CreateMode::Persistent, None).unwrap();
    c.close();
    let expect: BTreeSet<String> = ["after", "before"].iter().map(|s| s.to_string()).collect();
    check_every_member_has(&e, &all, &expect);
    let _ = e.kill(0);
}

#[test]
fn observers_serve_reads_and_forward_writes_without_voting() {
    let e = Ensemble::rzk(3, 1);
    let all = [0, 1, 2, 3];
    e.wait_stable(&all);
    assert_eq!(e.mode(3).as_deref(), Some("observer"));
    let c = e.connect(3);
    c.create("/load", None, &open_acl_unsafe(), CreateMode::Persistent, None).unwrap();
    c.create("/load/via-observer", Some(b"o"), &open_acl_unsafe(), CreateMode::Persistent, None).unwrap();
    c.close();
    let expect: BTreeSet<String> = ["via-observer".to_string()].into_iter().collect();
    check_every_member_has(&e, &all, &expect);
    let mntr = try_four_letter(e.members[e.wait_stable(&all)].client_port, "mntr").unwrap();
    assert!(mntr.contains("zk_synced_followers\t2") && mntr.contains("zk_synced_observers\t1"), "{mntr}");
    assert!(mntr.contains("zk_server_state\tleader") && mntr.contains("zk_learners\t3") && mntr.contains("zk_followers\t3"), "{mntr}");
    assert!(mntr.contains("zk_peer_state\tleading - broadcast") && mntr.contains("zk_quorum_size\t3") && mntr.contains("zk_pending_syncs\t0"), "{mntr}");
    let srvr = try_four_letter(e.members[3].client_port, "srvr").unwrap();
    assert!(srvr.contains("Mode: observer") && !srvr.contains("Proposal sizes"), "{srvr}");
}

#[test]
fn a_follower_fires_a_watch_only_after_it_has_applied_the_change() {
    let e = Ensemble::rzk(3, 0);
    let all = [0, 1, 2];
    let leader = e.wait_stable(&all);
    let f = (leader + 1) % 3;
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    let watcher = Client::connect(
        &format!("127.0.0.1:{}", e.members[f].client_port),
        10_000,
        false,
        Arc::new(move |ev: &rzk::cli::client::WatchedEvent| {
            if ev.path.is_some() {
                let _ = tx.lock().unwrap().send(ev.clone());
            }
        }),
    )
    .unwrap();
    assert_eq!(watcher.wait_connected(Duration::from_secs(20), false), States::Connected);
    let writer = e.connect(leader);
    writer.create("/w", Some(b"0"), &open_acl_unsafe(), CreateMode::Persistent, None).unwrap();
    // The follower may not have applied the create yet: sync first, as a client would.
    watcher.sync("/w").unwrap();
    let (d, _) = watcher.get_data("/w", true).unwrap();
    assert_eq!(d.as_deref(), Some(&b"0"[..]));
    for i in 1..=50u32 {
        let v = i.to_string();
        writer.set_data("/w", v.as_bytes(), -1).unwrap();
        let ev = rx.recv_timeout(Duration::from_secs(10)).expect("NodeDataChanged on the follower");
        assert_eq!(ev.kind, rzk::cli::client::EventType::NodeDataChanged);
        // The event came after the follower applied the change: a read there sees it (no sync).
        let (d, stat) = watcher.get_data("/w", true).unwrap();
        assert_eq!(d.as_deref(), Some(v.as_bytes()), "read after the event on the follower");
        assert_eq!(stat.version, i as i32);
    }
}

#[test]
fn the_leader_expires_a_session_made_on_a_follower_and_every_member_drops_its_ephemeral() {
    let e = Ensemble::rzk(3, 0);
    let all = [0, 1, 2];
    let leader = e.wait_stable(&all);
    let f = (leader + 1) % 3;
    // A raw client: ConnectRequest with a 2 s timeout, create an ephemeral, then go silent
    // without closing (as a crashed process would).
    let mut s = std::net::TcpStream::connect(("127.0.0.1", e.members[f].client_port)).unwrap();
    use rzk::jute::Jute;
    use rzk::jute::records::*;
    use std::io::{Read, Write};
    let framed = |body: Vec<u8>| {
        let mut v = (body.len() as i32).to_be_bytes().to_vec();
        v.extend(body);
        v
    };
    let cr = ConnectRequest { protocol_version: 0, last_zxid_seen: 0, time_out: 2000, session_id: 0, passwd: Some(vec![0; 16]), read_only: Some(false) };
    s.write_all(&framed(cr.to_bytes())).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut resp = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut resp).unwrap();
    let resp = ConnectResponse::from_bytes(&resp).unwrap();
    assert_ne!(resp.session_id, 0);
    assert_eq!((resp.session_id as u64 >> 56) as u64, e.members[f].id, "the follower makes the session id");
    let mut req = RequestHeader { xid: 1, op: 1 }.to_bytes();
    req.extend(CreateRequest { path: "/eph".into(), data: None, acl: open_acl_unsafe(), flags: 1 }.to_bytes());
    s.write_all(&framed(req)).unwrap();
    s.read_exact(&mut len).unwrap();
    let mut reply = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[12..16], &0i32.to_be_bytes(), "create ephemeral via the follower");
    let clients: Vec<_> = all.iter().map(|&i| e.connect_watched(i)).collect();
    for (c, _) in &clients {
        c.sync("/").unwrap();
        assert!(c.exists("/eph", true).unwrap().is_some());
    }
    // Silence: no pings. The leader expires the session; every member then drops the node, and
    // the watch each client left there fires.
    let t = Instant::now();
    for (c, events) in &clients {
        next_event(events, Duration::from_secs(20), "NodeDeleted /eph", |ev| ev.kind == EventType::NodeDeleted && ev.path.as_deref() == Some("/eph"));
        assert!(c.exists("/eph", false).unwrap().is_none());
    }
    assert!(t.elapsed() >= Duration::from_millis(1500), "expired too early: {:?}", t.elapsed());
    drop(s);
}

#[test]
fn a_client_keeps_its_session_when_its_server_is_killed() {
    let mut e = Ensemble::rzk(3, 0);
    let all = [0, 1, 2];
    e.wait_stable(&all);
    let (c, events) = connect_watched(&e.hosts());
    let sid = c.session_id();
    c.create("/mine", None, &open_acl_unsafe(), CreateMode::Ephemeral, None).unwrap();
    // Which member serves it? The one whose `cons` lists the session.
    let hex = format!("sid=0x{sid:x}");
    let serving = (0..3)
        .find(|&i| try_four_letter(e.members[i].client_port, "cons").is_ok_and(|t| t.contains(&hex)))
        .expect("a member lists the session in cons");
    e.kill(serving);
    let rest: Vec<usize> = all.iter().copied().filter(|&i| i != serving).collect();
    e.wait_stable(&rest);
    // The client reconnects elsewhere with the same session; its ephemeral is still there.
    next_event(&events, Duration::from_secs(20), "Disconnected", |ev| ev.state == KeeperState::Disconnected);
    next_event(&events, Duration::from_secs(20), "SyncConnected again", |ev| ev.state == KeeperState::SyncConnected && ev.path.is_none());
    c.create("/after-move", None, &open_acl_unsafe(), CreateMode::Persistent, None).unwrap();
    assert_eq!(c.session_id(), sid);
    assert!(c.exists("/mine", false).unwrap().is_some());
    let (_, stat) = c.get_data("/mine", false).unwrap();
    assert_eq!(stat.ephemeral_owner, sid);
}

#[test]
fn rzk_server_status_reports_each_members_mode_as_zkserver_sh_does() {
    let e = Ensemble::rzk(3, 0);
    let all = [0, 1, 2];
    let leader = e.wait_stable(&all);
    for i in all {
        let out = Command::new(rzk_server_bin()).arg("status").arg(e.members[i].dir.join("zoo.cfg")).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        let want = if i == leader { "Mode: leader" } else { "Mode: follower" };
        assert!(out.status.success() && text.contains(want), "member {}: {text}", e.members[i].id);
        assert!(text.contains(&format!("Client port found: {}.", e.members[i].client_port)), "{text}");
    }
}

#[test]
fn garbage_on_the_quorum_and_election_ports_is_dropped_and_the_ensemble_carries_on() {
    use std::io::{Read, Write};
    let mut e = Ensemble::rzk(3, 0);
    let all = [0, 1, 2];
    let leader = e.wait_stable(&all);
    let mut junk: Vec<Vec<u8>> = vec![
        // Election port: a handshake with a huge address length, a negative version, a short one.
        [(-65536i64).to_be_bytes().to_vec(), 9i64.to_be_bytes().to_vec(), 1_000_000i32.to_be_bytes().to_vec()].concat(),
        [(-7i64).to_be_bytes().to_vec(), vec![0; 40]].concat(),
        vec![0xff; 3],
    ];
    // Quorum port: a packet with a negative data length, a FOLLOWERINFO with no LearnerInfo,
    // an ACK before any FOLLOWERINFO, plain text.
    junk.push([11i32.to_be_bytes().to_vec(), 0i64.to_be_bytes().to_vec(), (-5i32).to_be_bytes().to_vec()].concat());
    junk.push([11i32.to_be_bytes().to_vec(), 0i64.to_be_bytes().to_vec(), 2i32.to_be_bytes().to_vec(), vec![1, 2], (-1i32).to_be_bytes().to_vec()].concat());
    junk.push([3i32.to_be_bytes().to_vec(), 5i64.to_be_bytes().to_vec(), (-1i32).to_be_bytes().to_vec(), (-1i32).to_be_bytes().to_vec()].concat());
    junk.push(b"GET / HTTP/1.1\r\n\r\n".to_vec());
    for m in 0..3 {
        for (k, j) in junk.iter().enumerate() {
            let port = if k < 3 { e.members[m].election_port } else { e.members[m].quorum_port };
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(j);
                let _ = s.shutdown(std::net::Shutdown::Write);
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut sink = Vec::new();
                // The server closes it (or keeps waiting until its timeout; either is fine).
                let _ = s.read_to_end(&mut sink);
            }
        }
    }
    // Same leader, everybody serving, writes still go through every member.
    assert_eq!(e.wait_stable(&all), leader);
    for i in all {
        assert!(e.members[i].child.as_mut().unwrap().try_wait().unwrap().is_none(), "member {} died", e.members[i].id);
        let c = e.connect(i);
        c.create(&format!("/after-junk-{i}"), None, &open_acl_unsafe(), CreateMode::Persistent, None).unwrap();
        c.close();
    }
}

#[test]
fn members_named_by_host_name_form_an_ensemble() {
    // server.N lines with a host name: resolved on every connection attempt.
    let e = Ensemble::start_with(&[Kind::Rzk; 3], &Layout { host: "localhost", ..Layout::default() });
    let all = [0, 1, 2];
    e.wait_stable(&all);
    let c = e.connect(0);
    c.create("/load", None, &open_acl_unsafe(), CreateMode::Persistent, None).unwrap();
    c.create("/load/by-name", None, &open_acl_unsafe(), CreateMode::Persistent, None).unwrap();
    c.close();
    let expect: BTreeSet<String> = ["by-name".to_string()].into_iter().collect();
    check_every_member_has(&e, &all, &expect);
}

#[test]
fn the_client_port_may_be_given_only_in_the_server_lines() {
    // `server.N=host:q:e;127.0.0.1:port` and no clientPort key, as Apache 3.5+ allows.
    let e = Ensemble::start_with(&[Kind::Rzk; 3], &Layout { client_in_line: true, ..Layout::default() });
    let all = [0, 1, 2];
    e.wait_stable(&all);
    let c = e.connect(1);
    c.create("/load", None, &open_acl_unsafe(), CreateMode::Persistent, None).unwrap();
    c.close();
    for i in all {
        let out = Command::new(rzk_server_bin()).arg("status").arg(e.members[i].dir.join("zoo.cfg")).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(text.contains(&format!("Client port found: {}.", e.members[i].client_port)), "{text}");
    }
}

#[test]
fn two_members_form_an_ensemble_and_stop_serving_without_each_other() {
    let mut e = Ensemble::rzk(2, 0);
    let all = [0, 1];
    let leader = e.wait_stable(&all);
    let c = e.connect(1 - leader);
    c.create("/load", None, &open_acl_unsafe(), CreateMode::Persistent, None).unwrap();
    c.create("/load/pair", None, &open_acl_unsafe(), CreateMode::Persistent, None).unwrap();
    c.close();
    let expect: BTreeSet<String> = ["pair".to_string()].into_iter().collect();
    check_every_member_has(&e, &all, &expect);
    // A quorum of two needs both: without its follower the leader stops serving.
    e.kill(1 - leader);
    e.wait_not_serving(leader);
    e.launch(1 - leader);
    e.wait_stable(&all);
    check_every_member_has(&e, &all, &expect);
}

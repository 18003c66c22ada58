//! ClickHouse Keeper's extra four-letter words: `lgif` (log info) and `csnp` (snapshot now).

mod common;

use common::{four_letter, RzkServer};
use std::time::{Duration, Instant};

fn lgif(port: u16) -> std::collections::HashMap<String, i64> {
    four_letter(port, "lgif")
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.parse().expect("decimal value")))
        .collect()
}

#[test]
fn lgif_reports_the_log_and_csnp_takes_a_snapshot() {
    let server = RzkServer::start();
    // One txn: a session creation (a raw ConnectRequest).
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    use std::io::{Read, Write};
    let mut req = vec![0u8; 4];
    req.extend_from_slice(&[0; 4]); // protocol version
    req.extend_from_slice(&[0; 8]); // last zxid seen
    req.extend_from_slice(&30000i32.to_be_bytes());
    req.extend_from_slice(&[0; 8]); // session id
    req.extend_from_slice(&16i32.to_be_bytes());
    req.extend_from_slice(&[0; 16]);
    let len = (req.len() - 4) as i32;
    req[..4].copy_from_slice(&len.to_be_bytes());
    s.write_all(&req).unwrap();
    let mut resp = [0u8; 40];
    s.read_exact(&mut resp[..4]).unwrap();
    let info = lgif(server.port);
    for k in ["first_log_idx", "first_log_term", "last_log_idx", "last_log_term", "last_committed_log_idx", "leader_committed_log_idx", "target_committed_log_idx", "last_snapshot_idx"] {
        assert!(info.contains_key(k), "lgif has {k}: {info:?}");
    }
    assert_eq!(info["last_committed_log_idx"], 1, "the createSession txn");
    assert_eq!(info["last_log_idx"], 1);
    assert_eq!(info["first_log_idx"], 1);
    let zxid: i64 = four_letter(server.port, "csnp").trim().parse().expect("csnp answers a zxid");
    assert_eq!(zxid, 1);
    let snap = server.data_dir().join("version-2").join(format!("snapshot.{zxid:x}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !snap.exists() {
        assert!(Instant::now() < deadline, "{} was not written", snap.display());
        std::thread::yield_now();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while lgif(server.port)["last_snapshot_idx"] != zxid {
        assert!(Instant::now() < deadline, "lgif does not show the snapshot");
        std::thread::yield_now();
    }
}

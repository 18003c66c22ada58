//! Kafka-on-ZooKeeper workload, rzk vs Apache ZooKeeper 3.8 (the oracle).
//!
//! Replays the synthetic Kafka workload of the reference (kafka-on-zookeeper.md §7, phases A–I:
//! bootstrap and checked-ephemeral broker registration, controller election with
//! /controller_epoch, 100 topics x 10 partitions created with multi/check fencing, ISR changes
//! with version fencing, config-change notifications, a broker's session expiry, controller
//! failover with stale-controller fencing, topic deletion, producer-id blocks, broker-id
//! generation, graceful close, reconnect with SetWatches and pipelined requests, a big reply)
//! against both servers, with several sessions, the way Kafka's ZooKeeper client sends it
//! (tests/kafka_workload/workload.rs). Every reply and every notification each session receives
//! is recorded, normalised (zxids, times, session ids: tests/differential/norm.rs) and compared.
//! The §7 expectations are checked too (on both servers).
//!
//! Normalised on purpose (3.8 vs 3.9, which rzk follows): the notification header zxid (3.8 -1,
//! 3.9 the txn's zxid; checked to be one or the other). Kafka sends no create2 inside multi, so
//! the 3.9 create2-result Stat never comes up.
//!
//! Environment:
//! * `RZK_KW_SELFTEST=1`: run against two Apache servers (checks the workload is deterministic).
//! * `RZK_KW_DUMP=/some/file`: write both transcripts (`/some/file.apache`, `/some/file.rzk`).
//!
//! `cargo test --release --test kafka_workload -- --nocapture` shows the summary.

mod common;
#[allow(dead_code)]
#[path = "differential/client.rs"]
mod client;
#[allow(dead_code)]
#[path = "differential/norm.rs"]
mod norm;
#[allow(dead_code)]
#[path = "differential/ops.rs"]
mod ops;
#[path = "kafka_workload/compare.rs"]
mod compare;
#[path = "kafka_workload/conn.rs"]
mod conn;
#[allow(dead_code)]
#[path = "kafka_workload/harness.rs"]
mod harness;
#[path = "kafka_workload/workload.rs"]
mod workload;

use common::{ApacheZk, RzkServer};
use harness::{Entry, Mode, H};
use std::time::{Duration, Instant};

/// Short ticks so that a 3 s session expires in ~3 s; forceSync off for speed (both servers).
const CFG: &[&str] = &["tickTime=500", "forceSync=no"];

fn env_flag(name: &str) -> bool {
    matches!(std::env::var(name).as_deref(), Ok("1") | Ok("true") | Ok("yes"))
}

struct RunOut {
    log: Vec<Entry>,
    aborted: Option<String>,
    check_failures: Vec<String>,
    timings: Vec<(String, Duration)>,
    total: Duration,
    requests: usize,
    sessions: Vec<String>,
    server_logs: String,
}

fn run_against(server: &str, port: u16) -> (RunOut, H) {
    let mut h = H::new(server, port);
    let t = Instant::now();
    let res = workload::Workload::new(&mut h).run();
    let aborted = res.err().map(|a| a.0);
    if aborted.is_none() {
        h.finish();
    } else {
        h.note(format!("RUN ABORTED: {}", aborted.as_deref().unwrap_or("")));
    }
    let out = RunOut {
        log: std::mem::take(&mut h.log),
        aborted,
        check_failures: std::mem::take(&mut h.check_failures),
        timings: std::mem::take(&mut h.timings),
        total: t.elapsed(),
        requests: h.requests_sent,
        sessions: h.sessions.iter().enumerate().map(|(i, s)| format!("S{i}={}", s.label)).collect(),
        server_logs: String::new(),
    };
    (out, h)
}

fn dump(path: &str, log: &[Entry]) {
    let mut s = String::new();
    for e in log {
        let m = match e.mode {
            Mode::Exact => "",
            Mode::Unordered => " [order free]",
            Mode::Loose => " [not compared]",
        };
        s.push_str(&format!("[{}] {}: {}{m}\n", e.step, e.who, e.text));
        if !e.raw.is_empty() {
            s.push_str(&format!("        raw {}\n", e.raw));
        }
    }
    std::fs::write(path, s).expect("write transcript");
}

#[test]
fn kafka_workload_rzk_vs_apache() {
    if !ApacheZk::available() {
        // Prints the "skipping" line (or panics under RZK_REQUIRE_APACHE=1).
        let _ = ApacheZk::start_with(CFG);
        return;
    }
    let selftest = env_flag("RZK_KW_SELFTEST");
    let (la, lb) = ("apache", if selftest { "apache#2" } else { "rzk" });
    let started = Instant::now();

    // Both runs go in parallel; each is deterministic on its own and they are compared after.
    let oracle = std::thread::spawn(move || {
        let zk = ApacheZk::start_with(CFG).expect("Apache ZooKeeper");
        let (mut out, h) = run_against("apache", zk.port);
        drop(h);
        if out.aborted.is_some() {
            out.server_logs = zk.logs_tail(40);
        }
        out
    });
    let other = std::thread::spawn(move || {
        if selftest {
            let zk = ApacheZk::start_with(CFG).expect("Apache ZooKeeper");
            let (mut out, h) = run_against("apache#2", zk.port);
            drop(h);
            if out.aborted.is_some() {
                out.server_logs = zk.logs_tail(40);
            }
            out
        } else {
            let srv = RzkServer::start_with(CFG);
            let (mut out, h) = run_against("rzk", srv.port);
            drop(h);
            if out.aborted.is_some() {
                out.server_logs = srv.logs_tail(40);
            }
            out
        }
    });
    let a = oracle.join().expect("Apache run panicked");
    let b = other.join().expect("second run panicked");

    if let Ok(path) = std::env::var("RZK_KW_DUMP") {
        dump(&format!("{path}.{la}"), &a.log);
        dump(&format!("{path}.{lb}"), &b.log);
        println!("kafka_workload: transcripts written to {path}.{la} and {path}.{lb}");
    }
    for (label, o) in [(la, &a), (lb, &b)] {
        println!(
            "kafka_workload: {label}: {} transcript entries, {} requests, workload {:.1?}{}",
            o.log.len(),
            o.requests,
            o.total,
            o.aborted.as_ref().map(|w| format!(", ABORTED: {w}")).unwrap_or_default()
        );
        for (what, d) in &o.timings {
            println!("    {label:<8} {what:<55} {d:>10.2?}");
        }
    }
    println!("kafka_workload: sessions {}", a.sessions.join(" "));

    let result = compare::compare(&a.log, &b.log, la, lb);
    println!("kafka_workload: total {:.1?}", started.elapsed());
    match result {
        Err(report) => {
            for (label, o) in [(la, &a), (lb, &b)] {
                if !o.server_logs.is_empty() {
                    println!("{label} server log tail:\n{}", o.server_logs);
                }
            }
            panic!(
                "kafka_workload: {lb} diverges from {la} (sessions: {}){report}\n(rerun with RZK_KW_DUMP=/tmp/kw for full transcripts)",
                a.sessions.join(" ")
            );
        }
        Ok(sum) => {
            println!(
                "kafka_workload: {} entries compared ({} replies, {} notifications): identical",
                sum.entries, sum.replies, sum.events
            );
        }
    }
    // Identical transcripts, but the run must also have completed and met the §7 expectations
    // (failing ones on the oracle mean the workload's expectation is wrong).
    for (label, o) in [(la, &a), (lb, &b)] {
        if let Some(why) = &o.aborted {
            panic!("kafka_workload: the {label} run stopped early: {why}");
        }
        if !o.check_failures.is_empty() {
            panic!("kafka_workload: {} expectation(s) failed on {label}: {:#?}", o.check_failures.len(), o.check_failures);
        }
    }
}

//! Proves the Apache-oracle harness in tests/common works: a real Apache ZooKeeper 3.8.0
//! (Debian package `zookeeper`) starts, answers four-letter words, takes extra zoo.cfg lines,
//! and Debian's zkCli.sh can talk to it non-interactively.
//!
//! The zkCli.sh invocation that works on Debian 12 (zookeeper 3.8.0, OpenJDK 17):
//!
//! ```text
//! /usr/share/zookeeper/bin/zkCli.sh -server 127.0.0.1:<PORT> create /x hi  </dev/null
//! /usr/share/zookeeper/bin/zkCli.sh -server 127.0.0.1:<PORT> get /x        </dev/null
//! ```
//!
//! * No JAVA/CLASSPATH environment is needed: Debian's zkEnv.sh hard-codes `JAVA=/usr/bin/java`,
//!   `CLASSPATH=/etc/zookeeper/conf:/usr/share/java/zookeeper.jar` and
//!   `ZOO_LOG_DIR=/var/log/zookeeper` (setting them in the environment has no effect; only
//!   `CLIENT_JVMFLAGS`/`JVMFLAGS` are taken from the environment). zookeeper.jar's manifest
//!   Class-Path pulls in jute, netty, slf4j-api, etc. jline is *not* installed, which only matters
//!   for the interactive shell.
//! * There is no slf4j binding on that classpath, so every run prints six `SLF4J: ...` warning
//!   lines on stderr (harmless; `common::zkcli` filters them out).
//! * With a command after the options, zkCli runs that one command and exits: status 0 on
//!   success, 1 on a KeeperException (e.g. `Node does not exist: /nope`) or when no server is
//!   listening (`KeeperErrorCode = ConnectionLoss for /x`, returned in well under a second).
//! * `create` prints `Created /x` on **stderr**, not stdout; `get` prints the data on stdout.
//!   stdout also carries `Connecting to 127.0.0.1:<PORT>`, `WATCHER::` and
//!   `WatchedEvent state:SyncConnected type:None path:null` lines.
//! * One run takes about 0.5 s (JVM start).
//!
//! The same `common::zkcli(port, args)` works against an `RzkServer`.

mod common;

use common::*;

#[test]
fn apache_starts_and_answers_four_letter_words() {
    let Some(zk) = ApacheZk::start() else { return };
    eprintln!("Apache ZooKeeper answered imok after {:?}", zk.startup);
    assert_eq!(four_letter(zk.port, "ruok"), "imok");

    let srvr = four_letter(zk.port, "srvr");
    assert!(srvr.contains("Mode: standalone"), "srvr output:\n{srvr}");
    assert!(srvr.starts_with("Zookeeper version: 3.8"), "srvr output:\n{srvr}");

    // The whitelist is `*`, so `conf` is allowed, and it shows our zoo.cfg.
    let conf = four_letter(zk.port, "conf");
    assert!(conf.contains(&format!("clientPort={}\n", zk.port)), "conf:\n{conf}");
    assert!(conf.contains("maxClientCnxns=0\n"), "conf:\n{conf}");
    assert!(conf.contains("tickTime=2000\n"), "conf:\n{conf}");
    let data = zk.data_dir().join("version-2");
    assert!(conf.contains(&format!("dataDir={}\n", data.display())), "conf:\n{conf}");

    // Nothing of the server's log went to our stdout: it is in the temp dir.
    let log = std::fs::read_to_string(zk.log_path()).expect("zookeeper.log");
    assert!(log.contains("binding to port"), "log:\n{log}");
    assert!(zk.cfg_path().exists());
}

#[test]
fn apache_takes_extra_cfg_lines() {
    // TTL nodes need extendedTypesEnabled=true; without it create -t gives Unimplemented.
    let Some(zk) = ApacheZk::start_with(&["extendedTypesEnabled=true", "enforceQuota=true"])
    else {
        return;
    };
    assert!(zkcli_available(), "{ZKCLI} missing");
    let (st, out, err) = zkcli(zk.port, &["create", "-t", "100000", "/ttl", "v"]);
    assert_eq!(st, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("Created /ttl"), "stderr:\n{err}");

    let Some(plain) = ApacheZk::start() else { return };
    let (st, out, err) = zkcli(plain.port, &["create", "-t", "100000", "/ttl", "v"]);
    assert_ne!(st, 0, "TTL create should fail without extendedTypesEnabled\n{out}\n{err}");
}

#[test]
fn zkcli_talks_to_apache() {
    let Some(zk) = ApacheZk::start() else { return };
    assert!(zkcli_available(), "{ZKCLI} missing");

    let (st, out, err) = zkcli(zk.port, &["create", "/x", "hi"]);
    assert_eq!(st, 0, "create: stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("Created /x"), "create stderr:\n{err}");

    let (st, out, err) = zkcli(zk.port, &["get", "/x"]);
    assert_eq!(st, 0, "get: stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(strip_zkcli_noise(&out), "hi\n", "get stdout:\n{out}");

    let (st, _out, err) = zkcli(zk.port, &["get", "/nope"]);
    assert_eq!(st, 1);
    assert!(err.contains("Node does not exist: /nope"), "stderr:\n{err}");

    // No server at all: fails quickly with ConnectionLoss.
    let dead = free_port();
    let (st, _out, err) = zkcli(dead, &["get", "/x"]);
    assert_eq!(st, 1);
    assert!(err.contains("ConnectionLoss"), "stderr:\n{err}");
}

#[test]
fn apache_restart_keeps_data() {
    let Some(mut zk) = ApacheZk::start() else { return };
    let (st, out, err) = zkcli(zk.port, &["create", "/persist", "v1"]);
    assert_eq!(st, 0, "{out}\n{err}");
    zk.restart();
    let (st, out, err) = zkcli(zk.port, &["get", "/persist"]);
    assert_eq!(st, 0, "{out}\n{err}");
    assert_eq!(strip_zkcli_noise(&out), "v1\n");
    assert!(zk.data_dir().join("version-2").is_dir());
}

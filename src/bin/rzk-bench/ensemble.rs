//! `rzk-bench ensemble`: three-member ensembles of rzk and of Apache ZooKeeper 3.8 on loopback
//! (forceSync=yes, tickTime 2000 unless told), one kind at a time:
//! - pipelined set throughput with the sessions spread over the members (writes from followers
//!   are forwarded to the leader, as in production);
//! - failover: a client on a follower, the leader killed with SIGKILL, the time until the first
//!   write is committed again (its reply received), repeated `--failovers` times with the old
//!   leader restarted in between.
//!
//! Prints both kinds side by side and the ratio rzk/Apache.

use super::*;

#[derive(Args)]
pub struct EnsembleArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Seconds per measured run [BENCH_DURATION; default 10]
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds of warm-up [BENCH_WARMUP; default 3]
    #[arg(long)]
    warmup: Option<f64>,
    /// Measured throughput rounds per kind [BENCH_ROUNDS; default 2]
    #[arg(long)]
    rounds: Option<u32>,
    /// Leader kills per kind [BENCH_FAILOVERS; default 3]
    #[arg(long)]
    failovers: Option<u32>,
    /// tickTime of the ensembles [BENCH_TICK; default 2000]
    #[arg(long)]
    tick: Option<u32>,
    /// Workload op:SESSIONSxINFLIGHT [BENCH_ENSEMBLE_WORKLOAD; default set:8x16]
    #[arg(long)]
    workload: Option<String>,
    /// Data size in bytes [BENCH_SIZE; default 100]
    #[arg(long)]
    size: Option<usize>,
    /// Which kinds: rzk,apache [BENCH_SERVERS; default both]
    #[arg(long)]
    servers: Option<String>,
}

/// Starts `n` members of one kind, all with the same server.N lines; waits until each serves.
fn start(kind: Kind, o: &ServerOpts, n: usize, tick: u32) -> Result<Vec<Server>, String> {
    let ports: Vec<(u16, u16, u16)> = (0..n)
        .map(|_| Ok((free_port()?, free_port()?, free_port()?)))
        .collect::<io::Result<_>>()
        .map_err(|e| e.to_string())?;
    let mut lines = String::new();
    for (i, (_, q, e)) in ports.iter().enumerate() {
        let _ = writeln!(lines, "server.{}=127.0.0.1:{q}:{e}", i + 1);
    }
    let mut members = Vec::new();
    for (i, (c, _, _)) in ports.iter().enumerate() {
        let dir = temp_dir(&format!("{}-ens{}", kind.name(), i + 1)).map_err(|e| e.to_string())?;
        let data_dir = dir.join("data");
        fs::create_dir_all(&data_dir).map_err(|e| e.to_string())?;
        fs::write(data_dir.join("myid"), format!("{}\n", i + 1)).map_err(|e| e.to_string())?;
        let cfg = format!(
            "tickTime={tick}\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={c}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n4lw.commands.whitelist=*\nmaxClientCnxns=0\nforceSync=yes\n\
             metricsProvider.className=org.apache.zookeeper.metrics.impl.DefaultMetricsProvider\n{lines}",
            data_dir.display()
        );
        let cfg_path = dir.join("zoo.cfg");
        fs::write(&cfg_path, cfg).map_err(|e| e.to_string())?;
        let argv = server_argv(kind, o, &dir, &cfg_path)?;
        let mut s = Server { kind, argv, dir, data_dir, port: *c, child: None, keep: o.keep, startup: Duration::ZERO };
        s.spawn()?;
        members.push(s);
    }
    for s in members.iter_mut() {
        s.startup = s.wait_ready(Duration::from_secs(120))?;
    }
    Ok(members)
}

fn mode(s: &Server) -> Option<String> {
    let t = four_letter(&s.addr(), "srvr", Duration::from_secs(2)).ok()?;
    srvr_field(&t, "Mode:")
}

fn leader_index(members: &[Server]) -> Result<usize, String> {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(120) {
        let modes: Vec<Option<String>> = members.iter().map(mode).collect();
        let leaders: Vec<usize> = (0..members.len()).filter(|&i| modes[i].as_deref() == Some("leader")).collect();
        if leaders.len() == 1 && modes.iter().all(|m| m.is_some()) {
            return Ok(leaders[0]);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err("no stable leader within 120 s".into())
}

/// Kills the leader; returns ms until a setData sent through the surviving members succeeds.
fn failover(members: &mut [Server], size: usize) -> Result<f64, String> {
    let leader = leader_index(members)?;
    let others: Vec<usize> = (0..members.len()).filter(|&i| i != leader).collect();
    let path = "/bench-failover";
    let data = vec![b'f'; size];
    {
        let mut c = Conn::connect(&members[others[0]].addr(), Duration::from_secs(10)).map_err(|e| e.to_string())?;
        let r = c.call(OP_CREATE, &create_body(path, b"")).map_err(|e| e.to_string())?;
        if r.err != 0 && r.err != ERR_NODE_EXISTS {
            return Err(format!("create {path}: error {}", r.err));
        }
        c.close();
    }
    let mut conn = Conn::connect(&members[others[0]].addr(), Duration::from_secs(10)).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Duration::from_secs(30)).map_err(|e| e.to_string())?;
    members[leader].kill();
    let t0 = Instant::now();
    let mut next = 0usize;
    let mut have = true;
    loop {
        if t0.elapsed() > Duration::from_secs(120) {
            return Err("no write committed within 120 s of the leader kill".into());
        }
        if have {
            match conn.call(OP_SET_DATA, &set_body(path, &data)) {
                Ok(r) if r.err == 0 => break,
                _ => have = false,
            }
        } else {
            // The members drop their clients while they elect; reconnect to whichever serves.
            let a = members[others[next % others.len()]].addr();
            next += 1;
            match Conn::connect(&a, Duration::from_millis(500)) {
                Ok(c) => {
                    conn = c;
                    let _ = conn.set_read_timeout(Duration::from_secs(30));
                    have = true;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    }
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    conn.close();
    members[leader].spawn()?;
    members[leader].wait_ready(Duration::from_secs(120))?;
    leader_index(members)?;
    Ok(ms)
}

pub fn run(a: EnsembleArgs) -> Result<(), String> {
    let duration = env_or(a.duration, "BENCH_DURATION", 10.0)?;
    let warmup = env_or(a.warmup, "BENCH_WARMUP", 3.0)?;
    let rounds = env_or(a.rounds, "BENCH_ROUNDS", 2)?.max(1);
    let failovers = env_or(a.failovers, "BENCH_FAILOVERS", 3)?;
    let tick = env_or(a.tick, "BENCH_TICK", 2000)?;
    let size = env_or(a.size, "BENCH_SIZE", 100)?;
    let workload = env_or(a.workload, "BENCH_ENSEMBLE_WORKLOAD", "set:8x16".to_string())?;
    let kinds_s = env_or(a.servers, "BENCH_SERVERS", "rzk,apache".to_string())?;
    let o = a.server.opts("1g")?;
    let specs = parse_workloads(&workload, size, Duration::from_secs_f64(duration))?;
    let warm = parse_workloads(&workload, size, Duration::from_secs_f64(warmup))?;
    let mut kinds = Vec::new();
    for k in kinds_s.split(',') {
        kinds.push(match k.trim() {
            "rzk" => Kind::Rzk,
            "apache" => Kind::Apache,
            other => return Err(format!("unknown server kind {other}")),
        });
    }
    // (kind, ops/s median, p99 median, failover ms list)
    let mut results: Vec<(Kind, f64, f64, Vec<f64>)> = Vec::new();
    for kind in kinds {
        progress(&format!("starting a 3-member {} ensemble (tickTime {tick})", kind.name()));
        let mut members = start(kind, &o, 3, tick)?;
        leader_index(&members)?;
        let addrs: Vec<String> = members.iter().map(|s| s.addr()).collect();
        let all = addrs.join(",");
        ensure_keyspace(&addrs[0], specs[0].keys, size).map_err(|e| e.to_string())?;
        let _ = run_load(&all, &warm[0], None, clk_tck()).map_err(|e| e.to_string())?;
        let (mut ops, mut p99) = (Vec::new(), Vec::new());
        for r in 0..rounds {
            let res = run_load(&all, &specs[0], None, clk_tck()).map_err(|e| e.to_string())?;
            progress(&format!(
                "{} round {}: {:.0} ops/s, p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, {} errors",
                kind.name(),
                r + 1,
                res.ops as f64 / res.secs,
                res.p50,
                res.p99,
                res.p999,
                res.errors
            ));
            ops.push(res.ops as f64 / res.secs);
            p99.push(res.p99);
        }
        let mut fo = Vec::new();
        for i in 0..failovers {
            let ms = failover(&mut members, size)?;
            progress(&format!("{} failover {}: first committed write {ms:.0} ms after SIGKILL of the leader", kind.name(), i + 1));
            fo.push(ms);
        }
        results.push((kind, median(&mut ops).unwrap_or(f64::NAN), median(&mut p99).unwrap_or(f64::NAN), fo));
        drop(members);
    }
    println!("\n3-member ensembles, {workload} {size} B, forceSync=yes, tickTime={tick}");
    println!("| figure | {} | ratio |", results.iter().map(|r| r.0.name()).collect::<Vec<_>>().join(" | "));
    println!("|---|{}---|", "---|".repeat(results.len()));
    let row = |name: &str, vals: Vec<f64>, prec: usize| {
        let ratio = if vals.len() == 2 && vals[1] > 0.0 { format!("{:.2}", vals[0] / vals[1]) } else { "-".into() };
        println!("| {name} | {} | {ratio} |", vals.iter().map(|v| format!("{v:.prec$}")).collect::<Vec<_>>().join(" | "));
    };
    row("set ops/s", results.iter().map(|r| r.1).collect(), 0);
    row("set p99 µs", results.iter().map(|r| r.2).collect(), 0);
    row("failover ms (median)", results.iter().map(|r| median(&mut r.3.clone()).unwrap_or(f64::NAN)).collect(), 0);
    row("failover ms (max)", results.iter().map(|r| r.3.iter().cloned().fold(f64::NAN, f64::max)).collect(), 0);
    Ok(())
}

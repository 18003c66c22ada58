//! Long sweeps of the ZAB simulation: `rzk-sim --seeds 10000 [--start 0] [--voters 3]
//! [--observers 0] [--steps 4000]`. Prints each failing seed with its panic message, and a summary;
//! exits 1 if any seed failed. Replay one with `--start N --seeds 1`.

use clap::Parser;
use rzk::zab::sim::{Sim, SimConfig};

#[derive(Parser)]
#[command(name = "rzk-sim", about = "Deterministic simulation of a ZAB ensemble")]
struct Args {
    #[arg(long, default_value_t = 0)]
    start: u64,
    #[arg(long, default_value_t = 500)]
    seeds: u64,
    #[arg(long, default_value_t = 3)]
    voters: usize,
    #[arg(long, default_value_t = 0)]
    observers: usize,
    #[arg(long, default_value_t = 4000)]
    steps: u64,
    /// Chance per simulated ms of a crash (default 0.002).
    #[arg(long)]
    crash_p: Option<f64>,
    /// Chance per simulated ms of isolating or healing a server (default 0.002).
    #[arg(long)]
    partition_p: Option<f64>,
    /// Chance that an election message is lost (default 0.02).
    #[arg(long)]
    drop_p: Option<f64>,
}

fn main() {
    let a = Args::parse();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failed = Vec::new();
    let (mut acked, mut crashes, mut epochs, mut snaps, mut truncs) = (0usize, 0usize, 0u64, 0usize, 0usize);
    for seed in a.start..a.start + a.seeds {
        let d = SimConfig::default();
        let cfg = SimConfig {
            voters: a.voters,
            observers: a.observers,
            steps: a.steps,
            crash_p: a.crash_p.unwrap_or(d.crash_p),
            partition_p: a.partition_p.unwrap_or(d.partition_p),
            drop_p: a.drop_p.unwrap_or(d.drop_p),
            ..d
        };
        match std::panic::catch_unwind(|| Sim::run(seed, cfg)) {
            Ok(r) => {
                acked += r.acknowledged;
                crashes += r.crashes;
                epochs += r.epochs as u64;
                snaps += r.snaps;
                truncs += r.truncs;
            }
            Err(e) => {
                let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                println!("seed {seed} FAILED: {msg}");
                failed.push(seed);
            }
        }
    }
    println!(
        "{} seeds, {} failed; {} acknowledged writes, {} crashes, {} epochs, {} SNAP syncs, {} TRUNCs",
        a.seeds,
        failed.len(),
        acked,
        crashes,
        epochs,
        snaps,
        truncs
    );
    if !failed.is_empty() {
        println!("failing seeds: {failed:?}");
        std::process::exit(1);
    }
}

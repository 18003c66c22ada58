//! rzk-server: the ZooKeeper-compatible server, with zkServer.sh's verbs.

use clap::{Parser, Subcommand};
use rzk::server::config::ServerConfig;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "rzk-server", version, about = "A ZooKeeper-compatible coordination service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server in the foreground (as `zkServer.sh start-foreground`).
    StartForeground {
        /// zoo.cfg; without it: $ZOOCFGDIR/$ZOOCFG, else the embedded default
        /// (127.0.0.1:2181, data in ./data).
        config: Option<PathBuf>,
    },
    /// Print the version.
    Version,
}

/// zoo.cfg as zkServer.sh finds it: the argument, else $ZOOCFGDIR/${ZOOCFG:-zoo.cfg} if present.
fn find_config(arg: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(p) = arg {
        return Some(p);
    }
    let dir = std::env::var_os("ZOOCFGDIR")?;
    let name = std::env::var_os("ZOOCFG").unwrap_or_else(|| "zoo.cfg".into());
    let p = PathBuf::from(dir).join(name);
    p.exists().then_some(p)
}

fn load_config(arg: Option<PathBuf>) -> Result<ServerConfig, String> {
    match find_config(arg) {
        Some(path) => {
            eprintln!("Using config: {}", path.display());
            ServerConfig::load(&path).map_err(|e| e.to_string())
        }
        None => {
            eprintln!("Using the embedded default config (127.0.0.1:2181, dataDir ./data)");
            Ok(ServerConfig::default_standalone(PathBuf::from("./data")))
        }
    }
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => println!("rzk, version {} (ZooKeeper 3.9 protocol)", env!("CARGO_PKG_VERSION")),
        Command::StartForeground { config } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("RZK_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .with_writer(std::io::stderr)
                .init();
            let cfg = match load_config(config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("Invalid config, exiting abnormally: {e}");
                    std::process::exit(2);
                }
            };
            for w in &cfg.warnings {
                tracing::warn!("{w}");
            }
            if let Err(e) = std::fs::create_dir_all(&cfg.data_dir) {
                eprintln!("cannot create dataDir {}: {e}", cfg.data_dir.display());
                std::process::exit(2);
            }
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
            rt.block_on(async move {
                let server = match rzk::server::Server::bind(cfg).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!("{e}");
                        eprintln!("{e}");
                        std::process::exit(1);
                    }
                };
                server
                    .run(async {
                        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = term.recv() => {}
                        }
                    })
                    .await;
            });
        }
    }
}

//! rzk-cli: a zkCli.sh-compatible client for rzk (and any ZooKeeper server).
//!
//! `rzk-cli [-server host:port[,host:port...][/chroot]] [-timeout ms] [-r] [cmd args...]`
//! runs `cmd` once and exits with its status; without a command it is an interactive shell.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = rzk::cli::run(&args);
    std::process::exit(code);
}

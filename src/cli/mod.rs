//! `rzk-cli`: a zkCli.sh-compatible command-line client.
//!
//! - `client`: a small synchronous ZooKeeper client (session handshake, xids, pings, reconnects
//!   across the `-server` list, watch bookkeeping like the Java client's).
//! - `parse`: zkCli's line tokenizer and a commons-cli-compatible option parser.
//! - `format`: the texts zkCli prints (stat lines, Java dates, ACL ids, quota strings).
//! - `shell`: ZooKeeperMain and the commands.
//!
//! `run(args)` is the whole program: with a command after the options it runs that command once
//! and returns its exit status; otherwise it reads commands at a `[zk: host(STATE) N] ` prompt
//! (with line editing, history and completion on a terminal) until EOF or `quit`.

pub mod client;
pub mod format;
pub mod parse;
pub mod shell;

use client::{Client, States};
use shell::{Flow, MainOptions, Shell};
use std::io::{BufRead, IsTerminal};
use std::sync::{Arc, Mutex};

/// Runs rzk-cli with the arguments after the program name; returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let opts = MainOptions::parse(args);
    let mut sh = match Shell::new(opts) {
        Ok(s) => s,
        Err(e) => {
            shell::err(&format!("{}\n", e.msg));
            return e.code;
        }
    };
    if let Some(cmd) = sh.command_line() {
        return match sh.process_cmd(&cmd) {
            Flow::Exit(c) => c,
            Flow::Continue => sh.exit_code(),
        };
    }
    shell::out("Welcome to ZooKeeper!\n");
    shell::out("JLine support is enabled\n");
    sh.wait_first_connect();
    if std::io::stdin().is_terminal() {
        interactive_terminal(&mut sh)
    } else {
        interactive_piped(&mut sh)
    }
}

/// Standard input is not a terminal: print the prompt, read a line, run it (as jline does when
/// its input is a pipe).
fn interactive_piped(sh: &mut Shell) -> i32 {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock();
    loop {
        shell::out(&sh.prompt());
        let mut line = String::new();
        match lines.read_line(&mut line) {
            Ok(0) | Err(_) => return sh.exit_code(),
            Ok(_) => {}
        }
        let line = line.strip_suffix('\n').unwrap_or(&line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Flow::Exit(c) = sh.execute_line(line) {
            return c;
        }
    }
}

fn interactive_terminal(sh: &mut Shell) -> i32 {
    use rustyline::error::ReadlineError;
    let config = rustyline::Config::builder().auto_add_history(false).max_history_size(1000).map(|b| b.build());
    let editor = config.and_then(rustyline::Editor::<Completion, rustyline::history::DefaultHistory>::with_config);
    let mut rl = match editor {
        Ok(rl) => rl,
        Err(_) => return interactive_piped(sh),
    };
    rl.set_helper(Some(Completion { current: sh.current_client() }));
    loop {
        match rl.readline(&sh.prompt()) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = rl.add_history_entry(line.as_str());
                }
                if let Flow::Exit(c) = sh.execute_line(&line) {
                    return c;
                }
            }
            // Ctrl-C abandons the line being typed.
            Err(ReadlineError::Interrupted) => continue,
            Err(_) => return sh.exit_code(),
        }
    }
}

/// Tab completion of command names and znode paths (zkCli's JLineZNodeCompleter).
struct Completion {
    current: Arc<Mutex<Option<Client>>>,
}

impl rustyline::completion::Completer for Completion {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map(|i| i + 1).unwrap_or(0);
        let word = &before[start..];
        if word.starts_with('/') {
            let zk = self.current.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let Some(zk) = zk.filter(|z| z.state() == States::Connected || z.state() == States::ConnectedReadOnly)
            else {
                return Ok((start, Vec::new()));
            };
            let slash = word.rfind('/').unwrap_or(0);
            let (dir, prefix) = (if slash == 0 { "/" } else { &word[..slash] }, &word[slash + 1..]);
            let Ok(mut children) = zk.get_children(dir, false) else { return Ok((start, Vec::new())) };
            children.sort();
            let base = if dir == "/" { String::new() } else { dir.to_string() };
            let c = children.into_iter().filter(|c| c.starts_with(prefix)).map(|c| format!("{base}/{c}")).collect();
            Ok((start, c))
        } else if start == 0 {
            let c = shell::command_names().into_iter().filter(|c| c.starts_with(word)).map(|c| format!("{c} ")).collect();
            Ok((start, c))
        } else {
            Ok((start, Vec::new()))
        }
    }
}

impl rustyline::hint::Hinter for Completion {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for Completion {}
impl rustyline::validate::Validator for Completion {}
impl rustyline::Helper for Completion {}

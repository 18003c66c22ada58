//! rzk-bench: a load generator for any ZooKeeper-protocol server.
//!
//! `rzk-bench populate --server 127.0.0.1:2181 --count 1000000 --size 100` creates znodes under
//! /bench (1000 per parent), pipelining requests, and reports the rate.

use clap::{Parser, Subcommand};
use rzk::jute::records::*;
use rzk::jute::{Jute, Reader, Writer};
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "rzk-bench", about = "Load generator for ZooKeeper-protocol servers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create `count` znodes of `size` bytes under /bench.
    Populate {
        #[arg(long, default_value = "127.0.0.1:2181")]
        server: String,
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        #[arg(long, default_value_t = 100)]
        size: usize,
        /// Requests in flight.
        #[arg(long, default_value_t = 1000)]
        window: u64,
    },
}

struct Session {
    w: BufWriter<TcpStream>,
    r: BufReader<TcpStream>,
    xid: i32,
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

impl Session {
    fn connect(addr: &str) -> std::io::Result<Session> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        let mut sess = Session { w: BufWriter::with_capacity(1 << 16, s.try_clone()?), r: BufReader::with_capacity(1 << 16, s), xid: 0 };
        let req = ConnectRequest { time_out: 30000, passwd: Some(vec![0; 16]), ..Default::default() };
        sess.w.write_all(&frame(&req.to_bytes()))?;
        sess.w.flush()?;
        sess.read_frame()?;
        Ok(sess)
    }
    fn read_frame(&mut self) -> std::io::Result<Vec<u8>> {
        let mut len = [0u8; 4];
        self.r.read_exact(&mut len)?;
        let mut b = vec![0; i32::from_be_bytes(len) as usize];
        self.r.read_exact(&mut b)?;
        Ok(b)
    }
    fn send(&mut self, op: i32, body: &[u8]) -> std::io::Result<()> {
        self.xid += 1;
        let mut w = Writer::new();
        RequestHeader { xid: self.xid, op }.write(&mut w);
        w.buf.extend_from_slice(body);
        self.w.write_all(&frame(&w.buf))
    }
    /// Reads one reply; returns its error code.
    fn recv(&mut self) -> std::io::Result<i32> {
        loop {
            let f = self.read_frame()?;
            let h = ReplyHeader::read(&mut Reader::new(&f)).map_err(std::io::Error::other)?;
            if h.xid != -1 {
                return Ok(h.err);
            }
        }
    }
}

fn create_req(path: String, data: &[u8]) -> Vec<u8> {
    CreateRequest { path, data: Some(data.to_vec()), acl: rzk::tree::acl::open_acl_unsafe(), flags: 0 }.to_bytes()
}

fn populate(server: &str, count: u64, size: usize, window: u64) -> std::io::Result<()> {
    let mut s = Session::connect(server)?;
    let data = vec![b'x'; size];
    s.send(1, &create_req("/bench".into(), b""))?;
    s.w.flush()?;
    s.recv()?;
    let parents = count.div_ceil(1000);
    for p in 0..parents {
        s.send(1, &create_req(format!("/bench/p{p:05}"), b""))?;
    }
    s.w.flush()?;
    for _ in 0..parents {
        s.recv()?;
    }
    let start = Instant::now();
    let (mut sent, mut done, mut errors) = (0u64, 0u64, 0u64);
    while done < count {
        while sent < count && sent - done < window {
            s.send(1, &create_req(format!("/bench/p{:05}/n{:06}", sent / 1000, sent % 1000), &data))?;
            sent += 1;
        }
        s.w.flush()?;
        let batch = sent - done;
        for _ in 0..batch {
            if s.recv()? != 0 {
                errors += 1;
            }
            done += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("created {count} znodes of {size} B in {secs:.2}s ({:.0}/s), {errors} errors", count as f64 / secs);
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Populate { server, count, size, window } => populate(&server, count, size, window),
    };
    if let Err(e) = res {
        eprintln!("rzk-bench: {e}");
        std::process::exit(1);
    }
}

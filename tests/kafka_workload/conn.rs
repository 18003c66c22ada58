//! One client connection as the Java client runs it: a reader thread that splits the byte stream
//! into frames (ping replies are counted and passed on as `Pong`s), a writer shared with a
//! keep-alive thread that pings a connection whenever it has been idle for a third of its
//! negotiated session timeout (like `ClientCnxn`), and nothing else. What to send and when is the
//! workload's business.
//!
//! Keep-alive pings never show up in the transcript: their replies are only counted. The workload
//! uses its own ping (`sync`) as a barrier: the server answers a session's requests in order and
//! queues every notification a txn fires before it answers any later request on that connection,
//! so once the reply to a ping sent *after* some write has arrived, every event that write fired
//! for this session has arrived too. Pings are matched by count: the n-th ping reply answers the
//! n-th ping sent.

use crate::client::{self, Frame, PING_XID};
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the reader thread hands over.
#[derive(Debug)]
pub enum In {
    /// The first frame of the connection (the ConnectResponse), undecoded.
    ConnectResp(Vec<u8>),
    /// Any frame other than a ping reply.
    Frame(Frame),
    /// The n-th ping reply on this connection (header zxid and err).
    Pong { n: u64, zxid: i64, err: i32 },
    /// The server closed the connection.
    Eof,
    /// A read error.
    Io(String),
}

struct WState {
    stream: TcpStream,
    pings_sent: u64,
    last_write: Instant,
}

/// The part of a connection the keep-alive thread shares.
pub struct Shared {
    w: Mutex<WState>,
    /// Ping when idle (off while the workload "suspends" the session, i.e. simulates a stalled
    /// process).
    pub keepalive: AtomicBool,
    /// Set once the socket is shut down by us.
    pub closed: AtomicBool,
    /// Ping after this much idle time (ms).
    pub idle_ms: AtomicU64,
}

impl Shared {
    fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut w = self.w.lock().unwrap();
        w.last_write = Instant::now();
        w.stream.write_all(bytes)
    }

    /// Sends a ping; returns its number (the Pong to wait for).
    fn ping(&self) -> std::io::Result<u64> {
        let mut w = self.w.lock().unwrap();
        w.pings_sent += 1;
        let n = w.pings_sent;
        w.last_write = Instant::now();
        w.stream.write_all(&client::request_frame(PING_XID, 11, &[]))?;
        Ok(n)
    }

    fn ping_if_idle(&self) {
        if !self.keepalive.load(Ordering::SeqCst) || self.closed.load(Ordering::SeqCst) {
            return;
        }
        let idle = Duration::from_millis(self.idle_ms.load(Ordering::SeqCst));
        let mut w = self.w.lock().unwrap();
        if w.last_write.elapsed() >= idle {
            w.pings_sent += 1;
            w.last_write = Instant::now();
            let _ = w.stream.write_all(&client::request_frame(PING_XID, 11, &[]));
        }
    }

    fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.keepalive.store(false, Ordering::SeqCst);
        let w = self.w.lock().unwrap();
        let _ = w.stream.shutdown(Shutdown::Both);
    }
}

pub struct Conn {
    pub shared: Arc<Shared>,
    pub rx: Receiver<In>,
    reader: Option<JoinHandle<()>>,
}

impl Conn {
    /// Connects and writes `first_bytes` (ConnectRequest plus anything pipelined after it) in one
    /// write. The ConnectResponse arrives as `In::ConnectResp` on `rx`.
    pub fn open(port: u16, first_bytes: &[u8]) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(Duration::from_secs(20)))?;
        let rstream = stream.try_clone()?;
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::Builder::new()
            .name("kw-reader".into())
            .spawn(move || reader_loop(rstream, tx))?;
        let shared = Arc::new(Shared {
            w: Mutex::new(WState { stream, pings_sent: 0, last_write: Instant::now() }),
            keepalive: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            idle_ms: AtomicU64::new(1000),
        });
        shared.write(first_bytes)?;
        Ok(Conn { shared, rx, reader: Some(reader) })
    }

    pub fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.shared.write(bytes)
    }

    pub fn ping(&self) -> std::io::Result<u64> {
        self.shared.ping()
    }

    /// Closes the socket without a closeSession (the session lives on in the server).
    pub fn drop_socket(mut self) {
        self.shared.shutdown();
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.shared.shutdown();
    }
}

/// Counts messages the reader threads have delivered, so that a caller watching several
/// connections' channels can block until any of them gets something (`wait_past`).
pub struct Arrivals {
    n: Mutex<u64>,
    cv: std::sync::Condvar,
}

pub static ARRIVALS: Arrivals = Arrivals { n: Mutex::new(0), cv: std::sync::Condvar::new() };

impl Arrivals {
    pub fn count(&self) -> u64 {
        *self.n.lock().unwrap()
    }

    fn bump(&self) {
        *self.n.lock().unwrap() += 1;
        self.cv.notify_all();
    }

    /// Blocks until a message arrived after `count()` returned `seen`, or until `deadline`.
    pub fn wait_past(&self, seen: u64, deadline: Instant) {
        let mut n = self.n.lock().unwrap();
        while *n == seen {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            n = self.cv.wait_timeout(n, deadline - now).unwrap().0;
        }
    }
}

/// Sends `m` on `tx` and signals `ARRIVALS`; false when the receiver is gone.
fn deliver(tx: &Sender<In>, m: In) -> bool {
    let ok = tx.send(m).is_ok();
    ARRIVALS.bump();
    ok
}

fn reader_loop(stream: TcpStream, tx: Sender<In>) {
    let mut r = BufReader::with_capacity(1 << 16, stream);
    let mut first = true;
    let mut pongs = 0u64;
    loop {
        let mut len = [0u8; 4];
        if let Err(e) = r.read_exact(&mut len) {
            let _ = deliver(&tx, end_of(e));
            return;
        }
        let n = i32::from_be_bytes(len);
        if !(0..=64 << 20).contains(&n) {
            let _ = deliver(&tx, In::Io(format!("unreasonable frame length {n}")));
            return;
        }
        let mut buf = vec![0u8; n as usize];
        if let Err(e) = r.read_exact(&mut buf) {
            let _ = deliver(&tx, end_of(e));
            return;
        }
        let msg = if first {
            first = false;
            In::ConnectResp(buf)
        } else {
            match client::parse_frame(&buf) {
                Frame::Reply { xid: PING_XID, zxid, err, .. } => {
                    pongs += 1;
                    In::Pong { n: pongs, zxid, err }
                }
                f => In::Frame(f),
            }
        };
        if !deliver(&tx, msg) {
            return;
        }
    }
}

fn end_of(e: std::io::Error) -> In {
    use std::io::ErrorKind::*;
    match e.kind() {
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => In::Eof,
        _ => In::Io(e.to_string()),
    }
}

/// Pings every registered connection that has been idle too long, every 50 ms, until dropped.
/// The thread waits on its stop channel: dropping the KeepAlive wakes it at once, and each
/// 50 ms without a stop is a round of pings.
pub struct KeepAlive {
    conns: Arc<Mutex<Vec<Arc<Shared>>>>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl KeepAlive {
    pub fn start() -> KeepAlive {
        let conns: Arc<Mutex<Vec<Arc<Shared>>>> = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let c = conns.clone();
        let thread = std::thread::Builder::new()
            .name("kw-keepalive".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(Duration::from_millis(50)) {
                    let list: Vec<Arc<Shared>> = {
                        let mut l = c.lock().unwrap();
                        l.retain(|x| !x.closed.load(Ordering::SeqCst));
                        l.clone()
                    };
                    for x in list {
                        x.ping_if_idle();
                    }
                }
            })
            .expect("spawn keepalive thread");
        KeepAlive { conns, stop: Some(stop), thread: Some(thread) }
    }

    /// Starts pinging `conn` whenever it was idle for `idle_ms`.
    pub fn register(&self, conn: &Conn, idle_ms: u64) {
        conn.shared.idle_ms.store(idle_ms, Ordering::SeqCst);
        conn.shared.keepalive.store(true, Ordering::SeqCst);
        self.conns.lock().unwrap().push(conn.shared.clone());
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        // Closing the channel ends the thread's wait.
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

//! A connection's outgoing bytes.
//!
//! Outputs are appended under the state lock, so their order is the engine's. Whoever produced
//! them then *kicks* the outbox once the lock is released: if no write is in progress, the bytes
//! go straight to the socket with one non-blocking `send` from that thread (the connection's own
//! task for a read, the log thread for a lone write, the commit thread for a group of writes).
//! Only when the socket cannot take everything does the connection's writer task take over and
//! wait for the socket to drain. A reply therefore costs no extra thread or task wake-up, and a
//! batch of replies for one connection goes out in one system call.

use parking_lot::Mutex;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

pub struct Outbox {
    wr: OwnedWriteHalf,
    st: Mutex<OutState>,
    wake: Notify,
}

#[derive(Default)]
struct OutState {
    /// Bytes not yet handed to the socket, in order.
    buf: Vec<u8>,
    /// The writer task owns the socket (it took bytes and is writing them): nobody else writes.
    busy: bool,
    /// Close once everything queued before is written.
    close: bool,
    /// The socket failed: drop whatever comes.
    dead: bool,
}

impl Outbox {
    pub fn new(wr: OwnedWriteHalf) -> Arc<Outbox> {
        Arc::new(Outbox { wr, st: Mutex::new(OutState::default()), wake: Notify::new() })
    }

    /// Queues a frame (under the state lock; `kick` sends it).
    pub fn push(&self, frame: &[u8]) {
        let mut s = self.st.lock();
        if !s.dead && !s.close {
            s.buf.extend_from_slice(frame);
        }
    }

    /// Queues a close behind everything queued so far.
    pub fn close(&self) {
        self.st.lock().close = true;
        self.wake.notify_one();
    }

    /// Sends what is queued, from this thread if no write is in progress and the socket takes it
    /// all at once; otherwise the writer task carries on.
    pub fn kick(&self) {
        let mut s = self.st.lock();
        if s.busy || s.dead || s.buf.is_empty() {
            return;
        }
        // Still under the outbox lock: nothing can be queued or written in between, so the
        // bytes leave in the order they were queued.
        match self.wr.try_write(&s.buf) {
            Ok(n) if n == s.buf.len() => s.buf.clear(),
            Ok(n) => {
                s.buf.drain(..n);
                s.busy = true;
                drop(s);
                self.wake.notify_one();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                s.busy = true;
                drop(s);
                self.wake.notify_one();
            }
            Err(_) => {
                s.dead = true;
                s.buf = Vec::new();
                drop(s);
                self.wake.notify_one();
            }
        }
    }

    /// The connection's writer task: writes what `kick` could not, and closes on request.
    pub async fn run_writer(self: Arc<Outbox>) {
        let mut chunk = Vec::new();
        loop {
            self.wake.notified().await;
            loop {
                {
                    let mut s = self.st.lock();
                    if s.dead {
                        return;
                    }
                    if s.buf.is_empty() {
                        s.busy = false;
                        if s.close {
                            drop(s);
                            // The write side only: the peer sees the end of the stream after the
                            // last reply; the socket itself closes when the connection is gone.
                            unsafe {
                                libc::shutdown(self.wr.as_ref().as_raw_fd(), libc::SHUT_WR);
                            }
                            return;
                        }
                        break;
                    }
                    s.busy = true;
                    std::mem::swap(&mut s.buf, &mut chunk);
                }
                if self.write_all(&chunk).await.is_err() {
                    let mut s = self.st.lock();
                    s.dead = true;
                    s.buf = Vec::new();
                    return;
                }
                chunk.clear();
            }
        }
    }

    async fn write_all(&self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            self.wr.writable().await?;
            match self.wr.try_write(bytes) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Outboxes that got bytes under the state lock; dropping this kicks them, so the sends happen
/// wherever the holder drops it (after releasing the lock, when it cares).
#[must_use = "drop it after releasing the state lock"]
#[derive(Default)]
pub struct Kicks(Vec<Arc<Outbox>>);

impl Kicks {
    pub fn add(&mut self, o: &Arc<Outbox>) {
        // A handful of connections per batch: a scan beats a set.
        if self.0.len() > 64 || !self.0.iter().any(|l| Arc::ptr_eq(l, o)) {
            self.0.push(o.clone());
        }
    }

    pub fn append(&mut self, mut other: Kicks) {
        for o in other.0.drain(..) {
            self.add(&o);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Kicks {
    fn drop(&mut self) {
        for o in self.0.drain(..) {
            o.kick();
        }
    }
}

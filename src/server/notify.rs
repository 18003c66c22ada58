//! systemd's readiness protocol (`sd_notify(3)`): when the environment names a socket in
//! `NOTIFY_SOCKET` (as systemd does for a unit with `Type=notify`), the server sends it
//!
//! - `READY=1` and `STATUS=Mode: standalone` once a standalone server accepts clients;
//! - `READY=1` and `STATUS=Mode: leader|follower|observer` each time an ensemble member starts
//!   serving clients in a role (after the election and the sync with its leader), and
//!   `STATUS=Mode: looking` when it stops serving to look for a leader;
//! - `STOPPING=1` when it shuts down.
//!
//! The STATUS text is `srvr`'s `Mode:` line, so `systemctl status` shows the role. A unit can
//! then order Kafka after ZooKeeper on real readiness instead of a port check; `rzk-server
//! start` and the tests wait on the same messages. Without `NOTIFY_SOCKET` nothing is sent.
//!
//! Sending never blocks and its errors are ignored: a notification is a courtesy, never a
//! reason for the server to stall.

use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;

struct Notifier {
    sock: UnixDatagram,
    target: std::os::unix::net::SocketAddr,
}

static NOTIFIER: OnceLock<Option<Notifier>> = OnceLock::new();

fn notifier() -> Option<&'static Notifier> {
    NOTIFIER
        .get_or_init(|| {
            let path = std::env::var_os("NOTIFY_SOCKET")?;
            let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
            // `@name` is a socket in the abstract namespace (systemd uses those too).
            let target = match bytes.strip_prefix(b"@") {
                Some(name) => <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(name),
                None => std::os::unix::net::SocketAddr::from_pathname(&path),
            };
            let target = match target {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!("NOTIFY_SOCKET={}: {e}; not sending readiness notifications", path.to_string_lossy());
                    return None;
                }
            };
            let sock = UnixDatagram::unbound().and_then(|s| s.set_nonblocking(true).map(|_| s));
            match sock {
                Ok(sock) => Some(Notifier { sock, target }),
                Err(e) => {
                    tracing::warn!("cannot create a socket for NOTIFY_SOCKET: {e}");
                    None
                }
            }
        })
        .as_ref()
}

/// Sends `msg` (newline-separated `KEY=value` assignments) to `NOTIFY_SOCKET`, if set.
pub fn send(msg: &str) {
    if let Some(n) = notifier()
        && let Err(e) = n.sock.send_to_addr(msg.as_bytes(), &n.target)
    {
        tracing::debug!("NOTIFY_SOCKET: {e}");
    }
}

/// The server serves clients in `mode` (srvr's word: standalone, leader, follower, observer).
pub fn serving(mode: &str) {
    send(&format!("READY=1\nSTATUS=Mode: {mode}\n"));
}

/// An ensemble member stopped serving to look for a leader.
pub fn looking() {
    send("STATUS=Mode: looking\n");
}

/// The server is shutting down.
pub fn stopping() {
    send("STOPPING=1\n");
}

// ---------------------------------------------------------------------------------------------
// The other side: waiting for a server started as a child process (`rzk-server start`, tests)

/// A datagram socket a started server reports to (pass `env_value()` as its `NOTIFY_SOCKET`),
/// with what it has said so far.
pub struct Listener {
    sock: UnixDatagram,
    env: std::ffi::OsString,
    /// `READY=1` came.
    pub ready: bool,
    /// The last `STATUS=Mode: X` (srvr's mode, or "looking").
    pub status: Option<String>,
    /// `STOPPING=1` came.
    pub stopping: bool,
}

impl Listener {
    /// A socket at `path` (a stale file there is replaced).
    pub fn bind(path: &std::path::Path) -> std::io::Result<Listener> {
        let _ = std::fs::remove_file(path);
        Self::with(UnixDatagram::bind(path)?, path.as_os_str().to_owned())
    }

    /// A socket named `name` in the abstract namespace (nothing in the file system to clean up).
    pub fn bind_abstract(name: &str) -> std::io::Result<Listener> {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        Self::with(UnixDatagram::bind_addr(&addr)?, format!("@{name}").into())
    }

    fn with(sock: UnixDatagram, env: std::ffi::OsString) -> std::io::Result<Listener> {
        sock.set_nonblocking(true)?;
        Ok(Listener { sock, env, ready: false, status: None, stopping: false })
    }

    /// The value to give the server as `NOTIFY_SOCKET`.
    pub fn env_value(&self) -> &std::ffi::OsStr {
        &self.env
    }

    /// Readable when a message is waiting (for `wait_readable`).
    pub fn fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.sock.as_raw_fd()
    }

    /// Reads every message that has arrived.
    pub fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.sock.recv(&mut buf) {
            for line in String::from_utf8_lossy(&buf[..n]).lines() {
                match line.split_once('=') {
                    Some(("READY", "1")) => self.ready = true,
                    Some(("STOPPING", "1")) => self.stopping = true,
                    Some(("STATUS", s)) => self.status = s.strip_prefix("Mode: ").map(str::to_string),
                    _ => {}
                }
            }
        }
    }

    /// Forgets what an earlier process said (before starting a new one on the same socket).
    pub fn reset(&mut self) {
        self.drain();
        self.ready = false;
        self.status = None;
        self.stopping = false;
    }

    /// The mode while the server serves clients; None while it does not (not started yet,
    /// looking for a leader).
    pub fn serving(&self) -> Option<&str> {
        self.status.as_deref().filter(|m| *m != "looking")
    }
}

/// A pidfd: readable once the process has exited (any process, not only a child).
pub struct PidFd(i32);

impl PidFd {
    pub fn open(pid: u32) -> std::io::Result<PidFd> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) } as i32;
        if fd < 0 { Err(std::io::Error::last_os_error()) } else { Ok(PidFd(fd)) }
    }

    pub fn fd(&self) -> i32 {
        self.0
    }

    /// Has the process exited? (Does not block.)
    pub fn exited(&self) -> bool {
        wait_readable(&[self.0], std::time::Instant::now())
    }
}

impl Drop for PidFd {
    fn drop(&mut self) {
        // SAFETY: the fd is ours.
        unsafe { libc::close(self.0) };
    }
}

/// Blocks in poll(2) until one of `fds` is readable (or hung up) or `deadline` passes; false
/// when the deadline passed first. A deadline already past still looks once.
pub fn wait_readable(fds: &[i32], deadline: std::time::Instant) -> bool {
    let mut p: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        // Rounded up, so that a wait never ends before the deadline.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: `p` is a valid array of pollfds for the duration of the call.
        let n = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, ms) };
        if n > 0 {
            return true;
        }
        let interrupted = n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted;
        if !interrupted && std::time::Instant::now() >= deadline {
            return false;
        }
        if n < 0 && !interrupted {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_listener_keeps_what_the_server_said() {
        let dir = std::env::temp_dir().join(format!("rzk-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut l = Listener::bind(&dir.join("n.sock")).unwrap();
        assert_eq!(l.env_value(), dir.join("n.sock").as_os_str());
        let tx = UnixDatagram::unbound().unwrap();
        tx.send_to(b"READY=1\nSTATUS=Mode: follower\n", dir.join("n.sock")).unwrap();
        assert!(wait_readable(&[l.fd()], Instant::now() + Duration::from_secs(10)));
        l.drain();
        assert!(l.ready && !l.stopping);
        assert_eq!(l.serving(), Some("follower"));
        tx.send_to(b"STATUS=Mode: looking\n", dir.join("n.sock")).unwrap();
        tx.send_to(b"STOPPING=1\n", dir.join("n.sock")).unwrap();
        l.drain();
        assert_eq!((l.status.as_deref(), l.serving(), l.stopping), (Some("looking"), None, true));
        l.reset();
        assert_eq!((l.ready, l.status.as_deref(), l.stopping), (false, None, false));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_pidfd_becomes_readable_when_the_process_exits() {
        let mut sleeper = std::process::Command::new("cat").stdin(std::process::Stdio::piped()).spawn().unwrap();
        let p = PidFd::open(sleeper.id()).unwrap();
        assert!(!p.exited(), "cat waits for its stdin");
        drop(sleeper.stdin.take());
        assert!(wait_readable(&[p.fd()], Instant::now() + Duration::from_secs(10)));
        assert!(p.exited());
        sleeper.wait().unwrap();
    }
}

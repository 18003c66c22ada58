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

//! One client connection: four-letter words, framing with the jute.maxbuffer limit, and a writer
//! task that batches queued frames into one write.

use super::{four_letter, Outbound, Shared};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// A connection that never sends its ConnectRequest is dropped after this long (Apache's
/// zookeeper.nio.sessionlessCnxnTimeout).
const SESSIONLESS_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(shared: Arc<Shared>, sock: TcpStream, peer: SocketAddr) {
    let (rd, mut wr) = sock.into_split();
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let mut first = [0u8; 4];
    match tokio::time::timeout(SESSIONLESS_TIMEOUT, rd.read_exact(&mut first)).await {
        Ok(Ok(_)) => {}
        _ => return,
    }
    if let Some(cmd) = four_letter::command_code(first) {
        let mut mask = None;
        if four_letter::extra_bytes(cmd) > 0 && four_letter::check_whitelist(cmd, &shared.config).is_ok() {
            let mut b = [0u8; 8];
            if rd.read_exact(&mut b).await.is_err() {
                return;
            }
            mask = Some(i64::from_be_bytes(b));
        }
        let now = shared.now();
        if matches!(cmd, "csnp" | "lgif") {
            let text = match four_letter::check_whitelist(cmd, &shared.config) {
                Err(t) => t,
                Ok(()) if cmd == "csnp" => super::durability::csnp(&shared),
                Ok(()) => super::durability::lgif(&shared),
            };
            let _ = wr.write_all(text.as_bytes()).await;
            let _ = wr.shutdown().await;
            return;
        }
        let text = {
            let mut st = shared.state.lock();
            let st = &mut *st;
            let quorum = st.quorum.as_ref().map(|q| q.info());
            let mut ctx = four_letter::Context {
                engine: &mut st.engine,
                config: &shared.config,
                now,
                start_mono_ms: shared.start_wall_ms() as u64,
                requester: Some(peer),
                listen_port: shared.listen_port,
                trace_mask: &mut st.trace_mask,
                digest_log: &[],
                quorum,
            };
            four_letter::handle(cmd, mask, &mut ctx)
        };
        let _ = wr.write_all(text.as_bytes()).await;
        let _ = wr.shutdown().await;
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Outbound>();
    let Some(conn) = shared.register(peer.ip(), tx) else {
        tracing::warn!("Too many connections from {} - max is {}", peer.ip(), shared.config.max_client_cnxns);
        return;
    };
    shared.state.lock().engine.open(conn, peer, shared.now());

    let writer = tokio::spawn(async move {
        let mut buf = Vec::with_capacity(64 * 1024);
        while let Some(msg) = rx.recv().await {
            let mut close = false;
            let mut next = Some(msg);
            while let Some(m) = next.take() {
                match m {
                    Outbound::Frame(f) => buf.extend_from_slice(&f),
                    Outbound::Close => close = true,
                }
                if !close {
                    next = rx.try_recv().ok();
                }
            }
            if !buf.is_empty() && wr.write_all(&buf).await.is_err() {
                break;
            }
            buf.clear();
            if close {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });

    let max = shared.config.jute_max_buffer as i64;
    let mut len_bytes = first;
    let mut established = false;
    let mut body = Vec::new();
    loop {
        let len = i32::from_be_bytes(len_bytes) as i64;
        if len < 0 || len > max {
            tracing::warn!(
                "Len error. A message from {} with advertised length of {} is either a malformed message or too large to process (length is greater than jute.maxbuffer={})",
                peer, len, max
            );
            break;
        }
        body.resize(len as usize, 0);
        let read = if established {
            rd.read_exact(&mut body).await.map(|_| ())
        } else {
            match tokio::time::timeout(SESSIONLESS_TIMEOUT, rd.read_exact(&mut body)).await {
                Ok(r) => r.map(|_| ()),
                Err(_) => break,
            }
        };
        if read.is_err() {
            break;
        }
        {
            let now = shared.now();
            let mut st = shared.state.lock();
            // An ensemble member serves clients only while its role is established (Apache closes
            // them with "ZooKeeperServer not running").
            if st.quorum.as_ref().is_some_and(|q| !q.serving) {
                tracing::info!("closing a client connection from {peer}: this server is not serving (no established leader)");
                break;
            }
            let out = if established { st.engine.request(conn, &body, now) } else { st.engine.connect(conn, &body, now) };
            let closing = out.iter().any(|o| matches!(o, crate::engine::Output::Close(c) if *c == conn));
            st.dispatch(out);
            if closing {
                break;
            }
        }
        established = true;
        if rd.read_exact(&mut len_bytes).await.is_err() {
            break;
        }
    }
    // Queue a close behind whatever is already queued, then forget the connection.
    {
        let st = shared.state.lock();
        if let Some(tx) = st.outboxes.get(&conn) {
            let _ = tx.send(Outbound::Close);
        }
    }
    shared.unregister(conn, peer.ip());
    let _ = writer.await;
}

//! One client connection: four-letter words, framing with the jute.maxbuffer limit, and a writer
//! task that batches queued frames into one write.

use super::outbox::{Kicks, Outbox};
use super::{four_letter, Shared};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

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
            let mut st = shared.lock();
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
                fsync: Some(shared.fsyncs.lock().clone()),
            };
            four_letter::handle(cmd, mask, &mut ctx)
        };
        let _ = wr.write_all(text.as_bytes()).await;
        let _ = wr.shutdown().await;
        return;
    }
    let outbox = Outbox::new(wr);
    let Some(conn) = shared.register(peer.ip(), outbox.clone()) else {
        tracing::warn!("Too many connections from {} - max is {}", peer.ip(), shared.config.max_client_cnxns);
        return;
    };
    shared.lock().engine.open(conn, peer, shared.now());
    let writer = tokio::spawn(outbox.clone().run_writer());

    let max = shared.config.jute_max_buffer as i64;
    let mut len_bytes = first;
    let mut established = false;
    let mut body = Vec::new();
    // Replies not sent yet: while more requests are already buffered, their replies go out
    // together once the last of them is handled.
    let mut unsent = Kicks::default();
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
            let mut st = shared.lock();
            // An ensemble member serves clients only while its role is established (Apache closes
            // them with "ZooKeeperServer not running").
            if st.quorum.as_ref().is_some_and(|q| !q.serving) {
                tracing::info!("closing a client connection from {peer}: this server is not serving (no established leader)");
                break;
            }
            let out = if established { st.engine.request(conn, &body, now) } else { st.engine.connect(conn, &body, now) };
            let closing = out.iter().any(|o| matches!(o, crate::engine::Output::Close(c) if *c == conn));
            st.inline_ok = !next_frame_buffered(rd.buffer());
            st.dispatch(out);
            st.inline_ok = false;
            unsent.append(st.take_kicks());
            drop(st);
            if closing {
                break;
            }
        }
        if !next_frame_buffered(rd.buffer()) {
            drop(std::mem::take(&mut unsent));
        }
        established = true;
        if rd.read_exact(&mut len_bytes).await.is_err() {
            break;
        }
    }
    // Send what is pending, queue a close behind it, then forget the connection.
    drop(unsent);
    outbox.close();
    shared.unregister(conn, peer.ip());
    let _ = writer.await;
}

/// Whether `buf` starts with a whole frame (length prefix and body).
fn next_frame_buffered(buf: &[u8]) -> bool {
    buf.len() >= 4 && {
        let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        len >= 0 && buf.len() - 4 >= len as usize
    }
}

//! The tokio shell: the only part of rzk that touches sockets and clocks. It frames bytes, hands
//! them to the engine under one lock, and writes the engine's outputs in order.

pub mod admin;
pub mod config;
pub mod connection;
pub mod durability;
pub mod four_letter;
pub mod metrics;
pub mod notify;
pub mod outbox;
pub mod quorum;


use crate::engine::{ConnId, Engine, EngineConfig, Now, Output};
use config::ServerConfig;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use outbox::{Kicks, Outbox};
use tokio::net::TcpListener;

/// The engine and the connections' outboxes under one lock, so that outputs are queued in the
/// order the engine produced them (a notification never overtakes an earlier reply, nor a later
/// reply an earlier notification).
pub struct State {
    pub engine: Engine,
    outboxes: HashMap<ConnId, Arc<Outbox>>,
    per_ip: HashMap<IpAddr, u32>,
    /// The trace mask shown by gtmk/stmk.
    pub trace_mask: i64,
    /// Where proposed txns go to be logged (None: in-memory, the engine applies at once).
    log: Option<durability::LogSender>,
    /// The ensemble side (None when standalone).
    pub quorum: Option<quorum::QuorumState>,
    /// The server itself, for what the quorum shell starts from under the lock.
    shared: std::sync::Weak<Shared>,
    /// Txns to hand to the log thread together (quorum mode), and whether a batch is open.
    log_buf: Vec<durability::LogRecord>,
    log_batching: bool,
    /// Outboxes that got bytes since the lock was taken; kicked when the guard is released.
    kicks: Kicks,
    /// The log core (standalone), and a lone write to log from this thread once the lock is
    /// released (`durability::log_inline`).
    log_core: Option<Arc<Mutex<durability::LogCore>>>,
    inline_log: Option<(parking_lot::ArcMutexGuard<parking_lot::RawMutex, durability::LogCore>, Vec<crate::engine::Proposal>)>,
    /// Set by a connection for a request with no other request behind it in its buffer: only
    /// then may its write be logged inline (a pipelining client must not wait for each fsync
    /// before its next request is even read).
    pub inline_ok: bool,
}

impl State {
    /// Queues the engine's outputs in order and hands proposals on. The bytes are sent when the
    /// state guard is released (see [`StateGuard`]).
    pub fn dispatch(&mut self, outputs: Vec<Output>) {
        if self.quorum.is_some() {
            // Writes first (they were prepared before these outputs were produced); the
            // leader proposes them to the quorum, a learner forwards them to its leader.
            let props = self.engine.take_proposals();
            if !props.is_empty()
                && let Some(shared) = self.shared.upgrade() {
                    quorum::propose(&shared, self, props);
                }
            quorum::forward(self);
            if !self.log_batching {
                self.log_flush();
                quorum::flush_packets(self);
            }
        } else if let Some(log) = &self.log {
            // Proposals are handed to the log thread under the lock, so it sees them in zxid order.
            let props = self.engine.take_proposals();
            // Nothing older in flight (everything before was logged and applied) and the log
            // free: this thread logs them itself once the lock is released. Whatever is proposed
            // meanwhile goes to the log thread, which waits for the core, so the order holds.
            if !props.is_empty()
                && self.inline_ok
                && self.inline_log.is_none()
                && self.engine.outstanding() == props.len()
                && let Some(core) = self.log_core.as_ref().and_then(|c| c.try_lock_arc())
            {
                self.inline_log = Some((core, props));
            } else if let Some((_, pending)) = self.inline_log.as_mut() {
                // Still under the same lock hold: they go with the lone write, after it.
                pending.extend(props);
            } else if !props.is_empty() && log.send(durability::LogMsg::Append(props.into_iter().map(durability::LogRecord::Txn).collect())).is_err() {
                tracing::error!("the txn log thread is gone; exiting");
                std::process::exit(3);
            }
        }
        for o in outputs {
            match o {
                Output::Send(c, f) => {
                    if let Some(ob) = self.outboxes.get(&c) {
                        ob.push(&f);
                        self.kicks.add(ob);
                    }
                }
                Output::Close(c) => {
                    if let Some(ob) = self.outboxes.get(&c) {
                        ob.close();
                    }
                }
            }
        }
    }

    /// A connection's outbox (for queueing its close).
    pub fn outbox(&self, conn: ConnId) -> Option<&Arc<Outbox>> {
        self.outboxes.get(&conn)
    }

    fn log_send(&self, m: durability::LogMsg) {
        if let Some(log) = &self.log
            && log.send(m).is_err() {
                tracing::error!("the txn log thread is gone; exiting");
                std::process::exit(3);
            }
    }

    /// Queues txns for the log thread (quorum mode: its report comes back through
    /// `quorum::logged`); `log_flush` hands them over.
    pub fn log_records(&mut self, recs: impl IntoIterator<Item = durability::LogRecord>) {
        self.log_buf.extend(recs);
    }

    pub fn log_flush(&mut self) {
        if !self.log_buf.is_empty() {
            let b = std::mem::take(&mut self.log_buf);
            self.log_send(durability::LogMsg::Append(b));
        }
    }

    /// Ends the current log file (after a snapshot from the leader replaced the state).
    pub fn log_roll(&mut self) {
        self.log_flush();
        let (tx, rx) = std::sync::mpsc::channel();
        self.log_send(durability::LogMsg::Roll(tx));
        let _ = rx.recv();
    }

    /// Drops every logged txn after `zxid` (TRUNC), waiting until the log thread has done it.
    /// The log thread never takes the state lock in quorum mode, so waiting here is safe.
    pub fn log_truncate(&mut self, zxid: crate::types::Zxid) -> Result<(), String> {
        self.log_flush();
        let (tx, rx) = std::sync::mpsc::channel();
        let generation_ = self.quorum.as_ref().map_or(0, |q| q.log_generation);
        self.log_send(durability::LogMsg::Truncate(zxid.0, generation_, tx));
        rx.recv().map_err(|_| "the txn log thread is gone".to_string())?
    }
}

/// The state lock. Releasing it sends what the outputs queued meanwhile, after the lock is free:
/// a reply never waits for a socket write under the lock, and never for another thread.
pub struct StateGuard<'a> {
    g: Option<parking_lot::MutexGuard<'a, State>>,
}

impl StateGuard<'_> {
    /// Takes the pending sends, for a holder that wants to send later (a connection that has
    /// more requests buffered sends all their replies at once).
    pub fn take_kicks(&mut self) -> Kicks {
        std::mem::take(&mut self.kicks)
    }
}

impl std::ops::Deref for StateGuard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        self.g.as_ref().expect("held")
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.g.as_mut().expect("held")
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        if let Some(mut g) = self.g.take() {
            let kicks = std::mem::take(&mut g.kicks);
            let inline = g.inline_log.take();
            let shared = if inline.is_some() { g.shared.upgrade() } else { None };
            drop(g);
            drop(kicks);
            if let (Some((core, props)), Some(shared)) = (inline, shared) {
                durability::log_inline(&shared, core, props);
            }
        }
    }
}

pub struct Shared {
    /// Taken through [`Shared::lock`].
    state: Mutex<State>,
    pub config: ServerConfig,
    clock_start: Instant,
    start_wall_ms: i64,
    next_conn: AtomicU64,
    /// The bound client port (for `conf`).
    pub listen_port: Option<u16>,
    /// fsync figures for metrics: count, total µs, txns covered.
    pub fsyncs: Mutex<FsyncStats>,
}

/// Log syncs since start: mntr's `fsynctime` and `sync_processor_batch_size` summaries.
#[derive(Default, Clone, Debug)]
pub struct FsyncStats {
    pub count: u64,
    pub total_us: u64,
    pub min_us: u64,
    pub max_us: u64,
    /// Txns covered by the syncs (group commit: several per sync).
    pub txns: u64,
    pub min_batch: u64,
    pub max_batch: u64,
}

impl Shared {
    /// The engine and the outboxes.
    pub fn lock(&self) -> StateGuard<'_> {
        StateGuard { g: Some(self.state.lock()) }
    }

    pub fn try_lock_for(&self, d: std::time::Duration) -> Option<StateGuard<'_>> {
        self.state.try_lock_for(d).map(|g| StateGuard { g: Some(g) })
    }

    /// The tree alone, for the snapshot walk (which produces no output).
    pub fn lock_tree(&self) -> parking_lot::MappedMutexGuard<'_, crate::tree::DataTree> {
        parking_lot::MutexGuard::map(self.state.lock(), |s| &mut s.engine.tree)
    }

    pub fn now(&self) -> Now {
        let wall_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        // Monotonic, but anchored at the start-up wall time so session ids differ across restarts.
        let mono_ms = self.start_wall_ms as u64 + self.clock_start.elapsed().as_millis() as u64;
        Now { mono_ms, wall_ms }
    }

    pub fn record_fsync(&self, took: std::time::Duration, txns: usize) {
        let us = took.as_micros() as u64;
        let txns = txns as u64;
        let mut f = self.fsyncs.lock();
        if f.count == 0 {
            f.min_us = us;
            f.min_batch = txns;
        }
        f.count += 1;
        f.total_us += us;
        f.min_us = f.min_us.min(us);
        f.max_us = f.max_us.max(us);
        f.txns += txns;
        f.min_batch = f.min_batch.min(txns);
        f.max_batch = f.max_batch.max(txns);
    }

    pub fn start_wall_ms(&self) -> i64 {
        self.start_wall_ms
    }

    fn register(&self, ip: IpAddr, tx: Arc<Outbox>) -> Option<ConnId> {
        let mut st = self.lock();
        let n = st.per_ip.entry(ip).or_insert(0);
        let max = self.config.max_client_cnxns;
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        st.outboxes.insert(id, tx);
        Some(id)
    }

    fn unregister(&self, conn: ConnId, ip: IpAddr) {
        let mut st = self.lock();
        st.outboxes.remove(&conn);
        st.engine.disconnect(conn);
        if let Some(n) = st.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                st.per_ip.remove(&ip);
            }
        }
    }
}

pub struct Server {
    pub shared: Arc<Shared>,
    listener: TcpListener,
    /// The AdminServer's listener (admin.rs), when enabled and bound.
    admin_listener: Option<TcpListener>,
    /// The Prometheus `/metrics` listener (metrics.rs), when enabled and bound.
    metrics_listener: Option<TcpListener>,
}

impl Server {
    /// Binds the client port. Fails with a clear message if the port is taken.
    pub async fn bind(mut config: ServerConfig) -> std::io::Result<Server> {
        if config.is_quorum() && config.server_id == 0 {
            config.server_id = quorum::read_myid(&config.data_dir).map_err(std::io::Error::other)?;
        }
        if config.is_quorum() && config.client_port.is_none() {
            // Apache 3.5+: the client address may be given only in this server's line,
            // `server.N=host:q:e[:role];[clientAddr:]clientPort`.
            let me = config.server_id;
            if let Some(q) = config.servers.iter().find(|(n, _)| *n == me).and_then(|(n, v)| quorum::parse_server_line(*n, v).ok()) {
                if let Some(ca) = q.client_addr {
                    let (host, port) = match ca.rsplit_once(':') {
                        Some((h, p)) => (Some(h.trim_start_matches('[').trim_end_matches(']').to_string()), p),
                        None => (None, ca.as_str()),
                    };
                    config.client_port = port.trim().parse().ok();
                    if host.is_some() {
                        config.client_port_address = host;
                    }
                }
            }
        }
        let addr = config.client_listen_addr().ok_or_else(|| std::io::Error::other("clientPort is not set"))?;
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        let start_wall_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let clock_start = Instant::now();
        let now = Now { mono_ms: start_wall_ms as u64, wall_ms: start_wall_ms };
        let mut engine = Engine::new(EngineConfig::from_server_config(&config), now);
        let loaded = durability::load(&config).map_err(std::io::Error::other)?;
        let last_logged = crate::types::Zxid(loaded.tree.last_processed_zxid);
        engine.restore(loaded.tree, &loaded.sessions, now);
        engine.auto_commit = false;
        let quorum = if config.is_quorum() {
            // Until a leader is established the server only answers four-letter words.
            engine.set_role(crate::engine::Role::Learner, now);
            Some(quorum::init(&config, last_logged).map_err(std::io::Error::other)?)
        } else {
            None
        };
        let listen_port = Some(listener.local_addr()?.port());
        let shared = Arc::new_cyclic(|weak| Shared {
            state: Mutex::new(State {
                engine,
                outboxes: HashMap::new(),
                per_ip: HashMap::new(),
                trace_mask: 306,
                log: None,
                quorum,
                shared: weak.clone(),
                log_buf: Vec::new(),
                log_batching: false,
                kicks: Kicks::default(),
                log_core: None,
                inline_log: None,
                inline_ok: false,
            }),
            config,
            clock_start,
            start_wall_ms,
            next_conn: AtomicU64::new(1),
            listen_port,
            fsyncs: Mutex::new(FsyncStats::default()),
        });
        let (log, core) = durability::start(shared.clone()).map_err(std::io::Error::other)?;
        {
            let mut st = shared.lock();
            st.log = Some(log);
            // Ensemble members always log through the log thread (its reports go to the peer).
            if !shared.config.is_quorum() {
                st.log_core = Some(core);
            }
        }
        if shared.config.is_quorum() {
            quorum::start(&shared).map_err(std::io::Error::other)?;
        }
        tracing::info!("binding to port {}", listener.local_addr()?);
        // The HTTP endpoints: a taken admin port only warns (as Apache); a taken metrics port
        // fails only when the Prometheus provider was configured explicitly.
        let admin_listener = admin::bind(&shared.config).await;
        let metrics_listener = metrics::bind(&shared.config).await?;
        Ok(Server { shared, listener, admin_listener, metrics_listener })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Where the AdminServer listens, if it runs.
    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.admin_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Where `/metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let shared = self.shared.clone();
        let ticker = tokio::spawn(tick_loop(shared.clone()));
        let purger = tokio::spawn(durability::purge_loop(shared.clone()));
        let mut http = Vec::new();
        if let Some(l) = self.admin_listener {
            http.push(tokio::spawn(admin::serve(l, shared.clone())));
        }
        if let Some(l) = self.metrics_listener {
            http.push(tokio::spawn(metrics::serve(l, shared.clone())));
        }
        let accept = async {
            loop {
                match self.listener.accept().await {
                    Ok((sock, peer)) => {
                        let _ = sock.set_nodelay(true);
                        let shared = shared.clone();
                        tokio::spawn(async move { connection::serve(shared, sock, peer).await });
                    }
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            }
        };
        if !shared.config.is_quorum() {
            notify::serving("standalone");
        }
        tokio::select! {
            _ = accept => {}
            _ = shutdown => {
                tracing::info!("shutting down");
                notify::stopping();
            }
        }
        ticker.abort();
        purger.abort();
        for h in http {
            h.abort();
        }
    }
}

/// Session expiry and the container reaper run on the engine's clock, checked often enough that
/// a bucket is handled within a small fraction of a tick.
async fn tick_loop(shared: Arc<Shared>) {
    let every = (shared.config.tick_time_ms as u64 / 10).clamp(5, 100);
    let mut iv = tokio::time::interval(std::time::Duration::from_millis(every));
    loop {
        iv.tick().await;
        let now = shared.now();
        let mut st = shared.lock();
        let out = st.engine.tick(now);
        st.dispatch(out);
        if st.quorum.is_some() {
            quorum::tick(&shared, &mut st);
        }
    }
}

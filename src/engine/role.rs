//! The engine as an ensemble member: what a leader does with requests forwarded by learners, what
//! a learner does with the txns its leader commits, and what changes when the role changes. The
//! ZAB layer moves `Forward`s and committed txns between servers; nothing here does I/O.

use super::*;

impl Engine {
    /// Learner: queues a request for the leader and remembers who waits for its txn.
    pub(super) fn forward(&mut self, session: SessionId, cxid: i32, op_type: i32, body: Vec<u8>, auth: Vec<Id>, origin: Origin) {
        self.forwards.push(Forward { session, cxid, op_type, body, auth });
        self.forwarded_origins.entry(session).or_default().push_back((cxid, origin));
    }

    /// Learner: requests to send to the leader as REQUEST packets, in arrival order (the order
    /// the leader must see them in for per-session order to hold).
    pub fn take_forwards(&mut self) -> Vec<Forward> {
        std::mem::take(&mut self.forwards)
    }

    /// Learner: sessions of this server's clients with activity since the last call, with their
    /// timeouts, for the next PING reply to the leader (which alone expires sessions).
    pub fn take_touched(&mut self) -> Vec<(SessionId, i32)> {
        let touched = std::mem::take(&mut self.touched);
        touched.into_iter().filter_map(|sid| self.sessions.get(sid).map(|s| (sid, s.timeout_ms))).collect()
    }

    /// Leader: a request a learner forwarded (Apache's REQUEST packet). It is prepared like a
    /// local one, with the learner's session, cxid and the client's auth ids, and proposed with
    /// no local origin: the learner answers its client when the txn is committed.
    #[allow(clippy::too_many_arguments)]
    pub fn forwarded(&mut self, session: SessionId, cxid: i32, op_type: i32, body: &[u8], auth: Vec<Id>, now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        match OpCode::from_i32(op_type) {
            Some(OpCode::CreateSession) => {
                let Some(timeout) = body.get(..4).map(|b| i32::from_be_bytes(b.try_into().unwrap())) else {
                    tracing::warn!(session = %session, "malformed forwarded createSession; ignoring it");
                    return out;
                };
                // The learner negotiated the timeout; the leader tracks expiry from now on. A
                // retried createSession replaces the entry (and its expiry bucket) rather than
                // leaving a stale bucket behind.
                self.sessions.remove(session);
                self.sessions.add(session, timeout, now.mono_ms);
                tracing::info!(session = %session, timeout, "Established session {} with negotiated timeout {} for a learner's client", session, timeout);
                self.propose(session, cxid, Txn::CreateSession { timeout }, now, Origin::Remote, &mut out);
            }
            Some(OpCode::CloseSession) => {
                let paths = self.session_ephemerals(session);
                self.sessions.set_closing(session);
                self.close_in_view(&paths);
                self.propose(session, cxid, Txn::CloseSession { paths }, now, Origin::Remote, &mut out);
            }
            Some(op) if op.is_write() || op == OpCode::DeleteContainer => {
                let zxid = self.last_prepared_zxid + 1;
                // Apache's PrepRequestProcessor checks the session first: a write for a session
                // that is gone or closing becomes a sessionExpired error txn, which the learner
                // delivers like any failed write.
                let txn = match self.sessions.get(session) {
                    Some(s) if !s.closing => prep_txn(&self.tree, &mut self.pending, &self.cfg, &auth, session, zxid, now, op, body),
                    _ => Txn::Error { err: ErrorCode::SessionExpired.code() },
                };
                self.propose(session, cxid, txn, now, Origin::Remote, &mut out);
            }
            _ => tracing::warn!(session = %session, "ignoring forwarded request of type {}", op_type),
        }
        out
    }

    /// Leader: session activity learners reported in their PING replies. Unknown sessions are
    /// ignored; the reported timeout sets the new deadline, as in Apache's `touchSession`.
    pub fn touch_sessions(&mut self, sessions: &[(SessionId, i32)], now: Now) {
        for &(sid, timeout) in sessions {
            match self.sessions.get(sid) {
                Some(s) if timeout > 0 && s.timeout_ms != timeout && !s.closing => self.sessions.set_timeout(sid, timeout, now.mono_ms),
                Some(_) => {
                    self.sessions.touch(sid, now.mono_ms);
                }
                None => {}
            }
        }
    }

    /// Learner: a txn the leader committed, in zxid order. It is applied and fires watches as on
    /// the leader (notifications before any reply), the session table follows session txns, and
    /// the client of this server that asked for it, if any, gets its answer.
    pub fn apply_committed(&mut self, hdr: &TxnHeader, txn: &Txn, digest: Option<u64>, now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        let r = self.apply_txn(hdr, txn, &mut out);
        if digest.is_some() {
            // The leader's prediction of the tree after this txn (Apache's or ours).
            let p = Proposal { hdr: hdr.clone(), txn: txn.clone(), digest };
            self.check_digest(&p);
        }
        // Zxids handed out after a role change must follow what was applied here.
        self.last_prepared_zxid = self.last_prepared_zxid.max(hdr.zxid);
        let sid = SessionId(hdr.client_id);
        let origin = self.take_forwarded_origin(sid, hdr.cxid, hdr.txn_type);
        match txn {
            // Sessions made by other servers: known here so that their clients can move to this
            // server.
            Txn::CreateSession { timeout } if self.sessions.get(sid).is_none() => {
                self.sessions.add(sid, *timeout, now.mono_ms);
            }
            Txn::CloseSession { .. } => {
                // Nothing more will be answered for this session: its later requests, if any,
                // reach the leader after the close and come back as errors nobody waits for.
                self.forwarded_origins.remove(&sid);
                self.touched.remove(&sid);
                if !matches!(origin, Some(Origin::CloseSession { .. })) {
                    // Expired (or closed through another server): drop the client as an
                    // expiry does.
                    self.session_gone(sid, &mut out);
                }
            }
            _ => {}
        }
        if let Some(origin) = origin {
            self.answer(hdr, origin, r, now, &mut out);
        }
        out
    }

    /// The origin waiting for a committed txn of this session, if it is the next one this server
    /// forwarded for it.
    fn take_forwarded_origin(&mut self, sid: SessionId, cxid: i32, txn_type: i32) -> Option<Origin> {
        let q = self.forwarded_origins.get_mut(&sid)?;
        let (front_cxid, front) = q.front()?;
        if *front_cxid != cxid || !front.expects(txn_type) {
            return None;
        }
        let (_, origin) = q.pop_front()?;
        if q.is_empty() {
            self.forwarded_origins.remove(&sid);
        }
        Some(origin)
    }

    /// Changes the server's role. Call `drop_clients` first when leaving a role (the shell must
    /// write its closes). On becoming leader every session gets a fresh deadline from `now`, as
    /// Apache's leader re-adds all sessions: no client can have reached the ensemble while there
    /// was no leader, so no session may expire for that time.
    pub fn set_role(&mut self, role: Role, now: Now) {
        if role == Role::Leader && self.role != Role::Leader {
            let all: Vec<(SessionId, i32)> = self.sessions.iter().map(|s| (s.id, s.timeout_ms)).collect();
            for (sid, timeout) in all {
                // Removing first also clears a closing flag whose close txn was abandoned.
                self.sessions.remove(sid);
                self.sessions.add(sid, timeout, now.mono_ms);
            }
            self.last_reap_ms = now.mono_ms;
        }
        self.role = role;
    }

    /// Leader: the first zxid of a new epoch is `epoch << 32 | 1`.
    pub fn start_epoch(&mut self, epoch: u32) {
        self.last_prepared_zxid = self.last_prepared_zxid.max((epoch as i64) << 32);
    }

    /// Closes every client connection and forgets every request not yet applied, as Apache does
    /// when a server leaves its role (e.g. for a new election): the next leader decides which
    /// txns survive, and clients retry on reconnect. Sessions and the tree stay.
    pub fn drop_clients(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.disconnect(conn);
            out.push(Output::Close(conn));
        }
        self.in_flight.clear();
        self.proposals.clear();
        self.pending = Pending::default();
        self.last_prepared_zxid = self.last_prepared_zxid.max(self.tree.last_processed_zxid);
        self.forwards.clear();
        self.forwarded_origins.clear();
        self.touched.clear();
        self.pending_syncs.clear();
        for (_, sid, _, _) in std::mem::take(&mut self.pending_revalidations) {
            self.sessions.remove(sid);
        }
        self.revalidations.clear();
        out
    }

    /// Learner: sessions to ask the leader about (REVALIDATE: `long sessionId, int timeout`).
    pub fn take_revalidations(&mut self) -> Vec<(SessionId, i32)> {
        std::mem::take(&mut self.revalidations)
    }

    /// Learner: the leader's REVALIDATE answer. A valid session is taken over by the waiting
    /// connection (ConnectResponse with the session's password); an invalid one gets Apache's
    /// "expired" response (timeout 0, session 0) and the connection is closed.
    pub fn revalidated(&mut self, sid: SessionId, valid: bool, now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(i) = self.pending_revalidations.iter().position(|p| p.1 == sid) else { return out };
        let (conn, _, timeout, ro) = self.pending_revalidations.remove(i).unwrap();
        if !self.conns.contains_key(&conn) {
            if !valid {
                self.sessions.remove(sid);
            }
            return out;
        }
        if !valid {
            tracing::info!(session = %sid, "Invalid session {} for client, probably expired", sid);
            self.sessions.remove(sid);
            self.session_conn.remove(&sid);
            let resp = ConnectResponse { protocol_version: 0, time_out: 0, session_id: 0, passwd: vec![0; 16], read_only: ro };
            self.send_connect_response(&mut out, conn, &resp);
            self.disconnect(conn);
            out.push(Output::Close(conn));
            return out;
        }
        self.touched.insert(sid);
        let passwd = crate::session::session_password(sid).to_vec();
        let resp = ConnectResponse { protocol_version: 0, time_out: timeout, session_id: sid.0, passwd, read_only: ro };
        self.send_connect_response(&mut out, conn, &resp);
        self.write_done(conn, now, &mut out);
        out
    }

    /// Learner: the leader's SYNC arrived; everything it had proposed before the oldest pending
    /// `sync` is applied here, so that sync is answered (and requests behind it may run).
    pub fn sync_done(&mut self, now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        let Some((conn, xid, path)) = self.pending_syncs.pop_front() else { return out };
        if !self.conns.contains_key(&conn) {
            return out;
        }
        let last = self.tree.last_processed_zxid;
        let f = raw_frame(xid, last, &PathRequest { path }.to_bytes());
        self.send(&mut out, conn, f);
        self.write_done(conn, now, &mut out);
        out
    }

    /// Leader: a learner asks whether a session a client reconnects with is still alive
    /// (REVALIDATE); a live one is touched with the client's timeout.
    pub fn revalidate(&mut self, sid: SessionId, timeout: i32, now: Now) -> bool {
        match self.sessions.get(sid) {
            Some(s) if !s.closing => {
                let _ = timeout;
                self.sessions.touch(sid, now.mono_ms);
                true
            }
            _ => false,
        }
    }
}

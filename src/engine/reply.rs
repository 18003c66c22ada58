//! Building frames: every client-bound message is `int32 len` + ReplyHeader + optional record.

use crate::jute::records::{Create2Response, CreateResponse, ErrorResponse, MultiHeader, ReplyHeader, StatResponse, WatcherEvent};
use crate::jute::{Jute, Writer};
use crate::tree::apply::{EventType, TxnResult};

pub fn frame(xid: i32, zxid: i64, err: i32, body: Option<&dyn Fn(&mut Writer)>) -> Vec<u8> {
    let mut w = Writer::with_capacity(64);
    let at = w.begin_frame();
    ReplyHeader { xid, zxid, err }.write(&mut w);
    if err == 0
        && let Some(f) = body {
            f(&mut w);
        }
    w.finish_frame(at);
    w.buf
}

pub fn record_frame<T: Jute>(xid: i32, zxid: i64, rec: &T) -> Vec<u8> {
    frame(xid, zxid, 0, Some(&|w: &mut Writer| rec.write(w)))
}

pub fn raw_frame(xid: i32, zxid: i64, body: &[u8]) -> Vec<u8> {
    frame(xid, zxid, 0, Some(&|w: &mut Writer| w.buf.extend_from_slice(body)))
}

pub fn header_frame(xid: i32, zxid: i64, err: i32) -> Vec<u8> {
    frame(xid, zxid, err, None)
}

/// A watch notification: xid -1, state SyncConnected (3). The header zxid is the txn that fired
/// it (3.9 behaviour; 3.8 sent -1).
pub fn notification(zxid: i64, kind: EventType, path: &str) -> Vec<u8> {
    let ev = WatcherEvent { event_type: kind as i32, state: 3, path: path.to_string() };
    record_frame(-1, zxid, &ev)
}

/// The body of a successful single write, by txn type.
pub fn write_body(r: &TxnResult, w: &mut Writer) {
    use crate::jute::txn::types::*;
    match r.txn_type {
        CREATE => CreateResponse { path: r.path.clone() }.write(w),
        CREATE2 | CREATE_CONTAINER | CREATE_TTL => Create2Response { path: r.path.clone(), stat: r.stat.clone().unwrap_or_default() }.write(w),
        SET_DATA | SET_ACL => StatResponse { stat: r.stat.clone().unwrap_or_default() }.write(w),
        MULTI => multi_body(&r.multi, w),
        _ => {}
    }
}

/// MultiResponse: per op a MultiHeader and its result; create/TTL/container results carry a
/// Stat (type 15) except plain create (type 1); errors are `{-1, false, code}` + ErrorResponse.
pub fn multi_body(results: &[TxnResult], w: &mut Writer) {
    use crate::jute::txn::types::*;
    for r in results {
        match r.txn_type {
            CREATE => {
                MultiHeader { op: CREATE, done: false, err: 0 }.write(w);
                CreateResponse { path: r.path.clone() }.write(w);
            }
            CREATE2 | CREATE_CONTAINER | CREATE_TTL => {
                MultiHeader { op: CREATE2, done: false, err: 0 }.write(w);
                Create2Response { path: r.path.clone(), stat: r.stat.clone().unwrap_or_default() }.write(w);
            }
            DELETE | DELETE_CONTAINER => MultiHeader { op: DELETE, done: false, err: 0 }.write(w),
            SET_DATA => {
                MultiHeader { op: SET_DATA, done: false, err: 0 }.write(w);
                StatResponse { stat: r.stat.clone().unwrap_or_default() }.write(w);
            }
            CHECK => MultiHeader { op: CHECK, done: false, err: 0 }.write(w),
            _ => {
                MultiHeader { op: -1, done: false, err: r.err }.write(w);
                ErrorResponse { err: r.err }.write(w);
            }
        }
    }
    MultiHeader { op: -1, done: true, err: -1 }.write(w);
}

//! multiRead (22): getChildren and getData ops, each succeeding or failing on its own. Watch flags
//! are ignored.

use super::ReadCtx;
use crate::error::ErrorCode;
use crate::jute::records::{GetChildrenResponse, GetDataRequest, GetDataResponse, MultiHeader, PathWatchRequest};
use crate::jute::{Jute, Reader, Writer};

pub fn read(ctx: &mut ReadCtx<'_>, body: &[u8]) -> Result<Vec<u8>, ErrorCode> {
    let mut r = Reader::new(body);
    let m = |_| ErrorCode::MarshallingError;
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read(&mut r).map_err(m)?;
        if h.done {
            break;
        }
        match h.op {
            4 | 8 => ops.push((h.op, PathWatchRequest::read(&mut r).map_err(m)?)),
            _ => return Err(ErrorCode::MarshallingError),
        }
    }
    let mut w = Writer::new();
    for (op, mut req) in ops {
        req.watch = false;
        let res: Result<Vec<u8>, ErrorCode> = if op == 4 {
            super::get_data::read(ctx, &GetDataRequest { path: req.path, watch: false }).map(|r: GetDataResponse| r.to_bytes())
        } else {
            super::get_children::read(ctx, &req).map(|(children, _)| GetChildrenResponse { children }.to_bytes())
        };
        match res {
            Ok(b) => {
                MultiHeader { op, done: false, err: 0 }.write(&mut w);
                w.buf.extend_from_slice(&b);
            }
            Err(e) => {
                MultiHeader { op: -1, done: false, err: e.code() }.write(&mut w);
                w.write_i32(e.code());
            }
        }
    }
    MultiHeader { op: -1, done: true, err: -1 }.write(&mut w);
    Ok(w.buf)
}

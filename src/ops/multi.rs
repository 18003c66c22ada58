//! multi (14): all ops or none, one zxid. A failing op is recorded as an error txn with its code,
//! later ops as RuntimeInconsistency (-2); the reply header's err stays 0.

use super::create::{CreateArgs, CreateKind};
use super::WriteCtx;
use crate::error::ErrorCode;
use crate::jute::records::{CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, MultiHeader, SetDataRequest};
use crate::jute::txn::Txn;
use crate::jute::{Jute, Reader};

pub enum MultiOp {
    Create(CreateKind, CreateArgs),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    /// A create sub-op with TTL flags but no ttl: Apache fails the whole request with a
    /// marshalling error when it reaches this op.
    BrokenTtl,
}

/// Parses a MultiOperationRecord of write ops. Reads mixed in, or anything malformed, is a
/// marshalling error for the whole request.
pub fn parse(body: &[u8]) -> Result<Vec<MultiOp>, ErrorCode> {
    let mut r = Reader::new(body);
    let mut ops = Vec::new();
    let m = |_| ErrorCode::MarshallingError;
    loop {
        let h = MultiHeader::read(&mut r).map_err(m)?;
        if h.done {
            return Ok(ops);
        }
        ops.push(match h.op {
            1 | 15 | 19 => {
                let req = CreateRequest::read(&mut r).map_err(m)?;
                // The node type comes from the flags (as Apache's Op.create); 3.9 keeps create2.
                // TTL flags without a ttl break the whole multi once that op is reached (Apache
                // makes a TTL op around a plain CreateRequest); unknown flags count as
                // persistent here and fail their own checks later.
                let kind = match (h.op, req.flags) {
                    (_, 4) => CreateKind::Container,
                    (_, 5 | 6) => {
                        ops.push(MultiOp::BrokenTtl);
                        continue;
                    }
                    (15, _) => CreateKind::Create2,
                    _ => CreateKind::Create,
                };
                MultiOp::Create(kind, req.into())
            }
            21 => {
                let req = CreateTtlRequest::read(&mut r).map_err(m)?;
                // Apache builds a TTL op only for TTL flags; otherwise a plain create, ttl unused.
                match req.flags {
                    5 | 6 => MultiOp::Create(CreateKind::Ttl, req.into()),
                    4 => MultiOp::Create(CreateKind::Container, CreateArgs { ttl: -1, ..req.into() }),
                    _ => MultiOp::Create(CreateKind::Create, CreateArgs { ttl: -1, ..req.into() }),
                }
            }
            2 => MultiOp::Delete(DeleteRequest::read(&mut r).map_err(m)?),
            5 => MultiOp::SetData(SetDataRequest::read(&mut r).map_err(m)?),
            13 => MultiOp::Check(CheckVersionRequest::read(&mut r).map_err(m)?),
            _ => return Err(ErrorCode::MarshallingError),
        });
    }
}

pub fn prep(ctx: &mut WriteCtx<'_>, body: &[u8]) -> Result<Txn, ErrorCode> {
    let ops = parse(body)?;
    let mut txns = Vec::with_capacity(ops.len());
    let mut failed = false;
    ctx.view.begin_undo();
    for op in ops {
        if failed {
            txns.push(Txn::Error { err: ErrorCode::RuntimeInconsistency.code() });
            continue;
        }
        let res = match op {
            MultiOp::Create(kind, args) => super::create::prep(ctx, kind, args),
            MultiOp::Delete(req) => super::delete::prep(ctx, req),
            MultiOp::SetData(req) => super::set_data::prep(ctx, req),
            MultiOp::Check(req) => super::check::prep(ctx, req),
            MultiOp::BrokenTtl => {
                ctx.view.end_undo(true);
                return Err(ErrorCode::MarshallingError);
            }
        };
        match res {
            Ok(t) => txns.push(t),
            Err(e) => {
                failed = true;
                txns.push(Txn::Error { err: e.code() });
            }
        }
    }
    ctx.view.end_undo(failed);
    Ok(Txn::Multi(txns))
}


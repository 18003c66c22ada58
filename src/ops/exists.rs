//! exists (3). The watch is registered even when the node is missing (it then fires on
//! creation). Only a NUL in the path is rejected; no ACL check.

use super::ReadCtx;
use crate::error::ErrorCode;
use crate::jute::records::{ExistsRequest, StatResponse};
use crate::watch::STANDARD;

pub fn read(ctx: &mut ReadCtx<'_>, req: &ExistsRequest) -> Result<StatResponse, ErrorCode> {
    if req.path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    if req.watch {
        ctx.watches.data.add(&req.path, ctx.watcher, STANDARD);
    }
    let id = ctx.tree.lookup(&req.path).ok_or(ErrorCode::NoNode)?;
    Ok(StatResponse { stat: ctx.tree.stat(id) })
}

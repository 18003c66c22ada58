//! exists (3). The watch is registered even when the node is missing (it then fires on
//! creation). Only a NUL in the path is rejected. An existing node needs READ (3.8.4+/3.9.2+,
//! ZOOKEEPER-2590); a denied caller gets NoAuth and no watch.

use super::ReadCtx;
use crate::error::ErrorCode;
use crate::jute::records::{ExistsRequest, StatResponse};
use crate::tree::acl::perms;
use crate::watch::STANDARD;

pub fn read(ctx: &mut ReadCtx<'_>, req: &ExistsRequest) -> Result<StatResponse, ErrorCode> {
    if req.path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    let id = ctx.tree.lookup(&req.path);
    if let Some(id) = id {
        ctx.auth.check(ctx.tree.acl(id), perms::READ)?;
    }
    if req.watch {
        ctx.watches.data.add(&req.path, ctx.watcher, STANDARD);
    }
    Ok(StatResponse { stat: ctx.tree.stat(id.ok_or(ErrorCode::NoNode)?) })
}

//! getData (4). A missing node or a denied read leaves no watch.

use super::ReadCtx;
use crate::error::ErrorCode;
use crate::jute::records::{GetDataRequest, GetDataResponse};
use crate::tree::acl::perms;
use crate::watch::STANDARD;

pub fn read(ctx: &mut ReadCtx<'_>, req: &GetDataRequest) -> Result<GetDataResponse, ErrorCode> {
    let id = ctx.tree.lookup(&req.path).ok_or(ErrorCode::NoNode)?;
    ctx.auth.check(ctx.tree.acl(id), perms::READ)?;
    if req.watch {
        ctx.watches.data.add(&req.path, ctx.watcher, STANDARD);
    }
    let n = ctx.tree.node(id);
    Ok(GetDataResponse { data: n.data().map(|d| d.to_vec()), stat: ctx.tree.stat(id) })
}

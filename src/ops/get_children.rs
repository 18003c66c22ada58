//! getChildren (8) and getChildren2 (12). Reads one child table; never scans the tree.

use super::ReadCtx;
use crate::error::ErrorCode;
use crate::jute::records::{GetChildrenRequest, Stat};
use crate::tree::acl::perms;
use crate::watch::STANDARD;

pub fn read(ctx: &mut ReadCtx<'_>, req: &GetChildrenRequest) -> Result<(Vec<String>, Stat), ErrorCode> {
    let id = ctx.tree.lookup(&req.path).ok_or(ErrorCode::NoNode)?;
    ctx.auth.check(ctx.tree.acl(id), perms::READ)?;
    if req.watch {
        ctx.watches.child.add(&req.path, ctx.watcher, STANDARD);
    }
    Ok((ctx.tree.child_names(id), ctx.tree.stat(id)))
}

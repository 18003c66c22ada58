//! getAllChildrenNumber (104): all descendants, recursively; needs READ.

use super::ReadCtx;
use crate::error::ErrorCode;
use crate::jute::records::{GetAllChildrenNumberResponse, PathRequest};
use crate::tree::acl::perms;

pub fn read(ctx: &mut ReadCtx<'_>, req: &PathRequest) -> Result<GetAllChildrenNumberResponse, ErrorCode> {
    let id = ctx.tree.lookup(&req.path).ok_or(ErrorCode::NoNode)?;
    ctx.auth.check(ctx.tree.acl(id), perms::READ)?;
    let mut n = ctx.tree.count_descendants(id);
    // Apache counts map keys starting with path + "/": for "" that includes "/" itself.
    if req.path.is_empty() {
        n += 1;
    }
    Ok(GetAllChildrenNumberResponse { total_number: n as i32 })
}

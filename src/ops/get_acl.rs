//! getACL (6): needs READ or ADMIN; without ADMIN, digest ids come back as `user:x`.

use super::ReadCtx;
use crate::error::ErrorCode;
use crate::jute::records::{Acl, GetAclResponse, Id, PathRequest};
use crate::tree::acl::perms;

pub fn read(ctx: &mut ReadCtx<'_>, req: &PathRequest) -> Result<GetAclResponse, ErrorCode> {
    let id = ctx.tree.lookup(&req.path).ok_or(ErrorCode::NoNode)?;
    let acl = ctx.tree.acl(id);
    ctx.auth.check(acl, perms::READ | perms::ADMIN)?;
    let stat = ctx.tree.stat(id);
    if ctx.auth.check(acl, perms::ADMIN).is_ok() {
        return Ok(GetAclResponse { acl: acl.to_vec(), stat });
    }
    let masked = acl
        .iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                let user = a.id.id.split(':').next().unwrap_or("");
                Acl { perms: a.perms, id: Id { scheme: a.id.scheme.clone(), id: format!("{user}:x") } }
            } else {
                a.clone()
            }
        })
        .collect();
    Ok(GetAclResponse { acl: masked, stat })
}

//! setACL (7). Bumps aversion only: no mzxid/mtime change and no watch event.

use super::{check_and_inc_version, validate_path, WriteCtx};
use crate::auth::fixup_acl;
use crate::error::ErrorCode;
use crate::jute::records::SetAclRequest;
use crate::jute::txn::Txn;
use crate::tree::acl::perms;

pub fn prep(ctx: &mut WriteCtx<'_>, req: SetAclRequest) -> Result<Txn, ErrorCode> {
    validate_path(&req.path)?;
    let acl = fixup_acl(ctx.auth.ids, &req.acl)?;
    let mut node = ctx.view.get(&req.path)?;
    ctx.auth.check(&node.acl, perms::ADMIN)?;
    let version = check_and_inc_version(node.stat.aversion, req.version)?;
    node.stat.aversion = version;
    node.acl = acl.clone();
    ctx.view.put(&req.path, Some(node));
    Ok(Txn::SetAcl { path: req.path, acl, version })
}

//! check (13): a version check, used inside multi.

use super::{check_and_inc_version, validate_path, WriteCtx};
use crate::error::ErrorCode;
use crate::jute::records::CheckVersionRequest;
use crate::jute::txn::Txn;
use crate::tree::acl::perms;

pub fn prep(ctx: &mut WriteCtx<'_>, req: CheckVersionRequest) -> Result<Txn, ErrorCode> {
    validate_path(&req.path)?;
    let node = ctx.view.get(&req.path)?;
    ctx.auth.check(&node.acl, perms::READ)?;
    let version = check_and_inc_version(node.stat.version, req.version)?;
    Ok(Txn::Check { path: req.path, version })
}

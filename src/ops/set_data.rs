//! setData (5).

use super::{check_and_inc_version, validate_path, WriteCtx};
use crate::error::ErrorCode;
use crate::jute::records::SetDataRequest;
use crate::jute::txn::Txn;
use crate::tree::acl::perms;

pub fn prep(ctx: &mut WriteCtx<'_>, req: SetDataRequest) -> Result<Txn, ErrorCode> {
    validate_path(&req.path)?;
    let mut node = ctx.view.get(&req.path)?;
    ctx.auth.check(&node.acl, perms::WRITE)?;
    if ctx.cfg.enforce_quota {
        // Apache compares against the committed data length.
        let old = ctx.view.tree.lookup(&req.path).map_or(0, |id| ctx.view.tree.node(id).data_len()) as i64;
        let new = req.data.as_ref().map_or(0, |d| d.len()) as i64;
        ctx.view.tree.check_quota(&req.path, 0, new - old)?;
    }
    let version = check_and_inc_version(node.stat.version, req.version)?;
    node.stat.version = version;
    node.stat.mzxid = ctx.zxid;
    node.stat.mtime = ctx.time;
    node.data = crate::tree::digest::DataSum::of(&req.path, req.data.as_deref().unwrap_or(&[]));
    ctx.view.put(&req.path, Some(node));
    Ok(Txn::SetData { reconfig: false, path: req.path, data: req.data, version })
}

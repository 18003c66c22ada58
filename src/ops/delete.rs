//! delete (2), and the reaper's deleteContainer (20).

use super::{check_and_inc_version, parent_of, WriteCtx};
use crate::error::ErrorCode;
use crate::jute::records::DeleteRequest;
use crate::jute::txn::Txn;
use crate::tree::acl::perms;
use crate::tree::NodeKind;

/// `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config` can never be deleted.
pub fn is_special_path(path: &str) -> bool {
    matches!(path, "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config")
}

/// Apache's getParentPathAndValidate.
fn parent_and_validate(path: &str) -> Result<&str, ErrorCode> {
    if !path.contains('/') || path.contains('\0') || is_special_path(path) {
        return Err(ErrorCode::BadArguments);
    }
    Ok(parent_of(path))
}

pub fn prep(ctx: &mut WriteCtx<'_>, req: DeleteRequest) -> Result<Txn, ErrorCode> {
    let parent_path = parent_and_validate(&req.path)?;
    let parent = ctx.view.get(parent_path)?;
    ctx.auth.check(&parent.acl, perms::DELETE)?;
    let node = ctx.view.get(&req.path)?;
    check_and_inc_version(node.stat.version, req.version)?;
    if node.num_children > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    remove_from_view(ctx, parent_path, &req.path);
    Ok(Txn::Delete { container: false, path: req.path })
}

/// The container/TTL reaper's delete: refused if the node gained children or became a normal
/// ephemeral since it was chosen.
pub fn prep_container(ctx: &mut WriteCtx<'_>, path: String) -> Result<Txn, ErrorCode> {
    let parent_path = parent_and_validate(&path)?;
    let node = ctx.view.get(&path)?;
    if node.num_children > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    if let NodeKind::Ephemeral(_) = node.stat.kind(ctx.cfg.extended_types) {
        return Err(ErrorCode::BadVersion);
    }
    ctx.view.get(parent_path)?;
    remove_from_view(ctx, parent_path, &path);
    Ok(Txn::Delete { container: true, path })
}

fn remove_from_view(ctx: &mut WriteCtx<'_>, parent_path: &str, path: &str) {
    if let Ok(mut p) = ctx.view.get(parent_path) {
        p.num_children -= 1;
        p.stat.pzxid = ctx.zxid;
        ctx.view.put(parent_path, Some(p));
    }
    ctx.view.put(path, None);
}

/// closeSession's delete of an ephemeral, in the pending view: the node goes and its parent's
/// pzxid moves to the txn's zxid, as applying the txn will do. A node already gone is skipped.
pub fn remove_for_close(view: &mut super::PendingView<'_>, zxid: i64, path: &str) {
    if view.get(path).is_err() {
        return;
    }
    let parent_path = parent_of(path);
    if let Ok(mut p) = view.get(parent_path) {
        p.num_children -= 1;
        if zxid > p.stat.pzxid {
            p.stat.pzxid = zxid;
        }
        view.put(parent_path, Some(p));
    }
    view.put(path, None);
}

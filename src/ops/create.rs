//! create (1), create2 (15), createContainer (19), createTTL (21).

use super::{validate_path, Rec, WriteCtx};
use crate::auth::fixup_acl;
use crate::error::ErrorCode;
use crate::jute::records::{Acl, CreateRequest, CreateTtlRequest};
use crate::jute::txn::Txn;
use crate::tree::acl::perms;
use crate::tree::{NodeKind, NodeStat};
use crate::types::{CONTAINER_EPHEMERAL_OWNER, MAX_TTL, TTL_MASK};

/// CreateMode flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateMode {
    pub ephemeral: bool,
    pub sequential: bool,
    pub container: bool,
    pub ttl: bool,
}

impl CreateMode {
    pub fn from_flag(flags: i32) -> Result<CreateMode, ErrorCode> {
        let m = |ephemeral, sequential, container, ttl| Ok(CreateMode { ephemeral, sequential, container, ttl });
        match flags {
            0 => m(false, false, false, false),
            1 => m(true, false, false, false),
            2 => m(false, true, false, false),
            3 => m(true, true, false, false),
            4 => m(false, false, true, false),
            5 => m(false, false, false, true),
            6 => m(false, true, false, true),
            _ => Err(ErrorCode::BadArguments),
        }
    }
}

/// Which opcode the create came in as; it decides the txn type and the reply shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateKind {
    Create,
    Create2,
    Container,
    Ttl,
}

pub struct CreateArgs {
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub acl: Vec<Acl>,
    pub flags: i32,
    pub ttl: i64,
}

impl From<CreateRequest> for CreateArgs {
    fn from(r: CreateRequest) -> Self {
        CreateArgs { path: r.path, data: r.data, acl: r.acl, flags: r.flags, ttl: -1 }
    }
}
impl From<CreateTtlRequest> for CreateArgs {
    fn from(r: CreateTtlRequest) -> Self {
        CreateArgs { path: r.path, data: r.data, acl: r.acl, flags: r.flags, ttl: r.ttl }
    }
}

/// Apache's order of checks (reference §2.2).
pub fn prep(ctx: &mut WriteCtx<'_>, kind: CreateKind, req: CreateArgs) -> Result<Txn, ErrorCode> {
    let mode = CreateMode::from_flag(req.flags)?;
    // createTTL with a non-TTL mode: Apache rejects a ttl ≥ 0 and crashes on a negative one;
    // rzk rejects both.
    if kind == CreateKind::Ttl && !mode.ttl {
        return Err(ErrorCode::BadArguments);
    }
    if mode.ttl && !ctx.cfg.extended_types {
        return Err(ErrorCode::Unimplemented);
    }
    // EphemeralType.validateTTL: TTL modes need 0 < ttl <= max; other modes must not carry one.
    if mode.ttl {
        if req.ttl <= 0 || req.ttl > MAX_TTL {
            return Err(ErrorCode::BadArguments);
        }
    } else if req.ttl >= 0 {
        return Err(ErrorCode::BadArguments);
    }
    let last_slash = req.path.rfind('/').ok_or(ErrorCode::BadArguments)?;
    if req.path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    let parent_path = &req.path[..last_slash];
    let acl = fixup_acl(ctx.auth.ids, &req.acl)?;
    let parent = ctx.view.get(parent_path)?;
    ctx.auth.check(&parent.acl, perms::CREATE)?;
    let mut path = req.path.clone();
    if mode.sequential {
        path.push_str(&format_sequence(parent.stat.cversion));
    }
    validate_path(&path)?;
    if ctx.view.get(&path).is_ok() {
        return Err(ErrorCode::NodeExists);
    }
    if let NodeKind::Ephemeral(_) = parent.stat.kind(ctx.cfg.extended_types) {
        return Err(ErrorCode::NoChildrenForEphemerals);
    }
    let new_cversion = parent.stat.cversion + 1;
    
    if ctx.cfg.enforce_quota {
        ctx.view.tree.check_quota(&path, 1, req.data.as_ref().map_or(0, |d| d.len()) as i64)?;
    }
    let txn = match kind {
        CreateKind::Container => Txn::CreateContainer { path: path.clone(), data: req.data, acl: acl.clone(), parent_cversion: new_cversion },
        CreateKind::Ttl => Txn::CreateTtl { path: path.clone(), data: req.data, acl: acl.clone(), parent_cversion: new_cversion, ttl: req.ttl },
        CreateKind::Create | CreateKind::Create2 => Txn::Create {
            create2: kind == CreateKind::Create2,
            path: path.clone(),
            data: req.data,
            acl: acl.clone(),
            ephemeral: mode.ephemeral,
            parent_cversion: new_cversion,
        },
    };
    // The pending view sees the node with the owner the *txn* will give it: a container flag sent
    // with plain create makes a persistent node, as in Apache.
    let owner = match &txn {
        Txn::CreateContainer { .. } => CONTAINER_EPHEMERAL_OWNER,
        Txn::CreateTtl { ttl, .. } => TTL_MASK | ttl,
        Txn::Create { ephemeral: true, .. } => ctx.session.0,
        _ => 0,
    };
    let mut p = parent;
    p.num_children += 1;
    p.stat.cversion = new_cversion;
    p.stat.pzxid = ctx.zxid;
    ctx.view.put(parent_path, Some(p));
    let stat = NodeStat { czxid: ctx.zxid, mzxid: ctx.zxid, ctime: ctx.time, mtime: ctx.time, pzxid: ctx.zxid, ephemeral_owner: owner, ..Default::default() };
    let data_sum = crate::tree::digest::DataSum::of(&path, txn_data(&txn));
    ctx.view.put(&path, Some(Rec { stat, num_children: 0, acl, data: data_sum }));
    Ok(txn)
}

/// `%010d` of the parent's stored cversion (Java's formatting of negatives: `-000000001`).
pub fn format_sequence(n: i32) -> String {
    if n < 0 { format!("-{:09}", -(n as i64)) } else { format!("{n:010}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sequence_suffix_is_ten_digits() {
        assert_eq!(format_sequence(0), "0000000000");
        assert_eq!(format_sequence(2), "0000000002");
        assert_eq!(format_sequence(-1), "-000000001");
    }
}

/// The data a create txn gives its node.
fn txn_data(txn: &Txn) -> &[u8] {
    match txn {
        Txn::Create { data, .. } | Txn::CreateContainer { data, .. } | Txn::CreateTtl { data, .. } => data.as_deref().unwrap_or(&[]),
        _ => &[],
    }
}

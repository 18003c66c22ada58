//! getEphemerals (103): this session's ephemerals, all of them for a null/empty/"/" prefix,
//! otherwise a plain string-prefix match.

use super::ReadCtx;
use crate::jute::records::{GetEphemeralsRequest, GetEphemeralsResponse};

pub fn read(ctx: &mut ReadCtx<'_>, req: &GetEphemeralsRequest) -> GetEphemeralsResponse {
    let all = ctx.tree.ephemerals_of(ctx.session);
    let prefix = req.prefix_path.as_deref().map(str::trim).unwrap_or("");
    let ephemerals = if prefix.is_empty() || prefix == "/" {
        all
    } else {
        let raw = req.prefix_path.as_deref().unwrap_or("");
        all.into_iter().filter(|p| p.starts_with(raw)).collect()
    };
    GetEphemeralsResponse { ephemerals }
}

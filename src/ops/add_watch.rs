//! addWatch (106): persistent (mode 0) or persistent-recursive (mode 1). No existence or ACL
//! check; the reply body is ErrorResponse{0}.

use super::ReadCtx;
use crate::error::ErrorCode;
use crate::jute::records::AddWatchRequest;

pub fn apply(ctx: &mut ReadCtx<'_>, req: &AddWatchRequest) -> Result<(), ErrorCode> {
    match req.mode {
        0 => ctx.watches.add_persistent(&req.path, ctx.watcher, false),
        1 => ctx.watches.add_persistent(&req.path, ctx.watcher, true),
        _ => return Err(ErrorCode::MarshallingError),
    }
    Ok(())
}

//! reconfig (16). Without reconfigEnabled it fails as Apache's does (ReconfigDisabled), and a
//! standalone server cannot reconfigure at all (Unimplemented).

use super::WriteCtx;
use crate::error::ErrorCode;
use crate::jute::records::ReconfigRequest;
use crate::jute::txn::Txn;

pub fn prep(ctx: &mut WriteCtx<'_>, _req: ReconfigRequest) -> Result<Txn, ErrorCode> {
    if !ctx.cfg.reconfig_enabled {
        return Err(ErrorCode::ReconfigDisabled);
    }
    Err(ErrorCode::Unimplemented)
}

//! checkWatches (17) and removeWatches (18). Types: 1 children, 2 data, 3 any; 3.9 adds 4
//! persistent and 5 persistent-recursive. NoWatcher (-121) when nothing matches. The server sends
//! no event; the client library makes its own.

use super::ReadCtx;
use crate::error::ErrorCode;
use crate::jute::records::PathTypeRequest;
use crate::watch::{PERSISTENT, PERSISTENT_RECURSIVE, STANDARD};

const ALL: u8 = STANDARD | PERSISTENT | PERSISTENT_RECURSIVE;

/// (child-table modes, data-table modes) a watcher type covers.
fn modes(watch_type: i32) -> Result<(u8, u8), ErrorCode> {
    Ok(match watch_type {
        1 => (STANDARD, 0),
        2 => (0, STANDARD),
        3 => (ALL, ALL),
        4 => (PERSISTENT, PERSISTENT),
        5 => (0, PERSISTENT_RECURSIVE),
        // Apache fails to map the type while decoding: a marshalling error.
        _ => return Err(ErrorCode::MarshallingError),
    })
}

pub fn check(ctx: &mut ReadCtx<'_>, req: &PathTypeRequest) -> Result<(), ErrorCode> {
    let (c, d) = modes(req.watch_type)?;
    let found = ctx.watches.child.modes(&req.path, ctx.watcher) & c != 0 || ctx.watches.data.modes(&req.path, ctx.watcher) & d != 0;
    if found { Ok(()) } else { Err(ErrorCode::NoWatcher) }
}

pub fn remove(ctx: &mut ReadCtx<'_>, req: &PathTypeRequest) -> Result<(), ErrorCode> {
    let (c, d) = modes(req.watch_type)?;
    let a = ctx.watches.child.remove(&req.path, ctx.watcher, c);
    let b = ctx.watches.data.remove(&req.path, ctx.watcher, d);
    if a || b { Ok(()) } else { Err(ErrorCode::NoWatcher) }
}

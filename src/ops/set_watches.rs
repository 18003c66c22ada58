//! setWatches (101) / setWatches2 (105): re-registers a reconnecting client's watches, first
//! firing the events it missed relative to `relativeZxid`.

use super::ReadCtx;
use crate::jute::records::SetWatches2;
use crate::tree::apply::EventType;
use crate::watch::STANDARD;

/// Returns the catch-up events (kind, path) to send before the reply.
pub fn apply(ctx: &mut ReadCtx<'_>, req: &SetWatches2) -> Vec<(EventType, String)> {
    let rel = req.relative_zxid;
    let mut events = Vec::new();
    for p in &req.data_watches {
        match ctx.tree.lookup(p) {
            None => events.push((EventType::NodeDeleted, p.clone())),
            Some(id) if ctx.tree.node(id).stat.mzxid > rel => events.push((EventType::NodeDataChanged, p.clone())),
            Some(_) => ctx.watches.data.add(p, ctx.watcher, STANDARD),
        }
    }
    for p in &req.exist_watches {
        match ctx.tree.lookup(p) {
            Some(_) => events.push((EventType::NodeCreated, p.clone())),
            None => ctx.watches.data.add(p, ctx.watcher, STANDARD),
        }
    }
    for p in &req.child_watches {
        match ctx.tree.lookup(p) {
            None => events.push((EventType::NodeDeleted, p.clone())),
            Some(id) if ctx.tree.node(id).stat.pzxid > rel => events.push((EventType::NodeChildrenChanged, p.clone())),
            Some(_) => ctx.watches.child.add(p, ctx.watcher, STANDARD),
        }
    }
    for p in &req.persistent_watches {
        ctx.watches.add_persistent(p, ctx.watcher, false);
    }
    for p in &req.persistent_recursive_watches {
        ctx.watches.add_persistent(p, ctx.watcher, true);
    }
    events
}

//! sync (9). A standalone server is always in sync: the path is echoed back.

use crate::jute::records::PathRequest;

pub fn read(req: PathRequest) -> PathRequest {
    req
}

//! whoAmI (107): the connection's auth ids, in Apache's set order; for digest the user is the
//! part before ':'.

use crate::jute::records::{ClientInfo, Id, WhoAmIResponse};

pub fn read(ids: &[Id]) -> WhoAmIResponse {
    let client_info = crate::auth::apache_auth_order(ids)
        .into_iter()
        .map(|id| {
            let user = if id.scheme == "digest" { id.id.split(':').next().unwrap_or("").to_string() } else { id.id.clone() };
            ClientInfo { auth_scheme: id.scheme.clone(), user }
        })
        .collect();
    WhoAmIResponse { client_info }
}

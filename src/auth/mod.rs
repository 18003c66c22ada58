//! ACL schemes (world, auth, digest, ip, super) and the permission check.

use crate::error::ErrorCode;
use crate::jute::records::{Acl, Id};
use base64::Engine as _;
use sha1::{Digest, Sha1};
use std::net::IpAddr;

/// `user:BASE64(SHA1("user:password"))`.
pub fn generate_digest(id_password: &str) -> String {
    let user = id_password.split(':').next().unwrap_or("");
    let hash = Sha1::digest(id_password.as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

/// Java's String.hashCode over UTF-16 code units.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(u as i32))
}

/// The jute-generated Id.hashCode.
fn java_id_hash(id: &Id) -> i32 {
    let r = 37i32.wrapping_mul(17).wrapping_add(java_string_hash(&id.scheme));
    37i32.wrapping_mul(r).wrapping_add(java_string_hash(&id.id))
}

/// The order in which Apache iterates a connection's auth ids: they live in a set backed by a
/// ConcurrentHashMap (16 bins until it holds more than 12), so iteration goes by bin
/// (`(h ^ h>>>16) & (n-1)`) and, within a bin, by insertion. whoAmI and the `auth` ACL scheme's
/// expansion both expose this order. `ids` must be in insertion order.
pub fn apache_auth_order(ids: &[Id]) -> Vec<&Id> {
    let mut n = 16usize;
    while ids.len() > n * 3 / 4 {
        n *= 2;
    }
    let bin = |id: &Id| {
        let h = java_id_hash(id);
        ((h ^ ((h as u32) >> 16) as i32) & 0x7fff_ffff) as usize & (n - 1)
    };
    let mut v: Vec<&Id> = ids.iter().collect();
    v.sort_by_key(|id| bin(id));
    v
}

/// What an ACL check needs to know about the caller.
pub struct AuthContext<'a> {
    pub ids: &'a [Id],
    pub skip_acl: bool,
}

impl AuthContext<'_> {
    pub fn is_super(&self) -> bool {
        self.ids.iter().any(|i| i.scheme == "super")
    }

    /// Apache's checkACL: an empty list allows everything; `super` skips; an entry grants when
    /// its perms intersect and its id is world:anyone or matches one of the caller's ids.
    pub fn check(&self, acl: &[Acl], perm: i32) -> Result<(), ErrorCode> {
        if self.skip_acl || acl.is_empty() || self.is_super() {
            return Ok(());
        }
        for a in acl {
            if a.perms & perm == 0 {
                continue;
            }
            if a.id.scheme == "world" && a.id.id == "anyone" {
                return Ok(());
            }
            for mine in self.ids {
                if mine.scheme == a.id.scheme && matches(&a.id.scheme, &mine.id, &a.id.id) {
                    return Ok(());
                }
            }
        }
        Err(ErrorCode::NoAuth)
    }
}

fn matches(scheme: &str, mine: &str, acl_id: &str) -> bool {
    match scheme {
        "ip" => ip_matches(mine, acl_id),
        "digest" | "sasl" | "x509" => mine == acl_id,
        _ => false,
    }
}

fn parse_ip_acl(acl_id: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match acl_id.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u32>().ok()?)),
        None => (acl_id, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    if bits > max {
        return None;
    }
    Some((ip, bits))
}

fn ip_matches(client: &str, acl_id: &str) -> bool {
    let Some((net, bits)) = parse_ip_acl(acl_id) else { return false };
    let Ok(ip) = client.parse::<IpAddr>() else { return false };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            (u32::from(a) & mask) == (u32::from(b) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            (u128::from(a) & mask) == (u128::from(b) & mask)
        }
        _ => false,
    }
}

/// Whether an ACL id is well-formed for its scheme (AuthenticationProvider.isValid).
fn is_valid(scheme: &str, id: &str) -> bool {
    match scheme {
        "digest" => id.split(':').count() == 2,
        "ip" => parse_ip_acl(id).is_some(),
        _ => false,
    }
}

/// Schemes whose ids count as "authenticated" for the `auth` scheme (everything but ip/world).
fn is_authenticated(scheme: &str) -> bool {
    matches!(scheme, "digest" | "sasl" | "x509")
}

/// Apache's fixupACL: removes duplicates, expands `auth`, rejects malformed entries (InvalidACL).
pub fn fixup_acl(caller: &[Id], acl: &[Acl]) -> Result<Vec<Acl>, ErrorCode> {
    let mut uniq: Vec<&Acl> = Vec::new();
    for a in acl {
        if !uniq.contains(&a) {
            uniq.push(a);
        }
    }
    if uniq.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::new();
    for a in uniq {
        if a.id.scheme == "world" && a.id.id == "anyone" {
            out.push(a.clone());
        } else if a.id.scheme == "auth" {
            let mut any = false;
            for cid in apache_auth_order(caller) {
                if is_authenticated(&cid.scheme) {
                    any = true;
                    out.push(Acl { perms: a.perms, id: cid.clone() });
                }
            }
            if !any {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if is_valid(&a.id.scheme, &a.id.id) {
            out.push(a.clone());
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl { perms, id: Id { scheme: scheme.into(), id: id.into() } }
    }

    #[test]
    fn digest_matches_apache() {
        assert_eq!(generate_digest("bob:secret"), "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=");
    }

    #[test]
    fn checks_follow_apache_rules() {
        let bob = [Id { scheme: "digest".into(), id: generate_digest("bob:secret") }, Id { scheme: "ip".into(), id: "127.0.0.1".into() }];
        let ctx = AuthContext { ids: &bob, skip_acl: false };
        assert!(ctx.check(&[], 31).is_ok());
        assert!(ctx.check(&[acl(1, "digest", "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=")], 1).is_ok());
        assert_eq!(ctx.check(&[acl(1, "digest", "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=")], 2), Err(ErrorCode::NoAuth));
        assert!(ctx.check(&[acl(2, "ip", "127.0.0.0/8")], 2).is_ok());
        assert_eq!(ctx.check(&[acl(2, "ip", "10.0.0.0/8")], 2), Err(ErrorCode::NoAuth));
        let sup = [Id { scheme: "super".into(), id: "".into() }];
        assert!(AuthContext { ids: &sup, skip_acl: false }.check(&[acl(1, "digest", "x:y")], 16).is_ok());
    }

    #[test]
    fn fixup_expands_auth_and_rejects_bad_ids() {
        let bob = [Id { scheme: "ip".into(), id: "127.0.0.1".into() }, Id { scheme: "digest".into(), id: "bob:h".into() }];
        assert_eq!(fixup_acl(&bob, &[acl(31, "auth", "")]).unwrap(), vec![acl(31, "digest", "bob:h")]);
        assert_eq!(fixup_acl(&bob[..1], &[acl(31, "auth", "")]), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup_acl(&bob, &[]), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup_acl(&bob, &[acl(31, "digest", "nocolon")]), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup_acl(&bob, &[acl(31, "world", "someone")]), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup_acl(&bob, &[acl(31, "foo", "x")]), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup_acl(&bob, &[acl(1, "ip", "1.2.3.4/8"), acl(1, "ip", "1.2.3.4/8")]).unwrap().len(), 1);
    }
}

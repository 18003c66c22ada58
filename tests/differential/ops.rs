//! The requests the differential stream sends: how each is encoded, described and how its reply
//! body is decoded and normalised.

use crate::client::{AUTH_XID, PING_XID, SET_WATCHES_XID};
use crate::norm::Norm;
use rzk::jute::records::*;
use rzk::jute::{Jute, Reader, Writer};

/// A sub-operation of multi (14) or multiRead (22).
#[derive(Clone, Debug)]
pub enum Sub {
    /// op 1, 15 or 19 (CreateRequest), or 21 (CreateTtlRequest when `ttl` is Some).
    Create { op: i32, path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, flags: i32, ttl: Option<i64> },
    Delete { path: String, version: i32 },
    SetData { path: String, data: Option<Vec<u8>>, version: i32 },
    Check { path: String, version: i32 },
    GetChildren { path: String },
    GetData { path: String },
}

#[derive(Clone, Debug)]
pub enum Req {
    Create { op: i32, path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, flags: i32, ttl: Option<i64> },
    Delete { path: String, version: i32 },
    Exists { path: String, watch: bool },
    GetData { path: String, watch: bool },
    SetData { path: String, data: Option<Vec<u8>>, version: i32 },
    GetAcl { path: String },
    SetAcl { path: String, acl: Vec<Acl>, version: i32 },
    GetChildren { path: String, watch: bool },
    GetChildren2 { path: String, watch: bool },
    Sync { path: String },
    Ping,
    Check { path: String, version: i32 },
    Multi(Vec<Sub>),
    MultiRead(Vec<Sub>),
    Reconfig { joining: Option<String>, leaving: Option<String>, members: Option<String>, config_id: i64 },
    CheckWatches { path: String, kind: i32 },
    RemoveWatches { path: String, kind: i32 },
    Auth { scheme: String, auth: Vec<u8> },
    SetWatches(SetWatches),
    SetWatches2(SetWatches2),
    Sasl { token: Vec<u8> },
    GetEphemerals { prefix: Option<String> },
    GetAllChildrenNumber { path: String },
    AddWatch { path: String, mode: i32 },
    WhoAmI,
    CloseSession,
    /// Any opcode with an arbitrary body (unknown opcodes).
    Raw { op: i32, body: Vec<u8> },
}

fn w_create(w: &mut Writer, path: &str, data: &Option<Vec<u8>>, acl: &[Acl], flags: i32, ttl: Option<i64>) {
    match ttl {
        Some(ttl) => CreateTtlRequest { path: path.into(), data: data.clone(), acl: acl.to_vec(), flags, ttl }.write(w),
        None => CreateRequest { path: path.into(), data: data.clone(), acl: acl.to_vec(), flags }.write(w),
    }
}

impl Sub {
    pub fn op(&self) -> i32 {
        match self {
            Sub::Create { op, .. } => *op,
            Sub::Delete { .. } => 2,
            Sub::SetData { .. } => 5,
            Sub::Check { .. } => 13,
            Sub::GetChildren { .. } => 8,
            Sub::GetData { .. } => 4,
        }
    }
    fn write(&self, w: &mut Writer) {
        match self {
            Sub::Create { path, data, acl, flags, ttl, .. } => w_create(w, path, data, acl, *flags, *ttl),
            Sub::Delete { path, version } | Sub::Check { path, version } => {
                PathVersionRequest { path: path.clone(), version: *version }.write(w)
            }
            Sub::SetData { path, data, version } => {
                SetDataRequest { path: path.clone(), data: data.clone(), version: *version }.write(w)
            }
            Sub::GetChildren { path } | Sub::GetData { path } => {
                PathWatchRequest { path: path.clone(), watch: false }.write(w)
            }
        }
    }
    pub fn describe(&self) -> String {
        match self {
            Sub::Create { op, path, data, acl, flags, ttl } => format!(
                "{}({path:?}, {}, {}, flags={flags}{})",
                op_name(*op),
                show_data(data),
                show_acl(acl),
                ttl.map(|t| format!(", ttl={t}")).unwrap_or_default()
            ),
            Sub::Delete { path, version } => format!("delete({path:?}, v={version})"),
            Sub::SetData { path, data, version } => format!("setData({path:?}, {}, v={version})", show_data(data)),
            Sub::Check { path, version } => format!("check({path:?}, v={version})"),
            Sub::GetChildren { path } => format!("getChildren({path:?})"),
            Sub::GetData { path } => format!("getData({path:?})"),
        }
    }
}

impl Req {
    pub fn op(&self) -> i32 {
        match self {
            Req::Create { op, .. } => *op,
            Req::Delete { .. } => 2,
            Req::Exists { .. } => 3,
            Req::GetData { .. } => 4,
            Req::SetData { .. } => 5,
            Req::GetAcl { .. } => 6,
            Req::SetAcl { .. } => 7,
            Req::GetChildren { .. } => 8,
            Req::Sync { .. } => 9,
            Req::Ping => 11,
            Req::GetChildren2 { .. } => 12,
            Req::Check { .. } => 13,
            Req::Multi(_) => 14,
            Req::Reconfig { .. } => 16,
            Req::CheckWatches { .. } => 17,
            Req::RemoveWatches { .. } => 18,
            Req::MultiRead(_) => 22,
            Req::Auth { .. } => 100,
            Req::SetWatches(_) => 101,
            Req::Sasl { .. } => 102,
            Req::GetEphemerals { .. } => 103,
            Req::GetAllChildrenNumber { .. } => 104,
            Req::SetWatches2(_) => 105,
            Req::AddWatch { .. } => 106,
            Req::WhoAmI => 107,
            Req::CloseSession => -11,
            Req::Raw { op, .. } => *op,
        }
    }

    /// The fixed xid of the special requests, or None for a normal (counted) xid.
    pub fn special_xid(&self) -> Option<i32> {
        match self {
            Req::Ping => Some(PING_XID),
            Req::Auth { .. } => Some(AUTH_XID),
            Req::SetWatches(_) | Req::SetWatches2(_) => Some(SET_WATCHES_XID),
            _ => None,
        }
    }

    /// Can this request change the tree (and so fire watches on other sessions)?
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Req::Create { .. }
                | Req::Delete { .. }
                | Req::SetData { .. }
                | Req::SetAcl { .. }
                | Req::Check { .. }
                | Req::Multi(_)
                | Req::Reconfig { .. }
                | Req::CloseSession
        )
    }

    pub fn body(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Req::Create { path, data, acl, flags, ttl, .. } => w_create(&mut w, path, data, acl, *flags, *ttl),
            Req::Delete { path, version } | Req::Check { path, version } => {
                PathVersionRequest { path: path.clone(), version: *version }.write(&mut w)
            }
            Req::Exists { path, watch }
            | Req::GetData { path, watch }
            | Req::GetChildren { path, watch }
            | Req::GetChildren2 { path, watch } => PathWatchRequest { path: path.clone(), watch: *watch }.write(&mut w),
            Req::SetData { path, data, version } => {
                SetDataRequest { path: path.clone(), data: data.clone(), version: *version }.write(&mut w)
            }
            Req::GetAcl { path } | Req::Sync { path } | Req::GetAllChildrenNumber { path } => {
                PathRequest { path: path.clone() }.write(&mut w)
            }
            Req::SetAcl { path, acl, version } => {
                SetAclRequest { path: path.clone(), acl: acl.clone(), version: *version }.write(&mut w)
            }
            Req::Ping | Req::WhoAmI | Req::CloseSession => {}
            Req::Multi(subs) | Req::MultiRead(subs) => {
                for s in subs {
                    MultiHeader { op: s.op(), done: false, err: -1 }.write(&mut w);
                    s.write(&mut w);
                }
                MultiHeader { op: -1, done: true, err: -1 }.write(&mut w);
            }
            Req::Reconfig { joining, leaving, members, config_id } => ReconfigRequest {
                joining_servers: joining.clone(),
                leaving_servers: leaving.clone(),
                new_members: members.clone(),
                cur_config_id: *config_id,
            }
            .write(&mut w),
            Req::CheckWatches { path, kind } | Req::RemoveWatches { path, kind } => {
                PathTypeRequest { path: path.clone(), watch_type: *kind }.write(&mut w)
            }
            Req::Auth { scheme, auth } => {
                AuthPacket { auth_type: 0, scheme: scheme.clone(), auth: Some(auth.clone()) }.write(&mut w)
            }
            Req::SetWatches(s) => s.write(&mut w),
            Req::SetWatches2(s) => s.write(&mut w),
            Req::Sasl { token } => SaslToken { token: Some(token.clone()) }.write(&mut w),
            Req::GetEphemerals { prefix } => GetEphemeralsRequest { prefix_path: prefix.clone() }.write(&mut w),
            Req::AddWatch { path, mode } => AddWatchRequest { path: path.clone(), mode: *mode }.write(&mut w),
            Req::Raw { body, .. } => w.buf.extend_from_slice(body),
        }
        w.into_inner()
    }

    pub fn describe(&self) -> String {
        match self {
            Req::Create { op, path, data, acl, flags, ttl } => format!(
                "{}({path:?}, {}, {}, flags={flags}{})",
                op_name(*op),
                show_data(data),
                show_acl(acl),
                ttl.map(|t| format!(", ttl={t}")).unwrap_or_default()
            ),
            Req::Delete { path, version } => format!("delete({path:?}, v={version})"),
            Req::Exists { path, watch } => format!("exists({path:?}, watch={watch})"),
            Req::GetData { path, watch } => format!("getData({path:?}, watch={watch})"),
            Req::SetData { path, data, version } => format!("setData({path:?}, {}, v={version})", show_data(data)),
            Req::GetAcl { path } => format!("getACL({path:?})"),
            Req::SetAcl { path, acl, version } => format!("setACL({path:?}, {}, v={version})", show_acl(acl)),
            Req::GetChildren { path, watch } => format!("getChildren({path:?}, watch={watch})"),
            Req::GetChildren2 { path, watch } => format!("getChildren2({path:?}, watch={watch})"),
            Req::Sync { path } => format!("sync({path:?})"),
            Req::Ping => "ping".into(),
            Req::Check { path, version } => format!("check({path:?}, v={version}) [top level]"),
            Req::Multi(subs) => format!("multi[{}]", subs.iter().map(Sub::describe).collect::<Vec<_>>().join(", ")),
            Req::MultiRead(subs) => {
                format!("multiRead[{}]", subs.iter().map(Sub::describe).collect::<Vec<_>>().join(", "))
            }
            Req::Reconfig { joining, leaving, members, config_id } => {
                format!("reconfig(join={joining:?}, leave={leaving:?}, members={members:?}, id={config_id})")
            }
            Req::CheckWatches { path, kind } => format!("checkWatches({path:?}, type={kind})"),
            Req::RemoveWatches { path, kind } => format!("removeWatches({path:?}, type={kind})"),
            Req::Auth { scheme, auth } => format!("auth({scheme}, {:?})", String::from_utf8_lossy(auth)),
            Req::SetWatches(s) => format!(
                "setWatches(rel=<last zxid seen>, data={:?}, exist={:?}, child={:?})",
                s.data_watches, s.exist_watches, s.child_watches
            ),
            Req::SetWatches2(s) => format!(
                "setWatches2(rel=<last zxid seen>, data={:?}, exist={:?}, child={:?}, persistent={:?}, recursive={:?})",
                s.data_watches, s.exist_watches, s.child_watches, s.persistent_watches, s.persistent_recursive_watches
            ),
            Req::Sasl { token } => format!("sasl({} bytes)", token.len()),
            Req::GetEphemerals { prefix } => format!("getEphemerals({prefix:?})"),
            Req::GetAllChildrenNumber { path } => format!("getAllChildrenNumber({path:?})"),
            Req::AddWatch { path, mode } => format!("addWatch({path:?}, mode={mode})"),
            Req::WhoAmI => "whoAmI".into(),
            Req::CloseSession => "closeSession".into(),
            Req::Raw { op, body } => format!("raw(op={op}, {} bytes)", body.len()),
        }
    }
}

pub fn op_name(op: i32) -> &'static str {
    match op {
        1 => "create",
        2 => "delete",
        3 => "exists",
        4 => "getData",
        5 => "setData",
        13 => "check",
        15 => "create2",
        19 => "createContainer",
        21 => "createTTL",
        8 => "getChildren",
        _ => "op?",
    }
}

pub fn show_bytes(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b {
        if (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\' {
            s.push(c as char);
        } else {
            s.push_str(&format!("\\x{c:02x}"));
        }
    }
    s.push('"');
    s
}

pub fn show_data(d: &Option<Vec<u8>>) -> String {
    match d {
        None => "null".into(),
        Some(b) if b.len() > 24 => format!("{}...({} bytes)", show_bytes(&b[..16]), b.len()),
        Some(b) => show_bytes(b),
    }
}

pub fn show_acl(acl: &[Acl]) -> String {
    let parts: Vec<String> = acl.iter().map(|a| format!("{}:{}:{}", a.perms, a.id.scheme, a.id.id)).collect();
    format!("[{}]", parts.join(" "))
}

/// Reads a record and insists that it uses exactly the bytes given.
fn exact<T: Jute>(body: &[u8]) -> Option<T> {
    let mut r = Reader::new(body);
    let v = T::read(&mut r).ok()?;
    (r.remaining() == 0).then_some(v)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// What a reply body says, normalised (zxids, times and session ids mapped through `norm`).
/// `created` collects the paths of successful creates (the generator learns sequential names).
pub fn decode_body(req: &Req, err: i32, body: &[u8], norm: &mut Norm, created: &mut Vec<String>) -> String {
    if err != 0 {
        // Error replies carry no body (reference §0.5).
        return if body.is_empty() { String::new() } else { format!("UNEXPECTED BODY {}", crate::client::hex(body)) };
    }
    let undecodable = || format!("UNDECODABLE {}", crate::client::hex(body));
    match req {
        Req::Create { op: 1, .. } => match exact::<CreateResponse>(body) {
            Some(r) => {
                created.push(r.path.clone());
                format!("path={:?}", r.path)
            }
            None => undecodable(),
        },
        Req::Create { .. } => match exact::<Create2Response>(body) {
            Some(r) => {
                created.push(r.path.clone());
                format!("path={:?} stat={}", r.path, norm.stat(&r.stat))
            }
            None => undecodable(),
        },
        Req::Exists { .. } | Req::SetData { .. } | Req::SetAcl { .. } => match exact::<Stat>(body) {
            Some(s) => norm.stat(&s),
            None => undecodable(),
        },
        Req::GetData { .. } | Req::Reconfig { .. } => match exact::<GetDataResponse>(body) {
            Some(r) => format!("data={} stat={}", show_data_full(&r.data), norm.stat(&r.stat)),
            None => undecodable(),
        },
        Req::GetAcl { .. } => match exact::<GetAclResponse>(body) {
            Some(r) => format!("acl={} stat={}", show_acl(&r.acl), norm.stat(&r.stat)),
            None => undecodable(),
        },
        // Apache returns children in hash-set order: compare them sorted.
        Req::GetChildren { .. } => match exact::<GetChildrenResponse>(body) {
            Some(r) => format!("children={:?}", sorted(r.children)),
            None => undecodable(),
        },
        Req::GetChildren2 { .. } => match exact::<GetChildren2Response>(body) {
            Some(r) => format!("children={:?} stat={}", sorted(r.children), norm.stat(&r.stat)),
            None => undecodable(),
        },
        Req::Sync { .. } => match exact::<PathRequest>(body) {
            Some(r) => format!("path={:?}", r.path),
            None => undecodable(),
        },
        Req::GetEphemerals { .. } => match exact::<GetEphemeralsResponse>(body) {
            Some(r) => format!("ephemerals={:?}", sorted(r.ephemerals)),
            None => undecodable(),
        },
        Req::GetAllChildrenNumber { .. } => match exact::<GetAllChildrenNumberResponse>(body) {
            Some(r) => format!("total={}", r.total_number),
            None => undecodable(),
        },
        Req::AddWatch { .. } => match exact::<ErrorResponse>(body) {
            Some(r) => format!("err={}", r.err),
            None => undecodable(),
        },
        Req::WhoAmI => match exact::<WhoAmIResponse>(body) {
            Some(r) => {
                // Compared as-is. Apache keeps a connection's auth ids in a ConcurrentHashMap set,
                // so the order is its bin order (see docs/compatibility.md), not insertion order.
                let v: Vec<String> = r.client_info.iter().map(|c| format!("{}:{}", c.auth_scheme, c.user)).collect();
                format!("clientInfo={v:?}")
            }
            None => undecodable(),
        },
        Req::Sasl { .. } => match exact::<SaslToken>(body) {
            Some(r) => format!("token={}", show_data_full(&r.token)),
            None => undecodable(),
        },
        Req::Multi(subs) | Req::MultiRead(subs) => decode_multi(subs, body, norm, created),
        // Bodies that must be empty; anything else is shown in hex.
        _ => {
            if body.is_empty() {
                String::new()
            } else {
                format!("body={}", crate::client::hex(body))
            }
        }
    }
}

fn show_data_full(d: &Option<Vec<u8>>) -> String {
    match d {
        None => "null".into(),
        Some(b) => show_bytes(b),
    }
}

fn decode_multi(subs: &[Sub], body: &[u8], norm: &mut Norm, created: &mut Vec<String>) -> String {
    let mut r = Reader::new(body);
    let mut out = Vec::new();
    let mut i = 0;
    let mut pending_created = Vec::new();
    loop {
        let Ok(h) = MultiHeader::read(&mut r) else {
            out.push(format!("TRUNCATED at {}", r.position()));
            break;
        };
        if h.done {
            out.push(format!("end(op={},err={})", h.op, h.err));
            break;
        }
        let sub_op = subs.get(i).map(Sub::op);
        i += 1;
        let item = match h.op {
            -1 => match ErrorResponse::read(&mut r) {
                Ok(e) => format!("error(hdr={},body={})", h.err, e.err),
                Err(_) => "error(TRUNCATED)".into(),
            },
            // 3.8 answers a create2 sub-op with a plain create result; 3.9 (ZOOKEEPER-4026) with
            // path + Stat. Normalise exactly that: for a create2 sub-op keep the path only.
            1 | 15 if sub_op == Some(15) => {
                let path = if h.op == 1 {
                    CreateResponse::read(&mut r).map(|c| c.path)
                } else {
                    Create2Response::read(&mut r).map(|c| c.path)
                };
                match path {
                    Ok(p) => {
                        pending_created.push(p.clone());
                        format!("create2-result({p:?}) [create vs create2 result form normalised]")
                    }
                    Err(_) => "create2-result(TRUNCATED)".into(),
                }
            }
            1 => match CreateResponse::read(&mut r) {
                Ok(c) => {
                    pending_created.push(c.path.clone());
                    format!("create({:?})", c.path)
                }
                Err(_) => "create(TRUNCATED)".into(),
            },
            15 => match Create2Response::read(&mut r) {
                Ok(c) => {
                    pending_created.push(c.path.clone());
                    format!("create2({:?}, {})", c.path, norm.stat(&c.stat))
                }
                Err(_) => "create2(TRUNCATED)".into(),
            },
            2 => "delete".into(),
            13 => "check".into(),
            5 => match Stat::read(&mut r) {
                Ok(s) => format!("setData({})", norm.stat(&s)),
                Err(_) => "setData(TRUNCATED)".into(),
            },
            8 => match GetChildrenResponse::read(&mut r) {
                Ok(c) => format!("children({:?})", sorted(c.children)),
                Err(_) => "children(TRUNCATED)".into(),
            },
            4 => match GetDataResponse::read(&mut r) {
                Ok(d) => format!("data({}, {})", show_data_full(&d.data), norm.stat(&d.stat)),
                Err(_) => "data(TRUNCATED)".into(),
            },
            other => format!("UNKNOWN-RESULT-TYPE({other}, err={})", h.err),
        };
        let item = if h.op != -1 && h.err != 0 { format!("{item}[hdr err={}]", h.err) } else { item };
        out.push(item);
        if out.len() > 1000 {
            break;
        }
    }
    if r.remaining() > 0 {
        out.push(format!("TRAILING {}", crate::client::hex(r.rest())));
    }
    // A multi either applies all of its creates or none of them.
    created.extend(pending_created);
    format!("[{}]", out.join(", "))
}

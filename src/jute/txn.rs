//! Transactions: what a write becomes once it has passed its checks. The same values are applied
//! to the tree live, written to the txn log, and replayed on restore, so they carry everything the
//! apply step needs (e.g. the parent's new cversion), never a reference to request state.

use super::records::Acl;
use super::{Jute, JuteError, Reader, Result, Writer};
use crate::jute_record;

jute_record!(TxnHeader { client_id: i64, cxid: i32, zxid: i64, time: i64, txn_type: i32 });

/// Txn type numbers as written in TxnHeader.type and in MultiTxn entries.
pub mod types {
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const SET_DATA: i32 = 5;
    pub const SET_ACL: i32 = 7;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Txn {
    /// Types 1 and 15 (CreateTxn). `ephemeral` is the legacy flag; the owner comes from the header.
    Create { create2: bool, path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, ephemeral: bool, parent_cversion: i32 },
    CreateContainer { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, parent_cversion: i32 },
    CreateTtl { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, parent_cversion: i32, ttl: i64 },
    /// Types 2 and 20 (DeleteTxn).
    Delete { container: bool, path: String },
    /// Types 5 and 16 (SetDataTxn); `version` is the node's new version.
    SetData { reconfig: bool, path: String, data: Option<Vec<u8>>, version: i32 },
    /// `version` is the node's new aversion.
    SetAcl { path: String, acl: Vec<Acl>, version: i32 },
    /// Only inside a multi; `version` is the checked version + 1, as Apache writes it.
    Check { path: String, version: i32 },
    CreateSession { timeout: i32 },
    CloseSession { paths: Vec<String> },
    Error { err: i32 },
    Multi(Vec<Txn>),
}

impl Txn {
    pub fn type_code(&self) -> i32 {
        use types::*;
        match self {
            Txn::Create { create2: false, .. } => CREATE,
            Txn::Create { create2: true, .. } => CREATE2,
            Txn::CreateContainer { .. } => CREATE_CONTAINER,
            Txn::CreateTtl { .. } => CREATE_TTL,
            Txn::Delete { container: false, .. } => DELETE,
            Txn::Delete { container: true, .. } => DELETE_CONTAINER,
            Txn::SetData { reconfig: false, .. } => SET_DATA,
            Txn::SetData { reconfig: true, .. } => RECONFIG,
            Txn::SetAcl { .. } => SET_ACL,
            Txn::Check { .. } => CHECK,
            Txn::CreateSession { .. } => CREATE_SESSION,
            Txn::CloseSession { .. } => CLOSE_SESSION,
            Txn::Error { .. } => ERROR,
            Txn::Multi(_) => MULTI,
        }
    }

    /// The record that follows the TxnHeader in the log.
    pub fn write_record(&self, w: &mut Writer) {
        match self {
            Txn::Create { path, data, acl, ephemeral, parent_cversion, .. } => {
                w.write_str(path);
                w.write_buffer(data.as_deref());
                acl.write(w);
                w.write_bool(*ephemeral);
                w.write_i32(*parent_cversion);
            }
            Txn::CreateContainer { path, data, acl, parent_cversion } => {
                w.write_str(path);
                w.write_buffer(data.as_deref());
                acl.write(w);
                w.write_i32(*parent_cversion);
            }
            Txn::CreateTtl { path, data, acl, parent_cversion, ttl } => {
                w.write_str(path);
                w.write_buffer(data.as_deref());
                acl.write(w);
                w.write_i32(*parent_cversion);
                w.write_i64(*ttl);
            }
            Txn::Delete { path, .. } => w.write_str(path),
            Txn::SetData { path, data, version, .. } => {
                w.write_str(path);
                w.write_buffer(data.as_deref());
                w.write_i32(*version);
            }
            Txn::SetAcl { path, acl, version } => {
                w.write_str(path);
                acl.write(w);
                w.write_i32(*version);
            }
            Txn::Check { path, version } => {
                w.write_str(path);
                w.write_i32(*version);
            }
            Txn::CreateSession { timeout } => w.write_i32(*timeout),
            Txn::CloseSession { paths } => paths.write(w),
            Txn::Error { err } => w.write_i32(*err),
            Txn::Multi(txns) => {
                w.write_i32(txns.len() as i32);
                for t in txns {
                    w.write_i32(t.type_code());
                    let mut inner = Writer::new();
                    t.write_record(&mut inner);
                    w.write_buffer(Some(&inner.buf));
                }
            }
        }
    }

    pub fn read_record(txn_type: i32, r: &mut Reader<'_>) -> Result<Txn> {
        use types::*;
        Ok(match txn_type {
            CREATE | CREATE2 => {
                let path = r.read_string()?;
                let data = r.read_buffer()?;
                let acl = Vec::<Acl>::read(r)?;
                let ephemeral = r.read_bool()?;
                // CreateTxnV0 has no parentCVersion; -1 means "parent's cversion + 1".
                let parent_cversion = if r.remaining() >= 4 { r.read_i32()? } else { -1 };
                Txn::Create { create2: txn_type == CREATE2, path, data, acl, ephemeral, parent_cversion }
            }
            CREATE_CONTAINER => Txn::CreateContainer {
                path: r.read_string()?,
                data: r.read_buffer()?,
                acl: Vec::<Acl>::read(r)?,
                parent_cversion: r.read_i32()?,
            },
            CREATE_TTL => Txn::CreateTtl {
                path: r.read_string()?,
                data: r.read_buffer()?,
                acl: Vec::<Acl>::read(r)?,
                parent_cversion: r.read_i32()?,
                ttl: r.read_i64()?,
            },
            DELETE | DELETE_CONTAINER => Txn::Delete { container: txn_type == DELETE_CONTAINER, path: r.read_string()? },
            SET_DATA | RECONFIG => Txn::SetData {
                reconfig: txn_type == RECONFIG,
                path: r.read_string()?,
                data: r.read_buffer()?,
                version: r.read_i32()?,
            },
            SET_ACL => Txn::SetAcl { path: r.read_string()?, acl: Vec::<Acl>::read(r)?, version: r.read_i32()? },
            CHECK => Txn::Check { path: r.read_string()?, version: r.read_i32()? },
            CREATE_SESSION => Txn::CreateSession { timeout: r.read_i32()? },
            CLOSE_SESSION => {
                // With closeSessionTxn disabled the record is absent.
                let paths = if r.remaining() > 0 { Vec::<String>::read(r)? } else { Vec::new() };
                Txn::CloseSession { paths }
            }
            ERROR => Txn::Error { err: r.read_i32()? },
            MULTI => {
                let n = r.read_count()?.unwrap_or(0);
                let mut txns = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let t = r.read_i32()?;
                    let body = r.read_buffer()?.unwrap_or_default();
                    txns.push(Txn::read_record(t, &mut Reader::new(&body))?);
                }
                Txn::Multi(txns)
            }
            _ => return Err(JuteError::BadLength(txn_type, r.position())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::records::Id;

    #[test]
    fn multi_round_trips() {
        let open = vec![Acl { perms: 31, id: Id { scheme: "world".into(), id: "anyone".into() } }];
        let t = Txn::Multi(vec![
            Txn::Create { create2: false, path: "/m1".into(), data: Some(b"x".to_vec()), acl: open, ephemeral: false, parent_cversion: 3 },
            Txn::Check { path: "/m1".into(), version: 2 },
            Txn::Error { err: -2 },
        ]);
        let mut w = Writer::new();
        t.write_record(&mut w);
        let back = Txn::read_record(t.type_code(), &mut Reader::new(&w.buf)).unwrap();
        assert_eq!(back, t);
    }
}

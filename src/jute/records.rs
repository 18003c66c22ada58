//! The client protocol's records (zookeeper.jute), fields in wire order.

use super::{Jute, Reader, Result, Writer};
use crate::jute_record;

/// An ACL id. Clients such as kazoo send an empty id as a null string (the `auth` scheme's id is
/// ignored anyway), so a null id reads as "".
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Id {
    pub scheme: String,
    pub id: String,
}

impl Jute for Id {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Id { scheme: r.read_string()?, id: r.read_ustring()?.unwrap_or_default() })
    }
    fn write(&self, w: &mut Writer) {
        w.write_str(&self.scheme);
        w.write_str(&self.id);
    }
}
jute_record!(Acl { perms: i32, id: Id });
jute_record!(ClientInfo { auth_scheme: String, user: String });

jute_record!(
    /// The 68-byte Stat every read returns.
    Stat {
        czxid: i64,
        mzxid: i64,
        ctime: i64,
        mtime: i64,
        version: i32,
        cversion: i32,
        aversion: i32,
        ephemeral_owner: i64,
        data_length: i32,
        num_children: i32,
        pzxid: i64,
    }
);

jute_record!(
    /// The 60-byte stat stored in snapshots (cversion is the stored counter).
    StatPersisted {
        czxid: i64,
        mzxid: i64,
        ctime: i64,
        mtime: i64,
        version: i32,
        cversion: i32,
        aversion: i32,
        ephemeral_owner: i64,
        pzxid: i64,
    }
);

/// The first record on a connection. `read_only` is a trailing byte that older clients omit; the
/// reply carries it only if the request did.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub time_out: i32,
    pub session_id: i64,
    pub passwd: Option<Vec<u8>>,
    pub read_only: Option<bool>,
}

impl Jute for ConnectRequest {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let protocol_version = r.read_i32()?;
        let last_zxid_seen = r.read_i64()?;
        let time_out = r.read_i32()?;
        let session_id = r.read_i64()?;
        let passwd = r.read_buffer()?;
        let read_only = if r.remaining() > 0 { Some(r.read_bool()?) } else { None };
        Ok(ConnectRequest { protocol_version, last_zxid_seen, time_out, session_id, passwd, read_only })
    }
    fn write(&self, w: &mut Writer) {
        w.write_i32(self.protocol_version);
        w.write_i64(self.last_zxid_seen);
        w.write_i32(self.time_out);
        w.write_i64(self.session_id);
        w.write_buffer(self.passwd.as_deref());
        if let Some(ro) = self.read_only {
            w.write_bool(ro);
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub time_out: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub read_only: Option<bool>,
}

impl Jute for ConnectResponse {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let protocol_version = r.read_i32()?;
        let time_out = r.read_i32()?;
        let session_id = r.read_i64()?;
        let passwd = r.read_buffer()?.unwrap_or_default();
        let read_only = if r.remaining() > 0 { Some(r.read_bool()?) } else { None };
        Ok(ConnectResponse { protocol_version, time_out, session_id, passwd, read_only })
    }
    fn write(&self, w: &mut Writer) {
        w.write_i32(self.protocol_version);
        w.write_i32(self.time_out);
        w.write_i64(self.session_id);
        w.write_buffer(Some(&self.passwd));
        if let Some(ro) = self.read_only {
            w.write_bool(ro);
        }
    }
}

jute_record!(RequestHeader { xid: i32, op: i32 });
jute_record!(ReplyHeader { xid: i32, zxid: i64, err: i32 });
jute_record!(MultiHeader { op: i32, done: bool, err: i32 });
jute_record!(AuthPacket { auth_type: i32, scheme: String, auth: Option<Vec<u8>> });
jute_record!(WatcherEvent { event_type: i32, state: i32, path: String });

jute_record!(SetWatches {
    relative_zxid: i64,
    data_watches: Vec<String>,
    exist_watches: Vec<String>,
    child_watches: Vec<String>,
});
jute_record!(SetWatches2 {
    relative_zxid: i64,
    data_watches: Vec<String>,
    exist_watches: Vec<String>,
    child_watches: Vec<String>,
    persistent_watches: Vec<String>,
    persistent_recursive_watches: Vec<String>,
});

jute_record!(PathWatchRequest { path: String, watch: bool });
pub type GetDataRequest = PathWatchRequest;
pub type ExistsRequest = PathWatchRequest;
pub type GetChildrenRequest = PathWatchRequest;

jute_record!(SetDataRequest { path: String, data: Option<Vec<u8>>, version: i32 });
jute_record!(ReconfigRequest {
    joining_servers: Option<String>,
    leaving_servers: Option<String>,
    new_members: Option<String>,
    cur_config_id: i64,
});
jute_record!(CreateRequest { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, flags: i32 });
jute_record!(CreateTtlRequest { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, flags: i32, ttl: i64 });
jute_record!(PathVersionRequest { path: String, version: i32 });
pub type DeleteRequest = PathVersionRequest;
pub type CheckVersionRequest = PathVersionRequest;
jute_record!(PathRequest { path: String });
jute_record!(SetAclRequest { path: String, acl: Vec<Acl>, version: i32 });
jute_record!(AddWatchRequest { path: String, mode: i32 });
jute_record!(PathTypeRequest { path: String, watch_type: i32 });
pub type CheckWatchesRequest = PathTypeRequest;
pub type RemoveWatchesRequest = PathTypeRequest;
jute_record!(GetEphemeralsRequest { prefix_path: Option<String> });
jute_record!(SaslToken { token: Option<Vec<u8>> });

jute_record!(ErrorResponse { err: i32 });
jute_record!(CreateResponse { path: String });
jute_record!(Create2Response { path: String, stat: Stat });
jute_record!(StatResponse { stat: Stat });
jute_record!(GetDataResponse { data: Option<Vec<u8>>, stat: Stat });
jute_record!(GetChildrenResponse { children: Vec<String> });
jute_record!(GetChildren2Response { children: Vec<String>, stat: Stat });
jute_record!(GetAclResponse { acl: Vec<Acl>, stat: Stat });
jute_record!(GetAllChildrenNumberResponse { total_number: i32 });
jute_record!(GetEphemeralsResponse { ephemerals: Vec<String> });
jute_record!(WhoAmIResponse { client_info: Vec<ClientInfo> });

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn connect_request_matches_apache_bytes() {
        // Reference §1.3: a new session, timeout 30000, readOnly=1 (after the length prefix).
        let b = hex("00000000 0000000000000000 00007530 0000000000000000 00000010 00000000000000000000000000000000 01");
        let req = ConnectRequest::from_bytes(&b).unwrap();
        assert_eq!(req.time_out, 30000);
        assert_eq!(req.read_only, Some(true));
        assert_eq!(req.to_bytes(), b);
    }

    #[test]
    fn notification_matches_apache_bytes() {
        let b = hex("ffffffff ffffffffffffffff 00000000 00000003 00000003 00000002 2f77");
        let mut r = Reader::new(&b);
        let h = ReplyHeader::read(&mut r).unwrap();
        let e = WatcherEvent::read(&mut r).unwrap();
        assert_eq!((h.xid, h.zxid, h.err), (-1, -1, 0));
        assert_eq!(e, WatcherEvent { event_type: 3, state: 3, path: "/w".into() });
    }

    #[test]
    fn stat_is_68_bytes() {
        assert_eq!(Stat::default().to_bytes().len(), 68);
        assert_eq!(StatPersisted::default().to_bytes().len(), 60);
    }
}

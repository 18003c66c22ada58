//! Bad input never hurts the server: truncated frames, wrong lengths, oversize frames, unknown
//! opcodes and garbage before the handshake each affect only their own connection, while an
//! established session keeps being served.

mod common;

use common::RzkServer;
use rzk::jute::records::*;
use rzk::jute::{Jute, Reader, Writer};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

struct Raw {
    s: TcpStream,
    xid: i32,
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

impl Raw {
    fn open(port: u16) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }
    fn connect(port: u16) -> Raw {
        let mut s = Raw::open(port);
        let req = ConnectRequest { time_out: 30000, passwd: Some(vec![0; 16]), read_only: Some(false), ..Default::default() };
        s.write_all(&framed(&req.to_bytes())).unwrap();
        let mut r = Raw { s, xid: 0 };
        let resp = ConnectResponse::from_bytes(&r.read_frame().expect("connect response")).unwrap();
        assert_ne!(resp.session_id, 0);
        r
    }
    fn read_frame(&mut self) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        self.s.read_exact(&mut len).ok()?;
        let mut b = vec![0; i32::from_be_bytes(len) as usize];
        self.s.read_exact(&mut b).ok()?;
        Some(b)
    }
    fn call(&mut self, op: i32, body: &[u8]) -> (ReplyHeader, Vec<u8>) {
        self.xid += 1;
        let mut w = Writer::new();
        RequestHeader { xid: self.xid, op }.write(&mut w);
        w.buf.extend_from_slice(body);
        self.s.write_all(&framed(&w.buf)).unwrap();
        loop {
            let f = self.read_frame().expect("reply");
            let mut r = Reader::new(&f);
            let h = ReplyHeader::read(&mut r).unwrap();
            if h.xid == self.xid {
                return (h, r.rest().to_vec());
            }
        }
    }
    fn healthy(&mut self) {
        let (h, _) = self.call(3, &PathWatchRequest { path: "/zookeeper".into(), watch: false }.to_bytes());
        assert_eq!(h.err, 0, "established session still served");
    }
}

/// Reads until the server closes the connection; returns what it sent.
fn drain_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) => panic!("server did not close the connection: {e}"),
        }
    }
}

#[test]
fn hostile_connections_do_not_disturb_others() {
    let server = RzkServer::start();
    let port = server.port;
    let mut good = Raw::connect(port);
    good.healthy();

    // An oversize advertised length (jute.maxbuffer + 1) is dropped without a reply.
    let mut s = Raw::open(port);
    s.write_all(&0x100000i32.to_be_bytes()).unwrap();
    assert!(drain_to_eof(&mut s).is_empty());
    good.healthy();

    // A negative length.
    let mut s = Raw::open(port);
    s.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(drain_to_eof(&mut s).is_empty());

    // Garbage before the handshake: not a 4lw, taken as a huge length.
    let mut s = Raw::open(port);
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert!(drain_to_eof(&mut s).is_empty());

    // A truncated frame, then EOF from the client.
    let mut s = Raw::open(port);
    s.write_all(&100i32.to_be_bytes()).unwrap();
    s.write_all(&[0u8; 10]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(drain_to_eof(&mut s).is_empty());

    // A frame too short to be a ConnectRequest.
    let mut s = Raw::open(port);
    s.write_all(&framed(&[0, 0, 0, 0, 1])).unwrap();
    assert!(drain_to_eof(&mut s).is_empty());
    good.healthy();

    // A request whose record lies about a string length gets MarshallingError, and the
    // connection keeps working (as Apache: the frame itself was well formed).
    let mut bad = Raw::connect(port);
    let mut body = Vec::new();
    body.extend_from_slice(&0x7fff_fff0i32.to_be_bytes());
    body.extend_from_slice(b"/x");
    let (h, _) = bad.call(4, &body);
    assert_eq!(h.err, -5);
    bad.healthy();

    // A request header cut short closes that connection.
    let mut s = Raw::connect(port);
    s.s.write_all(&framed(&[0, 0, 0, 1])).unwrap();
    drain_to_eof(&mut s.s);

    // An unknown opcode: err -6, then the connection is closed.
    let mut u = Raw::connect(port);
    u.xid += 1;
    let mut w = Writer::new();
    RequestHeader { xid: u.xid, op: 55 }.write(&mut w);
    u.s.write_all(&framed(&w.buf)).unwrap();
    let rest = drain_to_eof(&mut u.s);
    let h = ReplyHeader::from_bytes(&rest[4..]).unwrap();
    assert_eq!((h.xid, h.err), (u.xid, -6));
    assert_eq!(rest.len(), 4 + 16, "one reply, then EOF");

    // A frame of exactly jute.maxbuffer bytes is accepted: the server answers it.
    let mut big = Raw::connect(port);
    let data = vec![b'x'; 0xfffff - 200];
    let req = CreateRequest { path: "/big".into(), data: Some(data), acl: rzk::tree::acl::open_acl_unsafe(), flags: 0 };
    let (h, _) = big.call(1, &req.to_bytes());
    assert_eq!(h.err, 0);

    good.healthy();
    let mut fresh = Raw::connect(port);
    fresh.healthy();
}

/// A client that stops reading: its replies pile up in its outbox once the socket is full (the
/// writer task takes over from the direct sends), other sessions keep being served, and when it
/// reads again it gets every reply, whole and in order.
#[test]
fn a_client_that_stops_reading_gets_every_reply_in_order_later() {
    let server = RzkServer::start();
    let port = server.port;
    let mut good = Raw::connect(port);
    let mut slow = Raw::connect(port);
    let data = vec![b'd'; 500_000];
    let req = CreateRequest { path: "/slow".into(), data: Some(data.clone()), acl: rzk::tree::acl::open_acl_unsafe(), flags: 0 };
    assert_eq!(slow.call(1, &req.to_bytes()).0.err, 0);

    // 40 getData requests (20 MB of replies, far more than the sockets buffer) sent without
    // reading anything back, then a create of /marker. A connection's requests are handled in
    // order, so when the other session's watch on /marker fires, the server has taken all 40.
    let (h, _) = good.call(3, &PathWatchRequest { path: "/marker".into(), watch: true }.to_bytes());
    assert_eq!(h.err, -101, "exists /marker sets a watch");
    let first = slow.xid + 1;
    let mut out = Vec::new();
    for i in 0..40 {
        let mut w = Writer::new();
        RequestHeader { xid: first + i, op: 4 }.write(&mut w);
        PathWatchRequest { path: "/slow".into(), watch: false }.write(&mut w);
        out.extend_from_slice(&framed(&w.buf));
    }
    let mut w = Writer::new();
    RequestHeader { xid: first + 40, op: 1 }.write(&mut w);
    CreateRequest { path: "/marker".into(), data: None, acl: rzk::tree::acl::open_acl_unsafe(), flags: 0 }.write(&mut w);
    out.extend_from_slice(&framed(&w.buf));
    slow.s.write_all(&out).unwrap();
    slow.xid = first + 40;
    let ev = good.read_frame().expect("the watch event for /marker");
    let mut r = Reader::new(&ev);
    assert_eq!(ReplyHeader::read(&mut r).unwrap().xid, -1, "a notification");
    let ev = WatcherEvent::read(&mut r).unwrap();
    assert_eq!((ev.event_type, ev.path.as_str()), (1, "/marker"), "NodeCreated /marker");
    good.healthy();

    for i in 0..40 {
        let f = slow.read_frame().expect("reply");
        let mut r = Reader::new(&f);
        let h = ReplyHeader::read(&mut r).unwrap();
        assert_eq!((h.xid, h.err), (first + i, 0), "reply {i}");
        let resp = GetDataResponse::read(&mut r).unwrap();
        assert_eq!(resp.data.as_deref(), Some(&data[..]), "reply {i}");
    }
    let f = slow.read_frame().expect("create reply");
    let h = ReplyHeader::read(&mut Reader::new(&f)).unwrap();
    assert_eq!((h.xid, h.err), (first + 40, 0), "create reply");
    slow.healthy();
    good.healthy();
}

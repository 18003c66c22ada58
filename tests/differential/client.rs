//! A raw, blocking ZooKeeper client built on `rzk::jute`: one TCP connection, length-prefixed
//! frames in and out. Xids, pings and reconnects are the runner's business.
//!
//! It does nothing on its own: no pings, no reconnects, no ordering checks. The differential
//! runner decides what to send and when, so both servers see the same bytes.

use rzk::jute::records::{ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader, WatcherEvent};
use rzk::jute::{Jute, Reader, Writer};
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

pub const NOTIFICATION_XID: i32 = -1;
pub const PING_XID: i32 = -2;
pub const AUTH_XID: i32 = -4;
pub const SET_WATCHES_XID: i32 = -8;

/// The session timeout every connection asks for.
pub const SESSION_TIMEOUT_MS: i32 = 30_000;
/// How long to wait for any one frame before declaring the server stuck.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One frame received from the server.
#[derive(Clone, Debug)]
pub enum Frame {
    /// A reply (any xid other than -1): header plus the undecoded body.
    Reply { xid: i32, zxid: i64, err: i32, body: Vec<u8> },
    /// A watch notification (xid -1).
    Event { zxid: i64, err: i32, event: WatcherEvent },
    /// xid -1 but the body is not a WatcherEvent.
    BadEvent { zxid: i64, err: i32, body: Vec<u8> },
    /// The server closed the connection.
    Eof,
    /// A read error or timeout.
    Io(String),
}

/// Encodes `RequestHeader{xid, op}` + body as one frame.
pub fn request_frame(xid: i32, op: i32, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::with_capacity(body.len() + 12);
    let at = w.begin_frame();
    RequestHeader { xid, op }.write(&mut w);
    w.buf.extend_from_slice(body);
    w.finish_frame(at);
    w.into_inner()
}

pub fn connect_frame(req: &ConnectRequest) -> Vec<u8> {
    let mut w = Writer::new();
    let at = w.begin_frame();
    req.write(&mut w);
    w.finish_frame(at);
    w.into_inner()
}

pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    /// Opens a TCP connection and sends the ConnectRequest plus any `pipelined` frames (already
    /// encoded, e.g. auth packets and SetWatches, as the Java client does on reconnect) before
    /// reading anything. Returns the connection and the first frame, which should be the
    /// ConnectResponse (raw bytes, or Eof/Io).
    pub fn open(port: u16, req: &ConnectRequest, pipelined: &[Vec<u8>]) -> io::Result<(Conn, RawOrEnd)> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(READ_TIMEOUT))?;
        let writer = stream.try_clone()?;
        let mut c = Conn { reader: BufReader::with_capacity(1 << 16, stream), writer };
        let mut out = connect_frame(req);
        for f in pipelined {
            out.extend_from_slice(f);
        }
        c.writer.write_all(&out)?;
        let first = c.read_raw();
        Ok((c, first))
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Reads one length-prefixed frame.
    pub fn read_raw(&mut self) -> RawOrEnd {
        let mut len = [0u8; 4];
        if let Err(e) = self.reader.read_exact(&mut len) {
            return end_of(e);
        }
        let n = i32::from_be_bytes(len);
        if !(0..=16 << 20).contains(&n) {
            return RawOrEnd::Io(format!("unreasonable frame length {n}"));
        }
        let mut buf = vec![0u8; n as usize];
        if let Err(e) = self.reader.read_exact(&mut buf) {
            return end_of(e);
        }
        RawOrEnd::Raw(buf)
    }

    /// Reads one frame and splits it into header and body.
    pub fn read_frame(&mut self) -> Frame {
        match self.read_raw() {
            RawOrEnd::Raw(buf) => parse_frame(&buf),
            RawOrEnd::Eof => Frame::Eof,
            RawOrEnd::Io(e) => Frame::Io(e),
        }
    }

    /// Waits (up to `timeout`) for the server to close the connection; returns the frames that
    /// came first (normally none) and whether EOF was seen.
    pub fn expect_close(&mut self, timeout: Duration) -> (Vec<Frame>, bool) {
        let _ = self.reader.get_ref().set_read_timeout(Some(timeout));
        let mut frames = Vec::new();
        loop {
            match self.read_frame() {
                Frame::Eof => return (frames, true),
                Frame::Io(_) => return (frames, false),
                f => frames.push(f),
            }
            if frames.len() > 1000 {
                return (frames, false);
            }
        }
    }

    /// Closes the socket without a closeSession (the session lives on).
    pub fn drop_socket(self) {
        let _ = self.writer.shutdown(Shutdown::Both);
    }
}

pub enum RawOrEnd {
    Raw(Vec<u8>),
    Eof,
    Io(String),
}

fn end_of(e: io::Error) -> RawOrEnd {
    match e.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            RawOrEnd::Eof
        }
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => RawOrEnd::Io("read timed out".into()),
        _ => RawOrEnd::Io(e.to_string()),
    }
}

pub fn parse_frame(buf: &[u8]) -> Frame {
    let mut r = Reader::new(buf);
    let Ok(h) = ReplyHeader::read(&mut r) else {
        return Frame::Io(format!("frame too short for a ReplyHeader: {}", hex(buf)));
    };
    if h.xid == NOTIFICATION_XID {
        let body = r.rest();
        match WatcherEvent::from_bytes(body) {
            Ok(event) if event.to_bytes().len() == body.len() => Frame::Event { zxid: h.zxid, err: h.err, event },
            _ => Frame::BadEvent { zxid: h.zxid, err: h.err, body: body.to_vec() },
        }
    } else {
        Frame::Reply { xid: h.xid, zxid: h.zxid, err: h.err, body: r.rest().to_vec() }
    }
}

/// Decodes a ConnectResponse and checks nothing trails it.
pub fn parse_connect_response(buf: &[u8]) -> Option<ConnectResponse> {
    let resp = ConnectResponse::from_bytes(buf).ok()?;
    (resp.to_bytes().len() == buf.len()).then_some(resp)
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

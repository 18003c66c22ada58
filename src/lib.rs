//! rzk: a ZooKeeper-compatible coordination service.
//!
//! Layout (dependencies flow downwards only; nothing above `server` touches sockets, files or clocks):
//! - `types`, `error`: protocol newtypes and ZooKeeper's error codes.
//! - `jute`: the wire/disk record encoding, client records, txn records.
//! - `tree`: the znode tree, ACL cache, quotas; `apply(txn)` is shared by live commit and replay.
//! - `watch`, `session`, `auth`: watch tables, session expiry, ACL schemes.
//! - `ops`: one file per opcode: checks a request against the tree and returns a txn or a reply.
//! - `engine`: the request pipeline for a standalone server (prep → apply → reply + watch events).
//! - `server`: the tokio shell: config, connections, four-letter words.
//!
//! The data path of one request: a connection task reads a frame, hands it to the engine, which
//! checks it (`ops`), turns a write into a `Txn` with the next zxid, applies it (`tree::apply`),
//! collects the watch events it fired (`watch`), and returns the reply and events as bytes for the
//! shell to write, events before any later reply.

pub mod auth;
pub mod cli;
pub mod engine;
pub mod error;
pub mod jute;
pub mod ops;
pub mod server;
pub mod tree;
pub mod types;
pub mod watch;
pub mod session;
pub mod storage;
pub mod zab;

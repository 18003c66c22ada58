use super::snapshot::*;
use super::txnlog::*;
use super::*;
use crate::jute::Jute;
use crate::jute::records::{Acl, Id, StatPersisted};
use crate::jute::txn::{Txn, TxnHeader};
use crate::tree::acl::open_acl_unsafe;
use std::sync::atomic::{AtomicU64, Ordering};

struct TempDir(PathBuf);
impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!("rzk-storage-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

type Dump = Vec<(String, Option<Vec<u8>>, Vec<Acl>, StatPersisted)>;
fn dump(t: &DataTree) -> Dump {
    let mut v = Vec::new();
    t.for_each_snapshot_node::<()>(|p, d, a, s| {
        v.push((p.to_string(), d.map(|d| d.to_vec()), t.acls.get(a).to_vec(), s.clone()));
        Ok(())
    })
    .unwrap();
    v
}

/// A tiny "server": applies txns to a tree and logs them, as the engine will.
struct Sim {
    tree: DataTree,
    log: TxnLogWriter,
    zxid: i64,
    sessions: HashMap<i64, i32>,
}

impl Sim {
    fn new(log_dir: &Path, prealloc: u64) -> Sim {
        Sim { tree: DataTree::new(), log: TxnLogWriter::with_prealloc(log_dir, prealloc), zxid: 0, sessions: HashMap::new() }
    }
    fn txn(&mut self, session: i64, txn: Txn) -> i32 {
        self.zxid += 1;
        let hdr = TxnHeader { client_id: session, cxid: self.zxid as i32, zxid: self.zxid, time: 1_700_000_000_000 + self.zxid, txn_type: txn.type_code() };
        let r = self.tree.apply(&hdr, &txn, &mut Vec::new());
        match &txn {
            Txn::CreateSession { timeout } => {
                self.sessions.insert(session, *timeout);
            }
            Txn::CloseSession { .. } => {
                self.sessions.remove(&session);
            }
            _ => {}
        }
        self.log.append(&hdr, &txn, Some(self.tree.digest.value)).unwrap();
        r.err
    }
    fn create(&mut self, session: i64, path: &str, data: &[u8], acl: Vec<Acl>, eph: bool) {
        let parent = &path[..path.rfind('/').unwrap()];
        let pid = self.tree.lookup(if parent.is_empty() { "/" } else { parent }).unwrap();
        let pcv = self.tree.node(pid).stat.cversion + 1;
        let t = Txn::Create { create2: false, path: path.into(), data: Some(data.to_vec()), acl, ephemeral: eph, parent_cversion: pcv };
        assert_eq!(self.txn(session, t), 0, "create {path}");
    }
    fn sessions(&self) -> Vec<(SessionId, i32)> {
        let mut v: Vec<_> = self.sessions.iter().map(|(k, v)| (SessionId(*k), *v)).collect();
        v.sort();
        v
    }
    fn snapshot(&self, dir: &Path, opts: &SnapshotOptions) -> PathBuf {
        write_snapshot(dir, &self.tree, &self.sessions(), opts).unwrap()
    }
}

fn digest_acl() -> Vec<Acl> {
    vec![
        Acl { perms: 31, id: Id { scheme: "digest".into(), id: "bob:Xx+yz=".into() } },
        Acl { perms: 1, id: Id { scheme: "world".into(), id: "anyone".into() } },
    ]
}

/// A workload with every kind of txn.
fn workload(s: &mut Sim) {
    let sid = 0x0100_0070_6b88_0000;
    s.txn(sid, Txn::CreateSession { timeout: 30000 });
    s.txn(sid + 1, Txn::CreateSession { timeout: 4000 });
    s.create(sid, "/a", b"hello", open_acl_unsafe(), false);
    s.create(sid, "/a/b", b"", digest_acl(), false);
    s.create(sid, "/a/eph", b"e", open_acl_unsafe(), true);
    s.create(sid + 1, "/a/eph2", b"e2", open_acl_unsafe(), true);
    s.txn(sid, Txn::SetData { reconfig: false, path: "/a".into(), data: Some(b"world".to_vec()), version: 1 });
    s.txn(sid, Txn::Error { err: -110 });
    s.txn(sid, Txn::SetAcl { path: "/a/b".into(), acl: open_acl_unsafe(), version: 1 });
    let cv = s.tree.node(s.tree.lookup("/a").unwrap()).stat.cversion;
    s.txn(
        sid,
        Txn::Multi(vec![
            Txn::Create { create2: false, path: "/a/m1".into(), data: None, acl: digest_acl(), ephemeral: false, parent_cversion: cv + 1 },
            Txn::Check { path: "/a".into(), version: 2 },
            Txn::Delete { container: false, path: "/a/b".into() },
        ]),
    );
    s.txn(sid, Txn::Multi(vec![Txn::Create { create2: false, path: "/zz".into(), data: None, acl: open_acl_unsafe(), ephemeral: false, parent_cversion: 9 }, Txn::Error { err: -101 }]));
    s.txn(sid + 1, Txn::CloseSession { paths: vec!["/a/eph2".into()] });
    s.create(sid, "/zookeeper/quota/a", b"", open_acl_unsafe(), false);
    s.create(sid, "/zookeeper/quota/a/zookeeper_limits", b"count=10,bytes=-1", open_acl_unsafe(), false);
    s.create(sid, "/zookeeper/quota/a/zookeeper_stats", b"count=0,bytes=0", open_acl_unsafe(), false);
    s.txn(sid, Txn::Delete { container: false, path: "/a/m1".into() });
}

#[test]
fn txn_log_entry_matches_apache_byte_for_byte() {
    // Reference §6.2, the live first entry (createSession).
    let hdr = TxnHeader { client_id: 0x0100_0070_6b88_0000, cxid: 0, zxid: 1, time: 0x0000_01a2_0450_6d55, txn_type: -10 };
    let e = encode_entry(&hdr, &Txn::CreateSession { timeout: 30000 }, Some(0x51c6_d660));
    assert_eq!(
        e,
        hex("00000000bce30a06 00000030 | 010000706b880000 00000000 0000000000000001 000001a204506d55 fffffff6 | 00007530 | 00000002 0000000051c6d660 | 42")
    );
    // An error txn never carries a digest.
    let e = txn_bytes(&TxnHeader { txn_type: -1, ..hdr.clone() }, &Txn::Error { err: -110 }, Some(5));
    assert_eq!(e.len(), 32 + 4);
    let (h, t, d) = decode_txn_bytes(&e).unwrap();
    assert_eq!((h.txn_type, t, d), (-1, Txn::Error { err: -110 }, None));
}

#[test]
fn close_session_without_record_but_with_digest_decodes() {
    let hdr = TxnHeader { client_id: 7, cxid: 0, zxid: 9, time: 1, txn_type: -11 };
    let mut b = hdr.to_bytes();
    b.extend_from_slice(&hex("00000002 0000000051c6d660"));
    let (_, t, d) = decode_txn_bytes(&b).unwrap();
    assert_eq!(t, Txn::CloseSession { paths: vec![] });
    assert_eq!(d, Some(TxnDigest { version: 2, tree_digest: 0x51c6d660 }));
}

#[test]
fn writer_creates_named_file_with_header_and_preallocates_like_apache() {
    let d = TempDir::new();
    let mut w = TxnLogWriter::new(&d.0);
    let hdr = TxnHeader { client_id: 1, cxid: 0, zxid: 0x100000001, time: 5, txn_type: -10 };
    w.append(&hdr, &Txn::CreateSession { timeout: 30000 }, None).unwrap();
    w.sync().unwrap();
    let p = d.0.join("log.100000001");
    assert_eq!(w.current_file(), Some(p.as_path()));
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(&bytes[..16], &hex("5a4b4c47 00000002 0000000000000000")[..]);
    // The first file is exactly 16 + 64 MiB (reference §6.2).
    assert_eq!(bytes.len() as u64, 16 + DEFAULT_PREALLOC_SIZE);
    assert!(bytes[16 + 12 + 36 + 1..].iter().all(|b| *b == 0));

    // FilePadding arithmetic.
    assert_eq!(padded_size(16, 16, 1000), 1016);
    assert_eq!(padded_size(1000, 5000, 1000), 6000);
    assert_eq!(padded_size(10, 5000, 1000), 5000);
    assert_eq!(padded_size(10, 50000, 1000), 50000);
    assert_eq!(padded_size(7500, 5000, 1000), 8000);
    assert_eq!(padded_size(7500, 5000, 0), 5000);

    // Preallocation off: the file is exactly header + entries.
    let d2 = TempDir::new();
    let mut w = TxnLogWriter::with_prealloc(&d2.0, 0);
    w.append(&hdr, &Txn::CreateSession { timeout: 30000 }, None).unwrap();
    w.flush().unwrap();
    assert_eq!(std::fs::metadata(d2.0.join("log.100000001")).unwrap().len(), 16 + 12 + 36 + 1);
    assert_eq!(w.current_size(), 16 + 12 + 36 + 1);
}

#[test]
fn log_round_trips_across_rolls_and_reads_from_a_zxid() {
    let d = TempDir::new();
    let mut s = Sim::new(&d.0, 4096);
    workload(&mut s);
    s.log.roll().unwrap();
    let first_end = s.zxid;
    s.create(1, "/after", b"x", open_acl_unsafe(), false);
    s.create(1, "/after2", b"y", open_acl_unsafe(), false);
    s.log.sync().unwrap();
    let files = list_files(&d.0, LOG_PREFIX).unwrap();
    assert_eq!(files.iter().map(|f| f.0).collect::<Vec<_>>(), vec![1, first_end + 1]);

    let all: Vec<LogEntry> = TxnLogReader::open(&d.0, 0).unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(all.len() as i64, s.zxid);
    assert!(all.iter().enumerate().all(|(i, e)| e.hdr.zxid == i as i64 + 1));
    // Error txns have no digest; others do.
    let err = all.iter().find(|e| matches!(e.txn, Txn::Error { .. })).unwrap();
    assert_eq!(err.digest, None);
    assert!(all.iter().filter(|e| !matches!(e.txn, Txn::Error { .. })).all(|e| e.digest.is_some()));
    // Replaying the log on a fresh tree gives the same tree and the digests match.
    let mut t = DataTree::new();
    for e in &all {
        t.apply(&e.hdr, &e.txn, &mut Vec::new());
        if let Some(d) = e.digest {
            assert_eq!(d.tree_digest, t.digest.value, "zxid {}", e.hdr.zxid);
        }
    }
    assert_eq!(dump(&t), dump(&s.tree));

    // From a zxid in the second file: only that file is read.
    let mut r = TxnLogReader::open(&d.0, first_end + 1).unwrap();
    let rest: Vec<i64> = r.by_ref().map(|e| e.unwrap().hdr.zxid).collect();
    assert_eq!(rest, vec![first_end + 2]);
    assert_eq!(r.files_read(), &[files[1].1.clone()]);
    // From a zxid in the first file: both.
    let rest: Vec<i64> = TxnLogReader::open(&d.0, 3).unwrap().map(|e| e.unwrap().hdr.zxid).collect();
    assert_eq!(rest, (4..=s.zxid).collect::<Vec<_>>());
    assert_eq!(last_logged_zxid(&d.0).unwrap(), Some(s.zxid));
}

#[test]
fn an_already_encoded_txn_is_logged_exactly_as_a_prepared_one() {
    // An ensemble member logs the PROPOSAL's bytes (append_raw); a standalone server encodes the
    // txn itself (append). The files must be identical.
    let txns = [
        (TxnHeader { client_id: 1, cxid: 0, zxid: 0x200000001, time: 5, txn_type: -10 }, Txn::CreateSession { timeout: 30000 }, Some(77)),
        (TxnHeader { client_id: 1, cxid: 1, zxid: 0x200000002, time: 6, txn_type: 5 }, Txn::SetData { reconfig: false, path: "/a".into(), data: Some(b"xyz".to_vec()), version: 3 }, Some(78)),
        (TxnHeader { client_id: 1, cxid: 2, zxid: 0x200000003, time: 7, txn_type: -1 }, Txn::Error { err: -101 }, None),
    ];
    let (a, b) = (TempDir::new(), TempDir::new());
    let mut wa = TxnLogWriter::with_prealloc(&a.0, 0);
    let mut wb = TxnLogWriter::with_prealloc(&b.0, 0);
    for (h, t, d) in &txns {
        wa.append(h, t, *d).unwrap();
        wb.append_raw(h.zxid, &txn_bytes(h, t, *d)).unwrap();
    }
    wa.sync().unwrap();
    wb.sync().unwrap();
    assert_eq!(wb.last_zxid(), Some(0x200000003));
    let name = "log.200000001";
    assert_eq!(std::fs::read(a.0.join(name)).unwrap(), std::fs::read(b.0.join(name)).unwrap());
    let back: Vec<LogEntry> = TxnLogReader::open(&b.0, 0).unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(back.iter().map(|e| (e.hdr.zxid, e.txn.clone())).collect::<Vec<_>>(), txns.iter().map(|(h, t, _)| (h.zxid, t.clone())).collect::<Vec<_>>());
}

fn two_entry_log(d: &Path) -> (PathBuf, u64, u64) {
    let mut w = TxnLogWriter::with_prealloc(d, 0);
    for z in 1..=3 {
        let hdr = TxnHeader { client_id: 1, cxid: z as i32, zxid: z, time: 5, txn_type: -10 };
        w.append(&hdr, &Txn::CreateSession { timeout: 30000 }, Some(77)).unwrap();
    }
    w.sync().unwrap();
    let p = d.join("log.1");
    let entry = 12 + 32 + 4 + 12 + 1;
    (p, 16 + entry, 16 + 2 * entry)
}

#[test]
fn torn_tails_are_reported_precisely_and_can_be_cut() {
    let d = TempDir::new();
    let (p, second, third) = two_entry_log(&d.0);
    let full = std::fs::read(&p).unwrap();

    let check = |bytes: &[u8], reason: TornReason, n: usize| {
        std::fs::write(&p, bytes).unwrap();
        let mut r = TxnLogReader::open(&d.0, 0).unwrap();
        let got: Vec<i64> = r.by_ref().map(|e| e.unwrap().hdr.zxid).collect();
        assert_eq!(got.len(), n, "{reason:?}");
        let t = r.torn_tail().cloned().expect("torn tail");
        assert_eq!((t.file.clone(), t.offset, t.reason), (p.clone(), third, reason));
        assert_eq!(t.last_good_zxid, Some(2));
        assert!(t.to_string().contains(&format!("at byte {third}")), "{t}");
    };
    // Cut inside the last entry.
    check(&full[..full.len() - 7], TornReason::ShortEntry, 2);
    check(&full[..third as usize + 5], TornReason::ShortEntry, 2);
    // Missing 'B'.
    let mut b = full.clone();
    *b.last_mut().unwrap() = 0;
    check(&b, TornReason::MissingEndMarker, 2);
    // Bad checksum on the final entry.
    let mut b = full.clone();
    b[third as usize + 20] ^= 1;
    check(&b, TornReason::BadChecksum, 2);
    // The caller cuts the tail; the log then reads clean.
    truncate_at(&p, third).unwrap();
    let mut r = TxnLogReader::open(&d.0, 0).unwrap();
    assert_eq!(r.by_ref().count(), 2);
    assert!(r.torn_tail().is_none());
    assert_eq!(std::fs::metadata(&p).unwrap().len(), third);

    // A bit flip in a middle entry is corruption, named by file and offset.
    let mut b = full.clone();
    b[second as usize + 20] ^= 0x10;
    std::fs::write(&p, &b).unwrap();
    let mut r = TxnLogReader::open(&d.0, 0).unwrap();
    assert_eq!(r.next().unwrap().unwrap().hdr.zxid, 1);
    match r.next().unwrap() {
        Err(StorageError::Corrupt { file, offset, reason }) => {
            assert_eq!((file, offset), (p.clone(), second));
            assert!(reason.contains("CRC"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Bad magic.
    let mut b = full.clone();
    b[0] = 0;
    std::fs::write(&p, &b).unwrap();
    assert!(matches!(TxnLogReader::open(&d.0, 0).unwrap().next(), Some(Err(StorageError::Corrupt { offset: 0, .. }))));
    // Trailing zero bytes (no full crc+len) end the file cleanly.
    let mut b = full.clone();
    b.extend_from_slice(&[0, 0, 0]);
    std::fs::write(&p, &b).unwrap();
    let mut r = TxnLogReader::open(&d.0, 0).unwrap();
    assert_eq!(r.by_ref().count(), 3);
    assert!(r.torn_tail().is_none());
}

#[test]
fn torn_tail_in_an_older_file() {
    let d = TempDir::new();
    let (p, _, third) = two_entry_log(&d.0);
    let full = std::fs::read(&p).unwrap();
    std::fs::write(&p, &full[..third as usize + 10]).unwrap();
    // The next file continues at zxid 3: the tear is skipped (a crash Apache restarted from).
    let mut w = TxnLogWriter::with_prealloc(&d.0, 0);
    w.append(&TxnHeader { client_id: 1, cxid: 0, zxid: 3, time: 5, txn_type: -10 }, &Txn::CreateSession { timeout: 1 }, None).unwrap();
    w.sync().unwrap();
    let mut r = TxnLogReader::open(&d.0, 0).unwrap();
    assert_eq!(r.by_ref().map(|e| e.unwrap().hdr.zxid).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(r.skipped_torn_tails().len(), 1);
    assert_eq!(r.skipped_torn_tails()[0].offset, third);
    // A gap after the tear is corruption.
    std::fs::rename(d.0.join("log.3"), d.0.join("log.5")).unwrap();
    let err = TxnLogReader::open(&d.0, 0).unwrap().find_map(|e| e.err()).expect("error");
    assert!(matches!(err, StorageError::Corrupt { ref file, offset, .. } if *file == p && offset == third), "{err}");
}

#[test]
fn empty_snapshot_matches_apache_byte_for_byte() {
    // Reference §6.4: a new 3.8.0 server's snapshot.0 is 457 bytes and ends like this.
    let t = DataTree::new();
    let mut out = Vec::new();
    let opts = SnapshotOptions { last_processed_zxid: false, ..Default::default() };
    serialize_snapshot(&mut out, &t, &[], &opts).unwrap();
    assert_eq!(out.len(), 457);
    assert_eq!(&out[..16], &hex("5a4b534e 00000002 ffffffffffffffff")[..]);
    let tail = hex("00000001 2f | 00000000b8a23b49 00000001 2f | 0000000000000000 00000002 0000000000000000 | 0000000095b93d59 00000001 2f");
    assert_eq!(&out[out.len() - tail.len()..], &tail[..]);
    // 3.9 adds the trailer: long lastProcessedZxid + seal 3.
    let mut out39 = Vec::new();
    serialize_snapshot(&mut out39, &t, &[], &SnapshotOptions::default()).unwrap();
    assert_eq!(&out39[..457], &out[..]);
    assert_eq!(out39.len(), 457 + 8 + 13);
    assert_eq!(&out39[457..465], &[0u8; 8]);
    assert_eq!(crate::storage::adler32(&out39[..465]) as i64, i64::from_be_bytes(out39[465..473].try_into().unwrap()));
}

#[test]
fn snapshot_round_trips_in_every_compression() {
    let d = TempDir::new();
    let mut s = Sim::new(&d.0.join("logs"), 0);
    workload(&mut s);
    for comp in [Compression::None, Compression::Gz, Compression::Snappy] {
        let opts = SnapshotOptions { compression: comp, ..Default::default() };
        let p = s.snapshot(&d.0, &opts);
        assert_eq!(p.file_name().unwrap().to_str().unwrap(), format!("snapshot.{:x}{}", s.zxid, comp.extension()));
        assert!(is_valid_snapshot(&p), "{comp:?}");
        let l = read_snapshot(&p, false).unwrap();
        assert_eq!(l.zxid, s.zxid);
        assert_eq!(l.tree.last_processed_zxid, s.zxid);
        assert_eq!(dump(&l.tree), dump(&s.tree));
        assert_eq!(l.tree.digest, s.tree.digest);
        assert_eq!(l.sessions, s.sessions());
        assert_eq!(l.digest, Some(ZxidDigest { zxid: s.zxid, version: 2, digest: s.tree.digest.value }));
        assert_eq!(l.trailer_zxid, Some(s.zxid));
        assert_eq!(l.tree.ephemerals_of(SessionId(0x0100_0070_6b88_0000)), vec!["/a/eph".to_string()]);
        let stats = l.tree.lookup("/zookeeper/quota/a/zookeeper_stats").unwrap();
        assert_eq!(l.tree.node(stats).data(), Some(&b"count=2,bytes=6"[..]));
        // Writing the loaded tree again gives the same bytes.
        let mut a = Vec::new();
        let mut b = Vec::new();
        serialize_snapshot(&mut a, &s.tree, &s.sessions(), &opts).unwrap();
        serialize_snapshot(&mut b, &l.tree, &l.sessions, &opts).unwrap();
        assert_eq!(a, b);
        std::fs::remove_file(&p).unwrap();
    }
    // No temp files left behind.
    assert!(std::fs::read_dir(&d.0).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp")));
}

/// A SNAP's stream arrives on the quorum socket followed by the leader's next packets: reading
/// it must consume exactly its bytes, whatever size the reader hands out, and nothing after.
#[test]
fn a_snap_stream_is_read_to_its_last_byte_and_no_further() {
    let d = TempDir::new();
    let mut s = Sim::new(&d.0.join("logs"), 0);
    workload(&mut s);
    let mut stream = Vec::new();
    write_snap_stream(&mut stream, &s.tree, &s.sessions());
    let next_packet = b"the next packet";
    let mut bytes = stream.clone();
    bytes.extend_from_slice(next_packet);
    /// Hands out at most 7 bytes per read, as a socket may.
    struct Trickle<'a>(&'a [u8]);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(7).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    for trickle in [false, true] {
        let (tree, sessions) = if trickle {
            let mut r = Trickle(&bytes);
            let got = read_snap_stream(&mut r, false).unwrap();
            assert_eq!(r.0, next_packet, "trickled");
            got
        } else {
            let mut r = &bytes[..];
            let got = read_snap_stream(&mut r, false).unwrap();
            assert_eq!(r, next_packet);
            got
        };
        assert_eq!(dump(&tree), dump(&s.tree));
        assert_eq!(sessions, s.sessions());
    }
}

#[test]
fn older_snapshot_layouts_load() {
    let d = TempDir::new();
    let mut s = Sim::new(&d.0.join("logs"), 0);
    workload(&mut s);
    // 3.8: no trailer. Pre-3.6: no digest section either.
    for (digest, trailer) in [(true, false), (false, false)] {
        let p = s.snapshot(&d.0, &SnapshotOptions { digest, last_processed_zxid: trailer, ..Default::default() });
        let l = read_snapshot(&p, false).unwrap();
        assert_eq!(dump(&l.tree), dump(&s.tree));
        assert_eq!(l.trailer_zxid, None);
        assert_eq!(l.digest.is_some(), digest);
    }
}

#[test]
fn snapshot_corruption_is_detected() {
    let d = TempDir::new();
    let mut s = Sim::new(&d.0.join("logs"), 0);
    workload(&mut s);
    let p = s.snapshot(&d.0, &SnapshotOptions::default());
    let good = std::fs::read(&p).unwrap();
    // A bit flip in node data: seal 1 fails.
    let at = good.windows(5).position(|w| w == b"world").unwrap();
    let mut b = good.clone();
    b[at] ^= 0x20;
    std::fs::write(&p, &b).unwrap();
    assert!(is_valid_snapshot(&p));
    match read_snapshot(&p, false) {
        Err(StorageError::Corrupt { file, reason, .. }) => {
            assert_eq!(file, p);
            assert!(reason.contains("CRC corruption (seal 1"), "{reason}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("bit flip not detected"),
    }
    // A bit flip in the digest section: seal 2 fails.
    let mut b = good.clone();
    let n = b.len();
    b[n - 8 - 13 - 13 - 3] ^= 1;
    std::fs::write(&p, &b).unwrap();
    assert!(matches!(read_snapshot(&p, false), Err(StorageError::Corrupt { ref reason, .. }) if reason.contains("seal 2")));
    // Truncated: fails Apache's quick check, and the parse.
    std::fs::write(&p, &good[..good.len() - 1]).unwrap();
    assert!(!is_valid_snapshot(&p));
    assert!(read_snapshot(&p, false).is_err());
    // gz with a flipped bit in the compressed stream.
    std::fs::remove_file(&p).unwrap();
    let p = s.snapshot(&d.0, &SnapshotOptions { compression: Compression::Gz, ..Default::default() });
    let mut b = std::fs::read(&p).unwrap();
    let n = b.len();
    b[n / 2] ^= 0x04;
    std::fs::write(&p, &b).unwrap();
    assert!(read_snapshot(&p, false).is_err());
}

#[test]
fn file_names_parse_as_apache() {
    assert_eq!(zxid_from_name("snapshot.1f", "snapshot"), Some(0x1f));
    assert_eq!(zxid_from_name("snapshot.1f.gz", "snapshot"), Some(0x1f));
    assert_eq!(zxid_from_name("log.100000001", "log"), Some(0x100000001));
    assert_eq!(zxid_from_name("log.xyz", "log"), None);
    assert_eq!(zxid_from_name(".snapshot.1f.tmp", "snapshot"), None);
    assert_eq!(zxid_from_name("snapshot", "snapshot"), None);
    assert_eq!(Compression::from_file_name("snapshot.1f.gz"), Compression::Gz);
    assert_eq!(Compression::from_file_name("snapshot.1f.snappy"), Compression::Snappy);
    assert_eq!(Compression::from_file_name("snapshot.1f"), Compression::None);
    assert!(Compression::from_config("lz4").is_err());
}

#[test]
fn restore_replays_logs_after_the_snapshot() {
    let d = TempDir::new();
    let (snap, logs) = (d.0.join("snap"), d.0.join("logs"));
    let mut s = Sim::new(&logs, 64 * 1024);
    s.snapshot(&snap, &SnapshotOptions::default()); // snapshot.0
    s.create(1, "/early", b"1", open_acl_unsafe(), false);
    workload(&mut s);
    s.log.sync().unwrap();
    // A fuzzy-ish middle snapshot: taken at the current state, then more txns follow.
    let mid = s.snapshot(&snap, &SnapshotOptions { compression: Compression::Gz, ..Default::default() });
    s.log.roll().unwrap();
    s.create(0x0100_0070_6b88_0000, "/late", b"2", open_acl_unsafe(), true);
    s.txn(0x0200_0000_0000_0001, Txn::CreateSession { timeout: 9000 });
    s.log.sync().unwrap();

    let r = restore(&snap, &logs).unwrap();
    assert_eq!(r.last_zxid, s.zxid);
    assert_eq!(dump(&r.tree), dump(&s.tree));
    assert_eq!(r.tree.digest, s.tree.digest);
    assert_eq!(r.sessions, s.sessions());
    assert_eq!(r.snapshot.as_ref().unwrap().path, mid);
    assert_eq!(r.txns_replayed, 2);
    assert_eq!(r.digest_mismatches, 0);
    assert!(r.torn_tail.is_none());
    assert_eq!(r.files_used.len(), 3); // snapshot, the log covering it, the new log

    // A corrupt newest snapshot: the older one is used and the whole log replayed.
    let mut b = std::fs::read(&mid).unwrap();
    let n = b.len();
    b[n / 2] ^= 0xff;
    std::fs::write(&mid, &b).unwrap();
    let r = restore(&snap, &logs).unwrap();
    assert_eq!(r.skipped_snapshots.len(), 1);
    assert_eq!(r.skipped_snapshots[0].0, mid);
    assert_eq!(r.snapshot.as_ref().unwrap().zxid, 0);
    assert_eq!(dump(&r.tree), dump(&s.tree));
    assert_eq!(r.sessions, s.sessions());
    assert_eq!(r.digest_mismatches, 0);

    // A torn tail is reported and cut.
    let last = list_files(&logs, LOG_PREFIX).unwrap().last().unwrap().1.clone();
    let len = std::fs::metadata(&last).unwrap().len();
    drop(s);
    let data = std::fs::read(&last).unwrap();
    // Find the end of real data (before the zero padding) and cut 5 bytes off it.
    let mut rd = TxnLogReader::with_files(vec![(0, last.clone())], -1);
    let mut last_off = 0;
    while let Some(e) = rd.next_entry().unwrap() {
        last_off = e.offset;
    }
    assert!(len > last_off);
    std::fs::write(&last, &data[..last_off as usize + 20]).unwrap();
    let r = restore(&snap, &logs).unwrap();
    assert_eq!(r.truncated, Some((last.clone(), last_off)));
    assert_eq!(r.torn_tail.as_ref().unwrap().offset, last_off);
    assert_eq!(std::fs::metadata(&last).unwrap().len(), last_off);
    let r2 = restore(&snap, &logs).unwrap();
    assert!(r2.torn_tail.is_none());
    assert_eq!(r2.last_zxid, r.last_zxid);
}

#[test]
fn restore_without_snapshot() {
    let d = TempDir::new();
    let (snap, logs) = (d.0.join("snap"), d.0.join("logs"));
    // Neither: an empty tree.
    let r = restore(&snap, &logs).unwrap();
    assert_eq!(r.last_zxid, 0);
    assert_eq!(r.tree.reported_node_count(), 5);
    assert!(r.snapshot.is_none());
    // Logs but no snapshot: refused unless trusted.
    let mut s = Sim::new(&logs, 0);
    workload(&mut s);
    s.log.sync().unwrap();
    assert!(matches!(restore(&snap, &logs), Err(StorageError::LogsWithoutSnapshot { .. })));
    let r = restore_with(&snap, &logs, &RestoreOptions { trust_empty_snapshot: true, ..Default::default() }).unwrap();
    assert_eq!(dump(&r.tree), dump(&s.tree));
    // Snapshots that are all bad: an error, never an empty tree.
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::write(snap.join("snapshot.5"), b"garbage garbage").unwrap();
    assert!(matches!(restore(&snap, &logs), Err(StorageError::NoValidSnapshot { .. })));
}

#[test]
fn purge_keeps_the_newest_snapshots_and_the_logs_they_need() {
    let d = TempDir::new();
    let dir = &d.0;
    let touch = |name: &str, body: &[u8]| std::fs::write(dir.join(name), body).unwrap();
    let mut valid = vec![0u8; 10];
    valid.extend_from_slice(&[0, 0, 0, 1, b'/']);
    for z in ["10", "20", "30", "40", "50"] {
        touch(&format!("snapshot.{z}"), &valid);
    }
    touch("snapshot.45", b"bad"); // fails the quick check: not counted, newer than the cut, kept
    for z in ["1", "15", "25", "28", "35", "45"] {
        touch(&format!("log.{z}"), b"x");
    }
    touch("other.1", b"x");
    assert!(matches!(purge(dir, dir, 2), Err(StorageError::InvalidArgument(_))));
    let mut deleted: Vec<String> = purge(dir, dir, 3).unwrap().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    deleted.sort();
    // Oldest kept snapshot: 0x30; the newest log starting at or before it is log.28.
    assert_eq!(deleted, vec!["log.1", "log.15", "log.25", "snapshot.10", "snapshot.20"]);
    let mut left: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, vec!["log.28", "log.35", "log.45", "other.1", "snapshot.30", "snapshot.40", "snapshot.45", "snapshot.50"]);
}

#[test]
fn digest_mismatches_are_counted_not_fatal() {
    let d = TempDir::new();
    let (snap, logs) = (d.0.join("snap"), d.0.join("logs"));
    let mut s = Sim::new(&logs, 0);
    s.snapshot(&snap, &SnapshotOptions::default());
    s.create(1, "/a", b"x", open_acl_unsafe(), false);
    // A txn whose logged digest is wrong (as from a diverged leader).
    s.zxid += 1;
    let hdr = TxnHeader { client_id: 1, cxid: 0, zxid: s.zxid, time: 9, txn_type: 1 };
    let txn = Txn::Create { create2: false, path: "/b".into(), data: None, acl: open_acl_unsafe(), ephemeral: false, parent_cversion: 2 };
    s.tree.apply(&hdr, &txn, &mut Vec::new());
    s.log.append(&hdr, &txn, Some(12345)).unwrap();
    s.create(1, "/c", b"x", open_acl_unsafe(), false);
    s.log.sync().unwrap();
    let r = restore(&snap, &logs).unwrap();
    assert_eq!((r.digest_mismatches, r.first_digest_mismatch), (1, Some(2)));
    assert_eq!(dump(&r.tree), dump(&s.tree));
    // A snapshot whose digest section disagrees with its nodes is counted too.
    let mut t = DataTree::new();
    t.apply(&TxnHeader { client_id: 1, cxid: 0, zxid: 7, time: 1, txn_type: 1 }, &Txn::Create { create2: false, path: "/q".into(), data: None, acl: open_acl_unsafe(), ephemeral: false, parent_cversion: 1 }, &mut Vec::new());
    t.digest.value ^= 1;
    let snap2 = d.0.join("snap2");
    write_snapshot(&snap2, &t, &[], &SnapshotOptions::default()).unwrap();
    let r = restore(&snap2, &d.0.join("nologs")).unwrap();
    assert_eq!((r.digest_mismatches, r.first_digest_mismatch), (1, Some(7)));
}

/// A fuzzy snapshot taken while writes go on, plus replay of the txns after its start zxid,
/// gives exactly the tree the writes produced.
#[test]
fn fuzzy_snapshot_plus_replay_is_exact() {
    use std::cell::RefCell;
    let mut txns: Vec<(TxnHeader, Txn)> = Vec::new();
    let mk = |zxid: i64, txn: Txn| (TxnHeader { client_id: 7, cxid: 1, zxid, time: 1000 + zxid, txn_type: txn.type_code() }, txn);
    let create = |p: String, pcv: i32| Txn::Create { create2: false, path: p, data: Some(b"d".to_vec()), acl: open_acl_unsafe(), ephemeral: false, parent_cversion: pcv };
    let mut z = 0;
    // 300 nodes under /a, then concurrent changes: deletes, re-creates, setData, setACL.
    z += 1;
    txns.push(mk(z, create("/a".into(), 1)));
    for i in 0..300 {
        z += 1;
        txns.push(mk(z, create(format!("/a/n{i}"), i + 1)));
    }
    let prefix = txns.len();
    let readers = vec![Acl { perms: 1, id: Id { scheme: "world".into(), id: "anyone".into() } }];
    for i in 0..100 {
        z += 1;
        let t = match i % 4 {
            0 => Txn::Delete { container: false, path: format!("/a/n{}", i * 3) },
            1 => create(format!("/a/m{i}"), 301 + i),
            2 => Txn::SetData { reconfig: false, path: format!("/a/n{}", i * 2 + 1), data: Some(vec![b'x'; i as usize]), version: 1 },
            _ => Txn::SetAcl { path: format!("/a/n{}", i * 2 + 1), acl: readers.clone(), version: 1 },
        };
        txns.push(mk(z, t));
    }
    let mut live = DataTree::new();
    for (h, t) in &txns[..prefix] {
        live.apply(h, t, &mut Vec::new());
    }
    let start_zxid = live.last_processed_zxid;
    let live = RefCell::new(live);
    let next = RefCell::new(prefix);
    let dir = TempDir::new();
    // Each time the snapshot takes the lock, two more txns have been applied "meanwhile".
    let path = write_snapshot_fuzzy(
        &dir.0,
        start_zxid,
        &[],
        || {
            let mut t = live.borrow_mut();
            for _ in 0..2 {
                let mut n = next.borrow_mut();
                if *n < txns.len() {
                    let (h, tx) = &txns[*n];
                    t.apply(h, tx, &mut Vec::new());
                    *n += 1;
                }
            }
            drop(t);
            live.borrow()
        },
        &SnapshotOptions::default(),
        16,
    )
    .unwrap();
    assert!(*next.borrow() > prefix + 10, "writes interleaved with the snapshot");
    let mut loaded = read_snapshot(&path, false).unwrap().tree;
    for (h, t) in txns.iter().filter(|(h, _)| h.zxid > start_zxid) {
        loaded.apply(h, t, &mut Vec::new());
    }
    let mut reference = DataTree::new();
    for (h, t) in &txns {
        reference.apply(h, t, &mut Vec::new());
    }
    assert_eq!(dump(&loaded), dump(&reference));
    assert_eq!(loaded.digest, reference.digest);
}

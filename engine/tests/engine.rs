//! Behaviour of the engine wrapper: atomic batches across column families, snapshot
//! isolation, iterator order and bounds, durability across reopen, and errors (never panics)
//! for bad input.

use engine::{keys, Cf, DbIterator, Durability, Engine, EngineOptions, Engines, Error, WriteBatch};
use protobuf::Message;

fn open(dir: &tempfile::TempDir) -> Engine {
    Engine::open(dir.path(), Cf::KV_ENGINE, &EngineOptions::for_tests()).unwrap()
}

fn collect(it: &mut DbIterator) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some((k, v)) = it.item() {
        out.push((k.to_vec(), v.to_vec()));
        it.next();
    }
    it.status().unwrap();
    out
}

fn keys_of(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<Vec<u8>> {
    pairs.iter().map(|(k, _)| k.clone()).collect()
}

#[test]
fn column_families_are_separate_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(&dir);
    e.put_cf(Cf::Default, b"k", b"d").unwrap();
    e.put_cf(Cf::Write, b"k", b"w").unwrap();
    assert_eq!(e.get_cf(Cf::Default, b"k").unwrap().unwrap().to_vec(), b"d");
    assert_eq!(e.get_cf(Cf::Write, b"k").unwrap().unwrap().to_vec(), b"w");
    assert_eq!(e.get_cf(Cf::Lock, b"k").unwrap(), None);
    e.delete_cf(Cf::Default, b"k").unwrap();
    assert_eq!(e.get_cf(Cf::Default, b"k").unwrap(), None);
    assert!(e.get_cf(Cf::Write, b"k").unwrap().is_some());
    // Deleting an absent key is fine.
    e.delete_cf(Cf::Lock, b"absent").unwrap();
}

#[test]
fn batch_spans_cfs_and_later_ops_win() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(&dir);
    let mut wb = WriteBatch::new();
    wb.put_cf(Cf::Default, b"a", b"1").unwrap();
    wb.put_cf(Cf::Lock, b"a", b"2").unwrap();
    wb.put_cf(Cf::Write, b"a", b"3").unwrap();
    wb.put_cf(Cf::Default, b"b", b"x").unwrap();
    wb.delete_cf(Cf::Default, b"b").unwrap();
    wb.put_cf(Cf::Default, b"c", b"old").unwrap();
    wb.put_cf(Cf::Default, b"c", b"new").unwrap();
    assert_eq!(wb.len(), 7);
    e.write(wb, Durability::Sync).unwrap();
    assert_eq!(&*e.get_cf(Cf::Default, b"a").unwrap().unwrap(), b"1");
    assert_eq!(&*e.get_cf(Cf::Lock, b"a").unwrap().unwrap(), b"2");
    assert_eq!(&*e.get_cf(Cf::Write, b"a").unwrap().unwrap(), b"3");
    assert_eq!(e.get_cf(Cf::Default, b"b").unwrap(), None);
    assert_eq!(&*e.get_cf(Cf::Default, b"c").unwrap().unwrap(), b"new");
}

/// A reader running beside a writer never sees half a batch: every snapshot sees the two
/// column families of each batch at the same generation.
#[test]
fn snapshots_see_batches_whole_across_cfs() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(&dir);
    let writer = {
        let e = e.clone();
        std::thread::spawn(move || {
            for gen in 0u32..2000 {
                let mut wb = WriteBatch::new();
                wb.put_cf(Cf::Default, b"x", &gen.to_be_bytes()).unwrap();
                wb.put_cf(Cf::Write, b"y", &gen.to_be_bytes()).unwrap();
                e.write(wb, Durability::Buffered).unwrap();
            }
        })
    };
    let mut checks = 0;
    while !writer.is_finished() || checks == 0 {
        let snap = e.snapshot().unwrap();
        let x = snap.get_cf(Cf::Default, b"x").unwrap().map(Vec::from);
        let y = snap.get_cf(Cf::Write, b"y").unwrap().map(Vec::from);
        assert_eq!(x, y, "a snapshot saw half of a batch");
        checks += 1;
    }
    writer.join().unwrap();
    assert!(checks > 0);
}

#[test]
fn a_batch_with_a_bad_key_is_refused_where_it_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(&dir);
    let mut wb = WriteBatch::new();
    wb.put_cf(Cf::Default, b"good", b"v").unwrap();
    assert!(matches!(
        wb.put_cf(Cf::Default, b"", b"v"),
        Err(Error::EmptyKey)
    ));
    let huge = vec![7u8; 70_000];
    assert!(matches!(
        wb.put_cf(Cf::Default, &huge, b"v"),
        Err(Error::KeyTooLarge(70_000))
    ));
    assert!(matches!(
        wb.delete_cf(Cf::Default, b""),
        Err(Error::EmptyKey)
    ));
    assert!(matches!(
        e.get_cf(Cf::Default, &huge),
        Err(Error::KeyTooLarge(_))
    ));
    assert_eq!(wb.len(), 1, "refused operations are not added");
}

#[test]
fn a_cf_the_engine_did_not_open_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let raft = Engine::open(dir.path(), Cf::RAFT_ENGINE, &EngineOptions::for_tests()).unwrap();
    assert!(matches!(
        raft.get_cf(Cf::Lock, b"k"),
        Err(Error::CfNotOpen(Cf::Lock))
    ));
    let mut wb = WriteBatch::new();
    wb.put_cf(Cf::Raft, b"ok", b"1").unwrap();
    wb.put_cf(Cf::Default, b"k", b"v").unwrap();
    assert!(matches!(
        raft.write(wb, Durability::Sync),
        Err(Error::CfNotOpen(Cf::Default))
    ));
    assert_eq!(
        raft.get_cf(Cf::Raft, b"ok").unwrap(),
        None,
        "nothing of a refused batch lands"
    );
    assert!(matches!(Cf::from_client("nope"), Err(Error::UnknownCf(_))));
}

#[test]
fn snapshot_is_isolated_from_later_writes() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(&dir);
    for i in 1u8..=4 {
        e.put_cf(Cf::Default, &[i], &[233, i]).unwrap();
    }
    let snap = e.snapshot().unwrap();
    let mut it = snap.iter_cf(Cf::Default, b"", None).unwrap();
    e.delete_cf(Cf::Default, &[3]).unwrap();
    e.put_cf(Cf::Default, &[2], b"changed").unwrap();
    e.put_cf(Cf::Default, &[5], b"new").unwrap();
    it.seek(&[1]);
    let got = collect(&mut it);
    assert_eq!(keys_of(&got), vec![vec![1], vec![2], vec![3], vec![4]]);
    assert_eq!(got[1].1, vec![233, 2]);
    assert_eq!(
        &*snap.get_cf(Cf::Default, &[3]).unwrap().unwrap(),
        &[233, 3]
    );
    assert_eq!(snap.get_cf(Cf::Default, &[5]).unwrap(), None);
    // The live engine sees the new state.
    let mut live = e.iter_cf(Cf::Default, b"", None).unwrap();
    live.seek_to_first();
    assert_eq!(
        keys_of(&collect(&mut live)),
        vec![vec![1], vec![2], vec![4], vec![5]]
    );
}

#[test]
fn iterators_are_ordered_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(&dir);
    // Inserted out of order, with keys that sort differently as strings and as numbers.
    for k in [&b"b"[..], b"a", b"ab", b"\x00", b"\xff", b"ba", b"c"] {
        e.put_cf(Cf::Default, k, k).unwrap();
    }
    e.put_cf(Cf::Write, b"aa", b"other cf").unwrap();
    let all = {
        let mut it = e.iter_cf(Cf::Default, b"", None).unwrap();
        it.seek_to_first();
        keys_of(&collect(&mut it))
    };
    let expect: Vec<Vec<u8>> = [&b"\x00"[..], b"a", b"ab", b"b", b"ba", b"c", b"\xff"]
        .iter()
        .map(|k| k.to_vec())
        .collect();
    assert_eq!(all, expect);

    let mut it = e.iter_cf(Cf::Default, b"ab", Some(b"c")).unwrap();
    it.seek_to_first();
    assert_eq!(
        keys_of(&collect(&mut it)),
        vec![b"ab".to_vec(), b"b".to_vec(), b"ba".to_vec()]
    );
    // Seek between keys lands on the next one; seek below the lower bound clamps to it.
    it.seek(b"aa");
    assert_eq!(it.key(), Some(&b"ab"[..]));
    it.seek(b"b\x00");
    assert_eq!(it.key(), Some(&b"ba"[..]));
    it.seek(b"bb");
    assert!(!it.valid(), "nothing between bb and the bound c");
    it.seek(b"");
    assert_eq!(it.key(), Some(&b"ab"[..]));
    it.seek(b"c");
    assert!(!it.valid(), "the upper bound is exclusive");
    it.seek(b"zzz");
    assert!(!it.valid());
    assert_eq!(it.item(), None);
    // next past the end stays invalid.
    it.next();
    assert!(!it.valid());
}

#[test]
fn take_pairs_and_scan_respect_limits() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(&dir);
    for i in 0u8..10 {
        e.put_cf(Cf::Default, &[i + 1], &[i]).unwrap();
    }
    let snap = e.snapshot().unwrap();
    let mut it = snap.iter_cf(Cf::Default, b"", None).unwrap();
    it.seek(&[3]);
    let first = it.take_pairs(4).unwrap();
    assert_eq!(keys_of(&first), vec![vec![3], vec![4], vec![5], vec![6]]);
    assert_eq!(it.take_pairs(0).unwrap(), vec![]);
    assert_eq!(it.take_pairs(100).unwrap().len(), 4);
    let mut seen = vec![];
    snap.scan_cf(Cf::Default, &[2], Some(&[9]), |k, _| {
        seen.push(k[0]);
        seen.len() < 3
    })
    .unwrap();
    assert_eq!(seen, vec![2, 3, 4]);
}

#[test]
fn delete_range_removes_exactly_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(&dir);
    for region in [1u64, 2] {
        for idx in 0..50u64 {
            e.put_cf(Cf::Raft, &keys::raft_log_key(region, idx), b"entry")
                .unwrap();
        }
        e.put_cf(Cf::Raft, &keys::raft_state_key(region), b"state")
            .unwrap();
    }
    let (start, end) = keys::raft_log_range(1, 10, 40);
    assert_eq!(
        e.delete_range_cf(Cf::Raft, &start, &end, Durability::Sync)
            .unwrap(),
        30
    );
    for idx in 0..50u64 {
        let present = e
            .get_cf(Cf::Raft, &keys::raft_log_key(1, idx))
            .unwrap()
            .is_some();
        assert_eq!(present, !(10..40).contains(&idx), "index {idx}");
        assert!(e
            .get_cf(Cf::Raft, &keys::raft_log_key(2, idx))
            .unwrap()
            .is_some());
    }
    assert!(e
        .get_cf(Cf::Raft, &keys::raft_state_key(1))
        .unwrap()
        .is_some());

    // The batch form commits together with the rest of the batch.
    let mut wb = WriteBatch::new();
    let (start, end) = keys::raft_log_range(2, 0, u64::MAX);
    assert_eq!(
        e.delete_range_to_batch(Cf::Raft, &start, &end, &mut wb)
            .unwrap(),
        50
    );
    wb.put_cf(Cf::Raft, &keys::raft_state_key(2), b"cleared")
        .unwrap();
    assert!(e
        .get_cf(Cf::Raft, &keys::raft_log_key(2, 0))
        .unwrap()
        .is_some());
    e.write(wb, Durability::Sync).unwrap();
    assert!(e
        .get_cf(Cf::Raft, &keys::raft_log_key(2, 0))
        .unwrap()
        .is_none());
    assert_eq!(
        &*e.get_cf(Cf::Raft, &keys::raft_state_key(2))
            .unwrap()
            .unwrap(),
        b"cleared"
    );
}

#[test]
fn reopen_keeps_synced_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engines = Engines::open(dir.path(), &EngineOptions::for_tests()).unwrap();
        let mut wb = WriteBatch::new();
        wb.put_cf(Cf::Raft, &keys::raft_log_key(1, 6), b"entry 6")
            .unwrap();
        engines.raft.write(wb, Durability::Sync).unwrap();
        engines.kv.put_cf(Cf::Default, b"user", b"value").unwrap();
        engines.kv.sync().unwrap();
    }
    let engines = Engines::open(dir.path(), &EngineOptions::for_tests()).unwrap();
    assert_eq!(
        &*engines
            .raft
            .get_cf(Cf::Raft, &keys::raft_log_key(1, 6))
            .unwrap()
            .unwrap(),
        b"entry 6"
    );
    assert_eq!(
        &*engines.kv.get_cf(Cf::Default, b"user").unwrap().unwrap(),
        b"value"
    );
    let path = engines.path().to_path_buf();
    engines.destroy().unwrap();
    assert!(!path.exists());
}

#[test]
fn a_closed_engine_refuses_everything_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(&dir);
    e.put_cf(Cf::Default, b"k", b"v").unwrap();
    let snap = e.snapshot().unwrap();
    let mut it = snap.iter_cf(Cf::Default, b"", None).unwrap();
    e.close().unwrap();
    e.close().unwrap();
    assert!(matches!(e.get_cf(Cf::Default, b"k"), Err(Error::Closed)));
    assert!(matches!(
        e.put_cf(Cf::Default, b"k", b"v"),
        Err(Error::Closed)
    ));
    assert!(matches!(e.snapshot(), Err(Error::Closed)));
    assert!(matches!(e.sync(), Err(Error::Closed)));
    assert!(matches!(snap.get_cf(Cf::Default, b"k"), Err(Error::Closed)));
    it.seek_to_first();
    assert!(!it.valid());
    assert!(matches!(it.status(), Err(Error::Closed)));
}

#[test]
fn protobuf_values_round_trip_and_corruption_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(&dir);
    let mut state = raft_proto::eraftpb::HardState::new();
    state.term = 5;
    state.commit = 5;
    let key = keys::raft_state_key(1);
    let mut wb = WriteBatch::new();
    wb.put_msg_cf(Cf::Raft, &key, &state).unwrap();
    e.write(wb, Durability::Sync).unwrap();
    let back: raft_proto::eraftpb::HardState = e.get_msg_cf(Cf::Raft, &key).unwrap().unwrap();
    assert_eq!(back, state);
    assert_eq!(
        state.write_to_bytes().unwrap(),
        e.get_cf(Cf::Raft, &key).unwrap().unwrap().to_vec()
    );
    let missing: Option<raft_proto::eraftpb::HardState> =
        e.get_msg_cf(Cf::Raft, &keys::raft_state_key(2)).unwrap();
    assert_eq!(missing, None);

    // A truncated varint and a bad wire type both fail to decode.
    for garbage in [&[0x08u8, 0xff][..], &[0x0f, 0x01]] {
        e.put_cf(Cf::Raft, &key, garbage).unwrap();
        let err = e
            .get_msg_cf::<raft_proto::eraftpb::HardState>(Cf::Raft, &key)
            .unwrap_err();
        assert!(
            matches!(&err, Error::Decode { key: k, .. } if k == &key.to_vec()),
            "{err}"
        );
        let snap = e.snapshot().unwrap();
        assert!(matches!(
            snap.get_msg_cf::<raft_proto::eraftpb::HardState>(Cf::Raft, &key),
            Err(Error::Decode { .. })
        ));
    }
}

/// An observed operation, owned: `(cf, key, value)`.
type SeenOp = (Cf, Vec<u8>, Option<Vec<u8>>);

/// Records what it sees, one list of operations per batch.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<Vec<SeenOp>>>);

impl engine::WriteObserver for Recorder {
    fn on_write(&self, batch: &WriteBatch) {
        let ops = batch
            .ops()
            .map(|op| (op.cf, op.key.to_vec(), op.value.map(<[u8]>::to_vec)))
            .collect();
        self.0.lock().unwrap().push(ops);
    }
}

#[test]
fn a_write_observer_sees_every_batch_in_order_once() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(&dir);
    e.put_cf(Cf::Default, b"before", b"x").unwrap(); // written before the observer: unseen
    let rec = std::sync::Arc::new(Recorder::default());
    e.set_write_observer(rec.clone()).unwrap();
    assert!(matches!(
        e.set_write_observer(rec.clone()),
        Err(Error::ObserverInstalled)
    ));

    let mut wb = WriteBatch::new();
    wb.put_cf(Cf::Default, b"a", b"1").unwrap();
    wb.delete_cf(Cf::Write, b"b").unwrap();
    e.write(wb, Durability::Sync).unwrap();
    e.write(WriteBatch::new(), Durability::Sync).unwrap(); // empty: nothing to see
    e.delete_cf(Cf::Lock, b"c").unwrap();

    let seen = rec.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            vec![
                (Cf::Default, b"a".to_vec(), Some(b"1".to_vec())),
                (Cf::Write, b"b".to_vec(), None),
            ],
            vec![(Cf::Lock, b"c".to_vec(), None)],
        ]
    );
    // The observed batches did commit.
    assert_eq!(
        e.get_cf(Cf::Default, b"a").unwrap().as_deref(),
        Some(&b"1"[..])
    );
}

/// Every pair of `cf` an engine (or snapshot) holds now.
fn all_pairs(e: &Engine, cf: Cf) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut it = e.iter_cf(cf, b"", None).unwrap();
    it.seek_to_first();
    collect(&mut it)
}

#[test]
fn compaction_drops_dead_versions_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), Cf::KV_ENGINE, &EngineOptions::for_simulation()).unwrap();
    for round in 0..3 {
        for j in 0..50u32 {
            e.put_cf(
                Cf::Default,
                &j.to_be_bytes(),
                format!("v{round}").as_bytes(),
            )
            .unwrap();
        }
        if round < 2 {
            for j in 0..50u32 {
                e.delete_cf(Cf::Default, &j.to_be_bytes()).unwrap();
            }
        }
    }
    e.put_cf(Cf::Write, b"w", b"1").unwrap();
    let snap = e.snapshot().unwrap();
    let before = all_pairs(&e, Cf::Default);
    assert_eq!(before.len(), 50);
    e.delete_cf(Cf::Default, &7u32.to_be_bytes()).unwrap();

    e.compact_cf(Cf::Default).unwrap();
    e.compact_cf(Cf::Raft).unwrap(); // empty: nothing to do, no error

    let after = all_pairs(&e, Cf::Default);
    assert_eq!(after.len(), 49);
    assert!(after.iter().all(|(_, v)| v == b"v2"));
    assert!(!after.iter().any(|(k, _)| k == &7u32.to_be_bytes()));
    // A snapshot taken before still sees its data (its versions were kept).
    let mut it = snap.iter_cf(Cf::Default, b"", None).unwrap();
    it.seek_to_first();
    assert_eq!(collect(&mut it), before);
    assert_eq!(
        e.get_cf(Cf::Write, b"w").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    // A crash after the compaction still rolls back exactly the unsynced writes.
    assert!(e.simulate_crash().unwrap() > 0);
    assert!(all_pairs(&e, Cf::Default).is_empty());
    assert_eq!(e.get_cf(Cf::Write, b"w").unwrap(), None);
}

//! Stage 2c, peer storage: taking in a snapshot from raft's `Ready`
//! (`PeerStorage::apply_snapshot`, called by `save_ready_state`), checked through the
//! public API and the engines alone.
//!
//! The original course has no unit test of this code: its only checks are the cluster tests,
//! where a wrong raft state or a stale region shows up, if at all, as a hang or a mismatch
//! long after the cause. These pin down what the peer storage must have persisted when
//! `save_ready_state` returns.

use engine::{Cf, Durability, EngineOptions, Engines, WriteBatch};
use proto::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use proto::metapb::{Region, RegionEpoch};
use proto::raft_serverpb::{PeerState, RaftSnapshotData, SnapshotCFFile};
use protobuf::Message as _;
use raft::{Ready, Storage, StorageError};
use raftstore::{bootstrap, meta, PeerStorage};

fn open() -> (tempfile::TempDir, Engines) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let engines = Engines::open(dir.path(), &EngineOptions::for_tests()).expect("engines open");
    (dir, engines)
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: vec![1].into(),
        ..Default::default()
    }
}

/// The region log keys the raft engine holds for region 1.
fn stored_log(engines: &Engines) -> Vec<u64> {
    meta::raft_log_indexes(&engines.raft, 1).expect("scan the raft log")
}

/// A raft snapshot of `region` at (`index`, `term`) whose data describes an (empty) file,
/// as the framework's generation would: the file itself is not the peer storage's business.
fn snapshot_of(region: &Region, index: u64, term: u64) -> Snapshot {
    let mut data = RaftSnapshotData::default();
    data.set_region(region.clone());
    data.file_size = 0;
    for cf in ["default", "lock", "write"] {
        data.mut_meta().mut_cf_files().push(SnapshotCFFile {
            cf: cf.to_owned(),
            size: 0,
            checksum: 0,
            ..Default::default()
        });
    }
    let mut meta = SnapshotMetadata {
        index,
        term,
        ..Default::default()
    };
    meta.set_conf_state(ConfState {
        voters: region.get_peers().iter().map(|p| p.id).collect(),
        ..Default::default()
    });
    let mut snap = Snapshot::default();
    snap.set_metadata(meta);
    snap.data = data.write_to_bytes().expect("encode snapshot data").into();
    snap
}

/// A peer whose region `["", "")` holds data in every column family and whose log holds
/// entries 6..=10 (term 6) receives a snapshot at (20, 7) of a narrower, newer region
/// `["b", "m")`. When `save_ready_state` returns:
/// - the raft state (cached and persisted) has last index/term (20, 7) and the ready's hard
///   state; the storage's first index is 21 and `term(20)` is 7;
/// - the apply state (cached and persisted) has applied = truncated = (20, 7);
/// - the region state is persisted as `Applying` with the snapshot's region, which is also
///   the storage's region now;
/// - every old log entry is deleted from the raft engine;
/// - every key of every data column family outside the new range is deleted;
/// - a restart over the same engines loads the same states.
///
/// A student mistake each bullet catches: forgetting to persist one of the states (the
/// cluster tests see it only after a crash, if at all), keeping the old log (a restart then
/// reads entries that contradict the snapshot), leaving the truncated state behind (raft asks
/// storage for entries it does not have), or keeping data the region gave up.
#[test]
fn peer_storage_apply_snapshot_2c() {
    let (_dir, engines) = open();
    bootstrap::bootstrap_store(&engines, 1, 1).expect("bootstrap store");
    let region = bootstrap::prepare_bootstrap(&engines, 1, 1, 1).expect("bootstrap region");
    let mut ps = PeerStorage::new(engines.clone(), region.clone(), "[region 1] 1".into())
        .expect("peer storage");

    // The log 6..=10, committed to 8.
    let rd = Ready {
        entries: (6..=10).map(|i| entry(i, 6)).collect(),
        hard_state: Some(HardState {
            term: 6,
            vote: 1,
            commit: 8,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(ps.save_ready_state(&rd).expect("save entries").is_none());
    assert_eq!(stored_log(&engines), vec![6, 7, 8, 9, 10]);
    // Data inside and outside the snapshot's future range, in every data column family.
    let mut wb = WriteBatch::new();
    for cf in Cf::DATA {
        for key in [&b"a"[..], b"a9", b"c", b"m", b"z"] {
            wb.put_cf(*cf, key, b"old").expect("put");
        }
    }
    engines.kv.write(wb, Durability::Sync).expect("write data");

    let mut new_region = region.clone();
    new_region.start_key = b"b".to_vec();
    new_region.end_key = b"m".to_vec();
    new_region.set_region_epoch(RegionEpoch {
        conf_ver: 1,
        version: 2,
        ..Default::default()
    });
    let snap = snapshot_of(&new_region, 20, 7);
    let hs = HardState {
        term: 7,
        vote: 0,
        commit: 20,
        ..Default::default()
    };
    let rd = Ready {
        snapshot: Some(snap),
        hard_state: Some(hs.clone()),
        ..Default::default()
    };
    let applied = ps
        .save_ready_state(&rd)
        .expect("save the snapshot")
        .expect("save_ready_state returns what the snapshot changed");
    assert_eq!(applied.region, new_region, "the snapshot's region");
    assert_eq!(
        applied.prev_region, region,
        "the region before the snapshot"
    );
    assert_eq!(
        (applied.key.region_id, applied.key.index, applied.key.term),
        (1, 20, 7)
    );

    // Raft state, cached and persisted.
    let raft_state = meta::raft_local_state(&engines.raft, 1)
        .expect("read raft state")
        .expect("a raft state");
    assert_eq!((raft_state.last_index, raft_state.last_term), (20, 7));
    assert_eq!(raft_state.get_hard_state(), &hs);
    assert_eq!(ps.raft_state(), &raft_state, "the cache equals the disk");
    assert_eq!((ps.last_index(), ps.last_term()), (20, 7));
    assert_eq!(Storage::first_index(&ps).expect("first index"), 21);
    assert_eq!(Storage::term(&ps, 20).expect("term of the snapshot"), 7);
    assert!(
        matches!(
            Storage::entries(&ps, 10, 11),
            Err(raft::Error::Store(StorageError::Compacted))
        ),
        "entries the snapshot covers are compacted"
    );

    // Apply state, cached and persisted.
    let apply = meta::apply_state(&engines.kv, 1)
        .expect("read apply state")
        .expect("an apply state");
    assert_eq!(apply.applied_index, 20);
    let t = apply.get_truncated_state();
    assert_eq!((t.index, t.term), (20, 7));
    assert_eq!(ps.apply_state(), &apply, "the cache equals the disk");

    // Region state: Applying with the snapshot's region.
    let state = meta::region_local_state(&engines.kv, 1)
        .expect("read region state")
        .expect("a region state");
    assert_eq!(state.get_state(), PeerState::Applying);
    assert_eq!(state.get_region(), &new_region);
    assert_eq!(ps.region(), &new_region);

    // The old log is gone.
    assert_eq!(stored_log(&engines), Vec::<u64>::new(), "old log entries");

    // Data outside ["b", "m") is gone in every column family.
    for cf in Cf::DATA {
        for key in [&b"a"[..], b"a9", b"m", b"z"] {
            assert_eq!(
                engines.kv.get_cf(*cf, key).expect("read"),
                None,
                "{cf}: {:?} is outside the new range",
                String::from_utf8_lossy(key)
            );
        }
    }

    // A restart reads the same states back.
    drop(ps);
    let again = PeerStorage::new(engines.clone(), new_region.clone(), "[region 1] 1".into())
        .expect("restart");
    assert_eq!(again.raft_state(), &raft_state);
    assert_eq!(again.apply_state(), &apply);
    assert_eq!(Storage::first_index(&again).expect("first index"), 21);
}

/// A snapshot whose region is the peer's own range keeps all of the region's data until the
/// data application replaces it (nothing is outside the range), and a log longer than the
/// snapshot (entries past its index) is deleted too: the snapshot replaces the whole log.
#[test]
fn peer_storage_apply_snapshot_replaces_a_longer_log_2c() {
    let (_dir, engines) = open();
    bootstrap::bootstrap_store(&engines, 1, 1).expect("bootstrap store");
    let region = bootstrap::prepare_bootstrap(&engines, 1, 1, 1).expect("bootstrap region");
    let mut ps = PeerStorage::new(engines.clone(), region.clone(), "[region 1] 1".into())
        .expect("peer storage");
    let rd = Ready {
        entries: (6..=30).map(|i| entry(i, 6)).collect(),
        hard_state: Some(HardState {
            term: 6,
            vote: 1,
            commit: 7,
            ..Default::default()
        }),
        ..Default::default()
    };
    ps.save_ready_state(&rd).expect("save entries");
    let rd = Ready {
        snapshot: Some(snapshot_of(&region, 12, 8)),
        hard_state: Some(HardState {
            term: 8,
            vote: 0,
            commit: 12,
            ..Default::default()
        }),
        ..Default::default()
    };
    ps.save_ready_state(&rd)
        .expect("save the snapshot")
        .expect("a snapshot was taken in");
    assert_eq!((ps.last_index(), ps.last_term()), (12, 8));
    assert_eq!(stored_log(&engines), Vec::<u64>::new(), "old log entries");
    let raft_state = meta::raft_local_state(&engines.raft, 1)
        .expect("read raft state")
        .expect("a raft state");
    assert_eq!((raft_state.last_index, raft_state.last_term), (12, 8));
    // The new leader's entries after the snapshot go on from there.
    let rd = Ready {
        entries: vec![entry(13, 8), entry(14, 8)],
        ..Default::default()
    };
    ps.save_ready_state(&rd).expect("append after the snapshot");
    assert_eq!(stored_log(&engines), vec![13, 14]);
    assert_eq!(
        Storage::entries(&ps, 13, 15).expect("entries").len(),
        2,
        "the log continues after the snapshot"
    );
}

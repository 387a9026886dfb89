//! Snapshot files, their transfer and their application (the original's `TestSnapFile`,
//! `TestSnapGenMeta` and `TestSnapDisplayPath` cover the same ground for its format).

use engine::{keys, Cf, Durability, EngineOptions, Engines, WriteBatch};
use proto::eraftpb::{MessageType, Snapshot};
use proto::metapb::{Peer, Region};
use proto::raft_serverpb::{PeerState, RaftApplyState, RaftMessage, RegionLocalState};
use protobuf::Message as _;
use tempfile::TempDir;

use super::file::{self, Records};
use super::region_task::{ApplySnapTask, GenSnapTask};
use super::transfer::{ChunkOutcome, OutgoingSnapshot, SnapReceiver};
use super::*;
use crate::meta;

fn region(id: u64, start: &[u8], end: &[u8]) -> Region {
    let mut r = Region {
        id,
        start_key: start.to_vec(),
        end_key: end.to_vec(),
        ..Default::default()
    };
    r.mut_peers().push(Peer {
        id: 1,
        store_id: 1,
        ..Default::default()
    });
    r.mut_region_epoch().conf_ver = 1;
    r.mut_region_epoch().version = 1;
    r
}

fn open() -> (TempDir, Engines, SnapManager) {
    let dir = tempfile::tempdir().unwrap();
    let engines = Engines::open(dir.path().join("db"), &EngineOptions::for_tests()).unwrap();
    let mgr = SnapManager::new(dir.path().join("snap")).unwrap();
    (dir, engines, mgr)
}

/// Writes `n` pairs per data column family (keys `k000`...), plus keys outside `[b, y)`,
/// and the apply and region state of region 1 at applied index 10.
fn fill(engines: &Engines, n: usize, value_len: usize) -> Region {
    let r = region(1, b"b", b"y");
    let mut wb = WriteBatch::new();
    for &cf in Cf::DATA {
        for i in 0..n {
            let value = vec![(i % 251) as u8; value_len];
            wb.put_cf(cf, format!("k{i:05}").as_bytes(), &value)
                .unwrap();
        }
        wb.put_cf(cf, b"a-outside", b"x").unwrap();
        wb.put_cf(cf, b"z-outside", b"x").unwrap();
    }
    let mut apply = RaftApplyState {
        applied_index: 10,
        ..Default::default()
    };
    apply.mut_truncated_state().index = 5;
    apply.mut_truncated_state().term = 5;
    meta::write_apply_state(&mut wb, 1, &apply).unwrap();
    meta::write_region_state(&mut wb, &r, PeerState::Normal).unwrap();
    engines.kv.write(wb, Durability::Sync).unwrap();
    r
}

fn generate(engines: &Engines, mgr: &SnapManager) -> Snapshot {
    GenSnapTask {
        region_id: 1,
        index: 10,
        term: 7,
        kv_snap: engines.kv.snapshot().unwrap(),
        mgr: mgr.clone(),
    }
    .run()
    .unwrap()
}

fn data_in(engines: &Engines, r: &Region) -> Vec<(Cf, Vec<u8>, Vec<u8>)> {
    let range = crate::util::KeyRange::of_region(r);
    let mut out = Vec::new();
    for &cf in Cf::DATA {
        let snap = engines.kv.snapshot().unwrap();
        snap.scan_cf(cf, &range.start, range.end_bound(), |k, v| {
            out.push((cf, k.to_vec(), v.to_vec()));
            true
        })
        .unwrap();
    }
    out
}

fn message_for(snap: &Snapshot) -> RaftMessage {
    let mut m = RaftMessage {
        region_id: 1,
        ..Default::default()
    };
    m.mut_from_peer().id = 1;
    m.mut_from_peer().store_id = 1;
    m.mut_to_peer().id = 2;
    m.mut_to_peer().store_id = 2;
    let msg = m.mut_message();
    msg.set_msg_type(MessageType::MsgSnapshot);
    msg.set_snapshot(snap.clone());
    m
}

/// A generated snapshot of `n` pairs per column family (values of `value_len` bytes), opened
/// for sending in chunks of `chunk_size`; the directory (with the source engines) lives as long
/// as the first value.
fn outgoing(
    n: usize,
    value_len: usize,
    chunk_size: usize,
) -> (TempDir, SnapManager, Snapshot, OutgoingSnapshot) {
    let (dir, engines, mgr) = open();
    fill(&engines, n, value_len);
    let snap = generate(&engines, &mgr);
    let path = mgr.path(SnapFileKind::Generated, &SnapKey::of(1, &snap));
    let out = OutgoingSnapshot::open(message_for(&snap), &path, chunk_size).unwrap();
    (dir, mgr, snap, out)
}

#[test]
fn file_names_round_trip() {
    let key = SnapKey {
        region_id: 3,
        term: 9,
        index: 120,
    };
    assert_eq!(key.to_string(), "3_9_120");
    for kind in [
        SnapFileKind::Generating,
        SnapFileKind::Generated,
        SnapFileKind::Receiving,
        SnapFileKind::Received,
        SnapFileKind::ReceivedMeta,
    ] {
        assert_eq!(SnapFileKind::parse(&kind.name(&key)), Some((kind, key)));
    }
    assert_eq!(SnapFileKind::parse("gen_1_2.snap"), None);
    assert_eq!(SnapFileKind::parse("gen_1_2_3_4.snap"), None);
    assert_eq!(SnapFileKind::parse("rcv_1_x_3.snap"), None);
    assert_eq!(SnapFileKind::parse("other"), None);
}

/// A generated file holds exactly the region's range of every data column family; its
/// metadata describes it; verifying and reading it back gives the same pairs.
#[test]
fn generated_snapshot_holds_the_region_and_verifies() {
    let (_dir, engines, mgr) = open();
    let r = fill(&engines, 50, 10);
    let snap = generate(&engines, &mgr);
    assert_eq!(snap.get_metadata().index, 10);
    assert_eq!(snap.get_metadata().term, 7);
    assert_eq!(snap.get_metadata().get_conf_state().voters, vec![1]);
    let data = snapshot_data(&snap).unwrap();
    assert_eq!(data.get_region(), &r);
    let key = SnapKey::of(1, &snap);
    let path = mgr.path(SnapFileKind::Generated, &key);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), data.file_size);
    assert_eq!(file::verify(&path, &data).unwrap(), 150);
    let mut records = Records::open(&path, &data).unwrap();
    let mut read = Vec::new();
    while let Some(r) = records.next_record().unwrap() {
        read.push((r.cf, r.key, r.value));
    }
    assert_eq!(read, data_in(&engines, &r));
    assert!(!read.iter().any(|(_, k, _)| k.ends_with(b"outside")));
}

/// A flipped bit or a missing byte anywhere in the file is found; so is a description that
/// does not add up.
#[test]
fn corrupt_or_truncated_files_fail_verification() {
    let (_dir, engines, mgr) = open();
    fill(&engines, 20, 8);
    let snap = generate(&engines, &mgr);
    let data = snapshot_data(&snap).unwrap();
    let path = mgr.path(SnapFileKind::Generated, &SnapKey::of(1, &snap));
    let good = std::fs::read(&path).unwrap();
    for i in (0..good.len()).step_by(7) {
        let mut bad = good.clone();
        bad[i] ^= 0x10;
        std::fs::write(&path, &bad).unwrap();
        assert!(file::verify(&path, &data).is_err(), "a flip at byte {i}");
    }
    std::fs::write(&path, &good[..good.len() - 1]).unwrap();
    let err = file::verify(&path, &data).unwrap_err().to_string();
    assert!(err.contains("announced"), "{err}");
    std::fs::write(&path, &good).unwrap();
    let mut lying = data.clone();
    lying.file_size += 1;
    assert!(file::check_meta(&lying).is_err());
    let mut swapped = data.clone();
    swapped.mut_meta().mut_cf_files().swap(0, 1);
    assert!(file::check_meta(&swapped).is_err());
    assert_eq!(file::verify(&path, &data).unwrap(), 60);
}

/// Chunks arrive out of order, twice, with the first copy lost: the receiver puts the file
/// together, verifies it, and hands the message back once; a late duplicate changes nothing.
#[test]
fn chunks_in_any_order_make_the_file_once() {
    let (_dir, mgr, snap, out) = outgoing(200, 40, 1024);
    let key = SnapKey::of(1, &snap);
    let n = out.chunk_count();
    assert!(n > 10, "{n} chunks");
    let (_rdir, _re, rmgr) = open();
    let mut rx = SnapReceiver::new(rmgr.clone(), 100);
    let mut order: Vec<u64> = (0..n).rev().collect();
    order.extend([3, 0, 3]);
    let mut completed = 0;
    for (t, i) in order.into_iter().enumerate() {
        match rx.on_chunk(out.chunk(i).unwrap(), t as u64).unwrap() {
            ChunkOutcome::Pending => assert_eq!(completed, 0),
            ChunkOutcome::Complete(k, msg) => {
                assert_eq!(k, key);
                assert_eq!(msg.get_message().get_snapshot(), &snap);
                completed += 1;
            }
            ChunkOutcome::Duplicate => assert_eq!(completed, 1),
        }
    }
    assert_eq!(completed, 1);
    let got = std::fs::read(rmgr.path(SnapFileKind::Received, &key)).unwrap();
    let sent = std::fs::read(mgr.path(SnapFileKind::Generated, &key)).unwrap();
    assert_eq!(got, sent);
    assert_eq!(rx.in_progress(), 0);
}

/// A chunk damaged on the way makes the whole file fail its checksum: it is refused and
/// deleted, and a clean resend of the same snapshot is then received.
#[test]
fn a_corrupt_chunk_refuses_the_file_and_a_resend_succeeds() {
    let (_dir, _mgr, _snap, out) = outgoing(100, 30, 2048);
    let (_rdir, _re, rmgr) = open();
    let mut rx = SnapReceiver::new(rmgr.clone(), 100);
    let last = out.chunk_count() - 1;
    for i in 0..=last {
        let mut chunk = out.chunk(i).unwrap();
        if i == 1 {
            chunk.data[5] ^= 1;
        }
        let r = rx.on_chunk(chunk, 0);
        if i < last {
            assert!(matches!(r, Ok(ChunkOutcome::Pending)), "{r:?}");
        } else {
            let err = r.unwrap_err().to_string();
            assert!(err.contains("checksum"), "{err}");
        }
    }
    assert!(rmgr.list().unwrap().is_empty(), "nothing is left behind");
    let mut done = false;
    for i in 0..=last {
        done = matches!(
            rx.on_chunk(out.chunk(i).unwrap(), 1).unwrap(),
            ChunkOutcome::Complete(..)
        );
    }
    assert!(done);
}

/// Chunks that cannot be part of the announced file are refused one by one, and a
/// reception that gets nothing for the timeout is abandoned with its partial file.
#[test]
fn bad_chunks_are_refused_and_stalled_receptions_abandoned() {
    let (_dir, _mgr, _snap, out) = outgoing(100, 30, 1024);
    let (_rdir, _re, rmgr) = open();
    let mut rx = SnapReceiver::new(rmgr.clone(), 10);

    let mut past_end = out.chunk(0).unwrap();
    past_end.offset = out.size();
    assert!(rx.on_chunk(past_end, 0).is_err());
    let mut not_snapshot = out.chunk(0).unwrap();
    not_snapshot
        .mut_message()
        .mut_message()
        .set_msg_type(MessageType::MsgAppend);
    assert!(rx.on_chunk(not_snapshot, 0).is_err());
    let mut bad_data = out.chunk(0).unwrap();
    bad_data.mut_message().mut_message().mut_snapshot().data = vec![0xff, 0xff].into();
    assert!(rx.on_chunk(bad_data, 0).is_err());
    let mut no_message = out.chunk(0).unwrap();
    no_message.clear_message();
    assert!(rx.on_chunk(no_message, 0).is_err());

    assert!(matches!(
        rx.on_chunk(out.chunk(0).unwrap(), 0).unwrap(),
        ChunkOutcome::Pending
    ));
    assert_eq!(rx.in_progress(), 1);
    rx.on_tick(5);
    assert_eq!(rx.in_progress(), 1);
    rx.on_tick(10);
    assert_eq!(rx.in_progress(), 0);
    assert!(rmgr.list().unwrap().is_empty());
}

/// Applying a snapshot replaces whatever the range held (stale keys go), leaves the keys
/// outside alone, and marks the region Normal; it works in bounded steps.
#[test]
fn applying_replaces_the_range_in_steps() {
    let (_dir, engines, mgr) = open();
    let r = fill(&engines, 300, 100);
    let snap = generate(&engines, &mgr);
    let want = data_in(&engines, &r);

    let (_rdir, target, rmgr) = open();
    // The target holds other data in the range (stale) and outside it.
    let mut wb = WriteBatch::new();
    for &cf in Cf::DATA {
        wb.put_cf(cf, b"c-stale", b"old").unwrap();
        wb.put_cf(cf, b"k00001", b"old").unwrap();
        wb.put_cf(cf, b"a-mine", b"keep").unwrap();
    }
    meta::write_region_state(&mut wb, &r, PeerState::Applying).unwrap();
    target.kv.write(wb, Durability::Sync).unwrap();
    let key = SnapKey::of(1, &snap);
    std::fs::copy(
        mgr.path(SnapFileKind::Generated, &key),
        rmgr.path(SnapFileKind::Received, &key),
    )
    .unwrap();
    let data = snapshot_data(&snap).unwrap();
    let mut task = ApplySnapTask::new(key, data, &rmgr, 4096);
    let mut steps = 0;
    loop {
        steps += 1;
        match task.step(&target).unwrap() {
            Some(next) => task = next,
            None => break,
        }
    }
    assert!(steps > 10, "{steps} steps for {} bytes", 300 * 3 * 106);
    assert_eq!(data_in(&target, &r), want);
    assert_eq!(
        target.kv.get_cf(Cf::Lock, b"a-mine").unwrap().as_deref(),
        Some(&b"keep"[..])
    );
    let state: RegionLocalState = target
        .kv
        .get_msg_cf(Cf::Raft, &keys::region_state_key(1))
        .unwrap()
        .unwrap();
    assert_eq!(state.get_state(), PeerState::Normal);
    assert_eq!(state.get_region(), &r);
}

/// The directory's cleanup at start keeps only what a region still applies.
#[test]
fn cleanup_at_start_keeps_what_is_being_applied() {
    let (_dir, _engines, mgr) = open();
    let k = |i| SnapKey {
        region_id: i,
        term: 1,
        index: 9,
    };
    for (kind, key) in [
        (SnapFileKind::Generated, k(1)),
        (SnapFileKind::Generating, k(1)),
        (SnapFileKind::Receiving, k(2)),
        (SnapFileKind::Received, k(3)),
        (SnapFileKind::ReceivedMeta, k(3)),
        (SnapFileKind::Received, k(4)),
        (SnapFileKind::ReceivedMeta, k(4)),
    ] {
        std::fs::write(mgr.path(kind, &key), b"x").unwrap();
    }
    std::fs::write(mgr.dir().join("unrelated"), b"x").unwrap();
    mgr.clean_at_start(|key| key.region_id == 3).unwrap();
    assert_eq!(
        mgr.list().unwrap(),
        vec![
            (SnapFileKind::Received, k(3)),
            (SnapFileKind::ReceivedMeta, k(3))
        ]
    );
    assert!(mgr.dir().join("unrelated").exists());
    let data = proto::raft_serverpb::RaftSnapshotData::default();
    mgr.write_received_meta(&k(5), &data).unwrap();
    assert_eq!(mgr.read_received_meta(&k(5)).unwrap(), data);
    mgr.delete_received(&k(5));
    assert!(mgr.read_received_meta(&k(5)).is_err());
    let _ = data.write_to_bytes();
}

//! The store's side of receiving snapshots, driven event by event without a simulator: what
//! it refuses (never with a panic, and the peer keeps working), and what it applies.

use engine::{keys, Cf, Durability, EngineOptions, Engines, WriteBatch};
use proto::eraftpb::{MessageType, Snapshot};
use proto::metapb::{self, Region};
use proto::raft_serverpb::{PeerState, RaftApplyState, RaftMessage, SnapshotChunk};
use proto::schedulerpb::{AskSplitResponse, RegionHeartbeatRequest, StoreStats};
use tempfile::TempDir;

use super::*;
use crate::bootstrap::{bootstrap_store, new_first_region, prepare_bootstrap_cluster};
use crate::snap::region_task::GenSnapTask;
use crate::snap::transfer::OutgoingSnapshot;
use crate::util::new_peer;

#[derive(Default)]
struct Sent {
    msgs: Vec<RaftMessage>,
    snapshots: Vec<OutgoingSnapshot>,
}

impl Transport for Sent {
    fn send(&mut self, msg: RaftMessage) -> Result<()> {
        self.msgs.push(msg);
        Ok(())
    }
    fn send_snapshot(&mut self, snap: OutgoingSnapshot) -> Result<()> {
        self.snapshots.push(snap);
        Ok(())
    }
}

struct NoScheduler;

impl SchedulerClient for NoScheduler {
    fn alloc_id(&mut self) -> Result<u64> {
        Err(Error::other("no scheduler"))
    }
    fn region_heartbeat(&mut self, _: RegionHeartbeatRequest) -> Result<()> {
        Ok(())
    }
    fn store_heartbeat(&mut self, _: StoreStats) -> Result<()> {
        Ok(())
    }
    fn ask_split(&mut self, _: &metapb::Region) -> Result<AskSplitResponse> {
        Err(Error::other("no scheduler"))
    }
    fn report_split(&mut self, _: &metapb::Region, _: &metapb::Region) -> Result<()> {
        Ok(())
    }
}

/// A store and what it asked of the world.
struct Harness {
    _dir: TempDir,
    store: Store,
    sent: Sent,
    tasks: Vec<Task>,
}

impl Harness {
    fn handle(&mut self, ev: StoreEvent) {
        self.store.handle(
            ev,
            Effects {
                transport: &mut self.sent,
                scheduler: &mut NoScheduler,
                tasks: &mut self.tasks,
            },
        );
    }

    /// Runs every spawned task to its end and hands its result back.
    fn run_tasks(&mut self) {
        while !self.tasks.is_empty() {
            for task in std::mem::take(&mut self.tasks) {
                let result = task.run(self.store.engines());
                self.handle(StoreEvent::TaskDone(result));
            }
        }
    }

    fn peer(&self, region: u64) -> &Peer {
        self.store.peer(region).expect("the peer exists")
    }
}

/// Store 2 with the given regions (each with peers on stores 1 and 2, peer id = 10 × region +
/// store), started.
fn store_with(regions: &[(u64, &[u8], &[u8])]) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let engines =
        Engines::open(dir.path().join("store"), &EngineOptions::for_tests()).expect("engines");
    bootstrap_store(&engines, 0, 2).expect("bootstrap");
    for &(id, start, end) in regions {
        let mut r = new_first_region(id, vec![new_peer(1, id * 10 + 1), new_peer(2, id * 10 + 2)]);
        r.start_key = start.to_vec();
        r.end_key = end.to_vec();
        prepare_bootstrap_cluster(&engines, &r).expect("region");
    }
    let store = Store::new(2, Config::test(), engines).expect("store");
    Harness {
        _dir: dir,
        store,
        sent: Sent::default(),
        tasks: Vec::new(),
    }
}

/// A snapshot of `region` at (index, term) holding `pairs` in `default`, generated on a
/// scratch engine, as the chunks a leader (peer 10 × region + 1 on store 1) would send.
fn snapshot_chunks(
    region: &Region,
    index: u64,
    term: u64,
    pairs: &[(Vec<u8>, Vec<u8>)],
) -> (TempDir, Vec<SnapshotChunk>, Snapshot) {
    let dir = tempfile::tempdir().expect("temp dir");
    let engines = Engines::open(dir.path().join("src"), &EngineOptions::for_tests()).expect("src");
    let mut wb = WriteBatch::new();
    for (k, v) in pairs {
        wb.put_cf(Cf::Default, k, v).expect("pair");
    }
    let apply = RaftApplyState {
        applied_index: index,
        ..Default::default()
    };
    crate::meta::write_apply_state(&mut wb, region.id, &apply).expect("apply state");
    crate::meta::write_region_state(&mut wb, region, PeerState::Normal).expect("region state");
    engines.kv.write(wb, Durability::Sync).expect("write");
    let mgr = SnapManager::new(dir.path().join("snap")).expect("snap dir");
    let snap = GenSnapTask {
        region_id: region.id,
        index,
        term,
        kv_snap: engines.kv.snapshot().expect("snapshot"),
        mgr: mgr.clone(),
    }
    .run()
    .expect("generated");
    let mut msg = RaftMessage {
        region_id: region.id,
        ..Default::default()
    };
    msg.set_from_peer(new_peer(1, region.id * 10 + 1));
    msg.set_to_peer(new_peer(2, region.id * 10 + 2));
    msg.set_region_epoch(region.get_region_epoch().clone());
    let m = msg.mut_message();
    m.set_msg_type(MessageType::MsgSnapshot);
    m.from = region.id * 10 + 1;
    m.to = region.id * 10 + 2;
    m.term = term;
    m.set_snapshot(snap.clone());
    let key = SnapKey::of(region.id, &snap);
    let out = OutgoingSnapshot::open(msg, &mgr.path(SnapFileKind::Generated, &key), 300)
        .expect("outgoing");
    let chunks = (0..out.chunk_count())
        .map(|i| out.chunk(i).expect("chunk"))
        .collect();
    (dir, chunks, snap)
}

fn region(id: u64, start: &[u8], end: &[u8], conf_ver: u64) -> Region {
    let mut r = new_first_region(id, vec![new_peer(1, id * 10 + 1), new_peer(2, id * 10 + 2)]);
    r.start_key = start.to_vec();
    r.end_key = end.to_vec();
    r.mut_region_epoch().conf_ver = conf_ver;
    r
}

/// 40 pairs `a00`..`a39` → 20 bytes each: several chunks of 300 bytes.
fn pairs() -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..40)
        .map(|i| {
            (
                format!("a{i:02}").into_bytes(),
                vec![b'0' + (i % 10) as u8; 20],
            )
        })
        .collect()
}

fn applied(h: &Harness, region: u64) -> u64 {
    h.peer(region).storage().applied_index()
}

fn no_snapshot_files_left(h: &Harness) -> bool {
    h.store.snap_manager().list().expect("list").is_empty()
}

/// A whole, valid snapshot is stepped into raft, persisted (the region `Applying`), applied
/// by a task, and the region is `Normal` with the snapshot's data and nothing else; the
/// received file is gone afterwards.
#[test]
fn a_valid_snapshot_is_applied() {
    let mut h = store_with(&[(1, b"", b"")]);
    // Stale data the snapshot must replace.
    h.store
        .engines()
        .kv
        .put_cf(Cf::Default, b"stale", b"x")
        .expect("stale");
    let (_src, chunks, _) = snapshot_chunks(&region(1, b"", b"", 1), 20, 7, &pairs());
    assert!(chunks.len() > 1, "several chunks");
    for c in chunks.into_iter().rev() {
        h.handle(StoreEvent::SnapshotChunk(c));
    }
    assert!(
        h.peer(1).applying_snapshot.is_some(),
        "the peer is applying"
    );
    let state = crate::meta::region_local_state(&h.store.engines().kv, 1)
        .expect("read")
        .expect("state");
    assert_eq!(state.get_state(), PeerState::Applying);
    h.run_tasks();
    assert!(h.peer(1).applying_snapshot.is_none());
    assert_eq!(applied(&h, 1), 20);
    let kv = &h.store.engines().kv;
    for (k, v) in pairs() {
        assert_eq!(
            kv.get_cf(Cf::Default, &k).expect("get").as_deref(),
            Some(&v[..])
        );
    }
    assert_eq!(kv.get_cf(Cf::Default, b"stale").expect("get"), None);
    let state = crate::meta::region_local_state(kv, 1)
        .expect("read")
        .expect("state");
    assert_eq!(state.get_state(), PeerState::Normal);
    assert!(no_snapshot_files_left(&h));
    // The peer answered the leader: it now holds the log up to 20.
    assert!(h.sent.msgs.iter().any(|m| m.get_message().get_msg_type()
        == MessageType::MsgAppendResponse
        && m.get_message().index == 20));
}

/// Snapshots that must not be applied here are refused whole, with nothing left on disk
/// and the peer untouched: one whose region does not hold the target peer, one that would
/// overlap another region of the store, one with an older membership than the peer's, and
/// one damaged on the way. The peer then takes a good one.
#[test]
fn snapshots_that_must_not_apply_are_refused_and_the_peer_goes_on() {
    let mut h = store_with(&[(1, b"", b"m"), (2, b"m", b"")]);

    // The target peer is not in the snapshot's region.
    let mut foreign = region(1, b"", b"m", 1);
    foreign.mut_peers().retain(|p| p.store_id != 2);
    foreign.mut_peers().push(new_peer(3, 13));
    // Overlapping region 2.
    let wide = region(1, b"", b"z", 1);
    // An older membership than the peer's (conf_ver 1 at bootstrap; 0 is older).
    let stale = region(1, b"", b"m", 0);
    for (what, r) in [
        ("foreign", foreign),
        ("overlapping", wide),
        ("stale", stale),
    ] {
        let (_src, chunks, _) = snapshot_chunks(&r, 20, 7, &pairs());
        for c in chunks {
            h.handle(StoreEvent::SnapshotChunk(c));
        }
        assert!(h.tasks.is_empty(), "{what}: nothing spawned");
        assert!(h.peer(1).applying_snapshot.is_none(), "{what}");
        assert_eq!(applied(&h, 1), 5, "{what}");
        assert!(no_snapshot_files_left(&h), "{what}: files left");
    }

    // Damaged in flight: the checksum fails once every chunk is in.
    let (_src, chunks, _) = snapshot_chunks(&region(1, b"", b"m", 1), 20, 7, &pairs());
    let mut bad = chunks.clone();
    bad[0].data[0] ^= 0x40;
    for c in bad {
        h.handle(StoreEvent::SnapshotChunk(c));
    }
    assert!(h.tasks.is_empty() && h.peer(1).applying_snapshot.is_none());
    assert!(no_snapshot_files_left(&h));

    // A good one still goes in.
    for c in chunks {
        h.handle(StoreEvent::SnapshotChunk(c));
    }
    h.run_tasks();
    assert_eq!(applied(&h, 1), 20);
    assert_eq!(applied(&h, 2), 5, "region 2 is untouched");
}

/// A chunk addressed to another store, or carrying something that is not a snapshot, is
/// dropped without a panic.
#[test]
fn misaddressed_or_malformed_chunks_are_dropped() {
    let mut h = store_with(&[(1, b"", b"")]);
    let (_src, chunks, _) = snapshot_chunks(&region(1, b"", b"", 1), 20, 7, &pairs());
    let mut other = chunks[0].clone();
    other.mut_message().mut_to_peer().store_id = 9;
    h.handle(StoreEvent::SnapshotChunk(other));
    let mut empty = chunks[0].clone();
    empty.clear_message();
    h.handle(StoreEvent::SnapshotChunk(empty));
    let mut garbage = chunks[0].clone();
    garbage.mut_message().mut_message().mut_snapshot().data = vec![9; 7].into();
    h.handle(StoreEvent::SnapshotChunk(garbage));
    assert!(h.tasks.is_empty());
    assert_eq!(applied(&h, 1), 5);
}

/// A store that crashes while applying a snapshot (its region `Applying`) applies the
/// received file again when it restarts, and ends with exactly the snapshot's data.
#[test]
fn a_restart_in_the_middle_of_applying_finishes_the_job() {
    let mut h = store_with(&[(1, b"", b"")]);
    let (_src, chunks, _) = snapshot_chunks(&region(1, b"", b"", 1), 20, 7, &pairs());
    for c in chunks {
        h.handle(StoreEvent::SnapshotChunk(c));
    }
    let spawned = std::mem::take(&mut h.tasks);
    let Some(Task::ApplySnapshot(task)) = spawned
        .into_iter()
        .find(|t| matches!(t, Task::ApplySnapshot(_)))
    else {
        panic!("an apply task was spawned");
    };
    // One step (clearing the first column family), then the store dies.
    let _ = task.step(h.store.engines()).expect("a step");
    let engines = h.store.engines().clone();
    let restarted = Store::new(2, Config::test(), engines).expect("restart");
    h.store = restarted;
    assert!(h.peer(1).applying_snapshot.is_some(), "still applying");
    // The resumed application is handed to the runtime with the first event.
    h.handle(StoreEvent::Tick);
    assert!(matches!(h.tasks.as_slice(), [Task::ApplySnapshot(_)]));
    h.run_tasks();
    assert_eq!(applied(&h, 1), 20);
    let kv = &h.store.engines().kv;
    for (k, v) in pairs() {
        assert_eq!(
            kv.get_cf(Cf::Default, &k).expect("get").as_deref(),
            Some(&v[..])
        );
    }
    let apply = crate::meta::apply_state(kv, 1)
        .expect("read")
        .expect("state");
    assert_eq!(apply.get_truncated_state().index, 20);
    let key = keys::region_state_key(1);
    assert!(kv.get_cf(Cf::Raft, &key).expect("get").is_some());
    assert!(no_snapshot_files_left(&h));
}

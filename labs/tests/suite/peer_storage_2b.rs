//! Stage 2b, peer storage: the original course's peer-storage tests of student code
//! (`TestPeerStorageAppend`, `...ClearMeta`, run by the original's `make test` only), graded
//! here. `append` is student code. (`TestPeerStorageTerm` and `...Entries` test the given
//! `Storage` reads, which pass on the stubs: they are raftstore's own unit tests
//! (`peer_storage_{term,entries}_reads_the_stored_log`), so no stage earns points for code
//! students do not write.) The storages are built "from zero" as in the original: store 1
//! bootstrapped, region 1 with one peer, the raft and apply states then rewritten so
//! that the log is truncated at the first given entry and holds the others.

use engine::{keys, Cf, Durability, EngineOptions, Engines, WriteBatch};
use proto::eraftpb::{Entry, HardState};
use raft::{Ready, Storage};
use raftstore::bootstrap::{bootstrap_store, prepare_bootstrap};
use raftstore::meta::{self, write_apply_state, write_raft_state};
use raftstore::PeerStorage;
use tempfile::TempDir;

fn new_entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: vec![0].into(),
        ..Default::default()
    }
}

fn ents(pairs: &[(u64, u64)]) -> Vec<Entry> {
    pairs.iter().map(|&(i, t)| new_entry(i, t)).collect()
}

/// The original's "storage from entries": truncated at `ents[0]`, entries `ents[1..]` stored,
/// applied = committed = the last entry. Written to the engines first and then loaded, so it
/// does not depend on `append`.
fn new_storage_from_ents(ents: &[Entry]) -> (TempDir, PeerStorage) {
    let dir = tempfile::tempdir().expect("temp dir");
    // Simulated durability: a test can crash the engines and keep only what was synced.
    let engines = Engines::open(dir.path(), &EngineOptions::for_simulation()).expect("engines");
    bootstrap_store(&engines, 1, 1).expect("bootstrap store");
    let region = prepare_bootstrap(&engines, 1, 1, 1).expect("bootstrap region");
    let (first, last) = (&ents[0], &ents[ents.len() - 1]);

    let mut apply_state = meta::initial_apply_state();
    let truncated = apply_state.mut_truncated_state();
    truncated.index = first.index;
    truncated.term = first.term;
    apply_state.applied_index = last.index;
    let mut kv_wb = WriteBatch::new();
    write_apply_state(&mut kv_wb, 1, &apply_state).expect("apply state");
    engines.kv.write(kv_wb, Durability::Sync).expect("kv write");

    let mut raft_state = meta::initial_raft_state();
    raft_state.last_index = last.index;
    raft_state.last_term = last.term;
    raft_state.mut_hard_state().term = last.term;
    raft_state.mut_hard_state().commit = last.index;
    let mut raft_wb = WriteBatch::new();
    for e in &ents[1..] {
        raft_wb
            .put_msg_cf(Cf::Raft, &keys::raft_log_key(1, e.index), e)
            .expect("entry");
    }
    write_raft_state(&mut raft_wb, 1, &raft_state).expect("raft state");
    engines
        .raft
        .write(raft_wb, Durability::Sync)
        .expect("raft write");

    let ps = PeerStorage::new(engines, region, "[region 1] 1".into()).expect("peer storage");
    (dir, ps)
}

fn count_keys(engine: &engine::Engine, start: &[u8], end: &[u8]) -> usize {
    let mut n = 0;
    engine
        .snapshot()
        .expect("snapshot")
        .scan_cf(Cf::Raft, start, Some(end), |_, _| {
            n += 1;
            true
        })
        .expect("scan");
    n
}

/// Log keys of region 1 on disk.
fn stored_log_indexes(ps: &PeerStorage) -> Vec<u64> {
    meta::raft_log_indexes(&ps.engines().raft, 1).expect("scan the raft log")
}

#[test]
fn peer_storage_append_2b() {
    // (appended, entries from index 4 afterwards)
    type Pairs = &'static [(u64, u64)];
    let cases: &[(Pairs, Pairs)] = &[
        (&[(3, 3), (4, 4), (5, 5)], &[(4, 4), (5, 5)]),
        (&[(3, 3), (4, 6), (5, 6)], &[(4, 6), (5, 6)]),
        (&[(3, 3), (4, 4), (5, 5), (6, 5)], &[(4, 4), (5, 5), (6, 5)]),
        // Entries at or below the truncated index are ignored; later stored ones go.
        (&[(2, 3), (3, 3), (4, 5)], &[(4, 5)]),
        // Stored entries after the new last index are deleted.
        (&[(4, 5)], &[(4, 5)]),
        // A plain append.
        (&[(6, 5)], &[(4, 4), (5, 5), (6, 5)]),
    ];
    for &(appended, want) in cases {
        let (_dir, mut ps) = new_storage_from_ents(&ents(&[(3, 3), (4, 4), (5, 5)]));
        let mut raft_wb = WriteBatch::new();
        ps.append(&ents(appended), &mut raft_wb).expect("ok");
        write_raft_state(&mut raft_wb, 1, ps.raft_state()).expect("ok");
        ps.engines()
            .raft
            .write(raft_wb, Durability::Sync)
            .expect("ok");

        let want = ents(want);
        let last = want[want.len() - 1].clone();
        assert_eq!((ps.last_index(), ps.last_term()), (last.index, last.term));
        assert_eq!(
            ps.entries(4, ps.last_index() + 1),
            Ok(want.clone()),
            "{appended:?}"
        );
        let indexes: Vec<u64> = want.iter().map(|e| e.index).collect();
        assert_eq!(
            stored_log_indexes(&ps),
            indexes,
            "{appended:?}: keys on disk"
        );
    }
}

#[test]
fn peer_storage_clear_meta_2b() {
    let (_dir, mut ps) = new_storage_from_ents(&ents(&[(3, 3), (4, 4)]));
    let mut raft_wb = WriteBatch::new();
    ps.append(&ents(&[(5, 5), (6, 6)]), &mut raft_wb)
        .expect("ok");
    write_raft_state(&mut raft_wb, 1, ps.raft_state()).expect("ok");
    ps.engines()
        .raft
        .write(raft_wb, Durability::Sync)
        .expect("ok");

    let count = |ps: &PeerStorage| {
        let meta = (keys::region_meta_prefix(1), keys::region_meta_prefix(2));
        let raft = (keys::region_raft_prefix(1), keys::region_raft_prefix(2));
        count_keys(&ps.engines().kv, &meta.0, &meta.1)
            + count_keys(&ps.engines().kv, &raft.0, &raft.1)
            + count_keys(&ps.engines().raft, &raft.0, &raft.1)
    };
    // Region state + apply state (kv), raft state + entries 4..=6 (raft).
    assert_eq!(count(&ps), 6);

    let (mut kv_wb, mut raft_wb) = (WriteBatch::new(), WriteBatch::new());
    ps.clear_meta(&mut kv_wb, &mut raft_wb).expect("ok");
    ps.engines().kv.write(kv_wb, Durability::Sync).expect("ok");
    ps.engines()
        .raft
        .write(raft_wb, Durability::Sync)
        .expect("ok");
    assert_eq!(count(&ps), 0);
}

/// A `Ready` that carries a hard state and nothing else (a vote in a new term, say, or a
/// commit index that moved) is persisted before `save_ready_state` returns; a vote is synced,
/// so it is durable before the message that casts it is sent, and survives a crash right
/// after (the engines roll back every write that was not synced).
///
/// Catches a peer storage that writes the raft state only along with new entries: a peer
/// that restarts then forgets whom it voted for and can vote twice in one term (two leaders
/// of one term), or forgets its term. The original has no test of it; its cluster tests
/// would need a crash at the right moment of an election.
#[test]
fn hard_state_alone_is_persisted_2b() {
    let (_dir, mut ps) = new_storage_from_ents(&ents(&[(3, 3), (4, 4), (5, 5)]));
    let read_back = |ps: &PeerStorage| {
        meta::raft_local_state(&ps.engines().raft, 1)
            .expect("read the raft state")
            .expect("a raft state")
    };
    // A vote in a new term: no entry to append.
    let vote = HardState {
        term: 6,
        vote: 2,
        commit: 4,
        ..Default::default()
    };
    let rd = Ready {
        hard_state: Some(vote.clone()),
        ..Default::default()
    };
    ps.save_ready_state(&rd).expect("save the hard state");
    ps.engines().simulate_crash().expect("a simulated crash");
    let state = read_back(&ps);
    assert_eq!(
        state.get_hard_state(),
        &vote,
        "a vote cast with no entry to append must be synced before the vote is sent: after a \
         crash right after save_ready_state, the raft state must still hold it"
    );
    assert_eq!(
        (state.last_index, state.last_term),
        (5, 5),
        "the log did not change"
    );
    // The commit index moves alone.
    let commit = HardState {
        commit: 5,
        ..vote.clone()
    };
    let rd = Ready {
        hard_state: Some(commit.clone()),
        ..Default::default()
    };
    ps.save_ready_state(&rd).expect("save the hard state");
    assert_eq!(
        read_back(&ps).get_hard_state(),
        &commit,
        "the new commit index"
    );

    // A restart reads the hard state back.
    let (engines, region) = (ps.engines().clone(), ps.region().clone());
    drop(ps);
    let again = PeerStorage::new(engines, region, "[region 1] 1".into()).expect("restart");
    let initial = again.initial_state().expect("initial state");
    assert_eq!(initial.hard_state, commit, "the hard state after a restart");
}

//! The apply oracle's own tests.
use super::*;

fn fits(entries: &[Applied], written: &[DataOp]) -> bool {
    let written: Vec<BatchOp<'_>> = written.iter().map(DataOp::as_batch_op).collect();
    is_whole_commands_in_order(entries, &written)
}

fn put(key: &str, value: &str) -> DataOp {
    DataOp {
        cf: Cf::Default,
        key: key.as_bytes().to_vec(),
        value: Some(value.as_bytes().to_vec()),
    }
}

fn entries(writes: Vec<Vec<DataOp>>) -> Vec<Applied> {
    writes
        .into_iter()
        .enumerate()
        .map(|(i, writes)| Applied {
            index: i as u64 + 1,
            writes,
        })
        .collect()
}

#[test]
fn whole_commands_in_order_are_accepted() {
    let (a, b, c) = (put("a", "1"), put("b", "2"), put("c", "3"));
    let es = entries(vec![vec![a.clone(), b.clone()], vec![], vec![c.clone()]]);
    assert!(fits(&es, &[a.clone(), b.clone(), c.clone()]));
    // A command rejected whole, or all of them.
    assert!(fits(&es, std::slice::from_ref(&c)));
    assert!(fits(&es, &[a.clone(), b.clone()]));
    assert!(fits(&es, &[]));
    // Backtracking: the first fitting entry is not always the right one.
    let es = entries(vec![vec![a.clone()], vec![a.clone(), b.clone()]]);
    assert!(fits(&es, &[a.clone(), b.clone()]));
}

/// The oracle in a live cluster: correct applies pass (and are counted); a store that
/// writes data no committed entry holds fails the run inside the event that follows,
/// with the seed.
#[test]
fn a_forged_apply_fails_the_cluster_with_its_seed() {
    use crate::cluster::{Cluster, ClusterConfig};
    use engine::Durability;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::time::Duration;

    let mut cluster = Cluster::new("forged_apply", 3, ClusterConfig::new(3));
    cluster.must_put(b"k", b"v");
    cluster.run_for(Duration::from_secs(1));
    let checked = cluster.world().apply_oracle.verified_entries();
    assert!(
        checked >= 3,
        "each store applied at least the put: {checked}"
    );

    let kv = cluster.engines(2).kv.clone();
    let state: RaftApplyState = kv
        .get_msg_cf(Cf::Raft, &keys::apply_state_key(1))
        .expect("readable")
        .expect("store 2 has applied");
    let mut wb = WriteBatch::new();
    wb.put_cf(Cf::Default, b"k", b"forged").expect("valid");
    wb.put_msg_cf(Cf::Raft, &keys::apply_state_key(1), &state)
        .expect("valid");
    kv.write(wb, Durability::Buffered).expect("written");

    let panic = catch_unwind(AssertUnwindSafe(|| {
        cluster.run_for(Duration::from_secs(1));
    }))
    .expect_err("the next store event fails the run");
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("apply oracle: store 2 region 1"), "{msg}");
    assert!(msg.contains("\"k\""), "{msg}");
    assert!(
        msg.ends_with("forged_apply failed: replay with LABS_SEED=3"),
        "{msg}"
    );
}

#[test]
fn twice_partial_reordered_or_foreign_writes_are_refused() {
    let (a, b, c) = (put("a", "1"), put("b", "2"), put("c", "3"));
    let es = entries(vec![vec![a.clone(), b.clone()], vec![c.clone()]]);
    let twice = [a.clone(), b.clone(), c.clone(), c.clone()];
    assert!(!fits(&es, &twice));
    assert!(!fits(&es, std::slice::from_ref(&a))); // half a command
    assert!(!fits(&es, &[c.clone(), a.clone(), b.clone()]));
    assert!(!fits(&es, &[put("d", "4")]));
    assert!(!fits(&es, &[put("c", "other")]));
}

/// Two stores of region 1 (`["", "")`) at applied index 5, watched by one oracle.
fn two_stores() -> (tempfile::TempDir, ApplyOracle, Engines, Engines) {
    use engine::{Durability, EngineOptions};
    use proto::raft_serverpb::PeerState;
    let dir = tempfile::tempdir().expect("temp dir");
    let oracle = ApplyOracle::new();
    let mut all = Vec::new();
    for id in 1..=2u64 {
        let engines = Engines::open(
            dir.path().join(format!("s{id}")),
            &EngineOptions::for_simulation(),
        )
        .expect("engines");
        let region = raftstore::bootstrap::new_first_region(1, vec![]);
        let mut wb = WriteBatch::new();
        raftstore::meta::write_region_state(&mut wb, &region, PeerState::Normal).expect("region");
        raftstore::meta::write_initial_apply_state(&mut wb, 1).expect("apply");
        engines.kv.write(wb, Durability::Sync).expect("write");
        oracle.watch(id, &engines).expect("watch");
        oracle.restarted(id, &engines.kv).expect("restarted");
        all.push(engines);
    }
    let b = all.pop().expect("two");
    let a = all.pop().expect("two");
    (dir, oracle, a, b)
}

fn log_put(engines: &Engines, index: u64, term: u64, key: &[u8], value: &[u8]) {
    use engine::Durability;
    let mut req = RaftCmdRequest::default();
    let mut r = proto::raft_cmdpb::Request::default();
    r.set_cmd_type(CmdType::Put);
    r.mut_put().cf = "default".into();
    r.mut_put().key = key.to_vec();
    r.mut_put().value = value.to_vec();
    req.mut_requests().push(r);
    let e = Entry {
        index,
        term,
        data: req.write_to_bytes().expect("encode").into(),
        ..Default::default()
    };
    let mut wb = WriteBatch::new();
    wb.put_msg_cf(Cf::Raft, &keys::raft_log_key(1, index), &e)
        .expect("entry");
    engines.raft.write(wb, Durability::Sync).expect("write");
}

fn apply_state(applied: u64, truncated: u64) -> RaftApplyState {
    let mut s = RaftApplyState {
        applied_index: applied,
        ..Default::default()
    };
    s.mut_truncated_state().index = truncated;
    s.mut_truncated_state().term = 7;
    s
}

/// Installs a snapshot at index 6 holding `k = value` on `engines`, the way the store does:
/// apply state and `Applying` first, then the data, then `Normal`.
fn install(engines: &Engines, value: &[u8]) {
    use engine::Durability;
    use proto::raft_serverpb::PeerState;
    let region = raftstore::bootstrap::new_first_region(1, vec![]);
    let mut wb = WriteBatch::new();
    wb.put_msg_cf(Cf::Raft, &keys::apply_state_key(1), &apply_state(6, 6))
        .expect("apply");
    raftstore::meta::write_region_state(&mut wb, &region, PeerState::Applying).expect("region");
    engines.kv.write(wb, Durability::Sync).expect("write");
    let mut wb = WriteBatch::new();
    wb.put_cf(Cf::Default, b"k", value).expect("data");
    engines.kv.write(wb, Durability::Buffered).expect("write");
    let mut wb = WriteBatch::new();
    raftstore::meta::write_region_state(&mut wb, &region, PeerState::Normal).expect("region");
    engines.kv.write(wb, Durability::Sync).expect("write");
}

/// A store that installs a snapshot may still hold, in its raft engine, old entries at the
/// indexes the snapshot jumps over (they are deleted in the raft batch that follows the kv
/// batch): the oracle must not read them as applied entries. The install is checked by the
/// data instead: the right data passes, wrong data is a violation.
#[test]
fn a_snapshot_over_an_old_log_is_checked_by_its_data_not_the_old_entries() {
    use engine::Durability;
    for (installed, ok) in [(&b"v"[..], true), (&b"wrong"[..], false)] {
        let (_dir, oracle, a, b) = two_stores();
        // Store 1 applies entry 6 of term 7: k = v.
        log_put(&a, 6, 7, b"k", b"v");
        let mut wb = WriteBatch::new();
        wb.put_cf(Cf::Default, b"k", b"v").expect("data");
        wb.put_msg_cf(Cf::Raft, &keys::apply_state_key(1), &apply_state(6, 5))
            .expect("apply");
        a.kv.write(wb, Durability::Buffered).expect("write");
        // Store 2 holds an overwritten entry 6 of term 6 and installs a snapshot at 6.
        log_put(&b, 6, 6, b"k", b"old");
        install(&b, installed);
        let violations = oracle.take_violations();
        if ok {
            assert!(violations.is_empty(), "{violations:?}");
            assert_eq!(oracle.verified_snapshots(), 1);
        } else {
            assert!(
                violations
                    .iter()
                    .any(|v| v.contains("a snapshot brought the region")),
                "{violations:?}"
            );
        }
    }
}

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

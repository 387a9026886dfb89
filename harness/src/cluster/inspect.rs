//! Looking inside a cluster's stores from test code: what each store's engines and snapshot
//! directory hold, read directly (never through the store's own state), and waiting in virtual
//! time until a condition on them holds.
//!
//! The stage 2c suite uses these to pin down properties the client-visible answers cannot show:
//! that a store's raft log is trimmed (its raft engine holds no entry at or below the truncated
//! index, and not many above it), and that a snapshot file on a sender's disk can be damaged
//! between its generation and its sending.

use std::path::PathBuf;
use std::time::Duration;

use engine::{keys, Cf};
use proto::raft_serverpb::{RaftApplyState, RaftLocalState, RegionLocalState};
use raftstore::snap::{SnapFileKind, SnapKey, SnapManager};

use super::{Cluster, World};

/// How often [`Cluster::wait_until`] checks its condition.
const POLL: Duration = Duration::from_millis(20);

/// The snapshot directory of a store in a world (`<engines>/snap`).
pub fn snap_dir_in(w: &World, store_id: u64) -> Option<PathBuf> {
    w.stores
        .get(&store_id)
        .map(|n| n.engines.path().join("snap"))
}

/// The snapshot files of `kind` in a directory, by key (none if the directory is unreadable).
pub fn snapshot_files_in(dir: &std::path::Path, kind: SnapFileKind) -> Vec<(SnapKey, PathBuf)> {
    let Ok(mgr) = SnapManager::new(dir) else {
        return Vec::new();
    };
    mgr.list()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| *k == kind)
        .map(|(k, key)| (key, mgr.path(k, &key)))
        .collect()
}

impl Cluster {
    /// The indexes of the raft log entries of `region_id` that store `store_id`'s raft engine
    /// holds, in order (whatever the store's raft state says).
    pub fn raft_log_indexes(&self, store_id: u64, region_id: u64) -> Vec<u64> {
        raftstore::meta::raft_log_indexes(&self.engines(store_id).raft, region_id)
            .unwrap_or_else(|e| self.fail(&format!("store {store_id}: scanning the raft log: {e}")))
    }

    /// How many raft log entries, of every region, store `store_id`'s raft engine holds.
    pub fn raft_log_key_count(&self, store_id: u64) -> u64 {
        let start = [keys::LOCAL_PREFIX, keys::REGION_RAFT_PREFIX];
        let end = [keys::LOCAL_PREFIX, keys::REGION_RAFT_PREFIX + 1];
        let mut n = 0;
        let scanned = self.engines(store_id).raft.snapshot().and_then(|s| {
            s.scan_cf(Cf::Raft, &start, Some(&end), |k, _| {
                if keys::raft_log_index(k).is_some() {
                    n += 1;
                }
                true
            })
        });
        if let Err(e) = scanned {
            self.fail(&format!("store {store_id}: scanning the raft engine: {e}"));
        }
        n
    }

    /// The apply state of a region as store `store_id`'s kv engine holds it.
    pub fn apply_state_of(&self, store_id: u64, region_id: u64) -> Option<RaftApplyState> {
        raftstore::meta::apply_state(&self.engines(store_id).kv, region_id)
            .unwrap_or_else(|e| self.fail(&format!("store {store_id}: apply state: {e}")))
    }

    /// The raft state of a region as store `store_id`'s raft engine holds it.
    pub fn raft_state_of(&self, store_id: u64, region_id: u64) -> Option<RaftLocalState> {
        raftstore::meta::raft_local_state(&self.engines(store_id).raft, region_id)
            .unwrap_or_else(|e| self.fail(&format!("store {store_id}: raft state: {e}")))
    }

    /// The region state of a region as store `store_id`'s kv engine holds it.
    pub fn region_state_of(&self, store_id: u64, region_id: u64) -> Option<RegionLocalState> {
        raftstore::meta::region_local_state(&self.engines(store_id).kv, region_id)
            .unwrap_or_else(|e| self.fail(&format!("store {store_id}: region state: {e}")))
    }

    /// Runs the cluster (checking `done` every 20 ms of virtual time, and failing the test
    /// as soon as a client of an installed workload fails) until `done` holds; fails the test,
    /// naming `what`, if it does not within `timeout`.
    pub fn wait_until(
        &mut self,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&mut Cluster) -> bool,
    ) {
        let deadline = self.sim().now().after(timeout);
        while !done(self) {
            if self.sim().now() >= deadline {
                self.fail(&format!("waited {timeout:?} in vain for {what}"));
            }
            if self.world().workload.is_some() {
                self.run_clients_for(POLL);
            } else {
                self.run_for(POLL);
            }
        }
    }
}

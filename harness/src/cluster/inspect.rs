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
use proto::metapb;
use proto::raft_serverpb::{PeerState, RaftApplyState, RaftLocalState, RegionLocalState};
use protobuf::Message;
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

    /// The region state of every region store `store_id`'s kv engine holds, by region id
    /// (tombstones included).
    pub fn region_states_of(&self, store_id: u64) -> Vec<(u64, RegionLocalState)> {
        let mut out = Vec::new();
        let mut bad = None;
        let scanned = self.engines(store_id).kv.snapshot().and_then(|snap| {
            snap.scan_cf(
                Cf::Raft,
                keys::REGION_META_MIN_KEY,
                Some(keys::REGION_META_MAX_KEY),
                |k, v| {
                    if let Some((id, keys::REGION_STATE_SUFFIX)) = keys::decode_region_meta_key(k) {
                        match RegionLocalState::parse_from_bytes(v) {
                            Ok(state) => out.push((id, state)),
                            Err(e) => bad = Some(format!("region {id}: {e}")),
                        }
                    }
                    true
                },
            )
        });
        if let Err(e) = scanned {
            self.fail(&format!("store {store_id}: scanning region states: {e}"));
        }
        if let Some(e) = bad {
            self.fail(&format!(
                "store {store_id}: a region state does not decode: {e}"
            ));
        }
        out
    }

    /// The peer of `region_id` on store `store_id`, if the store is running and has one.
    pub fn peer_on(&self, store_id: u64, region_id: u64) -> Option<&raftstore::Peer> {
        self.world()
            .stores
            .get(&store_id)
            .and_then(|n| n.store.as_ref())
            .and_then(|s| s.peer(region_id))
    }

    /// The regions of the initialised peers (those that know their region's peers) of store
    /// `store_id`, by region id; empty while the store is stopped.
    pub fn regions_on(&self, store_id: u64) -> Vec<metapb::Region> {
        self.world()
            .stores
            .get(&store_id)
            .and_then(|n| n.store.as_ref())
            .map(|s| {
                s.peers()
                    .map(|p| p.region())
                    .filter(|r| !r.get_peers().is_empty())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Fails the test unless the key ranges of store `store_id`'s regions are disjoint, both
    /// as its running peers see them and as the `Normal` region states in its kv engine say.
    pub fn check_regions_disjoint(&self, store_id: u64) {
        let live = self.regions_on(store_id);
        let persisted: Vec<metapb::Region> = self
            .region_states_of(store_id)
            .into_iter()
            .filter(|(_, s)| s.get_state() == PeerState::Normal)
            .map(|(_, s)| s.get_region().clone())
            .collect();
        for (what, regions) in [
            ("running peers", &live),
            ("Normal region states", &persisted),
        ] {
            for (i, a) in regions.iter().enumerate() {
                for b in &regions[i + 1..] {
                    if raftstore::util::regions_overlap(a, b) {
                        self.fail(&format!(
                            "store {store_id}: the {what} of regions {} [{:?}, {:?}) and {} [{:?}, {:?}) overlap",
                            a.id,
                            String::from_utf8_lossy(a.get_start_key()),
                            String::from_utf8_lossy(a.get_end_key()),
                            b.id,
                            String::from_utf8_lossy(b.get_start_key()),
                            String::from_utf8_lossy(b.get_end_key()),
                        ));
                    }
                }
            }
        }
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

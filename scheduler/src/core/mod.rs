//! The cluster model: stores, regions, and the per-store view of regions.

pub mod region;
pub mod regions;
pub mod store;

use std::collections::BTreeMap;
use std::time::Duration;

use proto::schedulerpb::StoreStats;

pub use region::{is_epoch_stale, ranges_overlap, RegionInfo, EMPTY_REGION_APPROXIMATE_SIZE};
pub use regions::{RegionsInfo, StoreRegionKind};
pub use store::{StoreInfo, StoreStatus, STORE_DISCONNECT_DURATION};

/// Stores and regions, guarded as one by the cluster's lock.
#[derive(Debug, Default)]
pub struct BasicCluster {
    /// Stores by id.
    pub stores: BTreeMap<u64, StoreInfo>,
    /// The region cache.
    pub regions: RegionsInfo,
}

impl BasicCluster {
    /// Puts `region` in the cache (see [`RegionsInfo::put_region`]); returns the regions it
    /// overlapped, which are gone. Store statuses are not refreshed: call
    /// [`BasicCluster::update_store_status`] for every store involved.
    pub fn put_region(&mut self, region: RegionInfo) -> Vec<RegionInfo> {
        self.regions.put_region(region)
    }

    /// Refreshes a store's counts and sizes from the region cache (nothing if the store is
    /// unknown).
    pub fn update_store_status(&mut self, store_id: u64) {
        let r = &self.regions;
        if let Some(s) = self.stores.get_mut(&store_id) {
            s.leader_count = r.store_count(store_id, StoreRegionKind::Leader);
            s.region_count = r.store_region_count(store_id);
            s.pending_peer_count = r.store_count(store_id, StoreRegionKind::Pending);
            s.leader_size = r.store_size(store_id, StoreRegionKind::Leader);
            s.region_size = r.store_region_size(store_id);
        }
    }

    /// Records a store heartbeat received at `now`. Returns false if the store is unknown.
    pub fn store_heartbeat(&mut self, stats: &StoreStats, now: Duration) -> bool {
        match self.stores.get_mut(&stats.store_id) {
            Some(s) => {
                s.stats = stats.clone();
                s.last_heartbeat = Some(now);
                true
            }
            None => false,
        }
    }
}

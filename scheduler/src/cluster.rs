//! `RaftCluster`: the scheduler's view of the cluster, shared by the heartbeat handlers, the
//! schedulers and the checkers. Every method takes `&self`; the state sits behind one
//! read-write lock, so heartbeats from many stores may be processed concurrently.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use proto::metapb::{Peer, Region, Store, StoreState};
use proto::schedulerpb::StoreStats;
use rand::Rng;

use crate::config::ScheduleConfig;
use crate::core::{is_epoch_stale, BasicCluster, RegionInfo, StoreInfo, StoreRegionKind};
use crate::error::{Epoch, Error, Result};
use crate::meta::{MetaStore, ID_BLOCK};

/// Hands out cluster-unique ids. With a [`MetaStore`], no id at or above the limit it
/// last saved: a new limit ([`ID_BLOCK`] further) is saved first.
#[derive(Debug)]
struct IdAllocator {
    next: AtomicU64,
    /// Ids below it may be handed out; `u64::MAX` without a meta store.
    limit: AtomicU64,
    meta: Option<Arc<dyn MetaStore>>,
    /// Held while a new limit is saved.
    reserving: Mutex<()>,
}

impl IdAllocator {
    fn alloc(&self) -> u64 {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        if id < self.limit.load(Ordering::SeqCst) {
            return id;
        }
        let _guard = self.reserving.lock();
        if id >= self.limit.load(Ordering::SeqCst) {
            let limit = id + ID_BLOCK;
            if let Some(meta) = &self.meta {
                // An id handed out without its limit saved could be handed out again after a
                // restart, and two regions or peers would share it: better stop here.
                if let Err(e) = meta.save_id_limit(limit) {
                    panic!("the scheduler cannot save its id limit {limit} to {meta:?}: {e}");
                }
            }
            self.limit.store(limit, Ordering::SeqCst);
        }
        id
    }
}

/// The scheduler's view of the cluster (see the module docs).
#[derive(Debug)]
pub struct RaftCluster {
    cluster_id: u64,
    ids: IdAllocator,
    /// Stores and regions. Student code locks it in
    /// [`RaftCluster::process_region_heartbeat`].
    pub(crate) core: RwLock<BasicCluster>,
    opts: RwLock<ScheduleConfig>,
}

impl RaftCluster {
    /// An empty cluster. `first_id` is the first id [`RaftCluster::alloc_id`] hands out (ids
    /// below it are taken, e.g. by the bootstrap region and its peers).
    pub fn new(cluster_id: u64, first_id: u64, opts: ScheduleConfig) -> RaftCluster {
        RaftCluster {
            cluster_id,
            ids: IdAllocator {
                next: AtomicU64::new(first_id.max(1)),
                limit: AtomicU64::new(u64::MAX),
                meta: None,
                reserving: Mutex::new(()),
            },
            core: RwLock::new(BasicCluster::default()),
            opts: RwLock::new(opts),
        }
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// Saves the id allocator's progress in `meta` from now on: ids continue from
    /// `id_limit` (or the first id, if higher), the first of them after a saved new limit.
    pub(crate) fn keep_ids_in(&mut self, meta: Arc<dyn MetaStore>, id_limit: u64) {
        let next = self.ids.next.get_mut();
        *next = (*next).max(id_limit);
        *self.ids.limit.get_mut() = *next;
        self.ids.meta = Some(meta);
    }

    /// A fresh id, unique in the cluster (and across restarts, with a [`MetaStore`]).
    ///
    /// # Panics
    /// If the meta store cannot save a new id limit: handing the id out could repeat it.
    pub fn alloc_id(&self) -> u64 {
        self.ids.alloc()
    }

    /// Whether `id` has been handed out (or was below the first id).
    pub fn is_allocated(&self, id: u64) -> bool {
        id != 0 && id < self.ids.next.load(Ordering::SeqCst)
    }

    /// A new peer on `store_id`, with a fresh id.
    pub fn alloc_peer(&self, store_id: u64) -> Result<Peer> {
        if !self.core.read().stores.contains_key(&store_id) {
            return Err(Error::StoreNotFound(store_id));
        }
        let mut p = Peer::new();
        p.id = self.alloc_id();
        p.store_id = store_id;
        Ok(p)
    }

    /// The scheduling options in force.
    pub fn opts(&self) -> ScheduleConfig {
        self.opts.read().clone()
    }

    /// Changes the scheduling options.
    pub fn update_opts(&self, f: impl FnOnce(&mut ScheduleConfig)) {
        f(&mut self.opts.write());
    }

    /// The number of replicas a region should have.
    pub fn max_replicas(&self) -> usize {
        self.opts.read().max_replicas
    }

    /// How long a store may be silent before it is down.
    pub fn max_store_down_time(&self) -> Duration {
        self.opts.read().max_store_down_time
    }

    // ---- stores ----

    /// Adds a store or updates its address and state. A tombstone store cannot come back.
    pub fn put_store(&self, store: Store) -> Result<()> {
        if store.id == 0 {
            return Err(Error::InvalidRequest("store id 0".into()));
        }
        let mut core = self.core.write();
        let id = store.id;
        match core.stores.get_mut(&id) {
            Some(s) if s.is_tombstone() => return Err(Error::StoreTombstone(id)),
            Some(s) => s.meta = store,
            None => {
                core.stores.insert(id, StoreInfo::new(store));
            }
        }
        core.update_store_status(id);
        Ok(())
    }

    /// Puts a store with the statistics given (for test fixtures and tools: the status fields
    /// are taken as they are, not computed from the region cache).
    pub fn put_store_info(&self, store: StoreInfo) {
        self.core.write().stores.insert(store.id(), store);
    }

    /// Sets a store's state (up, offline, tombstone).
    pub fn set_store_state(&self, store_id: u64, state: StoreState) -> Result<()> {
        let mut core = self.core.write();
        let s = core
            .stores
            .get_mut(&store_id)
            .ok_or(Error::StoreNotFound(store_id))?;
        s.meta.state = state;
        Ok(())
    }

    /// Records a store heartbeat received at `now`.
    pub fn handle_store_heartbeat(&self, stats: &StoreStats, now: Duration) -> Result<()> {
        let mut core = self.core.write();
        match core.stores.get(&stats.store_id) {
            None => return Err(Error::StoreNotFound(stats.store_id)),
            Some(s) if s.is_tombstone() => return Err(Error::StoreTombstone(stats.store_id)),
            Some(_) => {}
        }
        core.store_heartbeat(stats, now);
        Ok(())
    }

    /// The store with this id.
    pub fn get_store(&self, store_id: u64) -> Option<StoreInfo> {
        self.core.read().stores.get(&store_id).cloned()
    }

    /// Every store, by id.
    pub fn get_stores(&self) -> Vec<StoreInfo> {
        self.core.read().stores.values().cloned().collect()
    }

    /// The stores holding a peer of `region` (known stores only).
    pub fn get_region_stores(&self, region: &RegionInfo) -> Vec<StoreInfo> {
        self.stores_of(region.store_ids())
    }

    /// The stores holding a non-leader peer of `region` (known stores only).
    pub fn get_follower_stores(&self, region: &RegionInfo) -> Vec<StoreInfo> {
        self.stores_of(region.follower_store_ids())
    }

    fn stores_of(&self, ids: BTreeSet<u64>) -> Vec<StoreInfo> {
        let core = self.core.read();
        ids.into_iter()
            .filter_map(|id| core.stores.get(&id).cloned())
            .collect()
    }

    // ---- regions ----

    /// The region with this id.
    pub fn get_region(&self, region_id: u64) -> Option<RegionInfo> {
        self.core.read().regions.get(region_id).cloned()
    }

    /// The region whose range contains `key`.
    pub fn search_region(&self, key: &[u8]) -> Option<RegionInfo> {
        self.core.read().regions.search(key).cloned()
    }

    /// Every cached region, by start key.
    pub fn get_regions(&self) -> Vec<RegionInfo> {
        self.core.read().regions.regions().cloned().collect()
    }

    /// Every cached region's description, by start key.
    pub fn get_meta_regions(&self) -> Vec<Region> {
        self.core
            .read()
            .regions
            .regions()
            .map(|r| r.meta.clone())
            .collect()
    }

    /// The cached regions whose range overlaps `region`'s, by start key.
    pub fn get_regions_overlapping(&self, region: &RegionInfo) -> Vec<RegionInfo> {
        self.core
            .read()
            .regions
            .overlaps(region.start_key(), region.end_key())
            .into_iter()
            .cloned()
            .collect()
    }

    /// The number of cached regions.
    pub fn region_count(&self) -> usize {
        self.core.read().regions.len()
    }

    /// How many regions have a peer on the store, by the region cache.
    pub fn store_region_count(&self, store_id: u64) -> usize {
        self.core.read().regions.store_region_count(store_id)
    }

    /// How many of the store's regions are of `kind`, by the region cache.
    pub fn store_region_count_of(&self, store_id: u64, kind: StoreRegionKind) -> usize {
        self.core.read().regions.store_count(store_id, kind)
    }

    /// The region `region_id` if the store leads it or follows in it.
    pub fn leader_or_follower_region(&self, store_id: u64, region_id: u64) -> Option<RegionInfo> {
        self.core
            .read()
            .regions
            .leader_or_follower(store_id, region_id)
            .cloned()
    }

    /// A region of `kind` on the store, chosen uniformly with `rng`.
    pub fn random_region(
        &self,
        store_id: u64,
        kind: StoreRegionKind,
        rng: &mut impl Rng,
    ) -> Option<RegionInfo> {
        self.core
            .read()
            .regions
            .random_region(store_id, kind, rng)
            .cloned()
    }

    /// Puts a region in the cache without any check and without refreshing store statuses
    /// (for test fixtures and tools). Returns the regions it overlapped, which are gone.
    pub fn put_region(&self, region: RegionInfo) -> Vec<RegionInfo> {
        self.core.write().put_region(region)
    }

    /// Refreshes a store's counts and sizes from the region cache.
    pub fn update_store_status(&self, store_id: u64) {
        self.core.write().update_store_status(store_id);
    }

    /// Takes in a region heartbeat: refuses it if it is stale, else caches the region and
    /// refreshes the statuses of the stores involved.
    ///
    /// Stale means that the cached region with the same id, or any cached region the
    /// heartbeat's range overlaps, has a larger version or a larger conf_ver. A heartbeat that
    /// is not stale is stored even if its epoch did not change: the peers, the leader, the
    /// pending peers and the size may have. Regions without peers or leader are accepted.
    /// Checking and storing happen under one write lock, so concurrent heartbeats cannot
    /// interleave between them.
    pub fn process_region_heartbeat(&self, region: RegionInfo) -> Result<()> {
        // lab:begin 3c
        // lab:stub let _ = region;
        // lab:stub todo!("3c: refuse a stale heartbeat, cache the region, refresh the store statuses")
        let mut core = self.core.write();
        let stale = |against: &RegionInfo| Error::StaleRegion {
            region_id: region.id(),
            epoch: Epoch::from(region.epoch()),
            against_id: against.id(),
            against: Epoch::from(against.epoch()),
        };
        let origin = core.regions.get(region.id()).cloned();
        if let Some(origin) = &origin {
            if is_epoch_stale(region.epoch(), origin.epoch()) {
                return Err(stale(origin));
            }
        }
        for other in core.regions.overlaps(region.start_key(), region.end_key()) {
            if is_epoch_stale(region.epoch(), other.epoch()) {
                return Err(stale(other));
            }
        }
        if origin.as_ref() == Some(&region) {
            return Ok(());
        }
        let mut stores = region.store_ids();
        if let Some(origin) = &origin {
            stores.extend(origin.store_ids());
        }
        for gone in core.put_region(region) {
            stores.extend(gone.store_ids());
        }
        for store in stores {
            core.update_store_status(store);
        }
        Ok(())
        // lab:end 3c
    }
}

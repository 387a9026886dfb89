//! `SchedulerService`: the scheduler as stores and clients reach it. It checks requests,
//! feeds heartbeats to the cluster model, moves operators on, and runs the checkers and the
//! balance scheduler on a timer driven by the caller ([`SchedulerService::tick`]).
//!
//! Every method takes `&self` and the service is `Sync`: a server may call it from many
//! threads. Time is always passed in; nothing here reads a clock.
//!
//! Lock order: coordinator, then operators, then the cluster's lock (taken and released inside
//! each [`RaftCluster`] call).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use proto::metapb::{Peer, Region, Store};
use proto::schedulerpb::{
    AskSplitResponse, RegionHeartbeatRequest, RegionHeartbeatResponse, StoreStats,
};

use crate::cluster::RaftCluster;
use crate::config::ScheduleConfig;
use crate::core::{is_epoch_stale, RegionInfo, StoreInfo};
use crate::error::{Epoch, Error, Result};
use crate::meta::{MetaStore, SavedMeta};
use crate::operator::{
    create_add_peer_operator, create_remove_peer_operator, create_transfer_leader_operator, OpKind,
    Operator, OperatorController, OperatorRecord,
};
use crate::schedulers::{BalanceRegionScheduler, ReplicaChecker};

/// When the periodic jobs run next.
#[derive(Debug)]
struct Coordinator {
    balance: BalanceRegionScheduler,
    checker: ReplicaChecker,
    balance_interval: Duration,
    next_balance: Duration,
    next_patrol: Duration,
}

/// The scheduler service (see the module docs).
#[derive(Debug)]
pub struct SchedulerService {
    cluster: RaftCluster,
    bootstrapped: AtomicBool,
    ops: Mutex<OperatorController>,
    coordinator: Mutex<Coordinator>,
    /// Steps of operators started outside a heartbeat, for the leader's store.
    outbox: Mutex<Vec<(u64, RegionHeartbeatResponse)>>,
    /// Where what must survive a restart is saved, if anywhere.
    meta: Option<Arc<dyn MetaStore>>,
}

impl SchedulerService {
    /// A service for an empty, not yet bootstrapped cluster. Ids from `first_id` on are free;
    /// `seed` drives every random choice of the schedulers.
    pub fn new(
        cluster_id: u64,
        first_id: u64,
        opts: ScheduleConfig,
        seed: u64,
    ) -> SchedulerService {
        let min = opts.min_schedule_interval;
        SchedulerService {
            cluster: RaftCluster::new(cluster_id, first_id, opts),
            bootstrapped: AtomicBool::new(false),
            ops: Mutex::new(OperatorController::new()),
            coordinator: Mutex::new(Coordinator {
                balance: BalanceRegionScheduler::new(seed),
                checker: ReplicaChecker,
                balance_interval: min,
                next_balance: Duration::ZERO,
                next_patrol: Duration::ZERO,
            }),
            outbox: Mutex::new(Vec::new()),
            meta: None,
        }
    }

    /// This service, restarted from what it `saved` earlier, and saving to `meta` from now
    /// on (see [`crate::meta`]): bootstrapped or not as before, every store known again,
    /// ids continuing above any it may have handed out. Regions come back with their
    /// heartbeats.
    pub fn with_meta(mut self, saved: SavedMeta, meta: Arc<dyn MetaStore>) -> SchedulerService {
        *self.bootstrapped.get_mut() = saved.bootstrapped;
        for store in saved.stores {
            self.cluster.put_store_info(StoreInfo::new(store));
        }
        self.cluster.keep_ids_in(meta.clone(), saved.id_limit);
        self.meta = Some(meta);
        self
    }

    /// Runs `save` on the meta store, if there is one.
    fn save(&self, save: impl FnOnce(&dyn MetaStore) -> std::io::Result<()>) -> Result<()> {
        match &self.meta {
            Some(meta) => save(meta.as_ref()).map_err(|e| Error::Meta(format!("{meta:?}: {e}"))),
            None => Ok(()),
        }
    }

    /// The cluster model.
    pub fn cluster(&self) -> &RaftCluster {
        &self.cluster
    }

    /// Marks the cluster bootstrapped by `store`, which is registered.
    pub fn bootstrap(&self, store: Store) -> Result<()> {
        if self.bootstrapped.load(Ordering::SeqCst) {
            return Err(Error::AlreadyBootstrapped);
        }
        self.put_store(store)?;
        if self.bootstrapped.swap(true, Ordering::SeqCst) {
            return Err(Error::AlreadyBootstrapped);
        }
        if let Err(e) = self.save(|m| m.save_bootstrapped()) {
            self.bootstrapped.store(false, Ordering::SeqCst);
            return Err(e);
        }
        Ok(())
    }

    /// Whether the cluster was bootstrapped.
    pub fn is_bootstrapped(&self) -> bool {
        self.bootstrapped.load(Ordering::SeqCst)
    }

    /// Registers a store or updates its description.
    pub fn put_store(&self, store: Store) -> Result<()> {
        let id = store.id;
        self.cluster.put_store(store)?;
        match self.cluster.get_store(id) {
            Some(saved) => self.save(|m| m.save_store(&saved.meta)),
            None => Ok(()),
        }
    }

    /// The description of a store.
    pub fn get_store(&self, store_id: u64) -> Option<Store> {
        self.cluster.get_store(store_id).map(|s| s.meta)
    }

    /// The region containing `key` and its leader.
    pub fn get_region(&self, key: &[u8]) -> Option<(Region, Option<Peer>)> {
        self.cluster.search_region(key).map(|r| (r.meta, r.leader))
    }

    /// The region with this id and its leader.
    pub fn get_region_by_id(&self, region_id: u64) -> Option<(Region, Option<Peer>)> {
        self.cluster
            .get_region(region_id)
            .map(|r| (r.meta, r.leader))
    }

    /// Records a store heartbeat received at `now`.
    pub fn store_heartbeat(&self, stats: &StoreStats, now: Duration) -> Result<()> {
        self.cluster.handle_store_heartbeat(stats, now)
    }

    /// Takes in a region heartbeat received at `now`: refuses a malformed or stale one without
    /// changing anything, else caches the region and answers with the step its operator wants
    /// next, if any (addressed to the heartbeat's leader).
    pub fn region_heartbeat(
        &self,
        req: &RegionHeartbeatRequest,
        now: Duration,
    ) -> Result<Option<RegionHeartbeatResponse>> {
        let region = self.validate_heartbeat(req)?;
        let cfg = self.cluster.opts();
        // One operator lock across caching and dispatch: a concurrent heartbeat cannot cache a
        // newer region between them, so the operator is moved on by the region just cached.
        let mut ops = self.ops.lock();
        self.cluster.process_region_heartbeat(region.clone())?;
        Ok(ops.dispatch(&region, now, &cfg))
    }

    /// Checks what no correct store sends: a heartbeat without region, peers, epoch or
    /// leader; a leader that is not a peer; duplicate peers or stores; ids the scheduler never
    /// allocated (an epoch "from the future" comes with them); stores that are unknown or
    /// tombstones; an empty or inverted range; pending peers outside the region; and a range
    /// overlapping a cached region of another id whose version is not strictly older (a split
    /// raises the version of both halves, so a genuine newcomer is always newer).
    pub fn validate_heartbeat(&self, req: &RegionHeartbeatRequest) -> Result<RegionInfo> {
        let invalid = |why: String| Err(Error::InvalidRequest(why));
        let Some(region) = req.region.as_ref() else {
            return invalid("region heartbeat without a region".into());
        };
        let id = region.id;
        if !self.cluster.is_allocated(id) {
            return invalid(format!("region id {id} was never allocated"));
        }
        let epoch = region.get_region_epoch();
        if epoch.conf_ver == 0 || epoch.version == 0 {
            return invalid(format!("region {id} has no epoch"));
        }
        if !region.end_key.is_empty() && region.start_key >= region.end_key {
            return invalid(format!("region {id} has an empty or inverted range"));
        }
        if region.peers.is_empty() {
            return invalid(format!("region {id} has no peers"));
        }
        let mut ids = BTreeSet::new();
        let mut stores = BTreeSet::new();
        for p in &region.peers {
            if !self.cluster.is_allocated(p.id) {
                return invalid(format!("region {id}: peer id {} was never allocated", p.id));
            }
            if !ids.insert(p.id) || !stores.insert(p.store_id) {
                return invalid(format!(
                    "region {id} lists peer {} or store {} twice",
                    p.id, p.store_id
                ));
            }
            match self.cluster.get_store(p.store_id) {
                None => return Err(Error::StoreNotFound(p.store_id)),
                Some(s) if s.is_tombstone() => return Err(Error::StoreTombstone(p.store_id)),
                Some(_) => {}
            }
        }
        let Some(leader) = req.leader.as_ref() else {
            return invalid(format!("region {id} heartbeat without a leader"));
        };
        if !region.peers.iter().any(|p| p == leader) {
            return invalid(format!(
                "region {id}: leader (store {}, peer {}) is not one of its peers",
                leader.store_id, leader.id
            ));
        }
        if let Some(p) = req.pending_peers.iter().find(|p| !region.peers.contains(p)) {
            return invalid(format!(
                "region {id}: pending peer (store {}, peer {}) is not one of its peers",
                p.store_id, p.id
            ));
        }
        let info = RegionInfo::from_heartbeat(req);
        for other in self.cluster.get_regions_overlapping(&info) {
            if other.id() != id && other.epoch().version >= epoch.version
                || other.id() == id && is_epoch_stale(epoch, other.epoch())
            {
                return Err(Error::StaleRegion {
                    region_id: id,
                    epoch: Epoch::from(epoch),
                    against_id: other.id(),
                    against: Epoch::from(other.epoch()),
                });
            }
        }
        Ok(info)
    }

    /// The ids a split of `region` needs: a new region id and one new peer id per peer.
    /// Refused if the region is unknown or the scheduler knows a newer epoch.
    pub fn ask_split(&self, region: &Region) -> Result<AskSplitResponse> {
        let cached = self
            .cluster
            .get_region(region.id)
            .ok_or(Error::RegionNotFound(region.id))?;
        if is_epoch_stale(region.get_region_epoch(), cached.epoch()) {
            return Err(Error::StaleRegion {
                region_id: region.id,
                epoch: Epoch::from(region.get_region_epoch()),
                against_id: cached.id(),
                against: Epoch::from(cached.epoch()),
            });
        }
        let mut resp = AskSplitResponse::new();
        resp.new_region_id = self.cluster.alloc_id();
        resp.new_peer_ids = region
            .peers
            .iter()
            .map(|_| self.cluster.alloc_id())
            .collect();
        Ok(resp)
    }

    /// Hears that `left` and `right` are the halves of a finished split. The regions are
    /// learnt from their leaders' heartbeats; this only checks the report is coherent.
    pub fn report_split(&self, left: &Region, right: &Region) -> Result<()> {
        if left.end_key.is_empty() || left.end_key != right.start_key {
            return Err(Error::InvalidRequest(format!(
                "split report: region {} does not end where region {} starts",
                left.id, right.id
            )));
        }
        Ok(())
    }

    /// Starts `op` at `now` and sends its first step to the region's leader at once.
    pub fn add_operator(&self, op: Operator, now: Duration) -> Result<()> {
        let region = self
            .cluster
            .get_region(op.region_id())
            .ok_or(Error::RegionNotFound(op.region_id()))?;
        let cfg = self.cluster.opts();
        let mut ops = self.ops.lock();
        ops.add(op, now)?;
        if let (Some(resp), Some(store)) =
            (ops.dispatch(&region, now, &cfg), region.leader_store_id())
        {
            self.outbox.lock().push((store, resp));
        }
        Ok(())
    }

    /// An administrator's operator adding `peer` to the region.
    pub fn add_peer(&self, region_id: u64, peer: &Peer, now: Duration) -> Result<()> {
        let region = self.region(region_id)?;
        let op = create_add_peer_operator(
            "admin-add-peer",
            &region,
            peer.id,
            peer.store_id,
            OpKind::ADMIN,
        );
        self.add_operator(op, now)
    }

    /// An administrator's operator removing `peer` from the region.
    pub fn remove_peer(&self, region_id: u64, peer: &Peer, now: Duration) -> Result<()> {
        let region = self.region(region_id)?;
        let op = create_remove_peer_operator(
            "admin-remove-peer",
            &self.cluster,
            OpKind::ADMIN,
            &region,
            peer.store_id,
        )?;
        self.add_operator(op, now)
    }

    /// An administrator's operator making `peer` the region's leader.
    pub fn transfer_leader(&self, region_id: u64, peer: &Peer, now: Duration) -> Result<()> {
        let region = self.region(region_id)?;
        let from = region.leader_store_id().unwrap_or_default();
        let op = create_transfer_leader_operator(
            "admin-transfer-leader",
            &region,
            from,
            peer.store_id,
            OpKind::ADMIN,
        );
        self.add_operator(op, now)
    }

    fn region(&self, region_id: u64) -> Result<RegionInfo> {
        self.cluster
            .get_region(region_id)
            .ok_or(Error::RegionNotFound(region_id))
    }

    /// The operator running on the region.
    pub fn operator(&self, region_id: u64) -> Option<Operator> {
        self.ops.lock().get(region_id).cloned()
    }

    /// Every running operator.
    pub fn operators(&self) -> Vec<Operator> {
        self.ops.lock().operators().cloned().collect()
    }

    /// The most recent ended operators, oldest first.
    pub fn operator_history(&self) -> Vec<OperatorRecord> {
        self.ops.lock().history().cloned().collect()
    }

    /// How many operators finished since the start.
    pub fn finished_operators(&self) -> u64 {
        self.ops.lock().finished_count()
    }

    /// Runs the periodic jobs due at `now`: drops timed-out operators, lets the replica
    /// checker look at every region (every patrol interval), and runs the balance scheduler
    /// when its interval has passed (the interval resets to the minimum when it produced an
    /// operator, and grows by the configured factor up to the maximum while it finds nothing).
    pub fn tick(&self, now: Duration) {
        let cfg = self.cluster.opts();
        let mut co = self.coordinator.lock();
        self.ops.lock().remove_timed_out(now, &cfg);
        if cfg.enable_replica_checker && now >= co.next_patrol {
            co.next_patrol = now + cfg.patrol_region_interval;
            for region in self.cluster.get_regions() {
                {
                    let ops = self.ops.lock();
                    if ops.count(OpKind::REPLICA) >= cfg.replica_schedule_limit {
                        break;
                    }
                    if ops.get(region.id()).is_some() {
                        continue;
                    }
                }
                if let Some(op) = co.checker.check(&self.cluster, &region, now) {
                    if let Err(e) = self.add_operator(op, now) {
                        tracing::debug!("scheduler: replica checker: {e}");
                    }
                }
            }
        }
        if cfg.enable_balance_region && now >= co.next_balance {
            let room = self.ops.lock().count(OpKind::REGION) < cfg.region_schedule_limit;
            let produced = room
                && match co.balance.schedule(&self.cluster, now) {
                    Some(op) => match self.add_operator(op, now) {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::debug!("scheduler: balance-region: {e}");
                            false
                        }
                    },
                    None => false,
                };
            co.balance_interval = if produced {
                cfg.min_schedule_interval
            } else {
                co.balance_interval
                    .mul_f64(cfg.schedule_interval_factor)
                    .min(cfg.max_schedule_interval)
            };
            co.next_balance = now + co.balance_interval;
        }
    }

    /// Steps of operators started outside a heartbeat: (store of the region's leader, the
    /// response to deliver there).
    pub fn take_responses(&self) -> Vec<(u64, RegionHeartbeatResponse)> {
        std::mem::take(&mut *self.outbox.lock())
    }
}

// lab:needs 3c
#[cfg(test)]
mod tests {
    use proto::metapb::{Peer, Region, Store};
    use proto::schedulerpb::{RegionHeartbeatRequest, StoreStats};

    use super::*;

    fn peer(store_id: u64, id: u64) -> Peer {
        let mut p = Peer::new();
        p.store_id = store_id;
        p.id = id;
        p
    }

    /// A service with `stores` stores heartbeating at time 0 and `regions` single-key regions
    /// with peers on stores 1, 2, 3 (led from store 1).
    fn service(stores: u64, regions: u64, opts: ScheduleConfig) -> SchedulerService {
        let s = SchedulerService::new(1, 1000, opts, 5);
        for id in 1..=stores {
            add_store(&s, id, Duration::ZERO);
        }
        for id in 1..=regions {
            let mut r = Region::new();
            r.id = id;
            r.start_key = vec![id as u8];
            r.end_key = vec![id as u8 + 1];
            r.mut_region_epoch().conf_ver = 1;
            r.mut_region_epoch().version = 1;
            for k in 1..=3 {
                r.peers.push(peer(k, 100 + id * 10 + k));
            }
            let mut req = RegionHeartbeatRequest::new();
            req.set_leader(r.peers[0].clone());
            req.set_region(r);
            s.region_heartbeat(&req, Duration::ZERO)
                .expect("fixture heartbeat");
        }
        s
    }

    fn add_store(s: &SchedulerService, id: u64, now: Duration) {
        let mut st = Store::new();
        st.id = id;
        s.put_store(st).expect("store");
        let mut stats = StoreStats::new();
        stats.store_id = id;
        s.store_heartbeat(&stats, now).expect("store heartbeat");
    }

    /// At most `region_schedule_limit` peer-moving operators run at once.
    #[test]
    fn balance_respects_the_region_schedule_limit() {
        let opts = ScheduleConfig {
            enable_replica_checker: false,
            region_schedule_limit: 2,
            ..ScheduleConfig::default()
        };
        let s = service(4, 12, opts);
        for i in 0..100u64 {
            s.tick(Duration::from_millis(10 * i));
        }
        assert_eq!(s.operators().len(), 2, "{:?}", s.operators());
    }

    /// A store the scheduler has never heard from is not down: its replicas are not replaced
    /// (after a scheduler restart every store is in that state until it heartbeats). An empty
    /// or inverted range is refused before it reaches the cache.
    #[test]
    fn stores_never_heard_from_are_not_down() {
        let opts = ScheduleConfig {
            enable_balance_region: false,
            max_store_down_time: Duration::from_secs(10),
            ..ScheduleConfig::default()
        };
        let s = service(3, 3, opts);
        let mut st = Store::new();
        st.id = 4;
        s.put_store(st).expect("store 4");
        // Stores 1-3 heartbeated at 0 only; store 4 never did.
        s.tick(Duration::from_secs(5));
        assert!(s.operators().is_empty(), "{:?}", s.operators());
        let status = |id| {
            s.cluster()
                .get_store(id)
                .map(|st| st.status(Duration::from_secs(60), Duration::from_secs(10)))
        };
        assert_eq!(status(1), Some(crate::core::StoreStatus::Down));
        assert_eq!(status(4), Some(crate::core::StoreStatus::Disconnected));
        let mut r = Region::new();
        r.id = 1;
        r.start_key = b"k".to_vec();
        r.end_key = b"k".to_vec();
        r.mut_region_epoch().conf_ver = 5;
        r.mut_region_epoch().version = 5;
        r.peers.push(peer(1, 111));
        let mut req = RegionHeartbeatRequest::new();
        req.set_leader(r.peers[0].clone());
        req.set_region(r);
        let before = s.cluster().get_regions();
        assert!(matches!(
            s.region_heartbeat(&req, Duration::ZERO),
            Err(Error::InvalidRequest(_))
        ));
        assert_eq!(s.cluster().get_regions(), before);
    }

    /// A store silent past the max store down time has its peers replaced, add first; a
    /// region missing a replica gets one; the leader's store is never the one replaced.
    #[test]
    fn replica_checker_replaces_down_peers_add_first() {
        let opts = ScheduleConfig {
            enable_balance_region: false,
            max_store_down_time: Duration::from_secs(10),
            ..ScheduleConfig::default()
        };
        let s = service(4, 3, opts);
        let later = Duration::from_secs(11);
        for id in [1, 2, 4] {
            let mut stats = StoreStats::new();
            stats.store_id = id;
            s.store_heartbeat(&stats, later).expect("store heartbeat");
        }
        s.tick(later);
        let ops = s.operators();
        assert_eq!(ops.len(), 3, "{ops:?}");
        for op in &ops {
            assert!(op.kind().contains(OpKind::REPLICA));
            assert_eq!(
                op.steps(),
                &[
                    crate::operator::OpStep::AddPeer {
                        to_store: 4,
                        peer_id: match op.steps()[0] {
                            crate::operator::OpStep::AddPeer { peer_id, .. } => peer_id,
                            _ => 0,
                        },
                    },
                    crate::operator::OpStep::RemovePeer { from_store: 3 },
                ],
                "{op}"
            );
        }
        // Each step went out to the leader's store at once.
        let sent = s.take_responses();
        assert_eq!(sent.len(), 3);
        assert!(sent
            .iter()
            .all(|(store, r)| *store == 1 && r.has_change_peer()));
    }
}
// lab:end-needs

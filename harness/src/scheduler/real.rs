//! The real scheduler (crate `scheduler`) in a simulated cluster.
//!
//! [`RealScheduler`] adapts a [`SchedulerService`] to [`ClusterScheduler`]: heartbeats and
//! ticks carry the simulator's virtual time; the service's answers are collected for the
//! leaders' stores; operators that tests ask for become administrator operators. A cluster
//! runs on it with `ClusterConfig::with_scheduler(real_factory(..))` or `LABS_SCHEDULER=real`.
//!
//! The harness keeps its own oracle on top: every accepted heartbeat must show at most one
//! conf change against the region the scheduler had (the mock's rule, [`super::mock`]), and a
//! heartbeat the service finds malformed is a store bug. Both are recorded as violations and
//! fail the run with its seed. Stale heartbeats are normal (partitions, reordering) and only
//! refused.

use std::sync::Arc;
use std::time::Duration;

use proto::metapb::{Peer, Region, RegionEpoch, Store};
use proto::schedulerpb::{
    AskSplitResponse, RegionHeartbeatRequest, RegionHeartbeatResponse, StoreStats,
};
use scheduler::{Error, ScheduleConfig, SchedulerService};

use super::{ClusterScheduler, SchedulerError, SchedulerFactory, SchedulerSetup};

/// A factory of real schedulers with options `opts` (each cluster gets its own, seeded from
/// the run's seed).
pub fn real_scheduler(opts: ScheduleConfig) -> SchedulerFactory {
    Arc::new(move |setup: SchedulerSetup| {
        Box::new(RealScheduler::new(
            setup.cluster_id,
            setup.first_id,
            opts.clone(),
            setup.seed,
        )) as Box<dyn ClusterScheduler>
    })
}

/// The options of the real scheduler standing in for the mock (`LABS_SCHEDULER=real`): the
/// simulation's, with balance-region and the replica checker off, so that, as with the mock,
/// membership changes only when a test asks. A test that wants the scheduler to act on its
/// own picks its options with [`real_scheduler`].
pub fn drop_in_options() -> ScheduleConfig {
    ScheduleConfig {
        enable_balance_region: false,
        enable_replica_checker: false,
        ..ScheduleConfig::simulation()
    }
}

/// The real scheduler behind the harness's scheduler trait (see the module docs).
#[derive(Debug)]
pub struct RealScheduler {
    svc: SchedulerService,
    /// The latest virtual time seen (heartbeats and ticks), used for operators that tests
    /// start between events.
    now: Duration,
    responses: Vec<(u64, RegionHeartbeatResponse)>,
    violations: Vec<String>,
}

impl RealScheduler {
    /// A real scheduler for cluster `cluster_id` whose free ids start at `first_id`, with
    /// options `opts` and its random choices drawn from `seed`.
    pub fn new(cluster_id: u64, first_id: u64, opts: ScheduleConfig, seed: u64) -> RealScheduler {
        RealScheduler {
            svc: SchedulerService::new(cluster_id, first_id, opts, seed),
            now: Duration::ZERO,
            responses: Vec::new(),
            violations: Vec::new(),
        }
    }

    /// The service, for tests that look inside (operators, store statuses, options).
    pub fn service(&self) -> &SchedulerService {
        &self.svc
    }

    fn collect(&mut self) {
        self.responses.extend(self.svc.take_responses());
    }

    fn admin(&mut self, what: &str, region_id: u64, peer: &Peer, r: scheduler::Result<()>) {
        if let Err(e) = r {
            tracing::debug!(
                "real scheduler: {what} (store {}, peer {}) on region {region_id} refused: {e}",
                peer.store_id,
                peer.id
            );
        }
        self.collect();
    }
}

/// The harness's error for a service error.
fn to_harness(e: Error) -> SchedulerError {
    match e {
        Error::StaleRegion {
            region_id,
            epoch,
            against,
            ..
        } => SchedulerError::StaleEpoch {
            region_id,
            epoch: pb_epoch(epoch),
            current: pb_epoch(against),
        },
        Error::RegionNotFound(id) => SchedulerError::RegionNotFound(id),
        Error::NotBootstrapped => SchedulerError::NotBootstrapped,
        Error::AlreadyBootstrapped => SchedulerError::AlreadyBootstrapped,
        other => SchedulerError::Refused(other.to_string()),
    }
}

fn pb_epoch(e: scheduler::Epoch) -> RegionEpoch {
    let mut pb = RegionEpoch::new();
    pb.conf_ver = e.conf_ver;
    pb.version = e.version;
    pb
}

impl ClusterScheduler for RealScheduler {
    fn cluster_id(&self) -> u64 {
        self.svc.cluster().cluster_id()
    }

    fn alloc_id(&mut self) -> u64 {
        self.svc.cluster().alloc_id()
    }

    fn bootstrap(&mut self, store: Store) -> Result<(), SchedulerError> {
        self.svc.bootstrap(store).map_err(to_harness)
    }

    fn is_bootstrapped(&self) -> bool {
        self.svc.is_bootstrapped()
    }

    fn put_store(&mut self, store: Store) {
        let id = store.id;
        if let Err(e) = self.svc.put_store(store) {
            self.violations
                .push(format!("put_store of store {id} refused: {e}"));
        }
    }

    fn get_store(&self, store_id: u64) -> Option<Store> {
        self.svc.get_store(store_id)
    }

    fn get_region(&self, key: &[u8]) -> Option<(Region, Option<Peer>)> {
        self.svc.get_region(key)
    }

    fn get_region_by_id(&self, region_id: u64) -> Option<(Region, Option<Peer>)> {
        self.svc.get_region_by_id(region_id)
    }

    fn leader(&self, region_id: u64) -> Option<Peer> {
        self.svc.cluster().get_region(region_id)?.leader
    }

    fn regions(&self) -> Vec<Region> {
        self.svc.cluster().get_meta_regions()
    }

    fn is_pending(&self, peer_id: u64) -> bool {
        self.svc
            .cluster()
            .get_regions()
            .iter()
            .any(|r| r.pending_peer(peer_id).is_some())
    }

    fn add_peer(&mut self, region_id: u64, peer: Peer) {
        let r = self.svc.add_peer(region_id, &peer, self.now);
        self.admin("add peer", region_id, &peer, r);
    }

    fn remove_peer(&mut self, region_id: u64, peer: Peer) {
        let r = self.svc.remove_peer(region_id, &peer, self.now);
        self.admin("remove peer", region_id, &peer, r);
    }

    fn transfer_leader(&mut self, region_id: u64, peer: Peer) {
        let r = self.svc.transfer_leader(region_id, &peer, self.now);
        self.admin("transfer leader to", region_id, &peer, r);
    }

    fn operator(&self, region_id: u64) -> Option<String> {
        self.svc.operator(region_id).map(|op| op.to_string())
    }

    fn region_heartbeat(
        &mut self,
        req: &RegionHeartbeatRequest,
        now: Duration,
    ) -> Result<(), SchedulerError> {
        self.now = self.now.max(now);
        if let Some(cached) = self.svc.cluster().get_region(req.get_region().id) {
            let hb = req.get_region();
            if !scheduler::core::is_epoch_stale(hb.get_region_epoch(), cached.epoch()) {
                if let Some(v) = super::mock::conf_change_violation(&cached.meta, hb) {
                    self.violations.push(v.clone());
                    return Err(SchedulerError::Violation(v));
                }
            }
        }
        match self.svc.region_heartbeat(req, now) {
            Ok(resp) => {
                if let Some(resp) = resp {
                    self.responses.push((req.get_leader().store_id, resp));
                }
                Ok(())
            }
            Err(
                e @ (Error::InvalidRequest(_) | Error::StoreNotFound(_) | Error::StoreTombstone(_)),
            ) => {
                let msg = format!("region heartbeat refused as malformed: {e}");
                self.violations.push(msg.clone());
                Err(SchedulerError::Violation(msg))
            }
            Err(e) => Err(to_harness(e)),
        }
    }

    fn store_heartbeat(&mut self, stats: &StoreStats, now: Duration) {
        self.now = self.now.max(now);
        if let Err(e) = self.svc.store_heartbeat(stats, now) {
            self.violations.push(format!(
                "store heartbeat of store {} refused: {e}",
                stats.store_id
            ));
        }
    }

    fn ask_split(&mut self, region: &Region) -> Result<AskSplitResponse, SchedulerError> {
        self.svc.ask_split(region).map_err(to_harness)
    }

    fn report_split(&mut self, left: &Region, right: &Region) -> Result<(), SchedulerError> {
        self.svc.report_split(left, right).map_err(to_harness)
    }

    fn wants_ticks(&self) -> bool {
        true
    }

    fn tick(&mut self, now: Duration) {
        self.now = self.now.max(now);
        self.svc.tick(now);
        self.collect();
    }

    fn take_responses(&mut self) -> Vec<(u64, RegionHeartbeatResponse)> {
        self.collect();
        std::mem::take(&mut self.responses)
    }

    fn has_violations(&self) -> bool {
        !self.violations.is_empty()
    }

    fn take_violations(&mut self) -> Vec<String> {
        std::mem::take(&mut self.violations)
    }
}

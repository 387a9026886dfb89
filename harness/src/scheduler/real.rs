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

// lab:needs 2aa..3c
#[cfg(test)]
mod tests {
    use proto::metapb::{Peer, Region, Store};
    use proto::schedulerpb::RegionHeartbeatRequest;

    use super::*;

    fn peer(store_id: u64, id: u64) -> Peer {
        let mut p = Peer::new();
        p.store_id = store_id;
        p.id = id;
        p
    }

    fn heartbeat(conf_ver: u64, peers: &[(u64, u64)]) -> RegionHeartbeatRequest {
        let mut r = Region::new();
        r.id = 1;
        r.mut_region_epoch().conf_ver = conf_ver;
        r.mut_region_epoch().version = 1;
        r.peers = peers.iter().map(|&(s, id)| peer(s, id)).collect();
        let mut req = RegionHeartbeatRequest::new();
        req.set_leader(r.peers[0].clone());
        req.set_region(r);
        req
    }

    fn scheduler() -> RealScheduler {
        let mut s = RealScheduler::new(0, 10, drop_in_options(), 1);
        for id in 1..=4 {
            let mut st = Store::new();
            st.id = id;
            s.put_store(st);
        }
        s
    }

    /// The mock's membership rule holds on the real scheduler too: two peers added in one
    /// conf_ver step, and a peer set changed without a bump, are violations; one step is fine.
    #[test]
    fn the_membership_oracle_watches_the_real_scheduler() {
        let mut s = scheduler();
        let t = Duration::from_millis(100);
        assert!(s.region_heartbeat(&heartbeat(1, &[(1, 1)]), t).is_ok());
        assert!(s
            .region_heartbeat(&heartbeat(2, &[(1, 1), (2, 2)]), t)
            .is_ok());
        assert!(!s.has_violations());
        let jump = s.region_heartbeat(&heartbeat(3, &[(1, 1), (2, 2), (3, 3), (4, 4)]), t);
        assert!(
            matches!(jump, Err(SchedulerError::Violation(_))),
            "{jump:?}"
        );
        let silent = s.region_heartbeat(&heartbeat(2, &[(1, 1), (3, 3)]), t);
        assert!(
            matches!(silent, Err(SchedulerError::Violation(_))),
            "{silent:?}"
        );
        let v = s.take_violations();
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].contains("not one conf change"), "{}", v[0]);
        assert!(v[1].contains("without a conf_ver bump"), "{}", v[1]);
        // The scheduler kept the last good region.
        let (region, leader) = s.get_region_by_id(1).expect("region 1");
        assert_eq!(region.get_region_epoch().conf_ver, 2);
        assert_eq!(leader, Some(peer(1, 1)));
    }

    /// A heartbeat the service finds malformed is a store bug (a violation); a stale one is
    /// only refused.
    #[test]
    fn malformed_heartbeats_are_violations_and_stale_ones_are_not() {
        let mut s = scheduler();
        let t = Duration::from_millis(100);
        assert!(s.region_heartbeat(&heartbeat(2, &[(1, 1)]), t).is_ok());
        let stale = s.region_heartbeat(&heartbeat(1, &[(1, 1)]), t);
        assert!(
            matches!(stale, Err(SchedulerError::StaleEpoch { .. })),
            "{stale:?}"
        );
        assert!(!s.has_violations());
        let mut bad = heartbeat(2, &[(1, 1)]);
        bad.set_leader(peer(9, 9));
        let r = s.region_heartbeat(&bad, t);
        assert!(matches!(r, Err(SchedulerError::Violation(_))), "{r:?}");
        assert!(s.has_violations());
    }

    /// Operators a test asks for go out at once, to the leader's store.
    #[test]
    fn test_operators_reach_the_leader_store() {
        let mut s = scheduler();
        let t = Duration::from_millis(100);
        assert!(s
            .region_heartbeat(&heartbeat(1, &[(1, 1), (2, 2)]), t)
            .is_ok());
        s.add_peer(1, peer(3, 3));
        let sent = s.take_responses();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].0, 1);
        assert_eq!(sent[0].1.get_change_peer().get_peer(), &peer(3, 3));
        assert!(s
            .operator(1)
            .is_some_and(|d| d.contains("add peer 3 on store 3")));
    }
}
// lab:end-needs

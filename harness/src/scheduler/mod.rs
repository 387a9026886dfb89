//! The scheduler a simulated cluster runs on, behind one trait: [`ClusterScheduler`].
//!
//! The [`World`](crate::cluster::World) holds a `Box<dyn ClusterScheduler>` and every harness
//! helper (region lookups, the membership operators tests ask for, the stores' heartbeats
//! and split requests, the responses routed back to the stores) goes through the trait, so a
//! cluster runs on the [mock](mock::MockScheduler) or on the real scheduler without a test
//! changing.
//!
//! Which one a cluster gets: [`ClusterConfig::with_scheduler`](crate::cluster::ClusterConfig::with_scheduler)
//! if the test chose, else the one the `LABS_SCHEDULER` environment variable names
//! ([`factory_from_env`]): `mock` (the default) or `real`.

pub mod mock;
pub mod real;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use proto::metapb::{self, Peer, Region, RegionEpoch};
use proto::schedulerpb::{
    self, AskSplitResponse, ErrorType, RegionHeartbeatRequest, RegionHeartbeatResponse, StoreStats,
};

pub use mock::{MockScheduler, Operator};

/// What a simulated cluster needs from its scheduler: the mock or the real one.
///
/// The simulator owns it and calls it from its events, one call at a time; it must be
/// deterministic (no clock, no randomness but what it derives from
/// [`SchedulerSetup::seed`], no hash-order iteration), so a seed replays the same run.
/// Times are the simulator's virtual time since the simulation started.
pub trait ClusterScheduler: fmt::Debug {
    /// The cluster id.
    fn cluster_id(&self) -> u64;

    /// A fresh id, larger than every id handed out before (for regions and peers).
    fn alloc_id(&mut self) -> u64;

    /// Bootstraps the cluster with its first store. A second call fails with
    /// [`SchedulerError::AlreadyBootstrapped`] and changes nothing.
    fn bootstrap(&mut self, store: metapb::Store) -> Result<(), SchedulerError>;

    /// Whether [`bootstrap`](Self::bootstrap) succeeded.
    fn is_bootstrapped(&self) -> bool;

    /// Adds or replaces a store.
    fn put_store(&mut self, store: metapb::Store);

    /// The store with this id.
    fn get_store(&self, store_id: u64) -> Option<metapb::Store>;

    /// The region containing `key`, with its last reported leader.
    fn get_region(&self, key: &[u8]) -> Option<(Region, Option<Peer>)>;

    /// The region with this id, with its last reported leader; `None` for an unknown (or
    /// removed) id.
    fn get_region_by_id(&self, region_id: u64) -> Option<(Region, Option<Peer>)>;

    /// The last leader reported for the region.
    fn leader(&self, region_id: u64) -> Option<Peer>;

    /// Every region the scheduler knows, ordered by start key.
    fn regions(&self) -> Vec<Region>;

    /// Whether the last heartbeat that listed this peer reported it as pending.
    fn is_pending(&self, peer_id: u64) -> bool;

    /// Asks for `peer` to be added to the region: an operator a test asks for (one per
    /// region; a new one replaces the old).
    fn add_peer(&mut self, region_id: u64, peer: Peer);

    /// Asks for `peer` to be removed from the region (one operator per region; a new one
    /// replaces the old).
    fn remove_peer(&mut self, region_id: u64, peer: Peer);

    /// Asks for the region's leadership to move to `peer` (one operator per region; a new
    /// one replaces the old).
    fn transfer_leader(&mut self, region_id: u64, peer: Peer);

    /// A one-line description of the region's unfinished operator, if any (for failure
    /// stories and pollers).
    fn operator(&self, region_id: u64) -> Option<String>;

    /// A region heartbeat from the region's leader, stamped with the virtual time of the
    /// event that sent it. A response, if any, is queued for
    /// [`take_responses`](Self::take_responses).
    fn region_heartbeat(
        &mut self,
        req: &RegionHeartbeatRequest,
        now: Duration,
    ) -> Result<(), SchedulerError>;

    /// A store's statistics, stamped with the virtual time of the event that sent them.
    fn store_heartbeat(&mut self, stats: &StoreStats, now: Duration);

    /// Ids for splitting `region`: a new region id and one new peer id per peer, in peer
    /// order. Fails if the scheduler does not know the region or its epoch is newer.
    fn ask_split(&mut self, region: &Region) -> Result<AskSplitResponse, SchedulerError>;

    /// The two halves of a split a store applied.
    fn report_split(&mut self, left: &Region, right: &Region) -> Result<(), SchedulerError>;

    /// Whether the scheduler wants [`tick`](Self::tick) called every
    /// [`ClusterConfig::scheduler_tick`](crate::cluster::ClusterConfig::scheduler_tick) of
    /// virtual time. Asked once, when the cluster is built. A cluster on a scheduler that
    /// says no schedules no tick events at all, so its runs replay exactly as they did
    /// before schedulers could tick.
    fn wants_ticks(&self) -> bool;

    /// Periodic work (schedulers, checkers, operator timeouts), at virtual time `now`.
    /// Responses it produces are queued for [`take_responses`](Self::take_responses).
    fn tick(&mut self, now: Duration);

    /// Heartbeat responses produced since the last call, oldest first: (id of the store to
    /// deliver to, response).
    fn take_responses(&mut self) -> Vec<(u64, RegionHeartbeatResponse)>;

    /// Whether the scheduler noticed a store bug since violations were last taken.
    fn has_violations(&self) -> bool;

    /// Takes the store bugs noticed so far, oldest first, leaving none. The harness fails
    /// the run if there are any.
    fn take_violations(&mut self) -> Vec<String>;
}

/// Why a scheduler refused a call.
#[derive(Debug, Clone, PartialEq)]
pub enum SchedulerError {
    /// The cluster has not been bootstrapped yet.
    NotBootstrapped,
    /// [`ClusterScheduler::bootstrap`] was called on a bootstrapped cluster.
    AlreadyBootstrapped,
    /// The scheduler knows no region with this id.
    RegionNotFound(u64),
    /// The request's region epoch is older than the scheduler's (or, for overlapping ranges,
    /// its version is not strictly newer). Normal under partitions and reordering.
    StaleEpoch {
        /// The region the request described.
        region_id: u64,
        /// The request's epoch.
        epoch: RegionEpoch,
        /// The epoch of the cached region it lost against.
        current: RegionEpoch,
    },
    /// The heartbeat reveals a store bug; the message is also recorded for
    /// [`ClusterScheduler::take_violations`].
    Violation(String),
    /// The real scheduler refused the call for a reason of its own (its message).
    Refused(String),
}

impl SchedulerError {
    /// The `schedulerpb` error type a real scheduler would answer with.
    pub fn error_type(&self) -> ErrorType {
        match self {
            SchedulerError::NotBootstrapped => ErrorType::NOT_BOOTSTRAPPED,
            SchedulerError::AlreadyBootstrapped => ErrorType::ALREADY_BOOTSTRAPPED,
            SchedulerError::RegionNotFound(_) => ErrorType::REGION_NOT_FOUND,
            SchedulerError::StaleEpoch { .. }
            | SchedulerError::Violation(_)
            | SchedulerError::Refused(_) => ErrorType::UNKNOWN,
        }
    }

    /// The error as it would appear in a `schedulerpb` response header.
    pub fn to_pb(&self) -> schedulerpb::Error {
        let mut e = schedulerpb::Error::default();
        e.set_field_type(self.error_type());
        e.message = self.to_string();
        e
    }
}

impl fmt::Display for SchedulerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchedulerError::NotBootstrapped => write!(f, "cluster is not bootstrapped"),
            SchedulerError::AlreadyBootstrapped => write!(f, "cluster is already bootstrapped"),
            SchedulerError::RegionNotFound(id) => write!(f, "region {id} not found"),
            SchedulerError::StaleEpoch {
                region_id,
                epoch,
                current,
            } => write!(
                f,
                "epoch is stale: region {region_id} epoch {} against the scheduler's {}",
                fmt_epoch(epoch),
                fmt_epoch(current)
            ),
            SchedulerError::Violation(msg) => write!(f, "scheduler invariant violated: {msg}"),
            SchedulerError::Refused(msg) => write!(f, "scheduler refused: {msg}"),
        }
    }
}

impl std::error::Error for SchedulerError {}

impl From<SchedulerError> for raftstore::Error {
    fn from(e: SchedulerError) -> raftstore::Error {
        raftstore::Error::other(e.to_string())
    }
}

fn fmt_epoch(e: &RegionEpoch) -> String {
    format!("(conf_ver {}, version {})", e.conf_ver, e.version)
}

/// What a [`SchedulerFactory`] gets to build a cluster's scheduler from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerSetup {
    /// The cluster id (the stores are bootstrapped with it).
    pub cluster_id: u64,
    /// The first id [`ClusterScheduler::alloc_id`] may hand out: ids below it name the
    /// bootstrap stores, their peers and region 1.
    pub first_id: u64,
    /// Where the scheduler's randomness, if it has any, must come from: derived from the
    /// run's seed (not equal to it, so its stream is not the simulator's own).
    pub seed: u64,
}

/// Builds the scheduler a cluster runs on.
pub type SchedulerFactory = Arc<dyn Fn(SchedulerSetup) -> Box<dyn ClusterScheduler> + Send + Sync>;

/// The factory of the mock scheduler ([`MockScheduler`]).
pub fn mock_factory() -> SchedulerFactory {
    Arc::new(|setup: SchedulerSetup| {
        Box::new(MockScheduler::new(setup.cluster_id, setup.first_id)) as Box<dyn ClusterScheduler>
    })
}

/// The factory of the real scheduler (the `scheduler` crate behind [`real::RealScheduler`])
/// standing in for the mock: [`real::drop_in_options`].
pub fn real_factory() -> Option<SchedulerFactory> {
    Some(real::real_scheduler(real::drop_in_options()))
}

/// The environment variable that picks the scheduler of every cluster whose configuration
/// does not ([`ClusterConfig::with_scheduler`](crate::cluster::ClusterConfig::with_scheduler)).
pub const SCHEDULER_VAR: &str = "LABS_SCHEDULER";

/// The factory `LABS_SCHEDULER` names: `mock` (also when unset or empty) or `real`.
///
/// # Panics
/// On any other value, and on `real` while [`real_factory`] has none.
pub fn factory_from_env() -> SchedulerFactory {
    match std::env::var(SCHEDULER_VAR) {
        Ok(value) => factory_named(&value),
        Err(std::env::VarError::NotPresent) => factory_named(""),
        Err(std::env::VarError::NotUnicode(value)) => {
            panic!("{SCHEDULER_VAR}={value:?}: expected `mock` or `real`")
        }
    }
}

/// The factory a `LABS_SCHEDULER` value names (see [`factory_from_env`]).
fn factory_named(value: &str) -> SchedulerFactory {
    match value.trim() {
        "" | "mock" => mock_factory(),
        "real" => real_factory().unwrap_or_else(|| {
            panic!("{SCHEDULER_VAR}=real: the real scheduler adapter is not built yet")
        }),
        other => panic!("{SCHEDULER_VAR}={other:?}: expected `mock` or `real`"),
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use super::*;

    fn panic_of(f: impl FnOnce()) -> String {
        let panic = catch_unwind(AssertUnwindSafe(f)).expect_err("it panics");
        panic.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    #[test]
    fn the_variable_names_the_scheduler() {
        let setup = SchedulerSetup {
            cluster_id: 0,
            first_id: 4,
            seed: 1,
        };
        for value in ["", "mock", " mock "] {
            let mut s = factory_named(value)(setup);
            assert_eq!(s.alloc_id(), 4, "{value:?}");
            assert!(!s.wants_ticks());
            assert!(format!("{s:?}").starts_with("MockScheduler"), "{s:?}");
        }
        if real_factory().is_none() {
            let msg = panic_of(|| drop(factory_named("real")));
            assert_eq!(
                msg,
                "LABS_SCHEDULER=real: the real scheduler adapter is not built yet"
            );
        }
        let msg = panic_of(|| drop(factory_named("pd")));
        assert_eq!(msg, "LABS_SCHEDULER=\"pd\": expected `mock` or `real`");
    }

    #[test]
    fn refusals_of_the_real_scheduler_are_unknown_errors() {
        let e = SchedulerError::Refused("no store has room".to_owned());
        assert_eq!(e.error_type(), ErrorType::UNKNOWN);
        assert_eq!(e.to_string(), "scheduler refused: no store has room");
        assert_eq!(e.to_pb().message, e.to_string());
        let raftstore_error: raftstore::Error = e.into();
        assert!(raftstore_error.to_string().contains("no store has room"));
    }
}

//! Scheduling options.

use std::time::Duration;

/// How the scheduler places replicas and how hard it works at it. [`Default`] gives the
/// original's values; [`ScheduleConfig::simulation`] shortens the waits for simulated clusters
/// whose life is measured in virtual seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleConfig {
    /// The number of replicas every region should have.
    pub max_replicas: usize,
    /// A store silent for longer than this is down: balance ignores it and the replica checker
    /// replaces its peers.
    pub max_store_down_time: Duration,
    /// How often the replica checker looks at every region.
    pub patrol_region_interval: Duration,
    /// At most this many operators that move leaders run at once.
    pub leader_schedule_limit: usize,
    /// At most this many operators that move peers run at once.
    pub region_schedule_limit: usize,
    /// At most this many replica-repair operators run at once.
    pub replica_schedule_limit: usize,
    /// The balance scheduler's interval after it produced an operator.
    pub min_schedule_interval: Duration,
    /// The longest the balance scheduler's interval grows to while it finds nothing to do.
    pub max_schedule_interval: Duration,
    /// The factor by which the interval grows after each idle run.
    pub schedule_interval_factor: f64,
    /// An operator that moves peers is abandoned after this long.
    pub region_operator_wait_time: Duration,
    /// An operator that only moves leadership is abandoned after this long.
    pub leader_operator_wait_time: Duration,
    /// Whether the balance-region scheduler runs.
    pub enable_balance_region: bool,
    /// Whether the replica checker runs (adds missing replicas, replaces peers on down
    /// stores, removes extra ones).
    pub enable_replica_checker: bool,
}

impl Default for ScheduleConfig {
    fn default() -> ScheduleConfig {
        ScheduleConfig {
            max_replicas: 3,
            max_store_down_time: Duration::from_secs(30 * 60),
            patrol_region_interval: Duration::from_millis(100),
            leader_schedule_limit: 4,
            region_schedule_limit: 2048,
            replica_schedule_limit: 64,
            min_schedule_interval: Duration::from_millis(10),
            max_schedule_interval: Duration::from_secs(5),
            schedule_interval_factor: 1.3,
            region_operator_wait_time: Duration::from_secs(10 * 60),
            leader_operator_wait_time: Duration::from_secs(10),
            enable_balance_region: true,
            enable_replica_checker: true,
        }
    }
}

impl ScheduleConfig {
    /// Options for simulated clusters: a store is down after 10 s of silence, peer-moving
    /// operators time out after 60 s, the balance interval grows to 1 s at most, and at most 4
    /// peer-moving operators run at once (a small cluster would otherwise move half its
    /// replicas in one go).
    pub fn simulation() -> ScheduleConfig {
        ScheduleConfig {
            max_store_down_time: Duration::from_secs(10),
            region_schedule_limit: 4,
            replica_schedule_limit: 4,
            max_schedule_interval: Duration::from_secs(1),
            region_operator_wait_time: Duration::from_secs(60),
            ..ScheduleConfig::default()
        }
    }
}

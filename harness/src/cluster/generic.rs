//! The original's generic cluster test: clients appending to their own keys and scanning
//! them back, while faults (message loss, partitions, crashes) come and go.
//!
//! Differences from the original, on purpose:
//! - It runs in virtual time: the five seconds of client work per iteration cost only their
//!   events, and the same seed replays the same run.
//! - In unreliable mode the network drops about 10% of messages for the whole iteration; the
//!   original's drop filters pile up (every chaos round adds one more until the iteration
//!   ends), which makes the loss rate depend on how long an iteration happens to last.
//! - Clients are simulator tasks ([`super::workload`]): event-driven state machines that run
//!   the original's request/retry logic asynchronously, so any number of them run
//!   concurrently in one thread, in virtual time.
//! - Beyond the original's own oracle (a client's scan equals its acknowledged puts; the final
//!   scan holds every append once and in order), every client operation, including the final
//!   scans and deletes, is recorded in one history that is checked for linearizability after
//!   every iteration; a violation fails the test with the checker's minimized history. An
//!   iteration ends at a quiescent point with every key deleted, so each iteration's history
//!   is checked on its own; loop scans are recorded partly (see
//!   [`super::workload::Workload::scan_window`]), the final scans whole.
//! - Before the deletes of every iteration, every store's replica must hold byte-identical
//!   data ([`Cluster::must_replicas_converge`], after a write barrier all stores applied),
//!   and throughout, the apply oracle ([`super::apply_oracle`]) checks every store's applies
//!   against its raft log.
//! - With `conf_change` (stage 3b), the conf-change task ([`super::conf_changer`]) runs in
//!   every iteration, not only the first, and is stopped and joined at the end of each client
//!   phase, once the network has healed; the original never resets its stop flag and never
//!   waits for it (`pitfalls.md` item 7). An operator that does not complete on a healthy
//!   cluster fails the run.
//! - With `split`, the check that the region containing `""` was split runs after every
//!   iteration, as in the original; the mock scheduler's exact rules (one conf change per
//!   `conf_ver` step, see [`crate::scheduler::mock`]) and the apply oracle watch the splits and
//!   conf changes throughout.

use std::time::Duration;

use rand::Rng;

use super::{Cluster, ClusterConfig, World};
use crate::scheduler::SchedulerFactory;
use crate::sim::net::Filter;
use crate::sim::Core;

/// The knobs of the generic test (one row of the original's matrix).
#[derive(Clone, Default)]
pub struct GenericParams {
    /// Concurrent clients.
    pub clients: usize,
    /// Drop about 10% of messages while clients run.
    pub unreliable: bool,
    /// Stop and restart every store between iterations.
    pub crash: bool,
    /// Repartition the stores into two random groups every half second or so.
    pub partitions: bool,
    /// The raft-log GC count limit (stage 2c): the leader compacts its log once it holds
    /// this many applied entries, so lagging followers catch up by snapshot; after every
    /// iteration every replica's log must be trimmed to twice this.
    pub max_raft_log: Option<u64>,
    /// Add and remove peers of random regions while clients run (stage 3b).
    pub conf_change: bool,
    /// Small regions (split at 200 bytes once past 300) that split while clients run
    /// (stage 3b); after every iteration the region containing `""` must have been split.
    pub split: bool,
    /// The scheduler the cluster runs on; `None`: the cluster's default
    /// ([`ClusterConfig::scheduler_factory`]).
    pub scheduler: Option<SchedulerFactory>,
}

impl std::fmt::Debug for GenericParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenericParams")
            .field("clients", &self.clients)
            .field("unreliable", &self.unreliable)
            .field("crash", &self.crash)
            .field("partitions", &self.partitions)
            .field("max_raft_log", &self.max_raft_log)
            .field("conf_change", &self.conf_change)
            .field("split", &self.split)
            .field(
                "scheduler",
                &self.scheduler.as_ref().map(|_| "chosen by the test"),
            )
            .finish()
    }
}

const ITERATIONS: usize = 3;
const CLIENT_TIME: Duration = Duration::from_secs(5);
const ELECTION_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the stopped clients may take to finish their last operation (a request gives up
/// by itself after at least 10 attempts and 5 s, with up to 5 s per attempt).
const CLIENTS_FINISH: Duration = Duration::from_secs(120);
/// How long the stopped conf-change task may take to finish its operator (the task fails the
/// run by itself once an operator stalls on a healthy cluster, see
/// [`super::conf_changer::OPERATOR_LIMIT`]).
const CONF_CHANGES_FINISH: Duration = Duration::from_secs(60);
/// The original's region sizes in split mode: a region holding more than 300 bytes splits
/// at 200.
const SPLIT_MAX_SIZE: u64 = 300;
const SPLIT_SIZE: u64 = 200;

/// The state of the network-chaos task, kept in the world so its events can see it.
#[derive(Debug, Default, Clone)]
pub struct Chaos {
    /// Bumped to stop the running chain of chaos events.
    generation: u64,
    unreliable: bool,
    partitions: bool,
}

fn chaos_round(w: &mut World, c: &mut Core<World>, generation: u64) {
    if w.chaos.generation != generation {
        return;
    }
    let stores: Vec<u64> = w.stores.keys().copied().collect();
    w.net.clear_filters();
    if w.chaos.partitions {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for s in stores {
            if c.rng().gen_bool(0.5) {
                a.push(s);
            } else {
                b.push(s);
            }
        }
        w.net.add_filter(Filter::partition(&a, &b));
    }
    if w.chaos.unreliable {
        w.net.add_filter(Filter::DropRate(0.101));
    }
    let next = ELECTION_TIMEOUT + Duration::from_millis(c.rng().gen_range(0..200));
    c.schedule(next, "chaos", move |w, c| chaos_round(w, c, generation));
}

/// Runs the generic test on a 5-store cluster named `name` with `seed`.
pub fn generic_test(name: &str, seed: u64, params: GenericParams) {
    assert!(
        params.clients >= 1,
        "{name}: the generic test needs clients"
    );
    let chaos = params.unreliable || params.partitions;
    let mut cfg = ClusterConfig::new(5);
    if let Some(limit) = params.max_raft_log {
        cfg.store.raft_log_gc_count_limit = limit;
    }
    if params.split {
        cfg.store.region_max_size = SPLIT_MAX_SIZE;
        cfg.store.region_split_size = SPLIT_SIZE;
    }
    if let Some(factory) = params.scheduler.clone() {
        cfg = cfg.with_scheduler(factory);
    }
    let mut cluster = Cluster::new(name, seed, cfg);
    cluster.run_for(2 * ELECTION_TIMEOUT);
    cluster.install_workload(params.clients);
    for _ in 0..ITERATIONS {
        cluster.start_clients();
        if chaos {
            cluster.run_clients_for(Duration::from_millis(300));
            let (w, c) = cluster.sim().parts();
            w.chaos.generation += 1;
            w.chaos.unreliable = params.unreliable;
            w.chaos.partitions = params.partitions;
            let generation = w.chaos.generation;
            c.schedule(Duration::ZERO, "chaos", move |w, c| {
                chaos_round(w, c, generation)
            });
        }
        if params.conf_change {
            cluster.run_clients_for(Duration::from_millis(100));
            cluster.start_conf_changes();
        }
        cluster.run_clients_for(CLIENT_TIME);
        cluster.stop_clients();
        if params.conf_change {
            cluster.stop_conf_changes();
        }
        if chaos {
            cluster.world_mut().chaos.generation += 1;
            cluster.clear_filters();
            cluster.run_clients_for(ELECTION_TIMEOUT);
        }
        if params.conf_change {
            cluster.wait_conf_changes(CONF_CHANGES_FINISH);
        }
        cluster.wait_clients(CLIENTS_FINISH);
        if params.crash {
            for id in cluster.store_ids() {
                cluster.crash_store(id);
            }
            cluster.run_for(ELECTION_TIMEOUT);
            for id in cluster.store_ids() {
                cluster.start_store(id);
            }
        }
        let counts = cluster.check_client_appends();
        cluster.must_replicas_converge();
        cluster.delete_client_keys(&counts);
        if let Some(limit) = params.max_raft_log {
            cluster.run_for(Duration::from_secs(1));
            cluster.check_log_trimmed(2 * limit);
        }
        if params.split {
            let first = cluster.get_region(b"");
            if first.get_end_key().is_empty() {
                cluster.fail(&format!(
                    "region is not split: region {} still spans every key after an iteration of split mode",
                    first.id
                ));
            }
        }
        cluster.check_linearizable();
        if params.conf_change && cluster.world().conf_changer.completed() == (0, 0) {
            cluster.fail("the conf-change task has completed no operator: the generic test changed no membership");
        }
        cluster.reset_history_at_quiescence();
        // The next iteration writes the same keys again.
        cluster.compact_engines();
    }
}

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

use std::time::Duration;

use rand::Rng;

use super::{Cluster, ClusterConfig, World};
use crate::sim::net::Filter;
use crate::sim::Core;

/// The knobs of the generic test (one row of the original's matrix).
#[derive(Debug, Clone, Default)]
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
    /// Add and remove peers while clients run (stage 3b; must be off for now).
    pub conf_change: bool,
    /// Small regions that split while clients run (stage 3b; must be off for now).
    pub split: bool,
}

const ITERATIONS: usize = 3;
const CLIENT_TIME: Duration = Duration::from_secs(5);
const ELECTION_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the stopped clients may take to finish their last operation (a request gives up
/// by itself after at least 10 attempts and 5 s, with up to 5 s per attempt).
const CLIENTS_FINISH: Duration = Duration::from_secs(120);

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
    assert!(
        !params.conf_change && !params.split,
        "{name}: conf_change and split come with stage 3b"
    );
    let chaos = params.unreliable || params.partitions;
    let mut cfg = ClusterConfig::new(5);
    if let Some(limit) = params.max_raft_log {
        cfg.store.raft_log_gc_count_limit = limit;
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
        cluster.run_clients_for(CLIENT_TIME);
        cluster.stop_clients();
        if chaos {
            cluster.world_mut().chaos.generation += 1;
            cluster.clear_filters();
            cluster.run_clients_for(ELECTION_TIMEOUT);
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
        cluster.check_linearizable();
        cluster.reset_history_at_quiescence();
        // The next iteration writes the same keys again.
        cluster.compact_engines();
    }
}

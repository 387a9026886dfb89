//! The generic test's conf-change task (stage 3b): while the clients run, add and remove
//! peers of random regions, one operator at a time, as a chain of simulator events.
//!
//! One round, as in the original: pick a random region the scheduler knows a leader for and a
//! random store; if the region has a peer there, remove it (unless it is the region's only
//! peer), else add a fresh peer there ([`Cluster::alloc_peer`]); wait until the scheduler's
//! copy of the region shows the change (the original's `must_add_peer` / `must_remove_peer`);
//! sleep 0–199 ms; repeat.
//!
//! Differences from the original, on purpose:
//! - The task runs in **every** iteration of the generic test and is stopped and joined at the
//!   end of each client phase: [`Cluster::stop_conf_changes`] lets the operator in flight
//!   finish, and [`Cluster::wait_conf_changes`] runs the cluster until it has. The original
//!   never resets the task's stop flag, so conf changes happen only in the first iteration,
//!   and never waits for it, so an operator may still be in flight during the crash and the
//!   checks of later steps (`pitfalls.md` item 7).
//! - An operator may legitimately stall while a partition cuts the region's leader off or a
//!   store is down, so the task fails the run only when an operator has not completed within
//!   [`OPERATOR_LIMIT`] of virtual time during which every store was up and no filter cut the
//!   network (the original's helpers give up after 5 s whatever the network does). The
//!   failure names the operator and shows every peer's state.
//! - A region the scheduler momentarily does not know (one half of a split reported before
//!   the other) is waited for, not replaced by the first region.

use std::time::Duration;

use proto::metapb;
use rand::Rng;

use super::liveness::{cuts, peer_table};
use super::{failure_story, Cluster, World};
use crate::sim::{Core, SimTime};

/// How long an operator may take on a healthy cluster before the task fails the run.
pub const OPERATOR_LIMIT: Duration = Duration::from_secs(10);
/// How often the task looks at the scheduler while an operator is in flight.
const POLL: Duration = Duration::from_millis(10);
/// How long the task waits when the scheduler knows no region with a leader.
const NO_REGION_WAIT: Duration = Duration::from_millis(100);

/// The operator the task waits for.
#[derive(Debug, Clone)]
struct InFlight {
    region_id: u64,
    peer: metapb::Peer,
    add: bool,
    started: SimTime,
    /// Since when every store has been up and the network whole (`None`: it is not now).
    healthy_since: Option<SimTime>,
}

/// The conf-change task's state, kept in the world ([`World::conf_changer`]) so its events
/// can see it.
#[derive(Debug, Default)]
pub struct ConfChanger {
    /// Bumped to abandon a running chain of events.
    generation: u64,
    running: bool,
    stopping: bool,
    current: Option<InFlight>,
    added: u64,
    removed: u64,
}

impl ConfChanger {
    /// Whether a chain of rounds is alive (started and not yet joined).
    pub fn running(&self) -> bool {
        self.running
    }

    /// Peers added and removed so far, over every iteration.
    pub fn completed(&self) -> (u64, u64) {
        (self.added, self.removed)
    }
}

fn healthy(w: &World) -> bool {
    w.stores.values().all(|n| n.store.is_some()) && !w.net.filters().iter().any(cuts)
}

fn round(w: &mut World, c: &mut Core<World>, generation: u64) {
    let cc = &mut w.conf_changer;
    if cc.generation != generation {
        return;
    }
    if cc.stopping {
        cc.running = false;
        return;
    }
    // A random region the scheduler knows a leader for.
    let candidates: Vec<metapb::Region> = w
        .scheduler
        .regions()
        .into_iter()
        .filter(|r| w.scheduler.leader(r.id).is_some())
        .collect();
    if candidates.is_empty() {
        c.schedule(NO_REGION_WAIT, "conf change", move |w, c| {
            round(w, c, generation)
        });
        return;
    }
    let region = &candidates[c.rng().gen_range(0..candidates.len())];
    let stores: Vec<u64> = w.stores.keys().copied().collect();
    let store_id = stores[c.rng().gen_range(0..stores.len())];
    let existing = region
        .get_peers()
        .iter()
        .find(|p| p.store_id == store_id)
        .cloned();
    let (peer, add) = match existing {
        Some(_) if region.get_peers().len() == 1 => {
            // The region's only peer stays.
            sleep_then_round(w, c, generation);
            return;
        }
        Some(peer) => {
            w.scheduler.remove_peer(region.id, peer.clone());
            (peer, false)
        }
        None => {
            let peer = raftstore::util::new_peer(store_id, w.scheduler.alloc_id());
            w.scheduler.add_peer(region.id, peer.clone());
            (peer, true)
        }
    };
    let now = c.now();
    let healthy_since = healthy(w).then_some(now);
    c.note(crate::sim::Label::new(
        "conf change",
        format!(
            "{} peer (store {}, peer {}) {} region {}",
            if add { "add" } else { "remove" },
            peer.store_id,
            peer.id,
            if add { "to" } else { "from" },
            region.id
        ),
    ));
    w.conf_changer.current = Some(InFlight {
        region_id: region.id,
        peer,
        add,
        started: now,
        healthy_since,
    });
    c.schedule(POLL, "conf change poll", move |w, c| poll(w, c, generation));
}

fn sleep_then_round(w: &mut World, c: &mut Core<World>, generation: u64) {
    if w.conf_changer.stopping {
        w.conf_changer.running = false;
        return;
    }
    let pause = Duration::from_millis(c.rng().gen_range(0..200));
    c.schedule(pause, "conf change", move |w, c| round(w, c, generation));
}

fn poll(w: &mut World, c: &mut Core<World>, generation: u64) {
    if w.conf_changer.generation != generation {
        return;
    }
    let Some(op) = w.conf_changer.current.clone() else {
        return;
    };
    let done = w
        .scheduler
        .get_region_by_id(op.region_id)
        .is_some_and(|(region, _)| {
            let has = region
                .get_peers()
                .iter()
                .any(|p| p.store_id == op.peer.store_id && p.id == op.peer.id);
            has == op.add
        });
    if done {
        let cc = &mut w.conf_changer;
        cc.current = None;
        if op.add {
            cc.added += 1;
        } else {
            cc.removed += 1;
        }
        sleep_then_round(w, c, generation);
        return;
    }
    let now = c.now();
    let healthy_now = healthy(w);
    let since = if healthy_now {
        op.healthy_since.unwrap_or(now)
    } else {
        now
    };
    if now.since(since) >= OPERATOR_LIMIT {
        let what = format!(
            "conf-change task: {} peer (store {}, peer {}) {} region {} has not completed after {:?} (started at {}), although every store has been up and the network whole since {since}; the scheduler has {:?}, operator {:?}\n{}",
            if op.add { "adding" } else { "removing" },
            op.peer.store_id,
            op.peer.id,
            if op.add { "to" } else { "from" },
            op.region_id,
            now.since(op.started),
            op.started,
            w.scheduler.get_region_by_id(op.region_id),
            w.scheduler.operator(op.region_id),
            peer_table(w)
        );
        panic!("{}", failure_story(w, c, &what));
    }
    if let Some(cur) = w.conf_changer.current.as_mut() {
        cur.healthy_since = healthy_now.then_some(since);
    }
    c.schedule(POLL, "conf change poll", move |w, c| poll(w, c, generation));
}

impl Cluster {
    /// Starts the conf-change task (see the module docs); it runs until
    /// [`Cluster::stop_conf_changes`]. Fails the test if it is already running.
    pub fn start_conf_changes(&mut self) {
        let (w, c) = self.sim().parts();
        if w.conf_changer.running {
            panic!(
                "{}",
                failure_story(w, c, "start_conf_changes: the task is already running")
            );
        }
        let cc = &mut w.conf_changer;
        cc.generation += 1;
        cc.running = true;
        cc.stopping = false;
        cc.current = None;
        let generation = cc.generation;
        c.schedule(Duration::ZERO, "conf change", move |w, c| {
            round(w, c, generation)
        });
    }

    /// Tells the conf-change task to stop once the operator in flight (if any) completes.
    pub fn stop_conf_changes(&mut self) {
        self.world_mut().conf_changer.stopping = true;
    }

    /// Runs the cluster (clients included) until the stopped conf-change task has finished
    /// its last operator; fails the test if it has not within `timeout`.
    pub fn wait_conf_changes(&mut self, timeout: Duration) {
        self.stop_conf_changes();
        self.wait_until(
            timeout,
            "the conf-change task to finish its operator",
            |c| !c.world().conf_changer.running,
        );
    }
}

// lab:needs 2aa..3b
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::cluster::{Cluster, ClusterConfig};

    /// The task adds and removes peers of the only region while clients write; once stopped
    /// and joined it is idle, and the region's `conf_ver` counts exactly the operators it saw
    /// complete (one conf change, one step).
    #[test]
    fn the_task_changes_membership_one_step_at_a_time_and_joins() {
        let mut c = Cluster::new("conf_changer_task", 7, ClusterConfig::new(5));
        c.must_put(b"k", b"v");
        c.install_workload(2);
        c.start_clients();
        c.start_conf_changes();
        assert!(c.world().conf_changer.running());
        c.run_clients_for(Duration::from_secs(4));
        c.stop_clients();
        c.wait_conf_changes(Duration::from_secs(30));
        c.wait_clients(Duration::from_secs(60));
        assert!(!c.world().conf_changer.running());
        let (added, removed) = c.world().conf_changer.completed();
        assert!(
            added + removed >= 3,
            "only {added} adds and {removed} removals"
        );
        let Some((region, _)) = c.get_region_by_id(1) else {
            panic!("the scheduler lost region 1");
        };
        assert_eq!(
            region.get_region_epoch().conf_ver,
            1 + added + removed,
            "{region:?}"
        );
        // Joined means idle: nothing changes any more.
        c.run_for(Duration::from_secs(2));
        assert_eq!(c.world().conf_changer.completed(), (added, removed));
        c.check_client_appends();
        c.check_linearizable();
        // And it starts again.
        c.start_conf_changes();
        c.run_for(Duration::from_secs(1));
        c.wait_conf_changes(Duration::from_secs(30));
    }
}
// lab:end-needs

//! Lost liveness, detected in virtual time: a cluster that stops making progress fails at
//! once, with the state of every peer, instead of letting its clients wait out their
//! timeouts.
//!
//! A wrong implementation rarely breaks a safety rule outright; more often it wedges: a
//! leader whose appends every follower refuses, elections that never end, a peer that stops
//! applying. The original's suites then wait for their clients to give up (minutes of real
//! time), and a simulator running such a cluster at full speed spends as long simulating the
//! same wait. Instead, a watchdog event checks the cluster every
//! [`Liveness::CHECK_EVERY`] of virtual time, and fails the run when, while the cluster is
//! **healthy** (every store running, no fault that cuts connectivity):
//! - a client (a simulated one, or a blocking helper like `must_put`) waits and no client
//!   operation has completed for [`Liveness::stall_limit`];
//! - or a region has had no leader on any store for [`Liveness::leaderless_limit`].
//!
//! Message loss (a drop-rate filter) does not cut connectivity, but it makes bad luck last:
//! an election whose vote requests are lost, a candidate with a shorter log that keeps
//! deposing the only peer that can win (a two-peer region after a leader transfer, say),
//! take several rounds. While messages are being lost, and until the network has been
//! loss-free for the limits above, the watchdog waits [`Liveness::lossy_limit`] instead.
//!
//! A wall-clock limit per cluster ([`Liveness::wall_limit`], `LABS_WALL_LIMIT` seconds) is
//! the last resort for what virtual time cannot see (a store that loops inside one event);
//! it is generous, and never the first signal.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use raft::StateRole;

use super::{failure_story, World};
use crate::sim::net::Filter;
use crate::sim::{Core, SimTime};

/// The watchdog's state and limits (in [`World::liveness`]).
#[derive(Debug)]
pub struct Liveness {
    /// How long clients may wait on a healthy cluster without any operation completing.
    pub stall_limit: Duration,
    /// How long a region may go without a leader on a healthy cluster.
    pub leaderless_limit: Duration,
    /// Both limits while the network loses messages (see the module docs).
    pub lossy_limit: Duration,
    /// How much wall time one cluster may take in all.
    pub wall_limit: Duration,
    /// Whether the checks run (a test of deliberately wedged clusters turns them off).
    pub enabled: bool,
    healthy_since: Option<SimTime>,
    /// Since when no filter has been losing messages (`None`: one is now).
    lossless_since: Option<SimTime>,
    /// The last time an operation completed, or nobody was waiting.
    progress_at: SimTime,
    /// Blocking helpers waiting for an answer.
    pub(crate) helpers_waiting: u32,
    /// Region → the last time some store had a leader for it.
    leader_seen: BTreeMap<u64, SimTime>,
    started: Instant,
    events_since_wall_check: u32,
}

impl Default for Liveness {
    fn default() -> Self {
        let wall_limit = std::env::var("LABS_WALL_LIMIT")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(Duration::from_secs(120), Duration::from_secs);
        Liveness {
            stall_limit: Duration::from_secs(5),
            leaderless_limit: Duration::from_secs(5),
            lossy_limit: Duration::from_secs(15),
            wall_limit,
            enabled: true,
            healthy_since: None,
            lossless_since: None,
            progress_at: SimTime::ZERO,
            helpers_waiting: 0,
            leader_seen: BTreeMap::new(),
            started: Instant::now(),
            events_since_wall_check: 0,
        }
    }
}

impl Liveness {
    /// How often the watchdog looks.
    pub const CHECK_EVERY: Duration = Duration::from_millis(250);

    /// A client operation completed.
    pub(crate) fn progress(&mut self, now: SimTime) {
        self.progress_at = now;
    }
}

/// Whether a filter can keep a healthy cluster from making progress.
pub(crate) fn cuts(f: &Filter) -> bool {
    match f {
        Filter::Partition(_)
        | Filter::Isolate(_)
        | Filter::Cut(..)
        | Filter::DropKind(_)
        | Filter::DropRegion(_)
        | Filter::CutRegion { .. } => true,
        Filter::DropRate(p) => *p >= 0.5,
        Filter::Delay { .. }
        | Filter::Duplicate { .. }
        | Filter::Corrupt(_)
        | Filter::Truncate(_) => false,
    }
}

/// Schedules the watchdog (once per cluster).
pub(crate) fn start(c: &mut Core<World>) {
    c.schedule(Liveness::CHECK_EVERY, "watchdog", check);
}

fn check(w: &mut World, c: &mut Core<World>) {
    c.schedule(Liveness::CHECK_EVERY, "watchdog", check);
    check_wall(w, c);
    if let Some(broken) = super::leader_oracle::check(w) {
        lost(w, c, &broken);
    }
    if !w.liveness.enabled {
        return;
    }
    let now = c.now();
    let healthy = w.stores.values().all(|n| n.store.is_some()) && !w.net.filters().iter().any(cuts);
    let waiting =
        w.liveness.helpers_waiting > 0 || w.workload.as_ref().is_some_and(|wl| !wl.idle());
    if !waiting {
        w.liveness.progress_at = now;
    }
    // Leaders, per region, as the running stores see them.
    for node in w.stores.values() {
        for peer in node.store.iter().flat_map(|s| s.peers()) {
            let seen = w.liveness.leader_seen.entry(peer.region_id).or_insert(now);
            if peer.is_leader() {
                *seen = now;
            }
        }
    }
    if !healthy {
        w.liveness.healthy_since = None;
        w.liveness.lossless_since = None;
        return;
    }
    let l = &mut w.liveness;
    let since = *l.healthy_since.get_or_insert(now);
    let lossy = w.net.filters().iter().any(loses);
    if lossy {
        l.lossless_since = None;
    }
    // The strict limits count from when the network stopped losing messages as well.
    let strict_since = (!lossy).then(|| since.max(*l.lossless_since.get_or_insert(now)));
    let over = |from: SimTime, at: SimTime, strict: Duration, lossy_limit: Duration| {
        let lossy_stall = now.since(from.max(at));
        if lossy_stall >= lossy_limit {
            return Some(lossy_stall);
        }
        let strict_stall = now.since(strict_since?.max(at));
        (strict_stall >= strict).then_some(strict_stall)
    };
    let (stall_limit, leaderless_limit, lossy_limit) =
        (l.stall_limit, l.leaderless_limit, l.lossy_limit);
    let calm = match strict_since {
        Some(s) if s > since => format!(", and no message lost since {s}"),
        Some(_) => String::new(),
        None => " (messages are being lost)".to_owned(),
    };
    if waiting {
        if let Some(stalled) = over(since, l.progress_at, stall_limit, lossy_limit) {
            lost(
                w,
                c,
                &format!(
                    "lost liveness: no client operation completed for {stalled:?} of virtual time, although every store has been up and no filter cut the network since {since}{calm}"
                ),
            );
        }
    }
    let leaderless: Vec<(u64, Duration)> = l
        .leader_seen
        .iter()
        .filter_map(|(&r, &seen)| Some((r, over(since, seen, leaderless_limit, lossy_limit)?)))
        .collect();
    if let Some((region, d)) = leaderless.first() {
        lost(
            w,
            c,
            &format!(
                "lost liveness: region {region} has had no leader for {d:?} of virtual time, although every store has been up and no filter cut the network since {since}{calm}"
            ),
        );
    }
}

/// Whether a filter loses messages without cutting connectivity.
fn loses(f: &Filter) -> bool {
    matches!(f, Filter::DropRate(p) if *p > 0.0)
}

/// The last resort: fails a cluster that took more than its wall-clock limit. Called after
/// every store event, it reads the clock every few thousand events only.
pub(crate) fn check_wall(w: &mut World, c: &Core<World>) {
    let l = &mut w.liveness;
    l.events_since_wall_check += 1;
    if l.events_since_wall_check < 4096 {
        return;
    }
    l.events_since_wall_check = 0;
    let took = l.started.elapsed();
    if took > l.wall_limit {
        let limit = l.wall_limit;
        lost(
            w,
            c,
            &format!(
                "the cluster ran for {took:.0?} of wall time (limit {limit:?}, LABS_WALL_LIMIT): it is far slower than a correct one, probably busy without making progress"
            ),
        );
    }
}

fn lost(w: &World, c: &Core<World>, what: &str) -> ! {
    panic!(
        "{}",
        failure_story(w, c, &format!("{what}\n{}", peer_table(w)))
    )
}

/// Every peer's raft state, a line each: what a student compares first when a cluster wedges.
pub fn peer_table(w: &World) -> String {
    let mut out = String::from(
        "  peers:\n    store  region  peer  role       term  leader  last  commit  applied  truncated  epoch  voters\n",
    );
    for (id, node) in &w.stores {
        let Some(store) = &node.store else {
            let _ = writeln!(out, "    {id:>5}  (stopped)");
            continue;
        };
        for peer in store.peers() {
            let r = &peer.raft_group.raft;
            let role = match r.state {
                StateRole::Leader => "leader",
                StateRole::Candidate => "candidate",
                StateRole::Follower => "follower",
            };
            let ps = peer.storage();
            let epoch = peer.region().get_region_epoch();
            let voters: Vec<String> = r.prs.keys().map(u64::to_string).collect();
            let _ = writeln!(
                out,
                "    {id:>5}  {:>6}  {:>4}  {role:<9}  {:>4}  {:>6}  {:>4}  {:>6}  {:>7}  {:>9}  {:>5}  {}{}",
                peer.region_id,
                peer.meta.id,
                r.term,
                r.lead,
                r.raft_log.last_index(),
                r.raft_log.committed,
                ps.applied_index(),
                ps.truncated_index(),
                format!("{}/{}", epoch.conf_ver, epoch.version),
                voters.join(","),
                match (peer.stopped, peer.applying_snapshot) {
                    (true, _) => "  (stopped after an error)".to_owned(),
                    (false, Some(k)) => format!("  (applying snapshot {k})"),
                    (false, None) => String::new(),
                }
            );
        }
    }
    out
}

// lab:needs 2aa..3b
#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::time::Duration;

    use crate::cluster::{Cluster, ClusterConfig};
    use crate::sim::net::Filter;

    /// A cluster whose messages take longer than any client waits (nothing cut, nothing
    /// down, so the cluster counts as healthy) fails within the stall limit of virtual time,
    /// with the peers' states and the seed, instead of waiting out the client's timeouts.
    #[test]
    fn a_wedged_cluster_fails_fast_with_its_peers() {
        let mut c = Cluster::new("wedged", 5, ClusterConfig::new(3));
        c.must_put(b"k", b"v");
        c.add_filter(Filter::Delay {
            min: Duration::from_secs(60),
            max: Duration::from_secs(60),
        });
        let start = c.sim().now();
        let panic = catch_unwind(AssertUnwindSafe(|| c.must_put(b"k", b"w")))
            .expect_err("the watchdog fails the run");
        let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            msg.contains("lost liveness: no client operation completed"),
            "{msg}"
        );
        assert!(msg.contains("peers:") && msg.contains("leader"), "{msg}");
        assert!(
            msg.ends_with("wedged failed: replay with LABS_SEED=5"),
            "{msg}"
        );
        let took = c.sim().now().since(start);
        assert!(
            took < Duration::from_secs(7),
            "it took {took:?} of virtual time"
        );
    }

    /// While the network loses messages, bad luck may last longer: the same wedge fails only
    /// after the lossy limit, and says that messages were being lost.
    #[test]
    fn a_wedged_cluster_on_a_lossy_network_gets_the_lossy_limit() {
        let mut c = Cluster::new("wedged_lossy", 5, ClusterConfig::new(3));
        c.must_put(b"k", b"v");
        c.add_filter(Filter::Delay {
            min: Duration::from_secs(60),
            max: Duration::from_secs(60),
        });
        c.add_filter(Filter::DropRate(0.1));
        let start = c.sim().now();
        let panic = catch_unwind(AssertUnwindSafe(|| c.must_put(b"k", b"w")))
            .expect_err("the watchdog fails the run");
        let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("(messages are being lost)"), "{msg}");
        let took = c.sim().now().since(start);
        assert!(
            took >= Duration::from_secs(15) && took < Duration::from_secs(17),
            "it took {took:?} of virtual time"
        );
    }

    /// A healthy cluster whose clients are idle is not "stalled", and a degraded one (a
    /// store down) is not held to the limits.
    #[test]
    fn idle_or_degraded_clusters_do_not_trip_the_watchdog() {
        let mut c = Cluster::new("idle", 6, ClusterConfig::new(3));
        c.must_put(b"k", b"v");
        c.run_for(Duration::from_secs(30));
        c.stop_store(1);
        c.stop_store(2);
        c.run_for(Duration::from_secs(30));
        c.start_store(1);
        c.start_store(2);
        c.must_get(b"k", b"v");
    }
}
// lab:end-needs

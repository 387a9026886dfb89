//! A cluster of stores on the simulator: the harness of the stage 2b–3b suites.
//!
//! [`Cluster`] owns a [`Sim`] whose world holds every store (its engines in a temporary
//! directory, and the running [`Store`] unless the store is stopped), the simulated network
//! and the scheduler (the mock or the real one, behind [`ClusterScheduler`]). Ticks, raft
//! messages, scheduler responses and client commands are all simulator events, so a run is
//! decided by its seed alone; test code drives it through
//! the helpers of [`client`] (`must_put`, `get`, `scan`, ...), which advance virtual time
//! until their request is answered, and through the simulated clients of [`workload`]. Both
//! run the same request state machine (`request.rs`).
//!
//! Stores crash between events ([`Cluster::crash_store`]), between the steps of a
//! background task ([`tasks::TaskCrash`]) and inside an event, between two of its engine
//! writes ([`event_crash`]).
//!
//! A failing helper panics with the seed, the replay command and the last events of the run.

pub mod admin;
pub mod apply_oracle;
pub mod client;
pub mod conf_changer;
mod describe;
pub mod event_crash;
pub mod generic;
pub mod inspect;
mod leader_oracle;
pub mod liveness;
mod request;
mod route;
pub mod tasks;
pub mod workload;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use engine::{EngineOptions, Engines};
use parking_lot::Mutex;
use proto::metapb;
use raftstore::{bootstrap, Store};
use rand::Rng;

use crate::scheduler::{factory_from_env, ClusterScheduler, SchedulerFactory, SchedulerSetup};
use crate::sim::net::{Filter, Network};
use crate::sim::{Core, Label, Sim};
use apply_oracle::ApplyOracle;
pub use event_crash::{CrashTrigger, EventCrash, EventCrashMix, EventCrashes};
pub(crate) use route::{deliver, route_scheduler_responses, run_on_store};
pub use tasks::{TaskFaults, TaskTiming};

/// How to build a cluster.
#[derive(Clone)]
pub struct ClusterConfig {
    /// Number of stores (ids 1..=stores); [`Cluster::add_store`] raises it.
    pub stores: u64,
    /// The configuration every store runs with (the original's test configuration by
    /// default).
    pub store: raftstore::Config,
    /// Engine options (small caches; simulated durability once the engine offers it).
    pub engine: EngineOptions,
    /// The network's base latency.
    pub net: Network,
    /// Latency between a client and a store, each way.
    pub client_latency: Duration,
    /// How long background tasks take to start and between their steps.
    pub tasks: TaskTiming,
    /// Crashes inside store events at random (see [`event_crash`]); `None` (the default):
    /// stores crash only where a test says.
    pub event_crash_mix: Option<EventCrashMix>,
    /// Builds the scheduler the cluster runs on; `None` (the default): the one the
    /// `LABS_SCHEDULER` environment variable names (see
    /// [`factory_from_env`]), the mock unless it says
    /// `real`. Set it with [`ClusterConfig::with_scheduler`].
    pub scheduler: Option<SchedulerFactory>,
    /// How often a scheduler that [wants ticks](ClusterScheduler::wants_ticks) gets one
    /// (100 ms of virtual time by default). The mock does not, so its clusters schedule no
    /// tick.
    pub scheduler_tick: Duration,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("stores", &self.stores)
            .field("store", &self.store)
            .field("engine", &self.engine)
            .field("net", &self.net)
            .field("client_latency", &self.client_latency)
            .field("tasks", &self.tasks)
            .field("event_crash_mix", &self.event_crash_mix)
            .field(
                "scheduler",
                &self
                    .scheduler
                    .as_ref()
                    .map_or("from LABS_SCHEDULER", |_| "chosen"),
            )
            .field("scheduler_tick", &self.scheduler_tick)
            .finish()
    }
}

impl ClusterConfig {
    /// The original's test cluster of `stores` stores.
    pub fn new(stores: u64) -> Self {
        ClusterConfig {
            stores,
            store: raftstore::Config::test(),
            engine: EngineOptions::for_simulation(),
            net: Network::default(),
            client_latency: Duration::from_millis(1),
            tasks: TaskTiming::default(),
            event_crash_mix: None,
            scheduler: None,
            scheduler_tick: Duration::from_millis(100),
        }
    }

    /// This configuration on the scheduler `factory` builds, whatever `LABS_SCHEDULER` says
    /// (e.g. [`mock_factory`](crate::scheduler::mock_factory) for a test of the mock's own
    /// rules).
    pub fn with_scheduler(mut self, factory: SchedulerFactory) -> Self {
        self.scheduler = Some(factory);
        self
    }

    /// The factory of the cluster's scheduler: the one set with
    /// [`ClusterConfig::with_scheduler`], else the one `LABS_SCHEDULER` names.
    ///
    /// # Panics
    /// If `LABS_SCHEDULER` is needed and names no scheduler the harness has (see
    /// [`factory_from_env`]).
    pub fn scheduler_factory(&self) -> SchedulerFactory {
        match &self.scheduler {
            Some(factory) => Arc::clone(factory),
            None => factory_from_env(),
        }
    }
}

/// One store of the cluster: its engines and snapshot directory survive a stop; the running
/// store does not.
pub struct StoreNode {
    /// The store's engines (kept across stop/start).
    pub engines: Engines,
    /// The running store, `None` while stopped.
    pub store: Option<Store>,
    /// Bumped at every start. Everything addressed to a store (ticks, messages, commands,
    /// snapshot chunks, task steps) carries the incarnation it was meant for and is dropped
    /// if the store stopped or restarted since: a crash breaks every connection and kills
    /// every worker.
    incarnation: u64,
}

impl StoreNode {
    /// The incarnation of the running store, `None` while stopped.
    pub(crate) fn running(&self) -> Option<u64> {
        self.store.as_ref().map(|_| self.incarnation)
    }
}

/// Counters of what happened in a run, for tests to check that a scenario exercised what it
/// meant to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Snapshot streams started.
    pub snapshot_streams: u64,
    /// Streams that broke (a chunk lost, the receiver down).
    pub snapshot_streams_failed: u64,
    /// Chunks delivered damaged (corrupt or truncated).
    pub chunks_damaged: u64,
    /// Background task steps run, by kind.
    pub task_steps: BTreeMap<&'static str, u64>,
    /// Stores crashed by a task fault.
    pub task_crashes: u64,
    /// Stores crashed inside an event, between two of its writes ([`event_crash`]).
    pub event_crashes: u64,
    /// Planned crashes inside an event whose event ended before the planned crash point.
    pub event_crashes_missed: u64,
}

/// Everything the simulator's events act on.
pub struct World {
    /// Stores by id.
    pub stores: BTreeMap<u64, StoreNode>,
    /// The network between stores.
    pub net: Network,
    /// The scheduler (the mock or the real one; see [`ClusterConfig::scheduler`]).
    pub scheduler: Box<dyn ClusterScheduler>,
    /// The generic test's network-chaos task.
    pub chaos: generic::Chaos,
    /// The generic test's conf-change task (stage 3b).
    pub conf_changer: conf_changer::ConfChanger,
    /// The concurrent simulated clients, once a test installs them.
    pub workload: Option<workload::Workload>,
    /// The client requests in flight (of the simulated clients and the blocking helpers).
    pub(crate) requests: request::Requests,
    /// Checks that every store applies each committed command exactly once, in order.
    pub apply_oracle: ApplyOracle,
    /// Faults injected into background tasks.
    pub task_faults: TaskFaults,
    /// Crashes inside store events, planned and random.
    pub event_crashes: EventCrashes,
    /// What happened so far.
    pub stats: Stats,
    /// The watchdog that fails a cluster which stops making progress.
    pub liveness: liveness::Liveness,
    cfg: ClusterConfig,
    /// The test's name, for failure messages.
    name: String,
}

/// Fails the run, inside the event that revealed it, when an oracle found a violation: the
/// apply oracle, or the scheduler refusing a heartbeat that breaks its rules.
pub(crate) fn check_oracles(w: &mut World, c: &Core<World>) {
    liveness::check_wall(w, c);
    let mut found = Vec::new();
    if w.apply_oracle.has_violations() {
        found.extend(w.apply_oracle.take_violations());
    }
    if w.scheduler.has_violations() {
        found.extend(
            w.scheduler
                .take_violations()
                .into_iter()
                .map(|v| format!("scheduler: {v}")),
        );
    }
    if !found.is_empty() {
        panic!("{}", failure_story(w, c, &found.join("\n")));
    }
}

/// What a failure message says: what failed, the seed and how to replay it, the faults in
/// force and the last events.
pub(crate) fn failure_story(w: &World, c: &Core<World>, what: &str) -> String {
    let tail = c.trace_tail();
    let shown = &tail[tail.len().saturating_sub(20)..];
    format!(
        "{what}\n  at virtual time {} after {} events\n  network filters: {:?}\n  last events:\n    {}\n{} failed: replay with LABS_SEED={}",
        c.now(),
        c.events_executed(),
        w.net.filters(),
        shown.join("\n    "),
        w.name,
        c.seed()
    )
}

fn schedule_tick(c: &mut Core<World>, store_id: u64, incarnation: u64, after: Duration) {
    c.schedule(after, "tick", move |w: &mut World, c: &mut Core<World>| {
        if w.running(store_id) != Some(incarnation) {
            return;
        }
        let base = w.cfg.store.raft_base_tick;
        run_on_store(w, c, store_id, raftstore::StoreEvent::Tick);
        schedule_tick(c, store_id, incarnation, base);
    });
}

impl World {
    /// The incarnation of store `store_id` if it is running.
    pub(crate) fn running(&self, store_id: u64) -> Option<u64> {
        self.stores.get(&store_id).and_then(StoreNode::running)
    }

    /// The stores' configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.cfg
    }

    /// The test's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Starts (or restarts) a stopped store over its engines, from inside the simulation.
pub(crate) fn start_store_in(
    w: &mut World,
    c: &mut Core<World>,
    store_id: u64,
) -> Result<(), String> {
    let seed: u64 = c.rng().gen();
    let Some(node) = w.stores.get_mut(&store_id) else {
        return Err(format!("there is no store {store_id}"));
    };
    if node.store.is_some() {
        return Ok(());
    }
    let mut cfg = w.cfg.store.clone();
    cfg.seed = seed;
    w.apply_oracle
        .restarted(store_id, &node.engines.kv)
        .map_err(|e| format!("store {store_id}: cannot read its apply state: {e}"))?;
    let store = Store::new(store_id, cfg, node.engines.clone())
        .map_err(|e| format!("cannot start store {store_id}: {e}"))?;
    node.store = Some(store);
    node.incarnation += 1;
    c.note(Label::new(
        "start",
        describe::Lazy(move |f| write!(f, "store {store_id}")),
    ));
    // Stores do not tick in lockstep: each starts at a random offset within a tick.
    let base = w.cfg.store.raft_base_tick;
    let offset = Duration::from_nanos(c.rng().gen_range(0..base.as_nanos().max(1) as u64));
    schedule_tick(c, store_id, node.incarnation, offset);
    Ok(())
}

/// Crashes a store from inside the simulation: it stops, and its engines lose every write
/// that was not synced (when they model durability; otherwise this is a clean stop).
pub(crate) fn crash_store_in(w: &mut World, c: &mut Core<World>, store_id: u64) {
    let Some(node) = w.stores.get_mut(&store_id) else {
        return;
    };
    node.store = None;
    let lost = node.engines.simulate_crash();
    c.note(Label::new(
        "crash",
        describe::Lazy(move |f| match &lost {
            Ok(l) => write!(
                f,
                "store {store_id}: {} kv and {} raft batches lost",
                l.kv, l.raft
            ),
            Err(e) => write!(f, "store {store_id}: stopped ({e})"),
        }),
    ));
}

/// Schedules the restart of a crashed store `after` from now (failing the run if it cannot
/// start).
pub(crate) fn restart_after(c: &mut Core<World>, store_id: u64, after: Duration) {
    c.schedule(
        after,
        Label::new(
            "restart",
            describe::Lazy(move |f| write!(f, "store {store_id}")),
        ),
        move |w: &mut World, c: &mut Core<World>| {
            if let Err(e) = start_store_in(w, c, store_id) {
                panic!("{}", failure_story(w, c, &e));
            }
        },
    );
}

/// A fresh directory for a cluster's engines. In memory (`/dev/shm`) when the machine has it:
/// the simulated-durability engines model crashes themselves, so real fsyncs (which fjall
/// still issues when it creates and closes files) would only cost wall time.
fn cluster_dir() -> std::io::Result<tempfile::TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("tinykv-cluster-");
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = builder.tempdir_in(shm) {
            return Ok(dir);
        }
    }
    builder.tempdir()
}

/// The cluster id the stores are bootstrapped with, and the scheduler is built with.
const CLUSTER_ID: u64 = 0;

/// The seed of the scheduler's own randomness ([`SchedulerSetup::seed`]): derived from the
/// run's seed (splitmix64), so it replays with the run but is not the simulator's stream.
fn scheduler_seed(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476C_E1E5_B9B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How the scheduler knows store `id`.
fn store_meta(id: u64) -> metapb::Store {
    let mut store = metapb::Store::new();
    store.id = id;
    store.address = format!("store-{id}");
    store
}

/// Opens the engines of store `id` under `dir` and bootstraps them as a store of the
/// cluster; with `region`, also with the first region (a store of the initial cluster),
/// else empty (a store added later).
fn open_store(
    dir: &std::path::Path,
    options: &EngineOptions,
    id: u64,
    region: Option<&metapb::Region>,
) -> Result<Engines, String> {
    let engines = Engines::open(dir.join(format!("store-{id}")), options)
        .map_err(|e| format!("cannot open the engines of store {id}: {e}"))?;
    bootstrap::bootstrap_store(&engines, CLUSTER_ID, id)
        .and_then(|()| match region {
            Some(region) => bootstrap::prepare_bootstrap_cluster(&engines, region)
                .and_then(|()| bootstrap::clear_prepare_bootstrap_state(&engines)),
            None => Ok(()),
        })
        .map_err(|e| format!("cannot bootstrap store {id}: {e}"))?;
    Ok(engines)
}

/// Gives the scheduler its periodic tick every `every` of virtual time, then routes the
/// responses it produced to their stores, as after a heartbeat, and runs the oracles.
fn schedule_scheduler_tick(c: &mut Core<World>, every: Duration) {
    c.schedule(
        every,
        "scheduler tick",
        move |w: &mut World, c: &mut Core<World>| {
            w.scheduler.tick(c.now().as_duration());
            route_scheduler_responses(w, c);
            check_oracles(w, c);
            schedule_scheduler_tick(c, every);
        },
    );
}

/// A simulated cluster.
pub struct Cluster {
    sim: Sim<World>,
    /// Where the stores' engines live (removed when the cluster is dropped).
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.sim.world().name)
            .field("sim", &self.sim)
            .finish()
    }
}

impl Cluster {
    /// Builds and bootstraps a cluster named after its test (`name` appears in failure
    /// messages), with every random choice drawn from `seed`: region 1 `["", "")` with one
    /// peer per store (peer id = store id), initial log index/term 5 on every store, then
    /// starts every store. The scheduler is the one [`ClusterConfig::scheduler_factory`]
    /// builds; if it [wants ticks](ClusterScheduler::wants_ticks) it gets one every
    /// [`ClusterConfig::scheduler_tick`].
    pub fn new(name: &str, seed: u64, cfg: ClusterConfig) -> Cluster {
        crate::logging::init_from_env();
        let dir = cluster_dir().unwrap_or_else(|e| panic!("{name}: cannot create a temp dir: {e}"));
        let mut scheduler = cfg.scheduler_factory()(SchedulerSetup {
            cluster_id: CLUSTER_ID,
            first_id: cfg.stores + 1,
            seed: scheduler_seed(seed),
        });
        let peers: Vec<metapb::Peer> = (1..=cfg.stores)
            .map(|id| raftstore::util::new_peer(id, id))
            .collect();
        let region = bootstrap::new_first_region(1, peers);
        let mut stores = BTreeMap::new();
        let apply_oracle = ApplyOracle::new();
        for id in 1..=cfg.stores {
            let engines = open_store(dir.path(), &cfg.engine, id, Some(&region))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let store = store_meta(id);
            if id == 1 {
                if let Err(e) = scheduler.bootstrap(store.clone()) {
                    panic!("{name}: scheduler bootstrap failed: {e}");
                }
            }
            scheduler.put_store(store);
            if let Err(e) = apply_oracle.watch(id, &engines) {
                panic!("{name}: cannot watch store {id}: {e}");
            }
            stores.insert(
                id,
                StoreNode {
                    engines,
                    store: None,
                    incarnation: 0,
                },
            );
        }
        let ticks = scheduler.wants_ticks().then_some(cfg.scheduler_tick);
        if ticks == Some(Duration::ZERO) {
            panic!("{name}: the scheduler wants ticks but ClusterConfig::scheduler_tick is zero");
        }
        let world = World {
            stores,
            net: cfg.net.clone(),
            scheduler,
            chaos: generic::Chaos::default(),
            conf_changer: conf_changer::ConfChanger::default(),
            workload: None,
            requests: request::Requests::default(),
            apply_oracle,
            task_faults: TaskFaults::default(),
            event_crashes: EventCrashes {
                mix: cfg.event_crash_mix.clone(),
                planned: Vec::new(),
            },
            stats: Stats::default(),
            liveness: liveness::Liveness::default(),
            cfg,
            name: name.to_owned(),
        };
        let mut cluster = Cluster {
            sim: Sim::new(seed, world),
            dir,
        };
        let ids: Vec<u64> = cluster.sim.world().stores.keys().copied().collect();
        for id in ids {
            cluster.start_store(id);
        }
        liveness::start(cluster.sim.core());
        if let Some(every) = ticks {
            schedule_scheduler_tick(cluster.sim.core(), every);
        }
        cluster
    }

    /// Adds a new, empty store at run time and starts it: the next store id (one more than
    /// the largest), its engines in the cluster's directory like the others', bootstrapped
    /// as a store of the cluster but holding no region (a peer comes to it by a conf change
    /// and a snapshot). The scheduler learns of it ([`ClusterScheduler::put_store`]), the
    /// apply oracle watches it, and everything that walks the stores (the liveness watchdog,
    /// the conf-change task, the chaos task's partitions, the failure stories' peer table)
    /// sees it from now on. The network routes by store id, so messages reach it at once;
    /// a filter already in force that names stores leaves it out (a partition made before
    /// puts it in no group: unaffected). Returns its id.
    pub fn add_store(&mut self) -> u64 {
        let id = self
            .sim
            .world()
            .stores
            .keys()
            .next_back()
            .map_or(1, |&last| last + 1);
        let engines = match open_store(self.dir.path(), &self.world().cfg.engine, id, None) {
            Ok(engines) => engines,
            Err(e) => self.fail(&format!("add_store: {e}")),
        };
        let (w, c) = self.sim.parts();
        if let Err(e) = w.apply_oracle.watch(id, &engines) {
            let what = format!("add_store: cannot watch store {id}: {e}");
            panic!("{}", failure_story(w, c, &what));
        }
        w.scheduler.put_store(store_meta(id));
        w.stores.insert(
            id,
            StoreNode {
                engines,
                store: None,
                incarnation: 0,
            },
        );
        w.cfg.stores = w.cfg.stores.max(id);
        c.note(Label::new(
            "add store",
            describe::Lazy(move |f| write!(f, "store {id}")),
        ));
        self.start_store(id);
        id
    }

    /// The simulator (to run it, read its clock or its trace).
    pub fn sim(&mut self) -> &mut Sim<World> {
        &mut self.sim
    }

    /// The world (stores, network, scheduler).
    pub fn world(&self) -> &World {
        self.sim.world()
    }

    /// The world, mutably.
    pub fn world_mut(&mut self) -> &mut World {
        self.sim.world_mut()
    }

    /// The ids of every store.
    pub fn store_ids(&self) -> Vec<u64> {
        self.sim.world().stores.keys().copied().collect()
    }

    /// A store's engines.
    pub fn engines(&self, store_id: u64) -> &Engines {
        match self.sim.world().stores.get(&store_id) {
            Some(node) => &node.engines,
            None => self.fail(&format!("there is no store {store_id}")),
        }
    }

    /// Runs the cluster for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.sim.run_for(d);
    }

    /// Starts (or restarts) a stopped store over its engines.
    pub fn start_store(&mut self, store_id: u64) {
        let (w, c) = self.sim.parts();
        if let Err(e) = start_store_in(w, c, store_id) {
            self.fail(&e);
        }
    }

    /// Stops a store: its in-memory state is gone (queued messages to it are lost, pending
    /// commands are never answered, its running tasks die); its engines keep what was
    /// written.
    pub fn stop_store(&mut self, store_id: u64) {
        let (w, c) = self.sim.parts();
        if let Some(node) = w.stores.get_mut(&store_id) {
            node.store = None;
            c.note(Label::new(
                "stop",
                describe::Lazy(move |f| write!(f, "store {store_id}")),
            ));
        }
    }

    /// Crashes a store: it stops, and its engines lose every write that was not synced
    /// (when the engines model durability; otherwise this is a clean stop).
    pub fn crash_store(&mut self, store_id: u64) {
        let (w, c) = self.sim.parts();
        crash_store_in(w, c, store_id);
    }

    /// Whether store `store_id` is running.
    pub fn is_running(&self, store_id: u64) -> bool {
        self.world().running(store_id).is_some()
    }

    /// Compacts every store's data column families (see [`engine::Engine::compact_cf`]):
    /// what the background compaction of a store that ran for real would have done by now.
    /// Reads see the same data afterwards; scans stop walking the versions and tombstones
    /// of keys deleted earlier, which otherwise make a test that reuses its keys
    /// (the generic test, every iteration) slower each round.
    pub fn compact_engines(&self) {
        for (id, node) in &self.sim.world().stores {
            for &cf in engine::Cf::DATA {
                if let Err(e) = node.engines.kv.compact_cf(cf) {
                    self.fail(&format!("store {id}: cannot compact {}: {e}", cf.name()));
                }
            }
        }
    }

    /// Adds a network filter.
    pub fn add_filter(&mut self, f: Filter) {
        let (w, c) = self.sim.parts();
        c.note(Label::new("fault", format!("{f:?}")));
        w.net.add_filter(f);
    }

    /// Removes every network filter.
    pub fn clear_filters(&mut self) {
        let (w, c) = self.sim.parts();
        if !w.net.filters().is_empty() {
            c.note("faults healed");
        }
        w.net.clear_filters();
    }

    /// Panics with the story of the run: what failed, the seed and how to replay it, the
    /// faults in force and the last events.
    pub fn fail(&self, what: &str) -> ! {
        panic!(
            "{}",
            failure_story(self.sim.world(), self.sim.core_ref(), what)
        )
    }
}

impl Drop for Cluster {
    /// With `LABS_REPORT_TIME` set, reports how much virtual time the cluster lived (for
    /// measuring the simulator's virtual-seconds-per-wall-second ratio).
    fn drop(&mut self) {
        if std::env::var_os("LABS_REPORT_TIME").is_some() {
            eprintln!(
                "labs-report-time {} virtual_s={:.3} events={} apply_checked={} snapshots_checked={} regions={} conf_changes={:?} {:?}",
                self.sim.world().name,
                self.sim.now().as_duration().as_secs_f64(),
                self.sim.events_executed(),
                self.sim.world().apply_oracle.verified_entries(),
                self.sim.world().apply_oracle.verified_snapshots(),
                self.sim.world().scheduler.regions().len(),
                self.sim.world().conf_changer.completed(),
                self.sim.world().stats,
            );
        }
    }
}

/// A slot a callback fills; test code waits on it by running the simulator.
pub(crate) type Slot<T> = Arc<Mutex<Option<T>>>;

// lab:needs 2aa..3b
#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use parking_lot::Mutex;
    use proto::metapb::{Peer, Region, Store};
    use proto::schedulerpb::{
        AskSplitResponse, RegionHeartbeatRequest, RegionHeartbeatResponse, StoreStats,
    };

    use super::{Cluster, ClusterConfig};
    use crate::scheduler::{
        ClusterScheduler, MockScheduler, SchedulerError, SchedulerFactory, SchedulerSetup,
    };

    /// The mock plus periodic work: every tick it records the time and, while a target is
    /// set and region 1 is led by another peer, tells the leader to hand over to the target
    /// (what a real scheduler's balance-leader scheduler would do).
    #[derive(Debug)]
    struct Ticking {
        mock: MockScheduler,
        ticks: Arc<Mutex<Vec<Duration>>>,
        target: Arc<Mutex<Option<Peer>>>,
        queued: Vec<(u64, RegionHeartbeatResponse)>,
    }

    impl ClusterScheduler for Ticking {
        fn cluster_id(&self) -> u64 {
            ClusterScheduler::cluster_id(&self.mock)
        }
        fn alloc_id(&mut self) -> u64 {
            ClusterScheduler::alloc_id(&mut self.mock)
        }
        fn bootstrap(&mut self, store: Store) -> Result<(), SchedulerError> {
            ClusterScheduler::bootstrap(&mut self.mock, store)
        }
        fn is_bootstrapped(&self) -> bool {
            ClusterScheduler::is_bootstrapped(&self.mock)
        }
        fn put_store(&mut self, store: Store) {
            ClusterScheduler::put_store(&mut self.mock, store);
        }
        fn get_store(&self, store_id: u64) -> Option<Store> {
            ClusterScheduler::get_store(&self.mock, store_id)
        }
        fn get_region(&self, key: &[u8]) -> Option<(Region, Option<Peer>)> {
            ClusterScheduler::get_region(&self.mock, key)
        }
        fn get_region_by_id(&self, region_id: u64) -> Option<(Region, Option<Peer>)> {
            ClusterScheduler::get_region_by_id(&self.mock, region_id)
        }
        fn leader(&self, region_id: u64) -> Option<Peer> {
            ClusterScheduler::leader(&self.mock, region_id)
        }
        fn regions(&self) -> Vec<Region> {
            ClusterScheduler::regions(&self.mock)
        }
        fn is_pending(&self, peer_id: u64) -> bool {
            ClusterScheduler::is_pending(&self.mock, peer_id)
        }
        fn add_peer(&mut self, region_id: u64, peer: Peer) {
            ClusterScheduler::add_peer(&mut self.mock, region_id, peer);
        }
        fn remove_peer(&mut self, region_id: u64, peer: Peer) {
            ClusterScheduler::remove_peer(&mut self.mock, region_id, peer);
        }
        fn transfer_leader(&mut self, region_id: u64, peer: Peer) {
            ClusterScheduler::transfer_leader(&mut self.mock, region_id, peer);
        }
        fn operator(&self, region_id: u64) -> Option<String> {
            ClusterScheduler::operator(&self.mock, region_id)
        }
        fn region_heartbeat(
            &mut self,
            req: &RegionHeartbeatRequest,
            now: Duration,
        ) -> Result<(), SchedulerError> {
            ClusterScheduler::region_heartbeat(&mut self.mock, req, now)
        }
        fn store_heartbeat(&mut self, stats: &StoreStats, now: Duration) {
            ClusterScheduler::store_heartbeat(&mut self.mock, stats, now);
        }
        fn ask_split(&mut self, region: &Region) -> Result<AskSplitResponse, SchedulerError> {
            ClusterScheduler::ask_split(&mut self.mock, region)
        }
        fn report_split(&mut self, left: &Region, right: &Region) -> Result<(), SchedulerError> {
            ClusterScheduler::report_split(&mut self.mock, left, right)
        }
        fn wants_ticks(&self) -> bool {
            true
        }
        fn tick(&mut self, now: Duration) {
            self.ticks.lock().push(now);
            let Some(target) = self.target.lock().clone() else {
                return;
            };
            let Some((region, Some(leader))) = self.mock.get_region_by_id(1) else {
                return;
            };
            if leader.id == target.id {
                return;
            }
            let mut resp = RegionHeartbeatResponse {
                region_id: 1,
                ..Default::default()
            };
            resp.set_region_epoch(region.get_region_epoch().clone());
            resp.set_target_peer(leader.clone());
            resp.mut_transfer_leader().set_peer(target);
            self.queued.push((leader.store_id, resp));
        }
        fn take_responses(&mut self) -> Vec<(u64, RegionHeartbeatResponse)> {
            let mut responses = ClusterScheduler::take_responses(&mut self.mock);
            responses.append(&mut self.queued);
            responses
        }
        fn has_violations(&self) -> bool {
            ClusterScheduler::has_violations(&self.mock)
        }
        fn take_violations(&mut self) -> Vec<String> {
            ClusterScheduler::take_violations(&mut self.mock)
        }
    }

    /// A scheduler that wants ticks gets one every `scheduler_tick` of virtual time, stamped
    /// with that time, and what it answers in a tick reaches the stores like a heartbeat
    /// response: here a leader transfer nobody else asked for.
    #[test]
    fn a_ticking_scheduler_gets_its_ticks_and_its_answers_reach_the_stores() {
        let ticks = Arc::new(Mutex::new(Vec::new()));
        let target = Arc::new(Mutex::new(None));
        let (t, g) = (Arc::clone(&ticks), Arc::clone(&target));
        let factory: SchedulerFactory = Arc::new(move |setup: SchedulerSetup| {
            Box::new(Ticking {
                mock: MockScheduler::new(setup.cluster_id, setup.first_id),
                ticks: Arc::clone(&t),
                target: Arc::clone(&g),
                queued: Vec::new(),
            }) as Box<dyn ClusterScheduler>
        });
        let mut cfg = ClusterConfig::new(3).with_scheduler(factory);
        cfg.scheduler_tick = Duration::from_millis(50);
        let mut c = Cluster::new("ticking_scheduler", 8, cfg);
        c.must_put(b"k", b"v");
        let Some(leader) = c.leader_of_region(1) else {
            panic!("no leader of region 1");
        };
        let next = leader.store_id % 3 + 1;
        let to = raftstore::util::new_peer(next, next);
        *target.lock() = Some(to.clone());
        c.wait_until(Duration::from_secs(5), "the tick's transfer", |c| {
            c.world().scheduler.leader(1).is_some_and(|l| l.id == to.id)
        });
        c.must_get(b"k", b"v");
        let seen = ticks.lock().clone();
        assert!(seen.len() >= 2, "{seen:?}");
        for (i, at) in seen.iter().enumerate() {
            let n = u32::try_from(i + 1).expect("few ticks");
            assert_eq!(*at, Duration::from_millis(50) * n, "{seen:?}");
        }
    }

    /// The mock wants no ticks, so a cluster on it has no tick event: its runs replay as
    /// they did before schedulers could tick.
    #[test]
    fn a_cluster_on_the_mock_schedules_no_tick() {
        let cfg = ClusterConfig::new(3).with_scheduler(crate::scheduler::mock_factory());
        let mut c = Cluster::new("untick", 8, cfg);
        c.must_put(b"k", b"v");
        c.run_for(Duration::from_millis(500));
        let tail = c.sim().core_ref().trace_tail();
        assert!(tail.len() >= 32, "{tail:?}");
        assert!(
            !tail.iter().any(|e| e.contains("scheduler tick")),
            "{tail:?}"
        );
    }
}
// lab:end-needs

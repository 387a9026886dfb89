//! A cluster of stores in one process, on real directories and the real clock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use engine::{EngineOptions, Engines};
use proto::metapb;
use raftstore::{bootstrap, Config, Store};
use scheduler::{ScheduleConfig, SchedulerService};

use crate::client::Client;
use crate::error::Result;
use crate::local::{LocalScheduler, LocalTransport};
use crate::router::Router;
use crate::store_loop::{LoopConfig, StoreLoop};

/// The id the stores are bootstrapped with and the scheduler serves.
pub const CLUSTER_ID: u64 = 1;

/// How a [`LocalCluster`] is built.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// How many stores (ids 1 to `stores`), each with a peer of region 1.
    pub stores: u64,
    /// Every store's configuration.
    pub cfg: Config,
    /// How each store's loop runs.
    pub loop_cfg: LoopConfig,
    /// The engines' options (real durability: a synced write reaches the disk).
    pub engine: EngineOptions,
    /// The scheduler's options.
    pub schedule: ScheduleConfig,
    /// How often the scheduler's periodic work runs.
    pub scheduler_tick: Duration,
}

impl ClusterOptions {
    /// `stores` stores with the original's test configuration ([`Config::test`]) and a
    /// scheduler that moves nothing on its own (balance and the replica checker off).
    pub fn new(stores: u64) -> ClusterOptions {
        ClusterOptions {
            stores,
            cfg: Config::test(),
            loop_cfg: LoopConfig::default(),
            engine: EngineOptions::default(),
            schedule: ScheduleConfig {
                enable_balance_region: false,
                enable_replica_checker: false,
                ..ScheduleConfig::default()
            },
            scheduler_tick: Duration::from_millis(100),
        }
    }
}

/// Stores of one cluster running in this process (see the crate docs).
#[derive(Debug)]
pub struct LocalCluster {
    dir: PathBuf,
    opts: ClusterOptions,
    router: Router,
    scheduler: LocalScheduler,
    ticker: Option<(Sender<()>, JoinHandle<()>)>,
    stores: BTreeMap<u64, StoreLoop>,
}

/// How the scheduler knows store `id`.
fn store_meta(id: u64) -> metapb::Store {
    let mut store = metapb::Store::new();
    store.id = id;
    store.address = format!("local-{id}");
    store
}

impl LocalCluster {
    /// Bootstraps a new cluster in `dir` (one subdirectory per store) and starts every
    /// store: region 1 `["", "")` with one peer per store (peer id = store id).
    pub fn bootstrap(dir: &Path, opts: ClusterOptions) -> Result<LocalCluster> {
        let svc = Arc::new(SchedulerService::new(
            CLUSTER_ID,
            opts.stores + 1,
            opts.schedule.clone(),
            opts.cfg.seed,
        ));
        let router = Router::new();
        let scheduler = LocalScheduler::new(svc.clone(), router.clone());
        let ticker = Some(scheduler.start_ticker(opts.scheduler_tick)?);
        let peers = (1..=opts.stores)
            .map(|id| raftstore::util::new_peer(id, id))
            .collect();
        let region = bootstrap::new_first_region(1, peers);
        let mut cluster = LocalCluster {
            dir: dir.to_owned(),
            opts,
            router,
            scheduler,
            ticker,
            stores: BTreeMap::new(),
        };
        for id in 1..=cluster.opts.stores {
            let engines = Engines::open(cluster.store_dir(id), &cluster.opts.engine)?;
            bootstrap::bootstrap_store(&engines, CLUSTER_ID, id)?;
            bootstrap::prepare_bootstrap_cluster(&engines, &region)?;
            bootstrap::clear_prepare_bootstrap_state(&engines)?;
            if id == 1 {
                svc.bootstrap(store_meta(id))?;
            } else {
                svc.put_store(store_meta(id))?;
            }
            cluster.run_store(id, engines)?;
        }
        Ok(cluster)
    }

    fn store_dir(&self, id: u64) -> PathBuf {
        self.dir.join(format!("store-{id}"))
    }

    fn run_store(&mut self, id: u64, engines: Engines) -> Result<()> {
        let mut cfg = self.opts.cfg.clone();
        // Each store draws its own election timeouts.
        cfg.seed = cfg.seed.wrapping_add(id);
        let base_tick = cfg.raft_base_tick;
        let store = Store::new(id, cfg, engines)?;
        let lp = StoreLoop::start(
            store,
            base_tick,
            &self.router,
            Box::new(LocalTransport::new(self.router.clone(), id)),
            Box::new(self.scheduler.clone()),
            &self.opts.loop_cfg,
        )?;
        self.stores.insert(id, lp);
        Ok(())
    }

    /// Starts store `id` again from what its directory holds (after [`LocalCluster::stop`]).
    pub fn start(&mut self, id: u64) -> Result<()> {
        if self.stores.contains_key(&id) {
            return Ok(());
        }
        let engines = Engines::open(self.store_dir(id), &self.opts.engine)?;
        self.run_store(id, engines)
    }

    /// Stops store `id`: its queued events are handled, then its thread ends and its
    /// engines close. Unsynced writes are lost as in a crash; others stop hearing from it.
    pub fn stop(&mut self, id: u64) {
        if let Some(lp) = self.stores.remove(&id) {
            lp.stop();
        }
    }

    /// Whether store `id` runs.
    pub fn is_running(&self, id: u64) -> bool {
        self.stores.contains_key(&id)
    }

    /// A client of this cluster.
    pub fn client(&self) -> Client {
        Client::new(self.router.clone(), self.scheduler.service().clone())
    }

    /// The scheduler.
    pub fn scheduler(&self) -> &LocalScheduler {
        &self.scheduler
    }

    /// The router of this cluster's stores.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The store id of region `region_id`'s leader as the scheduler last heard it.
    pub fn leader_of(&self, region_id: u64) -> Option<u64> {
        self.scheduler
            .service()
            .get_region_by_id(region_id)
            .and_then(|(_, leader)| leader)
            .map(|p| p.store_id)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.ticker.take() {
            drop(stop);
            let _ = thread.join();
        }
        let ids: Vec<u64> = self.stores.keys().copied().collect();
        for id in ids {
            self.stop(id);
        }
    }
}

//! One store as a server process runs it: its data directory, its identity, the cluster's
//! first bootstrap, and its store loop.
//!
//! The first store of a new cluster creates the first region with one peer (itself) and
//! bootstraps the scheduler with it; every other store only registers, and the scheduler's
//! replica checker grows the region onto it. A store that restarts finds its identity in its
//! engines and checks it against the one it was started as. A crash in the middle of the
//! first bootstrap leaves a marker that the next start finishes or undoes (another store may
//! have bootstrapped the cluster meanwhile).

use std::path::PathBuf;

use engine::{keys, Cf, EngineOptions, Engines};
use proto::metapb;
use proto::raft_serverpb::StoreIdent;
use raftstore::{bootstrap, Config, SchedulerClient, Store, Transport};

use crate::error::{NodeError, Result};
use crate::router::Router;
use crate::store_loop::{LoopConfig, StoreLoop};

/// What starting a store needs from the scheduler besides the store's own
/// [`SchedulerClient`]: the cluster's bootstrap and the store's registration.
pub trait ClusterBootstrap {
    /// Whether some store bootstrapped the cluster already.
    fn is_bootstrapped(&mut self) -> Result<bool>;

    /// Bootstraps the cluster with `store` and its first `region`; `Ok(false)` if another
    /// store did it first.
    fn bootstrap(&mut self, store: &metapb::Store, region: &metapb::Region) -> Result<bool>;

    /// Registers `store` (or updates its address).
    fn put_store(&mut self, store: &metapb::Store) -> Result<()>;

    /// A fresh id, unique in the cluster.
    fn alloc_id(&mut self) -> Result<u64>;
}

/// How to start one store.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The cluster the store belongs to.
    pub cluster_id: u64,
    /// The store's id.
    pub store_id: u64,
    /// Where other stores reach it (registered with the scheduler).
    pub address: String,
    /// The store's data directory (its two engines and snapshots).
    pub data_dir: PathBuf,
    /// The store's configuration.
    pub cfg: Config,
    /// How its loop runs.
    pub loop_cfg: LoopConfig,
    /// The engines' options.
    pub engine: EngineOptions,
}

impl NodeConfig {
    /// Store `store_id` of cluster `cluster_id` at `address` over `data_dir`, with the
    /// default configurations.
    pub fn new(cluster_id: u64, store_id: u64, address: &str, data_dir: PathBuf) -> NodeConfig {
        NodeConfig {
            cluster_id,
            store_id,
            address: address.to_owned(),
            data_dir,
            cfg: Config::default(),
            loop_cfg: LoopConfig::default(),
            engine: EngineOptions::default(),
        }
    }

    fn store_meta(&self) -> metapb::Store {
        let mut store = metapb::Store::new();
        store.id = self.store_id;
        store.address = self.address.clone();
        store
    }
}

/// Opens the store's engines, makes sure they belong to this store (bootstrapping a fresh
/// directory, and the cluster if no store has), registers it, and starts its loop.
pub fn start_node(
    nc: &NodeConfig,
    boot: &mut dyn ClusterBootstrap,
    router: &Router,
    transport: Box<dyn Transport + Send>,
    scheduler: Box<dyn SchedulerClient + Send>,
) -> Result<StoreLoop> {
    let engines = Engines::open(&nc.data_dir, &nc.engine)?;
    let ident: Option<StoreIdent> = engines.kv.get_msg_cf(Cf::Raft, keys::STORE_IDENT_KEY)?;
    let fresh = match ident {
        Some(ident) if (ident.cluster_id, ident.store_id) == (nc.cluster_id, nc.store_id) => false,
        Some(ident) => {
            return Err(NodeError::Refused(format!(
                "{} holds store {} of cluster {}, not store {} of cluster {}",
                nc.data_dir.display(),
                ident.store_id,
                ident.cluster_id,
                nc.store_id,
                nc.cluster_id
            )))
        }
        None => {
            bootstrap::bootstrap_store(&engines, nc.cluster_id, nc.store_id)?;
            true
        }
    };
    let store = nc.store_meta();
    if let Some(region) = bootstrap::prepare_bootstrap_region(&engines.kv)? {
        // A crash came during the first bootstrap: finish it, or undo it if another store
        // won meanwhile.
        finish_bootstrap(&engines, boot, &store, &region)?;
    } else if fresh && !boot.is_bootstrapped()? {
        let region_id = boot.alloc_id()?;
        let peer_id = boot.alloc_id()?;
        let region = bootstrap::prepare_bootstrap(&engines, nc.store_id, region_id, peer_id)?;
        finish_bootstrap(&engines, boot, &store, &region)?;
    }
    boot.put_store(&store)?;
    let base_tick = nc.cfg.raft_base_tick;
    let s = Store::new(nc.store_id, nc.cfg.clone(), engines)?;
    StoreLoop::start(s, base_tick, router, transport, scheduler, &nc.loop_cfg)
}

fn finish_bootstrap(
    engines: &Engines,
    boot: &mut dyn ClusterBootstrap,
    store: &metapb::Store,
    region: &metapb::Region,
) -> Result<()> {
    if boot.bootstrap(store, region)? {
        tracing::info!(
            "store {}: bootstrapped the cluster with region {}",
            store.id,
            region.id
        );
        bootstrap::clear_prepare_bootstrap_state(engines)?;
    } else {
        tracing::info!(
            "store {}: the cluster was bootstrapped by another store",
            store.id
        );
        bootstrap::clear_prepare_bootstrap(engines, region.id)?;
    }
    Ok(())
}

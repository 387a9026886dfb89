//! Stores started one by one as server processes start them ([`node::start_node`]): the
//! first bootstraps the cluster with a one-peer region, the scheduler's replica checker grows
//! it onto the stores that register later, and a restart finds its identity on disk. Real
//! clock, bounded waits.
//!
//! They run the reference solution of every stage up to 3c.

// lab:needs 2aa..3c
use std::sync::Arc;
use std::time::{Duration, Instant};

use node::local::{LocalScheduler, LocalTransport};
use node::{start_node, Client, NodeConfig, Router, StoreLoop};
use raftstore::Config;
use scheduler::{ScheduleConfig, SchedulerService};

struct World {
    dir: tempfile::TempDir,
    router: Router,
    scheduler: LocalScheduler,
    _ticker: (crossbeam_channel::Sender<()>, std::thread::JoinHandle<()>),
}

impl World {
    fn new() -> World {
        let opts = ScheduleConfig {
            enable_balance_region: false,
            ..ScheduleConfig::simulation()
        };
        let router = Router::new();
        let scheduler = LocalScheduler::new(
            Arc::new(SchedulerService::new(1, 100, opts, 0)),
            router.clone(),
        );
        let ticker = scheduler.start_ticker(Duration::from_millis(50)).unwrap();
        World {
            dir: tempfile::tempdir().unwrap(),
            router,
            scheduler,
            _ticker: ticker,
        }
    }

    fn config(&self, store_id: u64) -> NodeConfig {
        let mut nc = NodeConfig::new(
            1,
            store_id,
            &format!("local-{store_id}"),
            self.dir.path().join(format!("s{store_id}")),
        );
        nc.cfg = Config::test();
        nc.cfg.seed = store_id;
        nc
    }

    fn start(&self, nc: &NodeConfig) -> node::Result<StoreLoop> {
        let mut boot = self.scheduler.clone();
        start_node(
            nc,
            &mut boot,
            &self.router,
            Box::new(LocalTransport::new(self.router.clone(), nc.store_id)),
            Box::new(self.scheduler.clone()),
        )
    }

    fn client(&self) -> Client {
        Client::new(self.router.clone(), self.scheduler.service().clone())
    }

    /// Waits until the scheduler sees the region of key `k` with `n` peers.
    fn wait_for_peers(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let peers = self
                .scheduler
                .service()
                .get_region(b"k")
                .map_or(0, |(r, _)| r.get_peers().len());
            if peers == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the region has {peers} peers, not {n}, after 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn the_first_store_bootstraps_and_the_replica_checker_grows_the_region() {
    let w = World::new();
    let mut stores: Vec<Option<StoreLoop>> = Vec::new();
    for id in 1..=3 {
        stores.push(Some(w.start(&w.config(id)).unwrap()));
    }
    let client = w.client();
    client.put(b"k1", b"v1").unwrap();
    w.wait_for_peers(3);
    // Any one store may stop: the other two hold every write.
    let leader = w
        .scheduler
        .service()
        .get_region(b"k")
        .and_then(|(_, l)| l)
        .map(|p| p.store_id);
    let stopped = leader.unwrap_or(1);
    if let Some(s) = stores[(stopped - 1) as usize].take() {
        s.stop();
    }
    client.put(b"k2", b"v2").unwrap();
    assert_eq!(client.get(b"k1").unwrap(), b"v1");
    // It starts again from its directory as the same store, without bootstrapping anything.
    stores[(stopped - 1) as usize] = Some(w.start(&w.config(stopped)).unwrap());
    client.put(b"k3", b"v3").unwrap();
    assert_eq!(client.get(b"k2").unwrap(), b"v2");
}

#[test]
fn a_directory_of_another_store_is_refused() {
    let w = World::new();
    let first = w.start(&w.config(1)).unwrap();
    first.stop();
    let mut wrong = w.config(2);
    wrong.data_dir = w.config(1).data_dir;
    let err = w
        .start(&wrong)
        .expect_err("store 1's directory started as store 2");
    let msg = err.to_string();
    assert!(
        msg.contains("holds store 1 of cluster 1, not store 2"),
        "{msg}"
    );
}
// lab:end-needs

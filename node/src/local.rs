//! The outside world of stores that share one process: a transport over the [`Router`] and
//! the scheduler as a [`SchedulerService`] on the real clock.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use proto::metapb;
use proto::raft_serverpb::RaftMessage;
use proto::schedulerpb::{AskSplitResponse, RegionHeartbeatRequest, StoreStats};
use raft::SnapshotStatus;
use raftstore::snap::transfer::OutgoingSnapshot;
use raftstore::{SchedulerClient, StoreEvent, Transport};
use scheduler::SchedulerService;

use crate::router::Router;

/// Raft messages and snapshots between the stores of this process.
#[derive(Debug, Clone)]
pub struct LocalTransport {
    router: Router,
    /// The sending store (snapshot reports go back to it).
    store_id: u64,
}

impl LocalTransport {
    /// The transport of store `store_id`.
    pub fn new(router: Router, store_id: u64) -> LocalTransport {
        LocalTransport { router, store_id }
    }
}

fn not_sent(e: crate::NodeError) -> raftstore::Error {
    raftstore::Error::other(format!("not sent: {e}"))
}

impl Transport for LocalTransport {
    fn send(&mut self, msg: RaftMessage) -> raftstore::Result<()> {
        let to = msg.get_to_peer().store_id;
        self.router
            .send(to, StoreEvent::Raft(msg))
            .map_err(not_sent)
    }

    /// Streams the chunks from a thread of its own (a snapshot can be large), then reports.
    fn send_snapshot(&mut self, snap: OutgoingSnapshot) -> raftstore::Result<()> {
        let (router, from) = (self.router.clone(), self.store_id);
        std::thread::Builder::new()
            .name(format!("store-{from}-snap-send"))
            .spawn(move || {
                let msg = snap.message();
                let (to, region_id, to_peer_id) = (
                    msg.get_to_peer().store_id,
                    msg.region_id,
                    msg.get_to_peer().id,
                );
                let sent = (0..snap.chunk_count()).all(|i| match snap.chunk(i) {
                    Ok(chunk) => router.send(to, StoreEvent::SnapshotChunk(chunk)).is_ok(),
                    Err(e) => {
                        tracing::warn!("store {from}: reading snapshot {}: {e}", snap.key());
                        false
                    }
                });
                let status = if sent {
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                };
                let report = StoreEvent::SnapshotStatus {
                    region_id,
                    to_peer_id,
                    status,
                };
                // The sender may have stopped meanwhile; nothing to report to then.
                let _ = router.send(from, report);
            })
            .map(|_| ())
            .map_err(|e| raftstore::Error::other(format!("cannot start a snapshot sender: {e}")))
    }
}

/// The scheduler of this process: a [`SchedulerService`] whose clock is the time since the
/// process started it, whose answers reach the leaders' stores through the router, and whose
/// periodic work runs on a ticker thread (see [`LocalScheduler::start_ticker`]).
#[derive(Debug, Clone)]
pub struct LocalScheduler {
    svc: Arc<SchedulerService>,
    router: Router,
    start: Instant,
}

impl LocalScheduler {
    /// The scheduler `svc`, answering through `router`.
    pub fn new(svc: Arc<SchedulerService>, router: Router) -> LocalScheduler {
        LocalScheduler {
            svc,
            router,
            start: Instant::now(),
        }
    }

    /// The service.
    pub fn service(&self) -> &Arc<SchedulerService> {
        &self.svc
    }

    /// The scheduler's clock: time since it started.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Hands every answer the service produced to its store.
    pub fn route_responses(&self) {
        for (store, resp) in self.svc.take_responses() {
            if self
                .router
                .send(store, StoreEvent::SchedulerResponse(resp))
                .is_err()
            {
                tracing::debug!("scheduler: store {store} is not running; its step waits");
            }
        }
    }

    /// Ticks the service every `every` on a thread of its own until `stop` is dropped or
    /// sent to.
    pub fn start_ticker(&self, every: Duration) -> std::io::Result<(Sender<()>, JoinHandle<()>)> {
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
        let this = self.clone();
        let ticker = crossbeam_channel::tick(every);
        let thread = std::thread::Builder::new()
            .name("scheduler-tick".to_owned())
            .spawn(move || loop {
                crossbeam_channel::select! {
                    recv(stop_rx) -> _ => break,
                    recv(ticker) -> _ => {
                        this.svc.tick(this.now());
                        this.route_responses();
                    }
                }
            })?;
        Ok((stop_tx, thread))
    }
}

fn to_store_error(e: scheduler::Error) -> raftstore::Error {
    raftstore::Error::other(format!("scheduler: {e}"))
}

impl SchedulerClient for LocalScheduler {
    fn alloc_id(&mut self) -> raftstore::Result<u64> {
        Ok(self.svc.cluster().alloc_id())
    }

    fn region_heartbeat(&mut self, req: RegionHeartbeatRequest) -> raftstore::Result<()> {
        let leader_store = req.get_leader().store_id;
        let resp = self
            .svc
            .region_heartbeat(&req, self.now())
            .map_err(to_store_error)?;
        if let Some(resp) = resp {
            let _ = self
                .router
                .send(leader_store, StoreEvent::SchedulerResponse(resp));
        }
        self.route_responses();
        Ok(())
    }

    fn store_heartbeat(&mut self, stats: StoreStats) -> raftstore::Result<()> {
        self.svc
            .store_heartbeat(&stats, self.now())
            .map_err(to_store_error)
    }

    fn ask_split(&mut self, region: &metapb::Region) -> raftstore::Result<AskSplitResponse> {
        self.svc.ask_split(region).map_err(to_store_error)
    }

    fn report_split(
        &mut self,
        left: &metapb::Region,
        right: &metapb::Region,
    ) -> raftstore::Result<()> {
        self.svc.report_split(left, right).map_err(to_store_error)
    }
}

impl crate::node::ClusterBootstrap for LocalScheduler {
    fn is_bootstrapped(&mut self) -> crate::Result<bool> {
        Ok(self.svc.is_bootstrapped())
    }

    fn bootstrap(
        &mut self,
        store: &metapb::Store,
        _region: &metapb::Region,
    ) -> crate::Result<bool> {
        // The region reaches the scheduler with its leader's first heartbeat.
        match self.svc.bootstrap(store.clone()) {
            Ok(()) => Ok(true),
            Err(scheduler::Error::AlreadyBootstrapped) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn put_store(&mut self, store: &metapb::Store) -> crate::Result<()> {
        Ok(self.svc.put_store(store.clone())?)
    }

    fn alloc_id(&mut self) -> crate::Result<u64> {
        Ok(self.svc.cluster().alloc_id())
    }
}

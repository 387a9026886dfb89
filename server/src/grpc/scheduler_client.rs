//! Reaching the scheduler over gRPC: [`SchedulerConn`] (async calls, for tools and for the
//! transport's address lookups) and [`GrpcSchedulerClient`] (a store's
//! [`raftstore::SchedulerClient`]).

use std::sync::Arc;
use std::time::Duration;

use proto::adminpb::{AddOperatorRequest, OperatorKind};
use proto::metapb;
use proto::schedulerpb::{
    self as pb, AskSplitResponse, ErrorType, RegionHeartbeatRequest, RegionHeartbeatResponse,
    RequestHeader, ResponseHeader, StoreStats,
};
use raftstore::StoreEvent;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Channel;

use super::conn::{call, connect, ClientConfig};
use super::error::{GrpcError, Result};
use super::pb::schedulerpb::scheduler_client::SchedulerClient as SchedulerStub;
use super::sink::StoreSink;
use super::transport::{Backoff, ResolveAddress, ResolveFuture};
use super::MAX_MESSAGE_SIZE;

/// A connection to the scheduler at one address, for one cluster (learnt on connect).
/// Cheap to clone; every call is bounded by the config's request timeout. The underlying
/// channel reconnects by itself after the scheduler comes back.
#[derive(Debug, Clone)]
pub struct SchedulerConn {
    addr: String,
    cluster_id: u64,
    stub: SchedulerStub<Channel>,
    cfg: ClientConfig,
}

impl SchedulerConn {
    /// Connects to the scheduler at `addr` and asks it which cluster it serves.
    pub async fn connect(addr: &str, cfg: ClientConfig) -> Result<SchedulerConn> {
        let channel = connect(addr, &cfg).await?;
        let stub = SchedulerStub::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let mut conn = SchedulerConn {
            addr: addr.to_owned(),
            cluster_id: 0,
            stub,
            cfg,
        };
        let members = call(
            addr,
            "GetMembers",
            conn.cfg.request_timeout,
            conn.stub.clone().get_members(pb::GetMembersRequest::new()),
        )
        .await?;
        conn.cluster_id = members.get_header().cluster_id;
        Ok(conn)
    }

    /// The scheduler's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The cluster the scheduler serves.
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    fn header(&self) -> RequestHeader {
        let mut h = RequestHeader::new();
        h.cluster_id = self.cluster_id;
        h
    }

    /// An error for a response whose header carries one.
    fn check(&self, header: &ResponseHeader) -> Result<()> {
        let err = header.get_error();
        if header.has_error() && err.field_type != ErrorType::OK {
            return Err(GrpcError::Scheduler {
                addr: self.addr.clone(),
                kind: err.field_type,
                message: err.message.clone(),
            });
        }
        Ok(())
    }

    /// Registers the first store of the cluster.
    pub async fn bootstrap(&self, store: metapb::Store) -> Result<()> {
        let mut req = pb::BootstrapRequest::new();
        req.set_header(self.header());
        req.set_store(store);
        let resp = self
            .unary("Bootstrap", |mut s| async move { s.bootstrap(req).await })
            .await?;
        self.check(resp.get_header())
    }

    /// Whether the cluster was bootstrapped.
    pub async fn is_bootstrapped(&self) -> Result<bool> {
        let mut req = pb::IsBootstrappedRequest::new();
        req.set_header(self.header());
        let resp = self
            .unary("IsBootstrapped", |mut s| async move {
                s.is_bootstrapped(req).await
            })
            .await?;
        self.check(resp.get_header())?;
        Ok(resp.bootstrapped)
    }

    /// A fresh cluster-unique id.
    pub async fn alloc_id(&self) -> Result<u64> {
        let mut req = pb::AllocIDRequest::new();
        req.set_header(self.header());
        let resp = self
            .unary("AllocID", |mut s| async move { s.alloc_id(req).await })
            .await?;
        self.check(resp.get_header())?;
        Ok(resp.id)
    }

    /// Hands the scheduler an administrator's operator of `kind` on region `region_id` for
    /// its peer on store `store_id` (a new peer there, for [`OperatorKind::AddPeer`]);
    /// returns the peer the operator acts on. The scheduler runs the operator through the
    /// region's heartbeats; this returns once it was accepted, not when it is done.
    pub async fn add_operator(
        &self,
        region_id: u64,
        kind: OperatorKind,
        store_id: u64,
    ) -> Result<metapb::Peer> {
        let mut req = AddOperatorRequest::new();
        req.set_header(self.header());
        req.region_id = region_id;
        req.kind = kind;
        req.store_id = store_id;
        let mut resp = self
            .unary(
                "AddOperator",
                |mut s| async move { s.add_operator(req).await },
            )
            .await?;
        self.check(resp.get_header())?;
        Ok(resp.take_peer())
    }

    /// A store's description (fails if the scheduler does not know it).
    pub async fn get_store(&self, store_id: u64) -> Result<metapb::Store> {
        let mut req = pb::GetStoreRequest::new();
        req.set_header(self.header());
        req.store_id = store_id;
        let mut resp = self
            .unary("GetStore", |mut s| async move { s.get_store(req).await })
            .await?;
        self.check(resp.get_header())?;
        Ok(resp.take_store())
    }

    /// Registers a store or updates its description (its address, say).
    pub async fn put_store(&self, store: metapb::Store) -> Result<()> {
        let mut req = pb::PutStoreRequest::new();
        req.set_header(self.header());
        req.set_store(store);
        let resp = self
            .unary("PutStore", |mut s| async move { s.put_store(req).await })
            .await?;
        self.check(resp.get_header())
    }

    /// Every store the scheduler knows, tombstones too unless `exclude_tombstones`.
    pub async fn get_all_stores(&self, exclude_tombstones: bool) -> Result<Vec<metapb::Store>> {
        let mut req = pb::GetAllStoresRequest::new();
        req.set_header(self.header());
        req.exclude_tombstone_stores = exclude_tombstones;
        let mut resp = self
            .unary("GetAllStores", |mut s| async move {
                s.get_all_stores(req).await
            })
            .await?;
        self.check(resp.get_header())?;
        Ok(resp.take_stores().into_vec())
    }

    /// Reports a store's statistics.
    pub async fn store_heartbeat(&self, stats: StoreStats) -> Result<()> {
        let mut req = pb::StoreHeartbeatRequest::new();
        req.set_header(self.header());
        req.set_stats(stats);
        let resp = self
            .unary("StoreHeartbeat", |mut s| async move {
                s.store_heartbeat(req).await
            })
            .await?;
        self.check(resp.get_header())
    }

    /// The region containing `key` and its leader, if the scheduler knows one.
    pub async fn get_region(&self, key: &[u8]) -> Result<Option<RegionAndLeader>> {
        let mut req = pb::GetRegionRequest::new();
        req.set_header(self.header());
        req.region_key = key.to_vec();
        let resp = self
            .unary("GetRegion", |mut s| async move { s.get_region(req).await })
            .await?;
        self.region_of(resp)
    }

    /// The region with this id and its leader, if the scheduler knows one.
    pub async fn get_region_by_id(&self, region_id: u64) -> Result<Option<RegionAndLeader>> {
        let mut req = pb::GetRegionByIDRequest::new();
        req.set_header(self.header());
        req.region_id = region_id;
        let resp = self
            .unary("GetRegionByID", |mut s| async move {
                s.get_region_by_id(req).await
            })
            .await?;
        self.region_of(resp)
    }

    fn region_of(&self, mut resp: pb::GetRegionResponse) -> Result<Option<RegionAndLeader>> {
        self.check(resp.get_header())?;
        if !resp.has_region() {
            return Ok(None);
        }
        let leader = resp.leader.take();
        Ok(Some((resp.take_region(), leader)))
    }

    /// The ids a split of `region` needs.
    pub async fn ask_split(&self, region: &metapb::Region) -> Result<AskSplitResponse> {
        let mut req = pb::AskSplitRequest::new();
        req.set_header(self.header());
        req.set_region(region.clone());
        let resp = self
            .unary("AskSplit", |mut s| async move { s.ask_split(req).await })
            .await?;
        self.check(resp.get_header())?;
        Ok(resp)
    }

    /// Tells the scheduler the two halves of a split that was applied.
    pub async fn report_split(&self, left: &metapb::Region, right: &metapb::Region) -> Result<()> {
        let mut req = pb::ReportSplitRequest::new();
        req.set_header(self.header());
        req.set_left(left.clone());
        req.set_right(right.clone());
        let resp = self
            .unary(
                "ReportSplit",
                |mut s| async move { s.report_split(req).await },
            )
            .await?;
        self.check(resp.get_header())
    }

    /// One unary call on a clone of the stub, bounded by the request timeout.
    async fn unary<T, F, Fut>(&self, what: &'static str, f: F) -> Result<T>
    where
        F: FnOnce(SchedulerStub<Channel>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        call(
            &self.addr,
            what,
            self.cfg.request_timeout,
            f(self.stub.clone()),
        )
        .await
    }

    /// Opens a `RegionHeartbeat` stream carrying `requests`; yields the scheduler's answers.
    async fn open_heartbeats(
        &self,
        requests: mpsc::UnboundedReceiver<RegionHeartbeatRequest>,
    ) -> Result<tonic::Streaming<RegionHeartbeatResponse>> {
        let mut stub = self.stub.clone();
        let open = stub.region_heartbeat(UnboundedReceiverStream::new(requests));
        call(
            &self.addr,
            "RegionHeartbeat",
            self.cfg.request_timeout,
            open,
        )
        .await
    }
}

/// A region and its leader, as the scheduler last heard.
pub type RegionAndLeader = (metapb::Region, Option<metapb::Peer>);

/// Store addresses from the scheduler's `GetStore`.
impl ResolveAddress for SchedulerConn {
    fn resolve(&self, store_id: u64) -> ResolveFuture<'_> {
        Box::pin(async move {
            let store = self
                .get_store(store_id)
                .await
                .map_err(|e| GrpcError::Resolve {
                    store_id,
                    reason: e.to_string(),
                })?;
            if store.state == metapb::StoreState::Tombstone {
                return Err(GrpcError::Resolve {
                    store_id,
                    reason: "the store is a tombstone".into(),
                });
            }
            if store.address.is_empty() {
                return Err(GrpcError::Resolve {
                    store_id,
                    reason: "the scheduler has no address for it".into(),
                });
            }
            Ok(store.address)
        })
    }
}

/// A store's [`raftstore::SchedulerClient`] over gRPC.
///
/// Calls whose answer the store needs (`alloc_id`, `ask_split`) block the calling store
/// thread for at most the request timeout. The others do not wait: store heartbeats and
/// split reports are sent from the runtime (a failure is logged, as the store would), and
/// region heartbeats go on one long-lived `RegionHeartbeat` stream whose answers are
/// delivered to the store as [`StoreEvent::SchedulerResponse`]. The stream is reopened
/// (with backoff) when it breaks; heartbeats made while it is down are dropped, and the
/// store's next ones take their place.
///
/// The blocking calls run on the runtime of the handle given to [`GrpcSchedulerClient::new`]:
/// stop the stores before shutting that runtime down.
#[derive(Debug, Clone)]
pub struct GrpcSchedulerClient {
    conn: SchedulerConn,
    handle: Handle,
    heartbeats: mpsc::UnboundedSender<RegionHeartbeatRequest>,
}

impl GrpcSchedulerClient {
    /// The client of store `store_id` over `conn`, running its stream on `handle`'s
    /// runtime and delivering the scheduler's answers to the store through `sink`.
    pub fn new(
        conn: SchedulerConn,
        handle: Handle,
        store_id: u64,
        sink: Arc<dyn StoreSink>,
    ) -> GrpcSchedulerClient {
        let (tx, rx) = mpsc::unbounded_channel();
        handle.spawn(heartbeat_loop(conn.clone(), store_id, rx, sink));
        GrpcSchedulerClient {
            conn,
            handle,
            heartbeats: tx,
        }
    }

    /// The connection underneath (for lookups).
    pub fn conn(&self) -> &SchedulerConn {
        &self.conn
    }

    fn block<T>(&self, fut: impl std::future::Future<Output = Result<T>>) -> raftstore::Result<T> {
        self.handle
            .block_on(fut)
            .map_err(|e| raftstore::Error::other(e.to_string()))
    }

    /// [`GrpcSchedulerClient::block`] for the node's start-up calls.
    fn block_node<T>(&self, fut: impl std::future::Future<Output = Result<T>>) -> node::Result<T> {
        self.handle
            .block_on(fut)
            .map_err(|e| node::NodeError::Io(std::io::Error::other(e)))
    }

    /// Runs `fut` on the runtime without waiting; logs its failure.
    fn detach(
        &self,
        what: &'static str,
        fut: impl std::future::Future<Output = Result<()>> + Send + 'static,
    ) {
        self.handle.spawn(async move {
            if let Err(e) = fut.await {
                tracing::warn!("{what}: {e}");
            }
        });
    }
}

impl raftstore::SchedulerClient for GrpcSchedulerClient {
    fn alloc_id(&mut self) -> raftstore::Result<u64> {
        self.block(self.conn.alloc_id())
    }

    fn region_heartbeat(&mut self, req: RegionHeartbeatRequest) -> raftstore::Result<()> {
        let mut req = req;
        req.mut_header().cluster_id = self.conn.cluster_id;
        self.heartbeats
            .send(req)
            .map_err(|_| raftstore::Error::other("the region heartbeat stream task has stopped"))
    }

    fn store_heartbeat(&mut self, stats: StoreStats) -> raftstore::Result<()> {
        let conn = self.conn.clone();
        self.detach("store heartbeat", async move {
            conn.store_heartbeat(stats).await
        });
        Ok(())
    }

    fn ask_split(&mut self, region: &metapb::Region) -> raftstore::Result<AskSplitResponse> {
        self.block(self.conn.ask_split(region))
    }

    fn report_split(
        &mut self,
        left: &metapb::Region,
        right: &metapb::Region,
    ) -> raftstore::Result<()> {
        let (conn, left, right) = (self.conn.clone(), left.clone(), right.clone());
        self.detach("split report", async move {
            conn.report_split(&left, &right).await
        });
        Ok(())
    }
}

/// What a store needs of the scheduler to start ([`node::start_node`]), over gRPC: blocking
/// calls, bounded by the request timeout. The course's `Bootstrap` carries the store only:
/// the first region reaches the scheduler with its leader's first heartbeat. A failure to
/// reach the scheduler is a [`node::NodeError::Io`] naming its address.
impl node::ClusterBootstrap for GrpcSchedulerClient {
    fn is_bootstrapped(&mut self) -> node::Result<bool> {
        self.block_node(self.conn.is_bootstrapped())
    }

    fn bootstrap(&mut self, store: &metapb::Store, _region: &metapb::Region) -> node::Result<bool> {
        match self.block_node(self.conn.bootstrap(store.clone())) {
            Ok(()) => Ok(true),
            Err(node::NodeError::Io(e)) if already_bootstrapped(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn put_store(&mut self, store: &metapb::Store) -> node::Result<()> {
        self.block_node(self.conn.put_store(store.clone()))
    }

    fn alloc_id(&mut self) -> node::Result<u64> {
        self.block_node(self.conn.alloc_id())
    }
}

/// Whether `e` wraps the scheduler's "already bootstrapped" answer.
fn already_bootstrapped(e: &std::io::Error) -> bool {
    matches!(
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<GrpcError>()),
        Some(GrpcError::Scheduler {
            kind: ErrorType::ALREADY_BOOTSTRAPPED,
            ..
        })
    )
}

/// Keeps store `store_id`'s heartbeat stream open while heartbeats come; ends when every
/// sender of `rx` is gone.
async fn heartbeat_loop(
    conn: SchedulerConn,
    store_id: u64,
    mut rx: mpsc::UnboundedReceiver<RegionHeartbeatRequest>,
    sink: Arc<dyn StoreSink>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(3));
    loop {
        let Some(first) = rx.recv().await else {
            return;
        };
        let (tx, requests) = mpsc::unbounded_channel();
        let _ = tx.send(first);
        let mut answers = match conn.open_heartbeats(requests).await {
            Ok(answers) => answers,
            Err(e) => {
                backoff.failed(&format!("store {store_id}: region heartbeat stream"), &e);
                drain(&mut rx);
                backoff.wait().await;
                continue;
            }
        };
        backoff.succeeded();
        let broke = loop {
            tokio::select! {
                req = rx.recv() => match req {
                    Some(req) => {
                        let _ = tx.send(req);
                    }
                    None => return,
                },
                answer = answers.message() => match answer {
                    Ok(Some(resp)) => deliver(&*sink, store_id, resp),
                    Ok(None) => break GrpcError::Call {
                        addr: conn.addr.clone(),
                        what: "RegionHeartbeat",
                        code: tonic::Code::Unavailable,
                        message: "the scheduler closed the stream".into(),
                    },
                    Err(status) => break GrpcError::call(&conn.addr, "RegionHeartbeat", status),
                },
            }
        };
        backoff.failed(
            &format!("store {store_id}: region heartbeat stream"),
            &broke,
        );
        drain(&mut rx);
        backoff.wait().await;
    }
}

/// Hands one answer of the scheduler to the store; answers carrying an error (a refused
/// heartbeat) are only logged.
fn deliver(sink: &dyn StoreSink, store_id: u64, resp: RegionHeartbeatResponse) {
    let header = resp.get_header();
    if header.has_error() && header.get_error().field_type != ErrorType::OK {
        tracing::debug!(
            "store {store_id}: the scheduler refused a heartbeat of region {}: {}",
            resp.region_id,
            header.get_error().message
        );
        return;
    }
    if let Err(e) = sink.deliver(store_id, StoreEvent::SchedulerResponse(resp)) {
        tracing::debug!("store {store_id}: scheduler answer not delivered: {e}");
    }
}

/// Drops whatever queued while the stream was down.
fn drain<T>(rx: &mut mpsc::UnboundedReceiver<T>) {
    while rx.try_recv().is_ok() {}
}

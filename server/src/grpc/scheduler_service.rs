//! The `Scheduler` service: a [`SchedulerService`] on the network.
//!
//! Unary calls map one to one onto the service's methods. A refusal by the scheduler (not
//! bootstrapped, stale region, tombstone store, ...) is an answer, not a failed call: it
//! travels in the response header's `error`, as in the original. A request for another
//! cluster fails with `FailedPrecondition`.
//!
//! `RegionHeartbeat` is a stream each way. Each store keeps one open; every heartbeat that
//! comes in is handed to [`SchedulerService::region_heartbeat`], and every answer (the
//! direct one, the steps of operators started meanwhile, and those the periodic
//! [`SchedulerGrpc::start_ticker`] task produces) goes out on the stream of the store that
//! must act on it: the newest stream that store opened. An answer for a store with no open
//! stream is dropped; the operator repeats its step on the region's next heartbeat.
//!
//! `AddOperator` (from `adminpb`, not in the course's service) hands the scheduler an
//! administrator's operator (transfer leader, add or remove a peer); its first step leaves
//! at once, the rest follow the region's heartbeats.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use proto::adminpb::{AddOperatorRequest, AddOperatorResponse, OperatorKind};
use proto::metapb;
use proto::schedulerpb::{
    self as pb, ErrorType, RegionHeartbeatRequest, RegionHeartbeatResponse, RequestHeader,
    ResponseHeader,
};
use scheduler::SchedulerService;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::pb::schedulerpb::scheduler_server::{Scheduler, SchedulerServer};
use super::serve::StopToken;
use super::MAX_MESSAGE_SIZE;

type HeartbeatTx = mpsc::UnboundedSender<Result<RegionHeartbeatResponse, Status>>;

/// The newest heartbeat stream of one store.
struct StoreStream {
    /// Which stream (streams are numbered as they open).
    id: u64,
    tx: HeartbeatTx,
}

struct Inner {
    svc: Arc<SchedulerService>,
    /// The scheduler's clock starts when the service does.
    start: Instant,
    streams: Mutex<BTreeMap<u64, StoreStream>>,
    next_stream: AtomicU64,
    stop: StopToken,
}

/// The `Scheduler` gRPC service (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct SchedulerGrpc {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SchedulerGrpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerGrpc")
            .field("cluster_id", &self.inner.svc.cluster().cluster_id())
            .finish_non_exhaustive()
    }
}

/// The periodic task of a [`SchedulerGrpc`]; dropping it stops the task.
#[derive(Debug)]
pub struct Ticker {
    task: JoinHandle<()>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SchedulerGrpc {
    /// Serves `svc`, whose clock starts now; heartbeat streams end when `stop` fires.
    pub fn new(svc: Arc<SchedulerService>, stop: StopToken) -> SchedulerGrpc {
        SchedulerGrpc {
            inner: Arc::new(Inner {
                svc,
                start: Instant::now(),
                streams: Mutex::new(BTreeMap::new()),
                next_stream: AtomicU64::new(1),
                stop,
            }),
        }
    }

    /// The service served.
    pub fn service(&self) -> &Arc<SchedulerService> {
        &self.inner.svc
    }

    /// The scheduler's clock: the time since [`SchedulerGrpc::new`].
    pub fn now(&self) -> Duration {
        self.inner.start.elapsed()
    }

    /// The service wrapped for tonic, with this crate's message-size limits.
    pub fn into_server(self) -> SchedulerServer<Self> {
        SchedulerServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// Runs the scheduler's periodic work ([`SchedulerService::tick`]) every `every` on the
    /// current tokio runtime, sending the operator steps it starts to the leaders' stores,
    /// until the stop token fires or the returned [`Ticker`] is dropped. Fails outside a
    /// tokio runtime.
    pub fn start_ticker(&self, every: Duration) -> super::Result<Ticker> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            super::GrpcError::Runtime(std::io::Error::other(format!(
                "the scheduler's ticker must be started inside a tokio runtime: {e}"
            )))
        })?;
        let every = every.max(Duration::from_millis(1));
        let this = self.clone();
        let task = runtime.spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = this.inner.stop.stopped() => break,
                    _ = interval.tick() => {
                        this.inner.svc.tick(this.now());
                        this.route_outbox();
                    }
                }
            }
        });
        Ok(Ticker { task })
    }

    /// How many stores have a heartbeat stream open.
    pub fn open_streams(&self) -> usize {
        self.inner.streams.lock().len()
    }

    /// Sends `resp` on store `store_id`'s newest heartbeat stream, if it has one.
    fn route(&self, store_id: u64, resp: RegionHeartbeatResponse) {
        let streams = self.inner.streams.lock();
        match streams.get(&store_id) {
            Some(s) if s.tx.send(Ok(resp)).is_ok() => {}
            _ => tracing::debug!(
                "scheduler: no heartbeat stream from store {store_id}; the step waits for the next heartbeat"
            ),
        }
    }

    /// Sends the steps of operators started outside a heartbeat.
    fn route_outbox(&self) {
        for (store, resp) in self.inner.svc.take_responses() {
            self.route(store, resp);
        }
    }

    fn check_header(&self, header: &RequestHeader) -> Result<(), Status> {
        let ours = self.inner.svc.cluster().cluster_id();
        if header.cluster_id != ours {
            return Err(Status::failed_precondition(format!(
                "mismatched cluster id: this scheduler serves cluster {ours}, the request is for cluster {}",
                header.cluster_id
            )));
        }
        Ok(())
    }

    fn header(&self) -> ResponseHeader {
        let mut h = ResponseHeader::new();
        h.cluster_id = self.inner.svc.cluster().cluster_id();
        h
    }

    fn error_header(&self, kind: ErrorType, message: String) -> ResponseHeader {
        let mut h = self.header();
        h.mut_error().field_type = kind;
        h.mut_error().message = message;
        h
    }

    /// The header answering a call that got `result`.
    fn header_of<T>(&self, result: &scheduler::Result<T>) -> ResponseHeader {
        match result {
            Ok(_) => self.header(),
            Err(e) => self.error_header(error_type(e), e.to_string()),
        }
    }

    /// Takes in one heartbeat that arrived on stream `stream_id` (answered through `tx`).
    fn on_heartbeat(&self, req: RegionHeartbeatRequest, stream_id: u64, tx: &HeartbeatTx) {
        let store_id = req.get_leader().store_id;
        if store_id != 0 {
            let mut streams = self.inner.streams.lock();
            let newest = streams.get(&store_id).is_some_and(|s| s.id == stream_id);
            if !newest {
                streams.insert(
                    store_id,
                    StoreStream {
                        id: stream_id,
                        tx: tx.clone(),
                    },
                );
            }
        }
        match self.inner.svc.region_heartbeat(&req, self.now()) {
            Ok(Some(resp)) => self.route(store_id, resp),
            Ok(None) => {}
            Err(e) => {
                // Stale and malformed heartbeats are normal under partitions and restarts:
                // the sender hears why, on its own stream, and carries on.
                tracing::debug!(
                    "scheduler: heartbeat of region {} refused: {e}",
                    req.get_region().id
                );
                let mut resp = RegionHeartbeatResponse::new();
                resp.region_id = req.get_region().id;
                resp.set_header(self.error_header(error_type(&e), e.to_string()));
                let _ = tx.send(Ok(resp));
            }
        }
        self.route_outbox();
    }

    /// Forgets stream `stream_id` wherever it is still some store's newest.
    fn close_stream(&self, stream_id: u64) {
        self.inner.streams.lock().retain(|_, s| s.id != stream_id);
    }
}

/// The header error type of a scheduler error.
fn error_type(e: &scheduler::Error) -> ErrorType {
    use scheduler::Error as E;
    match e {
        E::NotBootstrapped => ErrorType::NOT_BOOTSTRAPPED,
        E::AlreadyBootstrapped => ErrorType::ALREADY_BOOTSTRAPPED,
        E::StoreTombstone(_) => ErrorType::STORE_TOMBSTONE,
        E::RegionNotFound(_) => ErrorType::REGION_NOT_FOUND,
        _ => ErrorType::UNKNOWN,
    }
}

/// The peer an administrator's operator of `kind` acts on: the region's peer on `store_id`
/// (to lead or to remove), or a new peer there with a fresh id (to add).
fn operator_peer(
    svc: &SchedulerService,
    region_id: u64,
    kind: OperatorKind,
    store_id: u64,
) -> scheduler::Result<metapb::Peer> {
    let (region, _) = svc
        .get_region_by_id(region_id)
        .ok_or(scheduler::Error::RegionNotFound(region_id))?;
    let existing = region
        .get_peers()
        .iter()
        .find(|p| p.store_id == store_id)
        .cloned();
    match (kind, existing) {
        (OperatorKind::AddPeer, None) => svc.cluster().alloc_peer(store_id),
        (OperatorKind::AddPeer, Some(p)) => Err(scheduler::Error::Operator(format!(
            "region {region_id} already has peer {} on store {store_id}",
            p.id
        ))),
        (_, Some(p)) => Ok(p),
        (_, None) => Err(scheduler::Error::Operator(format!(
            "region {region_id} has no peer on store {store_id}"
        ))),
    }
}

fn missing(what: &str) -> scheduler::Error {
    scheduler::Error::InvalidRequest(format!("the request has no {what}"))
}

#[tonic::async_trait]
impl Scheduler for SchedulerGrpc {
    async fn get_members(
        &self,
        _req: Request<pb::GetMembersRequest>,
    ) -> Result<Response<pb::GetMembersResponse>, Status> {
        // The one call that ignores the cluster id: it is how a client learns it.
        let mut member = pb::Member::new();
        member.name = "scheduler".into();
        member.member_id = 1;
        let mut resp = pb::GetMembersResponse::new();
        resp.set_header(self.header());
        resp.members.push(member.clone());
        resp.set_leader(member);
        Ok(Response::new(resp))
    }

    async fn bootstrap(
        &self,
        req: Request<pb::BootstrapRequest>,
    ) -> Result<Response<pb::BootstrapResponse>, Status> {
        let req = req.into_inner();
        self.check_header(req.get_header())?;
        let result = match req.store.into_option() {
            Some(store) => self.inner.svc.bootstrap(store),
            None => Err(missing("store")),
        };
        let mut resp = pb::BootstrapResponse::new();
        resp.set_header(self.header_of(&result));
        Ok(Response::new(resp))
    }

    async fn is_bootstrapped(
        &self,
        req: Request<pb::IsBootstrappedRequest>,
    ) -> Result<Response<pb::IsBootstrappedResponse>, Status> {
        self.check_header(req.get_ref().get_header())?;
        let mut resp = pb::IsBootstrappedResponse::new();
        resp.set_header(self.header());
        resp.bootstrapped = self.inner.svc.is_bootstrapped();
        Ok(Response::new(resp))
    }

    async fn alloc_id(
        &self,
        req: Request<pb::AllocIDRequest>,
    ) -> Result<Response<pb::AllocIDResponse>, Status> {
        self.check_header(req.get_ref().get_header())?;
        let mut resp = pb::AllocIDResponse::new();
        resp.set_header(self.header());
        resp.id = self.inner.svc.cluster().alloc_id();
        Ok(Response::new(resp))
    }

    async fn get_store(
        &self,
        req: Request<pb::GetStoreRequest>,
    ) -> Result<Response<pb::GetStoreResponse>, Status> {
        let req = req.into_inner();
        self.check_header(req.get_header())?;
        let mut resp = pb::GetStoreResponse::new();
        match self.inner.svc.cluster().get_store(req.store_id) {
            Some(info) => {
                resp.set_header(self.header());
                resp.set_store(info.meta);
                resp.set_stats(info.stats);
            }
            None => resp.set_header(self.error_header(
                ErrorType::UNKNOWN,
                scheduler::Error::StoreNotFound(req.store_id).to_string(),
            )),
        }
        Ok(Response::new(resp))
    }

    async fn put_store(
        &self,
        req: Request<pb::PutStoreRequest>,
    ) -> Result<Response<pb::PutStoreResponse>, Status> {
        let req = req.into_inner();
        self.check_header(req.get_header())?;
        let result = match req.store.into_option() {
            Some(store) => self.inner.svc.put_store(store),
            None => Err(missing("store")),
        };
        let mut resp = pb::PutStoreResponse::new();
        resp.set_header(self.header_of(&result));
        Ok(Response::new(resp))
    }

    async fn get_all_stores(
        &self,
        req: Request<pb::GetAllStoresRequest>,
    ) -> Result<Response<pb::GetAllStoresResponse>, Status> {
        let req = req.into_inner();
        self.check_header(req.get_header())?;
        let mut resp = pb::GetAllStoresResponse::new();
        resp.set_header(self.header());
        for info in self.inner.svc.cluster().get_stores() {
            if !(req.exclude_tombstone_stores && info.is_tombstone()) {
                resp.stores.push(info.meta);
            }
        }
        Ok(Response::new(resp))
    }

    async fn store_heartbeat(
        &self,
        req: Request<pb::StoreHeartbeatRequest>,
    ) -> Result<Response<pb::StoreHeartbeatResponse>, Status> {
        let req = req.into_inner();
        self.check_header(req.get_header())?;
        let result = self.inner.svc.store_heartbeat(req.get_stats(), self.now());
        let mut resp = pb::StoreHeartbeatResponse::new();
        resp.set_header(self.header_of(&result));
        Ok(Response::new(resp))
    }

    type RegionHeartbeatStream = UnboundedReceiverStream<Result<RegionHeartbeatResponse, Status>>;

    async fn region_heartbeat(
        &self,
        req: Request<Streaming<RegionHeartbeatRequest>>,
    ) -> Result<Response<Self::RegionHeartbeatStream>, Status> {
        let mut incoming = req.into_inner();
        let (tx, rx) = mpsc::unbounded_channel();
        let stream_id = self.inner.next_stream.fetch_add(1, Ordering::Relaxed);
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = this.inner.stop.stopped() => break,
                    next = incoming.message() => next,
                };
                match next {
                    Ok(Some(hb)) => {
                        if let Err(status) = this.check_header(hb.get_header()) {
                            let _ = tx.send(Err(status));
                            break;
                        }
                        this.on_heartbeat(hb, stream_id, &tx);
                    }
                    Ok(None) => break,
                    Err(status) => {
                        tracing::debug!("scheduler: heartbeat stream {stream_id} broke: {status}");
                        break;
                    }
                }
            }
            // Dropping the last senders ends the response stream.
            this.close_stream(stream_id);
        });
        Ok(Response::new(UnboundedReceiverStream::new(rx)))
    }

    async fn get_region(
        &self,
        req: Request<pb::GetRegionRequest>,
    ) -> Result<Response<pb::GetRegionResponse>, Status> {
        let req = req.into_inner();
        self.check_header(req.get_header())?;
        Ok(Response::new(self.region_response(
            self.inner.svc.get_region(&req.region_key),
        )))
    }

    async fn get_region_by_id(
        &self,
        req: Request<pb::GetRegionByIDRequest>,
    ) -> Result<Response<pb::GetRegionResponse>, Status> {
        let req = req.into_inner();
        self.check_header(req.get_header())?;
        Ok(Response::new(self.region_response(
            self.inner.svc.get_region_by_id(req.region_id),
        )))
    }

    async fn ask_split(
        &self,
        req: Request<pb::AskSplitRequest>,
    ) -> Result<Response<pb::AskSplitResponse>, Status> {
        let req = req.into_inner();
        self.check_header(req.get_header())?;
        let result = match req.region.as_ref() {
            Some(region) => self.inner.svc.ask_split(region),
            None => Err(missing("region")),
        };
        let header = self.header_of(&result);
        let mut resp = result.unwrap_or_default();
        resp.set_header(header);
        Ok(Response::new(resp))
    }

    async fn report_split(
        &self,
        req: Request<pb::ReportSplitRequest>,
    ) -> Result<Response<pb::ReportSplitResponse>, Status> {
        let req = req.into_inner();
        self.check_header(req.get_header())?;
        let result = match (req.left.as_ref(), req.right.as_ref()) {
            (Some(left), Some(right)) => self.inner.svc.report_split(left, right),
            _ => Err(missing("left or right region")),
        };
        let mut resp = pb::ReportSplitResponse::new();
        resp.set_header(self.header_of(&result));
        Ok(Response::new(resp))
    }

    async fn add_operator(
        &self,
        req: Request<AddOperatorRequest>,
    ) -> Result<Response<AddOperatorResponse>, Status> {
        let req = req.into_inner();
        self.check_header(req.get_header())?;
        let svc = &self.inner.svc;
        let (region_id, kind) = (req.region_id, req.kind);
        let result = operator_peer(svc, region_id, kind, req.store_id).and_then(|peer| {
            let now = self.now();
            match kind {
                OperatorKind::TransferLeader => svc.transfer_leader(region_id, &peer, now),
                OperatorKind::AddPeer => svc.add_peer(region_id, &peer, now),
                OperatorKind::RemovePeer => svc.remove_peer(region_id, &peer, now),
            }
            .map(|()| peer)
        });
        // The operator's first step goes out now, not at the next tick.
        self.route_outbox();
        let mut resp = AddOperatorResponse::new();
        resp.set_header(self.header_of(&result));
        if let Ok(peer) = result {
            resp.set_peer(peer);
        }
        Ok(Response::new(resp))
    }
}

impl SchedulerGrpc {
    /// A region lookup's answer: no region (and an OK header) when none is known, as in
    /// the original.
    fn region_response(
        &self,
        found: Option<(proto::metapb::Region, Option<proto::metapb::Peer>)>,
    ) -> pb::GetRegionResponse {
        let mut resp = pb::GetRegionResponse::new();
        resp.set_header(self.header());
        if let Some((region, leader)) = found {
            resp.set_region(region);
            if let Some(leader) = leader {
                resp.set_leader(leader);
            }
        }
        resp
    }
}

//! The `TinyKv` service: raw KV calls served by [`crate::Server`], the raft and snapshot
//! streams of other stores handed to this process's stores, and `SplitRegion` (from
//! `adminpb`, not in the course's service), handed to the store of the request's peer as a
//! [`StoreEvent::SplitRegion`] and answered when the split is applied or refused.

use std::sync::Arc;
use std::time::Duration;

use proto::adminpb::{SplitRegionRequest, SplitRegionResponse};
use proto::raft_serverpb::{Done, RaftMessage, SnapshotChunk};
use raftstore::StoreEvent;
use tonic::{Request, Response, Status, Streaming};

use super::pb::tinykvpb::tiny_kv_server::{TinyKv, TinyKvServer};
use super::serve::StopToken;
use super::sink::StoreSink;
use super::MAX_MESSAGE_SIZE;
use crate::storage::Storage;
use crate::Server;

/// The `TinyKv` service over a [`Server`] and the stores of this process (`sink`).
///
/// Raw calls run the server's synchronous handlers on tokio's blocking pool (they read and
/// write the engine). A `Raft` stream is one sending store's messages, each delivered to
/// the store of its `to_peer`; a message for a store that is not here is dropped, as raft
/// allows. A `Snapshot` stream is one snapshot's chunks; it is answered with `Done` once
/// every chunk was handed over, and fails if one could not be.
pub struct TinyKvService<S: Storage, K: StoreSink> {
    server: Arc<Server<S>>,
    sink: Arc<K>,
    stop: StopToken,
}

impl<S: Storage, K: StoreSink> std::fmt::Debug for TinyKvService<S, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TinyKvService").finish_non_exhaustive()
    }
}

impl<S: Storage + 'static, K: StoreSink> TinyKvService<S, K> {
    /// The service; its streams end when `stop` fires.
    pub fn new(server: Arc<Server<S>>, sink: Arc<K>, stop: StopToken) -> Self {
        TinyKvService { server, sink, stop }
    }

    /// The service wrapped for tonic, with this crate's message-size limits.
    pub fn into_server(self) -> TinyKvServer<Self> {
        TinyKvServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// Runs `handler` on the request on the blocking pool. A region error is an answer, not a
    /// failure: it goes back in the response's `region_error`.
    async fn blocking<Req, Resp>(
        &self,
        req: Request<Req>,
        handler: fn(&Server<S>, &Req) -> crate::Result<Resp>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Send + 'static,
        Resp: WithRegionError + Send + 'static,
    {
        let server = self.server.clone();
        let req = req.into_inner();
        let resp = tokio::task::spawn_blocking(move || handler(&server, &req))
            .await
            .map_err(|e| Status::internal(format!("the handler failed: {e}")))?;
        match resp {
            Ok(resp) => Ok(Response::new(resp)),
            Err(crate::Error::Region(err)) => Ok(Response::new(Resp::with_region_error(*err))),
            Err(e) => Err(to_status(e)),
        }
    }
}

/// How long a `SplitRegion` call waits for the store's answer.
pub const SPLIT_TIMEOUT: Duration = Duration::from_secs(20);

/// A response that can carry a region error instead of its result.
pub trait WithRegionError: Sized {
    /// A response holding only `err`.
    fn with_region_error(err: proto::errorpb::Error) -> Self;
}

macro_rules! with_region_error {
    ($($resp:ty),*) => {$(
        impl WithRegionError for $resp {
            fn with_region_error(err: proto::errorpb::Error) -> Self {
                let mut resp = <$resp>::new();
                resp.set_region_error(err);
                resp
            }
        }
    )*};
}

with_region_error!(
    proto::kvrpcpb::RawGetResponse,
    proto::kvrpcpb::RawPutResponse,
    proto::kvrpcpb::RawDeleteResponse,
    proto::kvrpcpb::RawScanResponse
);

/// A handler's error as a gRPC status: the caller's mistakes are `InvalidArgument`, a
/// stopped storage is `Unavailable`, anything else `Internal`.
pub fn to_status(e: crate::Error) -> Status {
    use engine::Error as E;
    let msg = e.to_string();
    match e {
        crate::Error::Stopped | crate::Error::Engine(E::Closed) => Status::unavailable(msg),
        crate::Error::Engine(
            E::UnknownCf(_)
            | E::CfNotOpen(_)
            | E::EmptyKey
            | E::KeyTooLarge(_)
            | E::ValueTooLarge(_),
        ) => Status::invalid_argument(msg),
        crate::Error::Engine(_) => Status::internal(msg),
        // Answered in the response by `blocking`; here only if a caller asks.
        crate::Error::Region(_) => Status::unavailable(msg),
    }
}

#[tonic::async_trait]
impl<S: Storage + 'static, K: StoreSink> TinyKv for TinyKvService<S, K> {
    async fn raw_get(
        &self,
        req: Request<proto::kvrpcpb::RawGetRequest>,
    ) -> Result<Response<proto::kvrpcpb::RawGetResponse>, Status> {
        self.blocking(req, Server::raw_get).await
    }

    async fn raw_put(
        &self,
        req: Request<proto::kvrpcpb::RawPutRequest>,
    ) -> Result<Response<proto::kvrpcpb::RawPutResponse>, Status> {
        self.blocking(req, Server::raw_put).await
    }

    async fn raw_delete(
        &self,
        req: Request<proto::kvrpcpb::RawDeleteRequest>,
    ) -> Result<Response<proto::kvrpcpb::RawDeleteResponse>, Status> {
        self.blocking(req, Server::raw_delete).await
    }

    async fn raw_scan(
        &self,
        req: Request<proto::kvrpcpb::RawScanRequest>,
    ) -> Result<Response<proto::kvrpcpb::RawScanResponse>, Status> {
        self.blocking(req, Server::raw_scan).await
    }

    async fn raft(&self, req: Request<Streaming<RaftMessage>>) -> Result<Response<Done>, Status> {
        let from = req.remote_addr();
        let mut stream = req.into_inner();
        loop {
            let msg = tokio::select! {
                _ = self.stop.stopped() => return Err(stopping()),
                msg = stream.message() => msg?,
            };
            let Some(msg) = msg else {
                return Ok(Response::new(Done::new()));
            };
            let to = msg.get_to_peer().store_id;
            if let Err(e) = self.sink.deliver(to, StoreEvent::Raft(msg)) {
                // Raft tolerates loss: the sender retries what matters.
                tracing::debug!("raft message from {from:?} to store {to} dropped: {e}");
            }
        }
    }

    async fn snapshot(
        &self,
        req: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<Done>, Status> {
        let mut stream = req.into_inner();
        loop {
            let chunk = tokio::select! {
                _ = self.stop.stopped() => return Err(stopping()),
                chunk = stream.message() => chunk?,
            };
            let Some(chunk) = chunk else {
                return Ok(Response::new(Done::new()));
            };
            let msg = chunk.get_message();
            let (to, region) = (msg.get_to_peer().store_id, msg.region_id);
            self.sink
                .deliver(to, StoreEvent::SnapshotChunk(chunk))
                .map_err(|e| {
                    Status::unavailable(format!(
                        "snapshot of region {region} for store {to} not delivered: {e}"
                    ))
                })?;
        }
    }

    async fn split_region(
        &self,
        req: Request<SplitRegionRequest>,
    ) -> Result<Response<SplitRegionResponse>, Status> {
        Ok(Response::new(self.split(req.into_inner()).await))
    }
}

impl<S: Storage + 'static, K: StoreSink> TinyKvService<S, K> {
    /// Asks the store of the request's peer to split its region; answers once the split
    /// was applied or refused (or after [`SPLIT_TIMEOUT`]).
    async fn split(&self, req: SplitRegionRequest) -> SplitRegionResponse {
        let mut resp = SplitRegionResponse::new();
        let ctx = req.get_context();
        let store_id = ctx.get_peer().store_id;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ev = StoreEvent::SplitRegion {
            region_id: ctx.region_id,
            region_epoch: ctx.get_region_epoch().clone(),
            split_key: req.split_key.clone(),
            cb: Some(Box::new(move |answer| {
                let _ = tx.send(answer);
            })),
        };
        if let Err(e) = self.sink.deliver(store_id, ev) {
            let mut err = proto::errorpb::Error::new();
            err.message = format!("store {store_id} is not served here: {e}");
            err.mut_store_not_match().request_store_id = store_id;
            resp.set_region_error(err);
            return resp;
        }
        let answer = tokio::select! {
            _ = self.stop.stopped() => Err("the server is stopping".to_owned()),
            answer = tokio::time::timeout(SPLIT_TIMEOUT, rx) => match answer {
                Ok(Ok(answer)) => Ok(answer.resp),
                Ok(Err(_)) => Err(format!("store {store_id} dropped the split")),
                Err(_) => Err(format!("no answer after {SPLIT_TIMEOUT:?}")),
            },
        };
        match answer {
            Err(e) => resp.error = e,
            Ok(mut cmd) if cmd.get_header().has_error() => {
                let err = cmd.mut_header().take_error();
                let is_region_error = err.has_not_leader()
                    || err.has_region_not_found()
                    || err.has_key_not_in_region()
                    || err.has_epoch_not_match()
                    || err.has_stale_command()
                    || err.has_store_not_match();
                if is_region_error {
                    resp.set_region_error(err);
                } else {
                    resp.error = err.message;
                }
            }
            Ok(mut cmd) => {
                let mut regions = cmd.mut_admin_response().mut_split().take_regions();
                match (regions.pop(), regions.pop()) {
                    (Some(right), Some(left)) => {
                        resp.set_left(left);
                        resp.set_right(right);
                    }
                    _ => resp.error = "the split's answer lists no regions".into(),
                }
            }
        }
        resp
    }
}

fn stopping() -> Status {
    Status::unavailable("the server is stopping")
}

//! [`TinyKvClient`]: blocking raw KV calls to one store, for tools and tests.

use proto::adminpb::{SplitRegionRequest, SplitRegionResponse};
use proto::kvrpcpb::{
    RawDeleteRequest, RawDeleteResponse, RawGetRequest, RawGetResponse, RawPutRequest,
    RawPutResponse, RawScanRequest, RawScanResponse,
};
use tokio::runtime::{Handle, Runtime};
use tonic::transport::Channel;

use super::conn::{call, connect, ClientConfig};
use super::error::{GrpcError, Result};
use super::pb::tinykvpb::tiny_kv_client::TinyKvClient as TinyKvStub;
use super::MAX_MESSAGE_SIZE;

/// Where the client's futures run.
enum Exec {
    /// A runtime of the client's own (for a tool that has none).
    Own(Runtime),
    /// The process's runtime.
    Shared(Handle),
}

impl Exec {
    fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        match self {
            Exec::Own(rt) => rt.block_on(fut),
            Exec::Shared(handle) => handle.block_on(fut),
        }
    }
}

/// A blocking client of one store's raw KV API. Each call waits at most the config's
/// request timeout. Must not be used from inside an async task (it blocks the thread).
pub struct TinyKvClient {
    exec: Exec,
    stub: TinyKvStub<Channel>,
    addr: String,
    cfg: ClientConfig,
}

impl std::fmt::Debug for TinyKvClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TinyKvClient")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl TinyKvClient {
    /// Connects to the store at `addr` (`host:port`) on a small runtime of the client's own
    /// (one worker thread, which keeps the connection alive between calls).
    pub fn connect(addr: &str, cfg: ClientConfig) -> Result<TinyKvClient> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tinykv-client")
            .enable_all()
            .build()
            .map_err(GrpcError::Runtime)?;
        TinyKvClient::connect_with(Exec::Own(rt), addr, cfg)
    }

    /// Connects to the store at `addr` on the runtime of `handle`.
    pub fn connect_on(handle: Handle, addr: &str, cfg: ClientConfig) -> Result<TinyKvClient> {
        TinyKvClient::connect_with(Exec::Shared(handle), addr, cfg)
    }

    fn connect_with(exec: Exec, addr: &str, cfg: ClientConfig) -> Result<TinyKvClient> {
        let channel = exec.block_on(connect(addr, &cfg))?;
        let stub = TinyKvStub::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        Ok(TinyKvClient {
            exec,
            stub,
            addr: addr.to_owned(),
            cfg,
        })
    }

    /// The store's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The whole `RawGet` answer for `req`.
    pub fn raw_get_request(&self, req: RawGetRequest) -> Result<RawGetResponse> {
        let mut stub = self.stub.clone();
        let limit = self.cfg.request_timeout;
        let resp = self
            .exec
            .block_on(call(&self.addr, "RawGet", limit, stub.raw_get(req)))?;
        self.refused("RawGet", &resp.error, resp.region_error.as_ref())?;
        Ok(resp)
    }

    /// The value of `key` in column family `cf`, `None` if absent.
    pub fn raw_get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut req = RawGetRequest::new();
        req.cf = cf.to_owned();
        req.key = key.to_vec();
        let resp = self.raw_get_request(req)?;
        Ok((!resp.not_found).then_some(resp.value))
    }

    /// Sets `key` to `value` in column family `cf`.
    pub fn raw_put(&self, cf: &str, key: &[u8], value: &[u8]) -> Result<()> {
        let mut req = RawPutRequest::new();
        req.cf = cf.to_owned();
        req.key = key.to_vec();
        req.value = value.to_vec();
        let mut stub = self.stub.clone();
        let limit = self.cfg.request_timeout;
        let resp = self
            .exec
            .block_on(call(&self.addr, "RawPut", limit, stub.raw_put(req)))?;
        self.refused("RawPut", &resp.error, resp.region_error.as_ref())
    }

    /// Removes `key` from column family `cf` (removing an absent key succeeds).
    pub fn raw_delete(&self, cf: &str, key: &[u8]) -> Result<()> {
        let mut req = RawDeleteRequest::new();
        req.cf = cf.to_owned();
        req.key = key.to_vec();
        let mut stub = self.stub.clone();
        let limit = self.cfg.request_timeout;
        let resp =
            self.exec
                .block_on(call(&self.addr, "RawDelete", limit, stub.raw_delete(req)))?;
        self.refused("RawDelete", &resp.error, resp.region_error.as_ref())
    }

    /// Up to `limit` pairs of column family `cf` from `start` on, in key order.
    pub fn raw_scan(&self, cf: &str, start: &[u8], limit: u32) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut req = RawScanRequest::new();
        req.cf = cf.to_owned();
        req.start_key = start.to_vec();
        req.limit = limit;
        let mut stub = self.stub.clone();
        let timeout = self.cfg.request_timeout;
        let mut resp =
            self.exec
                .block_on(call(&self.addr, "RawScan", timeout, stub.raw_scan(req)))?;
        self.refused("RawScan", &resp.error, resp.region_error.as_ref())?;
        Ok(resp
            .take_kvs()
            .into_iter()
            .map(|mut kv| (kv.take_key(), kv.take_value()))
            .collect())
    }

    /// Sends a `RawGet` as built (its context included) and returns the response as it
    /// came, its `error` and `region_error` for the caller to read; fails only when the call
    /// itself does (connection, timeout, status).
    pub fn send_raw_get(&self, req: RawGetRequest) -> Result<RawGetResponse> {
        let mut stub = self.stub.clone();
        let limit = self.cfg.request_timeout;
        self.exec
            .block_on(call(&self.addr, "RawGet", limit, stub.raw_get(req)))
    }

    /// Like [`TinyKvClient::send_raw_get`], for a `RawPut`.
    pub fn send_raw_put(&self, req: RawPutRequest) -> Result<RawPutResponse> {
        let mut stub = self.stub.clone();
        let limit = self.cfg.request_timeout;
        self.exec
            .block_on(call(&self.addr, "RawPut", limit, stub.raw_put(req)))
    }

    /// Like [`TinyKvClient::send_raw_get`], for a `RawDelete`.
    pub fn send_raw_delete(&self, req: RawDeleteRequest) -> Result<RawDeleteResponse> {
        let mut stub = self.stub.clone();
        let limit = self.cfg.request_timeout;
        self.exec
            .block_on(call(&self.addr, "RawDelete", limit, stub.raw_delete(req)))
    }

    /// Like [`TinyKvClient::send_raw_get`], for a `RawScan`.
    pub fn send_raw_scan(&self, req: RawScanRequest) -> Result<RawScanResponse> {
        let mut stub = self.stub.clone();
        let limit = self.cfg.request_timeout;
        self.exec
            .block_on(call(&self.addr, "RawScan", limit, stub.raw_scan(req)))
    }

    /// Sends a `SplitRegion` as is (its context names the region, epoch and leader peer) and
    /// returns the answer, region error and all.
    pub fn send_split_region(&self, req: SplitRegionRequest) -> Result<SplitRegionResponse> {
        let mut stub = self.stub.clone();
        // The store asks the scheduler for ids and commits the split before it answers.
        let limit = self
            .cfg
            .request_timeout
            .max(super::kv_service::SPLIT_TIMEOUT);
        self.exec.block_on(call(
            &self.addr,
            "SplitRegion",
            limit,
            stub.split_region(req),
        ))
    }

    /// An error for a response that carries one.
    fn refused(
        &self,
        what: &'static str,
        error: &str,
        region_error: Option<&proto::errorpb::Error>,
    ) -> Result<()> {
        let message = match region_error {
            Some(e) if e.message.is_empty() => format!("region error: {e:?}"),
            Some(e) => format!("region error: {}", e.message),
            None if !error.is_empty() => error.to_owned(),
            None => return Ok(()),
        };
        Err(GrpcError::Refused {
            addr: self.addr.clone(),
            what,
            message,
        })
    }
}

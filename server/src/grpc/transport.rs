//! [`GrpcTransport`]: a store's [`raftstore::Transport`] to stores in other processes.
//!
//! Raft messages to a store go on one long-lived client stream (`TinyKv.Raft`) per target
//! store, fed by an unbounded channel, so [`Transport::send`] never waits on the network.
//! A task per target connects on its first message, keeps the stream open, and when the
//! stream breaks drops what is queued (raft resends what matters), waits a backoff and
//! connects again, looking the address up afresh. A snapshot goes on a stream of its own
//! (`TinyKv.Snapshot`), read from its file on the blocking pool, and its outcome is
//! reported to the sending store as [`StoreEvent::SnapshotStatus`].

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use proto::raft_serverpb::{RaftMessage, SnapshotChunk};
use raft::SnapshotStatus;
use raftstore::snap::transfer::OutgoingSnapshot;
use raftstore::{StoreEvent, Transport};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, UnboundedReceiverStream};
use tonic::transport::Channel;

use super::conn::{call, connect, ClientConfig};
use super::error::{GrpcError, Result};
use super::pb::tinykvpb::tiny_kv_client::TinyKvClient as TinyKvStub;
use super::sink::StoreSink;
use super::MAX_MESSAGE_SIZE;

/// The future of an address lookup.
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = Result<String>> + Send + 'a>>;

/// Finds the address (`host:port`) of a store's `TinyKv` service.
pub trait ResolveAddress: Send + Sync + 'static {
    /// The address of store `store_id`.
    fn resolve(&self, store_id: u64) -> ResolveFuture<'_>;
}

/// Addresses from a function (a fixed table, a test's map). `None` means "unknown store".
pub struct FnResolver<F>(pub F);

impl<F> std::fmt::Debug for FnResolver<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnResolver")
    }
}

impl<F> ResolveAddress for FnResolver<F>
where
    F: Fn(u64) -> Option<String> + Send + Sync + 'static,
{
    fn resolve(&self, store_id: u64) -> ResolveFuture<'_> {
        let found = (self.0)(store_id).ok_or_else(|| GrpcError::Resolve {
            store_id,
            reason: "unknown store".into(),
        });
        Box::pin(std::future::ready(found))
    }
}

/// How a [`GrpcTransport`] connects and retries.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Connection timeouts and keepalive.
    pub client: ClientConfig,
    /// First wait before reconnecting to a store whose stream broke; doubled on each
    /// failure in a row.
    pub min_backoff: Duration,
    /// Longest wait before reconnecting.
    pub max_backoff: Duration,
    /// Longest time one snapshot may take to stream.
    pub snapshot_timeout: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            client: ClientConfig::default(),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(3),
            snapshot_timeout: Duration::from_secs(600),
        }
    }
}

/// What a stream task needs; shared, so that a task does not keep the transport alive.
struct Shared {
    resolver: Arc<dyn ResolveAddress>,
    cfg: TransportConfig,
}

/// A store's transport over gRPC (see the module docs). Cheap to clone; the streams end
/// when the last clone is dropped. Its tasks run on the runtime of the handle given to
/// [`GrpcTransport::new`]; once that runtime is shut down, sending fails with an error.
#[derive(Clone)]
pub struct GrpcTransport {
    /// The sending store (snapshot reports go to it).
    store_id: u64,
    handle: Handle,
    sink: Arc<dyn StoreSink>,
    shared: Arc<Shared>,
    streams: Arc<Mutex<BTreeMap<u64, mpsc::UnboundedSender<RaftMessage>>>>,
}

impl std::fmt::Debug for GrpcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcTransport")
            .field("store_id", &self.store_id)
            .field("targets", &self.streams.lock().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl GrpcTransport {
    /// The transport of store `store_id`: streams run on `handle`'s runtime, addresses come
    /// from `resolver`, snapshot reports go to the store through `sink`.
    pub fn new(
        store_id: u64,
        handle: Handle,
        resolver: Arc<dyn ResolveAddress>,
        sink: Arc<dyn StoreSink>,
        cfg: TransportConfig,
    ) -> GrpcTransport {
        GrpcTransport {
            store_id,
            handle,
            sink,
            shared: Arc::new(Shared { resolver, cfg }),
            streams: Arc::default(),
        }
    }

    /// Starts the stream task of target store `to`.
    fn start_stream(&self, to: u64) -> mpsc::UnboundedSender<RaftMessage> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.handle
            .spawn(raft_stream_loop(self.store_id, to, rx, self.shared.clone()));
        tx
    }
}

impl Transport for GrpcTransport {
    fn send(&mut self, msg: RaftMessage) -> raftstore::Result<()> {
        let to = msg.get_to_peer().store_id;
        let mut streams = self.streams.lock();
        let msg = match streams.get(&to) {
            Some(tx) => match tx.send(msg) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::SendError(msg)) => msg,
            },
            None => msg,
        };
        // No task yet, or it ended (its runtime is shutting down): start one.
        let tx = self.start_stream(to);
        let sent = tx.send(msg).map_err(|_| {
            raftstore::Error::other(format!(
                "not sent to store {to}: the gRPC runtime has stopped"
            ))
        });
        streams.insert(to, tx);
        sent
    }

    fn send_snapshot(&mut self, snap: OutgoingSnapshot) -> raftstore::Result<()> {
        let (from, sink, shared) = (self.store_id, self.sink.clone(), self.shared.clone());
        self.handle.spawn(async move {
            let msg = snap.message();
            let (to, region_id, to_peer_id) = (
                msg.get_to_peer().store_id,
                msg.region_id,
                msg.get_to_peer().id,
            );
            let status = match stream_snapshot(snap, &shared).await {
                Ok(()) => SnapshotStatus::Finish,
                Err(e) => {
                    tracing::warn!("store {from}: {e}");
                    SnapshotStatus::Failure
                }
            };
            let report = StoreEvent::SnapshotStatus {
                region_id,
                to_peer_id,
                status,
            };
            if let Err(e) = sink.deliver(from, report) {
                tracing::debug!("store {from}: snapshot report for store {to} not delivered: {e}");
            }
        });
        Ok(())
    }
}

/// A connected `TinyKv` stub with this crate's limits.
async fn tinykv_stub(addr: &str, cfg: &ClientConfig) -> Result<TinyKvStub<Channel>> {
    Ok(TinyKvStub::new(connect(addr, cfg).await?)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE))
}

/// Carries store `from`'s messages for store `to` until every sender of `rx` is gone.
async fn raft_stream_loop(
    from: u64,
    to: u64,
    mut rx: mpsc::UnboundedReceiver<RaftMessage>,
    shared: Arc<Shared>,
) {
    let cfg = &shared.cfg;
    let mut backoff = Backoff::new(cfg.min_backoff, cfg.max_backoff);
    let what = format!("store {from}: raft stream to store {to}");
    loop {
        let Some(first) = rx.recv().await else {
            return;
        };
        match raft_stream_once(to, first, &mut rx, &shared, &mut backoff).await {
            None => return,
            Some(e) => {
                backoff.failed(&what, &e);
                let mut dropped = 0usize;
                while rx.try_recv().is_ok() {
                    dropped += 1;
                }
                if dropped > 0 {
                    tracing::trace!("{what}: dropped {dropped} queued messages");
                }
                backoff.wait().await;
            }
        }
    }
}

/// One stream to store `to`, opened with `first`: `None` once the transport is gone, or
/// why the stream could not be opened or broke.
async fn raft_stream_once(
    to: u64,
    first: RaftMessage,
    rx: &mut mpsc::UnboundedReceiver<RaftMessage>,
    shared: &Shared,
    backoff: &mut Backoff,
) -> Option<GrpcError> {
    let addr = match shared.resolver.resolve(to).await {
        Ok(addr) => addr,
        Err(e) => return Some(e),
    };
    let mut stub = match tinykv_stub(&addr, &shared.cfg.client).await {
        Ok(stub) => stub,
        Err(e) => return Some(e),
    };
    // The store answers: the next failure starts a fresh backoff.
    backoff.succeeded();
    let (tx, body) = mpsc::unbounded_channel();
    let _ = tx.send(first);
    let stream = stub.raft(UnboundedReceiverStream::new(body));
    tokio::pin!(stream);
    loop {
        tokio::select! {
            ended = &mut stream => {
                // The server only answers once the stream is over: it is stopping, or the
                // connection broke.
                let status = match ended {
                    Ok(_) => tonic::Status::unavailable("the server ended the stream"),
                    Err(status) => status,
                };
                return Some(GrpcError::call(&addr, "Raft", status));
            }
            msg = rx.recv() => match msg {
                Some(msg) => {
                    // Fails only after the stream ended; the branch above then reports it.
                    let _ = tx.send(msg);
                }
                None => {
                    // The transport is gone: finish the stream politely.
                    drop(tx);
                    let limit = shared.cfg.client.request_timeout;
                    let _ = tokio::time::timeout(limit, stream).await;
                    return None;
                }
            },
        }
    }
}

/// Streams one snapshot to the store of its message's `to_peer`.
async fn stream_snapshot(snap: OutgoingSnapshot, shared: &Shared) -> Result<()> {
    let msg = snap.message();
    let (to, region_id) = (msg.get_to_peer().store_id, msg.region_id);
    let failed = |reason: String| GrpcError::Snapshot {
        region_id,
        store_id: to,
        reason,
    };
    let addr = shared.resolver.resolve(to).await?;
    let mut stub = tinykv_stub(&addr, &shared.cfg.client).await?;
    // Two chunks in flight at most: a snapshot is read as fast as it is sent, not faster.
    let (tx, body) = mpsc::channel::<SnapshotChunk>(2);
    let reader = tokio::task::spawn_blocking(move || -> std::result::Result<(), String> {
        for i in 0..snap.chunk_count() {
            let chunk = snap.chunk(i).map_err(|e| e.to_string())?;
            if tx.blocking_send(chunk).is_err() {
                return Err(format!("the stream closed before chunk {i} was sent"));
            }
        }
        Ok(())
    });
    let sent = call(
        &addr,
        "Snapshot",
        shared.cfg.snapshot_timeout,
        stub.snapshot(ReceiverStream::new(body)),
    )
    .await;
    let read = reader.await;
    sent?;
    match read {
        Ok(Ok(())) => Ok(()),
        // A chunk could not be read: the receiver got part of the file and drops it.
        Ok(Err(reason)) => Err(failed(reason)),
        Err(e) => Err(failed(format!("the file reader failed: {e}"))),
    }
}

/// Waits between reconnection attempts, doubling up to a limit; logs the first failure of
/// a series as a warning and the rest quietly.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        let min = min.max(Duration::from_millis(1));
        Backoff {
            min,
            max: max.max(min),
            next: min,
            failures: 0,
        }
    }

    /// The connection worked: the next failure waits the minimum again.
    pub(crate) fn succeeded(&mut self) {
        self.next = self.min;
        self.failures = 0;
    }

    /// Records (and logs) a failure of `what`.
    pub(crate) fn failed(&mut self, what: &str, e: &GrpcError) {
        self.failures += 1;
        if self.failures == 1 {
            tracing::warn!("{what}: {e}; retrying");
        } else {
            tracing::debug!("{what}: {e} ({} failures in a row)", self.failures);
        }
    }

    /// Sleeps the current backoff and doubles it.
    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(self.max);
    }
}

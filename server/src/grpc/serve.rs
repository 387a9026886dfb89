//! Running a gRPC service on a port, and stopping it.
//!
//! Stopping has a catch: tonic's graceful shutdown closes the listener and then waits for
//! every open call to end, and the raft and heartbeat streams never end by themselves. So
//! the services watch a [`StopToken`] and end their long-lived streams when it fires; the
//! connections then drain and close, and a client sees its stream fail and the port closed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::body::Body;
use tonic::codegen::http::{Request, Response};
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use super::error::{with_causes, GrpcError, Result};

/// Fires once, when the server that owns it stops (see [`StopToken`]).
#[derive(Debug)]
pub struct StopSource {
    tx: watch::Sender<bool>,
}

impl Default for StopSource {
    fn default() -> Self {
        StopSource::new()
    }
}

impl StopSource {
    /// A source that has not fired.
    pub fn new() -> StopSource {
        StopSource {
            tx: watch::channel(false).0,
        }
    }

    /// A token that sees this source fire.
    pub fn token(&self) -> StopToken {
        StopToken {
            rx: self.tx.subscribe(),
        }
    }

    /// Fires: every token's [`StopToken::stopped`] completes.
    pub fn stop(&self) {
        self.tx.send_replace(true);
    }
}

/// What a service watches to end its streams when the server stops. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StopToken {
    rx: watch::Receiver<bool>,
}

impl StopToken {
    /// A token that never fires (for a service run outside [`GrpcServer`]).
    pub fn never() -> StopToken {
        let (tx, rx) = watch::channel(false);
        // The sender is gone, so nothing can fire it; `stopped` waits forever.
        drop(tx);
        StopToken { rx }
    }

    /// Whether the server is stopping.
    pub fn is_stopped(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes when the server starts stopping (never, for [`StopToken::never`]).
    pub async fn stopped(&self) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|stopped| *stopped).await.is_err() {
            // The source was dropped without firing: this token never fires.
            std::future::pending::<()>().await;
        }
    }
}

/// How long [`GrpcServer::stop`] waits for connections to drain before it abandons them.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// A gRPC service listening on a port of this machine, on the current tokio runtime.
/// Dropping it stops it too (without waiting).
#[derive(Debug)]
pub struct GrpcServer {
    addr: SocketAddr,
    stop: StopSource,
    task: Option<JoinHandle<std::result::Result<(), tonic::transport::Error>>>,
}

impl GrpcServer {
    /// Listens on `addr` (port 0 picks a free port: see [`GrpcServer::addr`]) and serves
    /// `svc` there until stopped. `stop` is the source whose tokens `svc` watches; this
    /// server fires it when it stops. Fails outside a tokio runtime.
    pub fn start<S>(addr: SocketAddr, svc: S, stop: StopSource) -> Result<GrpcServer>
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            GrpcError::Runtime(std::io::Error::other(format!(
                "a gRPC server must be started inside a tokio runtime: {e}"
            )))
        })?;
        let incoming = TcpIncoming::bind(addr)
            .map_err(|source| GrpcError::Bind { addr, source })?
            .with_nodelay(Some(true));
        let addr = incoming
            .local_addr()
            .map_err(|source| GrpcError::Bind { addr, source })?;
        let token = stop.token();
        let serve = Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(10)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .serve_with_incoming_shutdown(svc, incoming, async move { token.stopped().await });
        let task = runtime.spawn(serve);
        tracing::debug!("gRPC service {} listening on {addr}", S::NAME);
        Ok(GrpcServer {
            addr,
            stop,
            task: Some(task),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening, ends the services' streams and waits (at most [`STOP_GRACE`]) for
    /// the open connections to close.
    pub async fn stop(mut self) -> Result<()> {
        self.stop.stop();
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        let addr = self.addr;
        let abort = task.abort_handle();
        match tokio::time::timeout(STOP_GRACE, task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(GrpcError::Serve {
                addr,
                reason: with_causes(&e),
            }),
            Ok(Err(join)) => Err(GrpcError::Serve {
                addr,
                reason: join.to_string(),
            }),
            Err(_) => {
                abort.abort();
                tracing::warn!(
                    "gRPC server on {addr}: connections still open after {STOP_GRACE:?}; abandoned"
                );
                Ok(())
            }
        }
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

//! Client connections: addresses, timeouts and turning tonic's failures into [`GrpcError`]s.

use std::future::Future;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use super::error::{with_causes, GrpcError, Result};

/// How a client connects and how long it waits.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Longest wait for a TCP connection (and the HTTP/2 handshake).
    pub connect_timeout: Duration,
    /// Longest wait for the answer to a unary call.
    pub request_timeout: Duration,
    /// HTTP/2 ping interval on an open connection, so that a peer that vanished without
    /// closing (a crashed machine, a cut network) is noticed.
    pub keepalive: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(10),
        }
    }
}

/// The endpoint for `addr` (`host:port`, or `http://host:port`).
pub(crate) fn endpoint(addr: &str, cfg: &ClientConfig) -> Result<Endpoint> {
    let invalid = |reason: String| GrpcError::InvalidAddress {
        addr: addr.to_owned(),
        reason,
    };
    let uri = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    let ep = Endpoint::from_shared(uri).map_err(|e| invalid(with_causes(&e)))?;
    if ep.uri().scheme_str() != Some("http") {
        return Err(invalid("only plain http:// is served (no TLS)".into()));
    }
    if ep.uri().host().is_none_or(str::is_empty) || ep.uri().port_u16().is_none() {
        return Err(invalid("expected host:port".into()));
    }
    Ok(ep
        .connect_timeout(cfg.connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(cfg.keepalive)
        .keep_alive_timeout(cfg.keepalive)
        .keep_alive_while_idle(true))
}

/// Connects to `addr`, failing with an error naming it if nobody listens there.
pub async fn connect(addr: &str, cfg: &ClientConfig) -> Result<Channel> {
    let ep = endpoint(addr, cfg)?;
    // The endpoint's own connect timeout covers the TCP connect; this bounds the HTTP/2
    // handshake too (a listener that accepts and never speaks).
    let limit = cfg.connect_timeout + Duration::from_millis(500);
    match tokio::time::timeout(limit, ep.connect()).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(e)) => Err(GrpcError::Connect {
            addr: addr.to_owned(),
            reason: with_causes(&e),
        }),
        Err(_) => Err(GrpcError::Timeout {
            addr: addr.to_owned(),
            what: "connect",
            after: limit,
        }),
    }
}

/// Awaits a call's answer for at most `limit`.
pub(crate) async fn call<T>(
    addr: &str,
    what: &'static str,
    limit: Duration,
    fut: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(resp)) => Ok(resp.into_inner()),
        Ok(Err(status)) => Err(GrpcError::call(addr, what, status)),
        Err(_) => Err(GrpcError::Timeout {
            addr: addr.to_owned(),
            what,
            after: limit,
        }),
    }
}

//! What can go wrong between a gRPC client and a server.

use std::time::Duration;

/// Why a gRPC call, connection or server failed. Every variant names the address involved,
/// so "which node is down" is in the message.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// The address is not something to connect to (`host:port` expected).
    #[error("invalid address {addr:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made (refused, unreachable, name not resolved).
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The address tried.
        addr: String,
        /// The transport's explanation, with its causes.
        reason: String,
    },
    /// The peer did not answer in time.
    #[error("{what} at {addr}: no answer within {after:?}")]
    Timeout {
        /// The address called.
        addr: String,
        /// The call that timed out.
        what: &'static str,
        /// How long it waited.
        after: Duration,
    },
    /// The call reached the server and failed there, or the connection broke during it.
    #[error("{what} at {addr} failed: {code:?}: {message}")]
    Call {
        /// The address called.
        addr: String,
        /// The call.
        what: &'static str,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
    /// The scheduler answered with an error in its response header.
    #[error("scheduler at {addr}: {kind:?}: {message}")]
    Scheduler {
        /// The scheduler's address.
        addr: String,
        /// The header's error type (`NOT_BOOTSTRAPPED`, `REGION_NOT_FOUND`, ...).
        kind: proto::schedulerpb::ErrorType,
        /// The scheduler's message.
        message: String,
    },
    /// The server answered, with an error inside the response (a region error, or the
    /// handler's `error` string).
    #[error("{what} at {addr} refused: {message}")]
    Refused {
        /// The address called.
        addr: String,
        /// The call.
        what: &'static str,
        /// What the response said.
        message: String,
    },
    /// A snapshot could not be streamed to another store.
    #[error("snapshot of region {region_id} for store {store_id}: {reason}")]
    Snapshot {
        /// The region.
        region_id: u64,
        /// The receiving store.
        store_id: u64,
        /// Why it did not get through.
        reason: String,
    },
    /// A server could not listen on its address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// A running server failed.
    #[error("server on {addr} failed: {reason}")]
    Serve {
        /// Its address.
        addr: std::net::SocketAddr,
        /// The transport's explanation.
        reason: String,
    },
    /// A store's address could not be found.
    #[error("no address for store {store_id}: {reason}")]
    Resolve {
        /// The store.
        store_id: u64,
        /// Why.
        reason: String,
    },
    /// The tokio runtime needed for a blocking call could not be built.
    #[error("cannot start a tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl GrpcError {
    /// A failed call to `what` at `addr`.
    pub(crate) fn call(addr: &str, what: &'static str, status: tonic::Status) -> GrpcError {
        GrpcError::Call {
            addr: addr.to_owned(),
            what,
            code: status.code(),
            message: status.message().to_owned(),
        }
    }

    /// The gRPC code of a failed call, if this is one.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            GrpcError::Call { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The result of the gRPC layer.
pub type Result<T> = std::result::Result<T, GrpcError>;

/// `e` and its chain of causes, joined with ": " (tonic's transport error says only
/// "transport error" at the top; the cause says "Connection refused").
pub(crate) fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

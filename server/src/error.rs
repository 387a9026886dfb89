//! The KV service's error type.

/// Why a KV request failed. Region errors (stage 2b on) are not errors of this kind: they
/// travel inside the response's `region_error` so the client can retry elsewhere.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The storage engine refused the request or failed (unknown column family, empty key,
    /// closed engine, I/O).
    #[error(transparent)]
    Engine(#[from] engine::Error),
    /// The storage was stopped.
    #[error("storage is stopped")]
    Stopped,
    /// The region cannot serve the request here (raft storage only): not the leader, a stale
    /// epoch, a key outside the region... The service answers it in the response's
    /// `region_error`, for the client to retry with a fresh view of the region.
    #[error("region error: {0:?}")]
    Region(Box<proto::errorpb::Error>),
}

/// The KV service's result alias.
pub type Result<T> = std::result::Result<T, Error>;

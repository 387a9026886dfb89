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
}

/// The KV service's result alias.
pub type Result<T> = std::result::Result<T, Error>;

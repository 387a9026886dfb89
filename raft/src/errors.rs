//! The crate's error types: [`Error`] for everything the raft core reports and
//! [`StorageError`] for what a [`Storage`](crate::Storage) can answer.

/// What a [`Storage`](crate::Storage) reports when it cannot serve a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The requested index is at or below the compacted prefix of the log.
    #[error("log compacted")]
    Compacted,
    /// The requested index is beyond the last index of the log.
    #[error("log unavailable")]
    Unavailable,
    /// The snapshot is not newer than the one the storage already has.
    #[error("snapshot out of date")]
    SnapshotOutOfDate,
    /// A snapshot is being generated; ask again later.
    #[error("snapshot is temporarily unavailable")]
    SnapshotTemporarilyUnavailable,
    /// Any other storage failure (I/O, corruption, broken invariant).
    #[error("storage error: {0}")]
    Other(String),
}

/// The error type of the raft crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The [`Config`](crate::Config) is invalid; the string says why.
    #[error("invalid config: {0}")]
    ConfigInvalid(String),
    /// The storage failed.
    #[error("{0}")]
    Store(#[from] StorageError),
    /// A proposal was dropped: this node is not the leader, a leader transfer is in
    /// progress, or another membership change is still pending.
    #[error("raft: proposal dropped")]
    ProposalDropped,
    /// A local message (`MsgHup`, `MsgBeat`, ...) was handed to [`RawNode::step`](crate::RawNode::step).
    #[error("raft: cannot step raft local message")]
    StepLocalMsg,
    /// A response message came from a peer that is not in the progress map.
    #[error("raft: cannot step as peer not found")]
    StepPeerNotFound,
    /// A message is malformed or of a type this raft does not support; it was ignored.
    #[error("raft: invalid message: {0}")]
    InvalidMessage(String),
}

/// A `Result` whose error is the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

//! The runtime's errors.

use std::time::Duration;

/// What can go wrong in the threaded runtime.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No store of this id runs in this process (never started, stopped, or crashed).
    #[error("store {0} is not running")]
    StoreNotRunning(u64),
    /// A request found no answer in time.
    #[error("no answer within {0:?}: {1}")]
    Timeout(Duration, String),
    /// The store refused a command for good (not a retryable error).
    #[error("the store refused the command: {0}")]
    Refused(String),
    /// A store's own error (opening, bootstrapping).
    #[error(transparent)]
    Store(#[from] raftstore::Error),
    /// The engine's error.
    #[error(transparent)]
    Engine(#[from] engine::Error),
    /// The scheduler's error.
    #[error("scheduler: {0}")]
    Scheduler(#[from] scheduler::Error),
    /// A thread could not be started, or a directory not read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The runtime's result.
pub type Result<T> = std::result::Result<T, NodeError>;

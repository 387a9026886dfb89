//! Where the gRPC layer hands events for the stores of this process.

use raftstore::StoreEvent;

/// An event could not be handed to a store (it is not running here, or it stopped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// The mailboxes of the stores running in this process, as the gRPC layer sees them: raft
/// messages and snapshot chunks arriving from other nodes, snapshot reports from the
/// transport and the scheduler's answers all go through here. [`node::Router`] is the real
/// one; tests collect the events instead.
pub trait StoreSink: Send + Sync + 'static {
    /// Queues `ev` for store `store_id` without blocking.
    fn deliver(&self, store_id: u64, ev: StoreEvent) -> Result<(), SinkError>;
}

impl StoreSink for node::Router {
    fn deliver(&self, store_id: u64, ev: StoreEvent) -> Result<(), SinkError> {
        self.send(store_id, ev)
            .map_err(|e| SinkError(e.to_string()))
    }
}

impl<T: StoreSink> StoreSink for std::sync::Arc<T> {
    fn deliver(&self, store_id: u64, ev: StoreEvent) -> Result<(), SinkError> {
        (**self).deliver(store_id, ev)
    }
}

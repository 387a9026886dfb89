//! How a store reaches other stores.

use proto::raft_serverpb::RaftMessage;

use crate::Result;

/// Carries raft messages to other stores. The simulator's transport routes them through its
/// network model (delays, drops, partitions); a real server sends them over gRPC. Sending is
/// fire-and-forget: raft tolerates loss, so an error only means "not sent" and the store
/// carries on.
pub trait Transport {
    /// Sends `msg` to the store of `msg.to_peer`.
    fn send(&mut self, msg: RaftMessage) -> Result<()>;
}

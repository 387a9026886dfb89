//! How a store reaches other stores.

use proto::raft_serverpb::RaftMessage;

use crate::snap::transfer::OutgoingSnapshot;
use crate::Result;

/// Carries raft messages to other stores. The simulator's transport routes them through its
/// network model (delays, drops, partitions); a real server sends them over gRPC. Sending is
/// fire-and-forget: raft tolerates loss, so an error only means "not sent" and the store
/// carries on.
pub trait Transport {
    /// Sends `msg` to the store of `msg.to_peer`.
    fn send(&mut self, msg: RaftMessage) -> Result<()>;

    /// Streams a snapshot (its `MsgSnapshot` and file) to the store of its message's
    /// `to_peer`, in chunks read from `snap` one at a time, and later reports to the sending
    /// store whether the stream got through, as a
    /// [`StoreEvent::SnapshotStatus`](crate::StoreEvent::SnapshotStatus): `Finish` once every
    /// chunk was handed over, `Failure` if the stream broke (the leader then sends a fresh
    /// snapshot when raft next asks for one).
    fn send_snapshot(&mut self, snap: OutgoingSnapshot) -> Result<()>;
}

//! What a runtime hands a store, and what the store hands back to clients.

use engine::{Cf, DbIterator, Snapshot};
use proto::metapb::{Region, RegionEpoch};
use proto::raft_cmdpb::{RaftCmdRequest, RaftCmdResponse};
use proto::raft_serverpb::{RaftMessage, SnapshotChunk};
use proto::schedulerpb::RegionHeartbeatResponse;
use raft::SnapshotStatus;

use crate::task::TaskResult;
use crate::Result;

/// A consistent read view of one region: an engine snapshot plus the region it was taken for,
/// so reads stay inside the region's key range.
#[derive(Debug, Clone)]
pub struct RegionSnapshot {
    /// The region as of the snapshot.
    pub region: Region,
    /// The kv engine as of the snapshot.
    pub snap: Snapshot,
}

impl RegionSnapshot {
    /// An iterator over `cf` limited to the region's range, starting at `start` (clamped to
    /// the region's start).
    pub fn iter_cf(&self, cf: Cf, start: &[u8]) -> Result<DbIterator> {
        let end = self.region.get_end_key();
        let upper = (!end.is_empty()).then_some(end);
        let mut it = self.snap.iter_cf(cf, self.region.get_start_key(), upper)?;
        it.seek(start);
        Ok(it)
    }

    /// A point read inside the region.
    pub fn get_cf(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        crate::util::check_key_in_region(key, &self.region)?;
        Ok(self.snap.get_cf(cf, key)?.map(Vec::from))
    }
}

/// The answer to a client command: the response, and for a `Snap` request the read view.
#[derive(Debug)]
pub struct CmdResponse {
    /// The protobuf response (errors travel in `header.error`).
    pub resp: RaftCmdResponse,
    /// Set when the command held a `Snap` request that succeeded.
    pub snap: Option<RegionSnapshot>,
}

/// Called exactly once with a command's answer. `Send`, so a threaded runtime can use it too.
pub type Callback = Box<dyn FnOnce(CmdResponse) + Send>;

/// Everything that can happen to a store. A runtime delivers these one at a time to
/// [`crate::Store::handle`].
pub enum StoreEvent {
    /// A raft message from another store.
    Raft(RaftMessage),
    /// A piece of a snapshot file from another store (see [`crate::snap::transfer`]).
    SnapshotChunk(SnapshotChunk),
    /// The transport's report on a snapshot this store sent: whether the stream got through.
    SnapshotStatus {
        /// The region the snapshot is of.
        region_id: u64,
        /// The peer it was sent to.
        to_peer_id: u64,
        /// Finished or failed.
        status: SnapshotStatus,
    },
    /// A client command and the callback to answer it.
    Command {
        /// The command.
        req: RaftCmdRequest,
        /// Where the answer goes.
        cb: Callback,
    },
    /// One base tick of the store's clock (every [`crate::Config::raft_base_tick`]).
    Tick,
    /// The scheduler's answer to a region heartbeat (used from stage 3b on).
    SchedulerResponse(RegionHeartbeatResponse),
    /// A background task this store spawned has finished.
    TaskDone(TaskResult),
    /// Split `region_id` at `split_key` (sent by the split checker, or by a test or tool):
    /// if the region's leader is here and its epoch is still `region_epoch`, the store asks
    /// the scheduler for the new ids and proposes a `Split` admin command. `cb`, if any, gets
    /// the command's answer (or the reason it was not proposed).
    SplitRegion {
        /// The region to split.
        region_id: u64,
        /// The region's epoch when the split key was chosen; a newer epoch refuses the split.
        region_epoch: RegionEpoch,
        /// The first key of the new right-hand region.
        split_key: Vec<u8>,
        /// Answered with the split's outcome.
        cb: Option<Callback>,
    },
}

impl std::fmt::Debug for StoreEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreEvent::Raft(m) => write!(
                f,
                "Raft(region {} {:?} {}->{})",
                m.region_id,
                m.get_message().get_msg_type(),
                m.get_from_peer().id,
                m.get_to_peer().id
            ),
            StoreEvent::Command { req, .. } => {
                write!(f, "Command(region {})", req.get_header().region_id)
            }
            StoreEvent::SnapshotChunk(c) => {
                let m = c.get_message();
                write!(
                    f,
                    "SnapshotChunk(region {} {}->{} at {}, {} bytes)",
                    m.region_id,
                    m.get_from_peer().id,
                    m.get_to_peer().id,
                    c.offset,
                    c.data.len()
                )
            }
            StoreEvent::SnapshotStatus {
                region_id,
                to_peer_id,
                status,
            } => write!(
                f,
                "SnapshotStatus(region {region_id} to {to_peer_id}: {status:?})"
            ),
            StoreEvent::TaskDone(r) => write!(f, "TaskDone({r:?})"),
            StoreEvent::Tick => f.write_str("Tick"),
            StoreEvent::SchedulerResponse(r) => {
                write!(f, "SchedulerResponse(region {})", r.region_id)
            }
            StoreEvent::SplitRegion {
                region_id,
                split_key,
                ..
            } => write!(
                f,
                "SplitRegion(region {region_id} at {:?})",
                String::from_utf8_lossy(split_key)
            ),
        }
    }
}

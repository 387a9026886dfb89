//! How a store talks to the scheduler (the placement driver).

use proto::metapb;
use proto::schedulerpb::{AskSplitResponse, RegionHeartbeatRequest, StoreStats};

use crate::Result;

/// The scheduler as a store sees it. The harness implements it with a mock scheduler; the
/// stage 3c scheduler implements it for real.
///
/// Region heartbeats are one-way: the scheduler answers (with a ChangePeer or TransferLeader
/// step for the region's leader) later, as a `RegionHeartbeatResponse` delivered to the
/// leader's store, just as the original's response stream does.
pub trait SchedulerClient {
    /// A fresh id, unique in the cluster (for regions and peers).
    fn alloc_id(&mut self) -> Result<u64>;

    /// Reports a region's state as its leader sees it: region (with epoch and peers), leader,
    /// pending peers and approximate size.
    fn region_heartbeat(&mut self, req: RegionHeartbeatRequest) -> Result<()>;

    /// Reports the store's statistics.
    fn store_heartbeat(&mut self, stats: StoreStats) -> Result<()>;

    /// Asks for the ids a split of `region` needs: a new region id and one new peer id per
    /// peer. Fails if the scheduler's view of the region is newer (the split is stale).
    fn ask_split(&mut self, region: &metapb::Region) -> Result<AskSplitResponse>;

    /// Tells the scheduler the two halves of a split that was applied.
    fn report_split(&mut self, left: &metapb::Region, right: &metapb::Region) -> Result<()>;
}

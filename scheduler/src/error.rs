//! The scheduler's errors.

use std::fmt;

use proto::metapb::RegionEpoch;

/// A region epoch as two numbers, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Epoch {
    /// Bumped by every applied conf change.
    pub conf_ver: u64,
    /// Bumped by every split (and merge).
    pub version: u64,
}

impl From<&RegionEpoch> for Epoch {
    fn from(e: &RegionEpoch) -> Epoch {
        Epoch {
            conf_ver: e.conf_ver,
            version: e.version,
        }
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(conf_ver {}, version {})", self.conf_ver, self.version)
    }
}

/// Why the scheduler refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A heartbeat's epoch is older than what the scheduler already knows about the region or
    /// about a region its range overlaps. Normal under partitions and message reordering.
    #[error(
        "region {region_id} with epoch {epoch} is stale: region {against_id} has epoch {against}"
    )]
    StaleRegion {
        /// The region the heartbeat described.
        region_id: u64,
        /// The heartbeat's epoch.
        epoch: Epoch,
        /// The cached region it lost against (the same id, or one its range overlaps).
        against_id: u64,
        /// That region's epoch.
        against: Epoch,
    },
    /// A request names a store the scheduler does not know.
    #[error("store {0} not found")]
    StoreNotFound(u64),
    /// A request names a store that was removed from the cluster for good.
    #[error("store {0} is a tombstone")]
    StoreTombstone(u64),
    /// A request names a region the scheduler does not know.
    #[error("region {0} not found")]
    RegionNotFound(u64),
    /// A request that no correct store sends (malformed, or contradicting the cluster's ids).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The cluster has not been bootstrapped yet.
    #[error("cluster is not bootstrapped")]
    NotBootstrapped,
    /// `bootstrap` was called on a bootstrapped cluster.
    #[error("cluster is already bootstrapped")]
    AlreadyBootstrapped,
    /// An operator could not be built or added.
    #[error("operator refused: {0}")]
    Operator(String),
    /// What the scheduler must remember across a restart could not be saved.
    #[error("cannot save the scheduler's state: {0}")]
    Meta(String),
}

/// The scheduler's result type.
pub type Result<T> = std::result::Result<T, Error>;

//! What the scheduler knows about one store.

use std::time::Duration;

use proto::metapb::{Store, StoreState};
use proto::schedulerpb::StoreStats;

/// A store: its description, its last reported statistics, when it last reported, and the
/// status the scheduler computes from the region cache (refreshed by
/// [`RaftCluster::update_store_status`](crate::RaftCluster::update_store_status)).
///
/// Time is whatever the caller passes in: a `Duration` since an epoch of the caller's choice
/// (the simulator's virtual time in tests). The scheduler never reads a clock.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoreInfo {
    /// Id, address, state (up, offline, tombstone).
    pub meta: Store,
    /// The last store heartbeat's statistics.
    pub stats: StoreStats,
    /// When the last store heartbeat arrived; `None` if none ever did.
    pub last_heartbeat: Option<Duration>,
    /// Regions whose leader is on the store.
    pub leader_count: usize,
    /// Regions with a peer on the store.
    pub region_count: usize,
    /// Regions whose peer on the store is pending.
    pub pending_peer_count: usize,
    /// Total approximate size (MiB) of the regions the store leads.
    pub leader_size: u64,
    /// Total approximate size (MiB) of the regions with a peer on the store.
    pub region_size: u64,
}

/// After this long without a heartbeat a store counts as disconnected (it may come back).
pub const STORE_DISCONNECT_DURATION: Duration = Duration::from_secs(20);

/// A store's health as the scheduler sees it at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreStatus {
    /// Heartbeating, state Up.
    Up,
    /// State Up, but silent for longer than [`STORE_DISCONNECT_DURATION`].
    Disconnected,
    /// Silent for the cluster's max store down time or longer: its replicas count as lost (and
    /// balance no longer uses it, see [`BalanceRegionScheduler`](crate::schedulers::BalanceRegionScheduler)).
    Down,
    /// Being drained by an operator (state Offline).
    Offline,
    /// Removed for good.
    Tombstone,
}

impl StoreInfo {
    /// A store that has not heartbeated yet.
    pub fn new(meta: Store) -> StoreInfo {
        StoreInfo {
            meta,
            ..StoreInfo::default()
        }
    }

    /// The store id.
    pub fn id(&self) -> u64 {
        self.meta.id
    }

    /// Whether the store's state is Up (it may still be down: see [`StoreInfo::down_time`]).
    pub fn is_up(&self) -> bool {
        self.meta.state == StoreState::Up
    }

    /// Whether the store is being drained.
    pub fn is_offline(&self) -> bool {
        self.meta.state == StoreState::Offline
    }

    /// Whether the store was removed for good.
    pub fn is_tombstone(&self) -> bool {
        self.meta.state == StoreState::Tombstone
    }

    /// How long the store has been silent at `now` (`Duration::MAX` if it never heartbeated).
    pub fn down_time(&self, now: Duration) -> Duration {
        match self.last_heartbeat {
            Some(t) => now.saturating_sub(t),
            None => Duration::MAX,
        }
    }

    /// The store's health at `now`, given the cluster's max store down time. A store that
    /// has not heartbeated since the scheduler learnt about it is disconnected, not down:
    /// nothing is known yet about its replicas (balance still ignores it, see
    /// [`StoreInfo::down_time`]).
    pub fn status(&self, now: Duration, max_store_down_time: Duration) -> StoreStatus {
        if self.is_tombstone() {
            StoreStatus::Tombstone
        } else if self.last_heartbeat.is_none() {
            if self.is_offline() {
                StoreStatus::Offline
            } else {
                StoreStatus::Disconnected
            }
        } else if self.down_time(now) >= max_store_down_time {
            StoreStatus::Down
        } else if self.is_offline() {
            StoreStatus::Offline
        } else if self.down_time(now) > STORE_DISCONNECT_DURATION {
            StoreStatus::Disconnected
        } else {
            StoreStatus::Up
        }
    }
}

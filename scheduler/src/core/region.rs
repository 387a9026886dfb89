//! What the scheduler knows about one region.

use std::collections::BTreeSet;

use proto::metapb::{Peer, Region, RegionEpoch};
use proto::schedulerpb::RegionHeartbeatRequest;

/// The approximate size (MiB) the scheduler gives a region that reports less than 1 MiB, so
/// that even empty regions weigh something when stores are compared.
pub const EMPTY_REGION_APPROXIMATE_SIZE: u64 = 1;

/// A region as its leader last described it: the region (range, epoch, peers), the leader,
/// the peers lagging behind, and the approximate size in MiB.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegionInfo {
    /// The region: id, range, epoch and peers.
    pub meta: Region,
    /// The peer that sent the heartbeat, if known.
    pub leader: Option<Peer>,
    /// Peers the leader reports as far behind (not yet healthy replicas).
    pub pending_peers: Vec<Peer>,
    /// Approximate size in MiB.
    pub approximate_size: u64,
}

impl RegionInfo {
    /// A region with `leader` (if any), no pending peers and size 0.
    pub fn new(meta: Region, leader: Option<Peer>) -> RegionInfo {
        RegionInfo {
            meta,
            leader,
            pending_peers: Vec::new(),
            approximate_size: 0,
        }
    }

    /// The region a heartbeat describes. The size in bytes becomes MiB, at least
    /// [`EMPTY_REGION_APPROXIMATE_SIZE`].
    pub fn from_heartbeat(req: &RegionHeartbeatRequest) -> RegionInfo {
        let mib = req.approximate_size >> 20;
        RegionInfo {
            meta: req.get_region().clone(),
            leader: req.leader.as_ref().cloned(),
            pending_peers: req.pending_peers.to_vec(),
            approximate_size: mib.max(EMPTY_REGION_APPROXIMATE_SIZE),
        }
    }

    /// The region id.
    pub fn id(&self) -> u64 {
        self.meta.id
    }

    /// The region epoch.
    pub fn epoch(&self) -> &RegionEpoch {
        self.meta.get_region_epoch()
    }

    /// The first key of the range (empty: unbounded).
    pub fn start_key(&self) -> &[u8] {
        &self.meta.start_key
    }

    /// The end of the range, exclusive (empty: unbounded).
    pub fn end_key(&self) -> &[u8] {
        &self.meta.end_key
    }

    /// The region's peers.
    pub fn peers(&self) -> &[Peer] {
        &self.meta.peers
    }

    /// The store of the leader, if a leader is known.
    pub fn leader_store_id(&self) -> Option<u64> {
        self.leader.as_ref().map(|p| p.store_id)
    }

    /// The peer on `store_id`, if the region has one there.
    pub fn store_peer(&self, store_id: u64) -> Option<&Peer> {
        self.meta.peers.iter().find(|p| p.store_id == store_id)
    }

    /// The peer with this id, if it is pending.
    pub fn pending_peer(&self, peer_id: u64) -> Option<&Peer> {
        self.pending_peers.iter().find(|p| p.id == peer_id)
    }

    /// Whether the peer on `store_id` is pending.
    pub fn is_pending_on(&self, store_id: u64) -> bool {
        self.pending_peers.iter().any(|p| p.store_id == store_id)
    }

    /// The stores holding a peer of the region.
    pub fn store_ids(&self) -> BTreeSet<u64> {
        self.meta.peers.iter().map(|p| p.store_id).collect()
    }

    /// The stores holding a peer that is not the leader (all of them when no leader is known).
    pub fn follower_store_ids(&self) -> BTreeSet<u64> {
        let leader = self.leader_store_id();
        self.meta
            .peers
            .iter()
            .map(|p| p.store_id)
            .filter(|s| Some(*s) != leader)
            .collect()
    }

    /// Whether the range contains `key`.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start_key() && (self.end_key().is_empty() || key < self.end_key())
    }

    /// Whether the ranges of `self` and `other` share a key.
    pub fn overlaps(&self, other: &Region) -> bool {
        ranges_overlap(
            self.start_key(),
            self.end_key(),
            &other.start_key,
            &other.end_key,
        )
    }
}

/// Whether `[s1, e1)` and `[s2, e2)` share a key (an empty end is unbounded).
pub fn ranges_overlap(s1: &[u8], e1: &[u8], s2: &[u8], e2: &[u8]) -> bool {
    (e2.is_empty() || s1 < e2) && (e1.is_empty() || s2 < e1)
}

/// Whether `epoch` is stale against `current`: older in version or in conf_ver.
pub fn is_epoch_stale(epoch: &RegionEpoch, current: &RegionEpoch) -> bool {
    epoch.version < current.version || epoch.conf_ver < current.conf_ver
}

//! The replica checker: keeps every region at the configured number of healthy replicas.
//!
//! For one region, in this order:
//! 1. a peer on a store that is down, offline, a tombstone or unknown is replaced: a new peer
//!    on the best store is added first, then the old one removed, so the region never has
//!    fewer replicas than before;
//! 2. a region with fewer peers than the max replicas gets one more, on the best store;
//! 3. a region with more peers than the max replicas loses one, on the store with the most
//!    region size (not its leader's when another choice exists).
//!
//! The best store is a suitable one (Up, not down) holding no replica of the region, with
//! the smallest region size (ties: the smaller id). Regions with pending peers are left alone
//! in cases 2 and 3: they are still catching up from an earlier change.

use std::time::Duration;

use crate::cluster::RaftCluster;
use crate::core::{RegionInfo, StoreInfo, StoreStatus};
use crate::operator::{
    create_add_peer_operator, create_move_peer_operator, create_remove_peer_operator, OpKind,
    Operator,
};

/// The replica checker (see the module docs).
#[derive(Debug, Default)]
pub struct ReplicaChecker;

impl ReplicaChecker {
    /// The operator that brings `region` back to health at `now`, if it needs one.
    pub fn check(
        &self,
        cluster: &RaftCluster,
        region: &RegionInfo,
        now: Duration,
    ) -> Option<Operator> {
        let max_down = cluster.max_store_down_time();
        let max_replicas = cluster.max_replicas();
        let stores = cluster.get_stores();
        let status = |store_id: u64| {
            stores
                .iter()
                .find(|s| s.id() == store_id)
                .map(|s| s.status(now, max_down))
        };
        let lost = |store_id: u64| {
            matches!(
                status(store_id),
                None | Some(StoreStatus::Down | StoreStatus::Offline | StoreStatus::Tombstone)
            )
        };
        let holders = region.store_ids();
        let best_target = || {
            stores
                .iter()
                .filter(|s| s.is_up() && s.down_time(now) < max_down && !holders.contains(&s.id()))
                .min_by(|a, b| a.region_size.cmp(&b.region_size).then(a.id().cmp(&b.id())))
                .map(StoreInfo::id)
        };

        for peer in region.peers() {
            if !lost(peer.store_id) || region.leader_store_id() == Some(peer.store_id) {
                continue;
            }
            if let Some(target) = best_target() {
                let new = cluster.alloc_peer(target).ok()?;
                return create_move_peer_operator(
                    "replace-lost-peer",
                    cluster,
                    region,
                    OpKind::REPLICA,
                    peer.store_id,
                    target,
                    new.id,
                )
                .ok();
            }
            if region.peers().len() > max_replicas {
                return create_remove_peer_operator(
                    "remove-lost-peer",
                    cluster,
                    OpKind::REPLICA,
                    region,
                    peer.store_id,
                )
                .ok();
            }
        }
        if !region.pending_peers.is_empty() {
            return None;
        }
        if region.peers().len() < max_replicas {
            let target = best_target()?;
            let new = cluster.alloc_peer(target).ok()?;
            return Some(create_add_peer_operator(
                "make-up-replica",
                region,
                new.id,
                target,
                OpKind::REPLICA,
            ));
        }
        if region.peers().len() > max_replicas {
            let size = |id: u64| {
                stores
                    .iter()
                    .find(|s| s.id() == id)
                    .map_or(0, |s| s.region_size)
            };
            let leader = region.leader_store_id();
            let victim = region
                .peers()
                .iter()
                .map(|p| p.store_id)
                .max_by_key(|&s| (Some(s) != leader, size(s), s))?;
            return create_remove_peer_operator(
                "remove-extra-replica",
                cluster,
                OpKind::REPLICA,
                region,
                victim,
            )
            .ok();
        }
        None
    }
}

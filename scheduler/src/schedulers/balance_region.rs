//! Balance-region (stage 3C): move one replica from the store holding the most region size to
//! the store holding the least, when the gap is worth a move.

use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::cluster::RaftCluster;
use crate::core::{StoreInfo, StoreRegionKind};
use crate::operator::{create_move_peer_operator, OpKind, Operator};

/// How many regions of one source store are tried before moving on to the next store.
pub const BALANCE_REGION_RETRY_LIMIT: usize = 10;

/// The balance-region scheduler. Its randomness (which region of a store to move) comes from a
/// seeded generator, so a run replays.
#[derive(Debug)]
pub struct BalanceRegionScheduler {
    rng: ChaCha8Rng,
}

impl BalanceRegionScheduler {
    /// A scheduler whose random choices follow `seed`.
    pub fn new(seed: u64) -> BalanceRegionScheduler {
        BalanceRegionScheduler {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The scheduler's name, for logs.
    pub fn name(&self) -> &'static str {
        "balance-region-scheduler"
    }

    /// Looks at the cluster at `now` and returns an operator moving one replica, if a move is
    /// worth it.
    ///
    /// - Suitable stores are Up and have been silent for less than the max store down time.
    /// - Sources are tried from the largest region size down. From a source, a random region
    ///   is picked among its pending regions, else its follower regions, else its leader
    ///   regions, up to [`BALANCE_REGION_RETRY_LIMIT`] times; a region whose peer count is not
    ///   the max replicas is skipped.
    /// - The target is the suitable store with the smallest region size that holds no replica
    ///   of the region.
    /// - The move is made only if the source's region size exceeds the target's by more than
    ///   twice the region's approximate size (else the next source is tried): a smaller gap
    ///   would only swap the roles of the two stores.
    pub fn schedule(&mut self, cluster: &RaftCluster, now: Duration) -> Option<Operator> {
        // lab:begin 3c
        // lab:stub let _ = (cluster, now);
        // lab:stub todo!("3c: pick a region on the fullest suitable store and move it to the emptiest")
        let max_down = cluster.max_store_down_time();
        let max_replicas = cluster.max_replicas();
        let mut stores: Vec<StoreInfo> = cluster
            .get_stores()
            .into_iter()
            .filter(|s| s.is_up() && s.down_time(now) < max_down)
            .collect();
        if stores.len() < 2 {
            return None;
        }
        stores.sort_by(|a, b| b.region_size.cmp(&a.region_size).then(a.id().cmp(&b.id())));
        for source in &stores {
            for _ in 0..BALANCE_REGION_RETRY_LIMIT {
                let region = [
                    StoreRegionKind::Pending,
                    StoreRegionKind::Follower,
                    StoreRegionKind::Leader,
                ]
                .into_iter()
                .find_map(|kind| cluster.random_region(source.id(), kind, &mut self.rng));
                let Some(region) = region else {
                    break;
                };
                if region.peers().len() != max_replicas {
                    continue;
                }
                let holders = region.store_ids();
                let Some(target) = stores
                    .iter()
                    .filter(|s| !holders.contains(&s.id()))
                    .min_by(|a, b| a.region_size.cmp(&b.region_size).then(a.id().cmp(&b.id())))
                else {
                    continue;
                };
                let gap = source.region_size.saturating_sub(target.region_size);
                if gap <= 2 * region.approximate_size {
                    break;
                }
                let peer = cluster.alloc_peer(target.id()).ok()?;
                return create_move_peer_operator(
                    "balance-region",
                    cluster,
                    &region,
                    OpKind::BALANCE,
                    source.id(),
                    target.id(),
                    peer.id,
                )
                .ok();
            }
        }
        None
        // lab:end 3c
    }
}

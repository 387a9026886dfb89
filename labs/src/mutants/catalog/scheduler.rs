//! Classic bugs in the scheduler stage (3c): region heartbeat processing
//! (`RaftCluster::process_region_heartbeat`) and the balance-region scheduler
//! (`BalanceRegionScheduler::schedule`).

use crate::mutants::Mutant;

// lab:needs 3c
const CLUSTER: &str = "scheduler/src/cluster.rs";
const HEARTBEAT: &str = "pub fn process_region_heartbeat(";
const BALANCE: &str = "scheduler/src/schedulers/balance_region.rs";
const SCHEDULE: &str = "pub fn schedule(";

/// The two staleness checks of `process_region_heartbeat`: against the cached region with the
/// same id, then against every cached region the range overlaps.
const STALE_CHECKS: &str = "            if is_epoch_stale(region.epoch(), origin.epoch()) {
                return Err(stale(origin));
            }
        }
        for other in core.regions.overlaps(region.start_key(), region.end_key()) {
            if is_epoch_stale(region.epoch(), other.epoch()) {";

// lab:end-needs

/// The scheduler entries.
pub const ENTRIES: &[Mutant] = &[
    // lab:needs 3c
    // ---- 3c: region heartbeats ------------------------------------------------------------
    Mutant {
        id: "3c-stale-version-accepted",
        stage: "3c",
        bug: "the staleness checks compare conf_ver only, so a heartbeat with an older version is accepted",
        file: CLUSTER,
        after: HEARTBEAT,
        find: STALE_CHECKS,
        replace: "            if region.epoch().conf_ver < origin.epoch().conf_ver {
                return Err(stale(origin));
            }
        }
        for other in core.regions.overlaps(region.start_key(), region.end_key()) {
            if region.epoch().conf_ver < other.epoch().conf_ver {",
    },
    Mutant {
        id: "3c-conf-ver-not-compared",
        stage: "3c",
        bug: "the staleness checks compare the version only, so a heartbeat with an older conf_ver is accepted",
        file: CLUSTER,
        after: HEARTBEAT,
        find: STALE_CHECKS,
        replace: "            if region.epoch().version < origin.epoch().version {
                return Err(stale(origin));
            }
        }
        for other in core.regions.overlaps(region.start_key(), region.end_key()) {
            if region.epoch().version < other.epoch().version {",
    },
    Mutant {
        id: "3c-epoch-compared-as-one-number",
        stage: "3c",
        bug: "epochs are compared as (version, conf_ver) in order, so a newer version hides an older conf_ver",
        file: CLUSTER,
        after: HEARTBEAT,
        find: STALE_CHECKS,
        replace: "            if (region.epoch().version, region.epoch().conf_ver) < (origin.epoch().version, origin.epoch().conf_ver) {
                return Err(stale(origin));
            }
        }
        for other in core.regions.overlaps(region.start_key(), region.end_key()) {
            if (region.epoch().version, region.epoch().conf_ver) < (other.epoch().version, other.epoch().conf_ver) {",
    },
    Mutant {
        id: "3c-overlap-version-only",
        stage: "3c",
        bug: "a region the heartbeat overlaps counts as newer only by its version, not its conf_ver",
        file: CLUSTER,
        after: HEARTBEAT,
        find: "            if is_epoch_stale(region.epoch(), other.epoch()) {",
        replace: "            if region.epoch().version < other.epoch().version {",
    },
    Mutant {
        id: "3c-equal-epoch-refused",
        stage: "3c",
        bug: "a heartbeat whose epoch equals the cached one is refused as stale (<= where < belongs)",
        file: CLUSTER,
        after: HEARTBEAT,
        find: "if is_epoch_stale(region.epoch(), origin.epoch()) {",
        replace: "if region.epoch() == origin.epoch() || is_epoch_stale(region.epoch(), origin.epoch()) {",
    },
    Mutant {
        id: "3c-overlap-equal-version-refused",
        stage: "3c",
        bug: "a heartbeat overlapping a region of another id with the same version is refused (the half of a split that arrives first is lost)",
        file: CLUSTER,
        after: HEARTBEAT,
        find: "            if is_epoch_stale(region.epoch(), other.epoch()) {",
        replace: "            if other.id() != region.id() && other.epoch().version >= region.epoch().version
                || is_epoch_stale(region.epoch(), other.epoch())
            {",
    },
    Mutant {
        id: "3c-leaderless-refused",
        stage: "3c",
        bug: "a heartbeat for a region without a leader (or without peers) is refused",
        file: CLUSTER,
        after: HEARTBEAT,
        find: "        let mut core = self.core.write();",
        replace: "        if region.leader.is_none() {
            return Err(Error::InvalidRequest(format!(\"region {} has no leader\", region.id())));
        }
        let mut core = self.core.write();",
    },
    Mutant {
        id: "3c-same-id-not-checked",
        stage: "3c",
        bug: "the cached region with the same id is only checked when its range overlaps the heartbeat's",
        file: CLUSTER,
        after: HEARTBEAT,
        find: "            if is_epoch_stale(region.epoch(), origin.epoch()) {
                return Err(stale(origin));
            }",
        replace: "",
    },
    Mutant {
        id: "3c-overlaps-not-checked",
        stage: "3c",
        bug: "regions the heartbeat's range overlaps are not checked for staleness, so an old region wipes out newer split halves",
        file: CLUSTER,
        after: HEARTBEAT,
        find: "        for other in core.regions.overlaps(region.start_key(), region.end_key()) {
            if is_epoch_stale(region.epoch(), other.epoch()) {
                return Err(stale(other));
            }
        }",
        replace: "",
    },
    Mutant {
        id: "3c-unchanged-epoch-skipped",
        stage: "3c",
        bug: "a heartbeat with an unchanged epoch is skipped, so peer, leader, pending and size changes are lost",
        file: CLUSTER,
        after: HEARTBEAT,
        find: "if origin.as_ref() == Some(&region) {",
        replace: "if origin.as_ref().is_some_and(|o| o.epoch() == region.epoch()) {",
    },
    Mutant {
        id: "3c-store-status-not-refreshed",
        stage: "3c",
        bug: "store statuses (leader/region/pending counts and sizes) are not refreshed after a heartbeat",
        file: CLUSTER,
        after: HEARTBEAT,
        find: "        for store in stores {
            core.update_store_status(store);
        }",
        replace: "        drop(stores);",
    },
    Mutant {
        id: "3c-old-stores-not-refreshed",
        stage: "3c",
        bug: "only the stores of the new region are refreshed; a store that lost its peer keeps counting it",
        file: CLUSTER,
        after: HEARTBEAT,
        find: "stores.extend(origin.store_ids());",
        replace: "let _ = origin;",
    },
    Mutant {
        id: "3c-overlapped-stores-not-refreshed",
        stage: "3c",
        bug: "the stores of regions removed as overlapped are not refreshed (a merge leaves them counting a gone region)",
        file: CLUSTER,
        after: HEARTBEAT,
        find: "stores.extend(gone.store_ids());",
        replace: "let _ = gone;",
    },
    // ---- 3c: balance-region ---------------------------------------------------------------
    Mutant {
        id: "3c-balance-down-stores-used",
        stage: "3c",
        bug: "stores down longer than the max store down time are used as sources and targets",
        file: BALANCE,
        after: SCHEDULE,
        find: ".filter(|s| s.is_up() && s.down_time(now) < max_down)",
        replace: ".filter(|s| s.is_up())",
    },
    Mutant {
        id: "3c-balance-offline-sources",
        stage: "3c",
        bug: "offline stores are filtered out of the targets only: a store being taken out of the cluster is still a source",
        file: BALANCE,
        after: SCHEDULE,
        find: "        for source in &stores {",
        replace: "        let mut sources: Vec<StoreInfo> = cluster
            .get_stores()
            .into_iter()
            .filter(|s| s.down_time(now) < max_down)
            .collect();
        sources.sort_by(|a, b| b.region_size.cmp(&a.region_size).then(a.id().cmp(&b.id())));
        for source in &sources {",
    },
    Mutant {
        id: "3c-balance-offline-stores-used",
        stage: "3c",
        bug: "stores that are not Up (offline) are used as sources and targets",
        file: BALANCE,
        after: SCHEDULE,
        find: ".filter(|s| s.is_up() && s.down_time(now) < max_down)",
        replace: ".filter(|s| s.down_time(now) < max_down)",
    },
    Mutant {
        id: "3c-balance-disconnected-excluded",
        stage: "3c",
        bug: "a store silent for a little while (disconnected, not down) is refused as a target",
        file: BALANCE,
        after: SCHEDULE,
        find: ".filter(|s| s.is_up() && s.down_time(now) < max_down)",
        replace: ".filter(|s| s.is_up() && s.down_time(now) < crate::core::STORE_DISCONNECT_DURATION.min(max_down))",
    },
    Mutant {
        id: "3c-balance-sources-ascending",
        stage: "3c",
        bug: "source stores are tried from the smallest region size up",
        file: BALANCE,
        after: SCHEDULE,
        find: "stores.sort_by(|a, b| b.region_size.cmp(&a.region_size)",
        replace: "stores.sort_by(|a, b| a.region_size.cmp(&b.region_size)",
    },
    Mutant {
        id: "3c-balance-leaders-first",
        stage: "3c",
        bug: "a source's leader regions are tried before its pending and follower regions",
        file: BALANCE,
        after: SCHEDULE,
        find: "                    StoreRegionKind::Pending,
                    StoreRegionKind::Follower,
                    StoreRegionKind::Leader,",
        replace: "                    StoreRegionKind::Leader,
                    StoreRegionKind::Follower,
                    StoreRegionKind::Pending,",
    },
    Mutant {
        id: "3c-balance-pending-not-preferred",
        stage: "3c",
        bug: "regions with a pending peer on the source are not preferred (followers, then leaders only)",
        file: BALANCE,
        after: SCHEDULE,
        find: "                    StoreRegionKind::Pending,
                    StoreRegionKind::Follower,",
        replace: "                    StoreRegionKind::Follower,",
    },
    Mutant {
        id: "3c-balance-replica-count-ignored",
        stage: "3c",
        bug: "regions whose peer count differs from max replicas are moved too",
        file: BALANCE,
        after: SCHEDULE,
        find: "if region.peers().len() != max_replicas {
                    continue;
                }",
        replace: "let _ = max_replicas;",
    },
    Mutant {
        id: "3c-balance-target-holds-replica",
        stage: "3c",
        bug: "the target is the emptiest store other than the source, even if it already holds a replica",
        file: BALANCE,
        after: SCHEDULE,
        find: ".filter(|s| !holders.contains(&s.id()))",
        replace: ".filter(|s| s.id() != source.id())",
    },
    Mutant {
        id: "3c-balance-source-by-count",
        stage: "3c",
        bug: "sources are tried from the store holding the most regions down, not the largest region size",
        file: BALANCE,
        after: SCHEDULE,
        find: "stores.sort_by(|a, b| b.region_size.cmp(&a.region_size).then(a.id().cmp(&b.id())));",
        replace: "stores.sort_by(|a, b| b.region_count.cmp(&a.region_count).then(a.id().cmp(&b.id())));",
    },
    Mutant {
        id: "3c-balance-target-by-count",
        stage: "3c",
        bug: "the target is the store holding the fewest regions, not the smallest region size",
        file: BALANCE,
        after: SCHEDULE,
        find: ".min_by(|a, b| a.region_size.cmp(&b.region_size).then(a.id().cmp(&b.id())))",
        replace: ".min_by(|a, b| a.region_count.cmp(&b.region_count).then(a.id().cmp(&b.id())))",
    },
    Mutant {
        id: "3c-balance-gap-ignored",
        stage: "3c",
        bug: "a replica is moved whatever the gap between source and target",
        file: BALANCE,
        after: SCHEDULE,
        find: "if gap <= 2 * region.approximate_size {
                    break;
                }",
        replace: "let _ = gap;",
    },
    Mutant {
        id: "3c-balance-gap-factor-one",
        stage: "3c",
        bug: "a move is made when the gap exceeds the region's size, not twice it",
        file: BALANCE,
        after: SCHEDULE,
        find: "if gap <= 2 * region.approximate_size {",
        replace: "if gap <= region.approximate_size {",
    },
    Mutant {
        id: "3c-balance-gap-not-strict",
        stage: "3c",
        bug: "a move is made when the gap equals twice the region's size (< where <= belongs)",
        file: BALANCE,
        after: SCHEDULE,
        find: "if gap <= 2 * region.approximate_size {",
        replace: "if gap < 2 * region.approximate_size {",
    },
    Mutant {
        id: "3c-balance-first-source-only",
        stage: "3c",
        bug: "when the fullest store's region is not worth moving, nothing is scheduled instead of trying the next store",
        file: BALANCE,
        after: SCHEDULE,
        find: "if gap <= 2 * region.approximate_size {
                    break;",
        replace: "if gap <= 2 * region.approximate_size {
                    return None;",
    },
    Mutant {
        id: "3c-balance-unseeded-rng",
        stage: "3c",
        bug: "the region is picked with a thread-local generator, not the scheduler's seeded one, so runs do not replay",
        file: BALANCE,
        after: SCHEDULE,
        find: "cluster.random_region(source.id(), kind, &mut self.rng)",
        replace: "cluster.random_region(source.id(), kind, &mut rand::thread_rng())",
    },
    // lab:end-needs
];

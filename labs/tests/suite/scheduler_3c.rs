//! Stage 3C, region heartbeats: `RaftCluster::process_region_heartbeat` refuses stale
//! heartbeats, keeps the region cache (by id, by range, per store) and refreshes the statuses
//! of the stores involved. The 18 heartbeat tests of the original (`cluster_test.go`,
//! filter `3C`) run against the cluster model directly, with the original's fixture; the
//! checks are stronger where the original's are weak (see each test). The extra tests at the
//! end go through `SchedulerService` to show that a bad heartbeat changes nothing, and pin the
//! staleness rules the original leaves untested.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use proto::metapb::{Peer, Region, Store, StoreState};
use proto::schedulerpb::{RegionHeartbeatRequest, StoreStats};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scheduler::core::{RegionInfo, StoreInfo, StoreRegionKind};
use scheduler::{Error, RaftCluster, ScheduleConfig, SchedulerService};

// ---- builders ----

/// A peer `id` on `store_id`.
pub(crate) fn new_peer(id: u64, store_id: u64) -> Peer {
    let mut p = Peer::new();
    p.id = id;
    p.store_id = store_id;
    p
}

/// A region description.
pub(crate) fn new_region(
    id: u64,
    start: &[u8],
    end: &[u8],
    conf_ver: u64,
    version: u64,
    peers: Vec<Peer>,
) -> Region {
    let mut r = Region::new();
    r.id = id;
    r.start_key = start.to_vec();
    r.end_key = end.to_vec();
    r.mut_region_epoch().conf_ver = conf_ver;
    r.mut_region_epoch().version = version;
    r.set_peers(peers.into());
    r
}

/// A registered, up store.
pub(crate) fn new_store(id: u64) -> Store {
    let mut s = Store::new();
    s.id = id;
    s.address = format!("store{id}");
    s.state = StoreState::Up;
    s
}

/// The original's `newTestRegions(3, 3)`: region i covers `[[i], [i+1])` with epoch
/// (conf_ver 2, version 2), peers `3i + j` on stores `(i + j) % 3`, led by its first peer,
/// approximate size 0.
fn new_test_regions() -> Vec<RegionInfo> {
    let n = 3u64;
    (0..n)
        .map(|i| {
            let peers: Vec<Peer> = (0..n).map(|j| new_peer(i * n + j, (i + j) % n)).collect();
            let leader = peers[0].clone();
            let meta = new_region(i, &[i as u8], &[i as u8 + 1], 2, 2, peers);
            RegionInfo::new(meta, Some(leader))
        })
        .collect()
}

/// The original's fixture: stores 1, 2, 3 registered (store 0, which holds a peer of every
/// region, is not), the three test regions heartbeated in order, the cache checked after each.
fn set_up_test_cluster() -> (RaftCluster, Vec<RegionInfo>) {
    let cluster = RaftCluster::new(1, 1, ScheduleConfig::default());
    for id in 1..=3 {
        cluster.put_store(new_store(id)).expect("put store");
    }
    let regions = new_test_regions();
    for (i, r) in regions.iter().enumerate() {
        cluster
            .process_region_heartbeat(r.clone())
            .unwrap_or_else(|e| panic!("heartbeat of fixture region {}: {e}", r.id()));
        check_regions(&cluster, &regions[..=i]);
    }
    (cluster, regions)
}

/// A copy of `r` with `f` applied to its description.
fn with_meta(r: &RegionInfo, f: impl FnOnce(&mut Region)) -> RegionInfo {
    let mut r = r.clone();
    f(&mut r.meta);
    r
}

fn inc_version(r: &RegionInfo) -> RegionInfo {
    with_meta(r, |m| m.mut_region_epoch().version += 1)
}

fn inc_conf_ver(r: &RegionInfo) -> RegionInfo {
    with_meta(r, |m| m.mut_region_epoch().conf_ver += 1)
}

fn describe(r: &RegionInfo) -> String {
    let peers: Vec<String> = r
        .peers()
        .iter()
        .map(|p| format!("{}@s{}", p.id, p.store_id))
        .collect();
    format!(
        "region {} [\"{}\", \"{}\") epoch (conf_ver {}, version {}) peers [{}] leader {:?} pending {:?} size {}",
        r.id(),
        r.start_key().escape_ascii(),
        r.end_key().escape_ascii(),
        r.epoch().conf_ver,
        r.epoch().version,
        peers.join(", "),
        r.leader.as_ref().map(|p| p.id),
        r.pending_peers.iter().map(|p| p.id).collect::<Vec<_>>(),
        r.approximate_size
    )
}

// ---- checks ----

/// `checkRegion`: the cached region equals the expected one in full (meta, leader, peers,
/// pending peers, approximate size).
fn check_region(got: Option<&RegionInfo>, want: &RegionInfo, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: no region, expected {}", describe(want)));
    assert!(
        got == want,
        "{what}:\n  cached   {}\n  expected {}",
        describe(got),
        describe(want)
    );
}

/// Per store: (regions, leaders, followers, pending, leader size, region size) of `regions`.
fn expected_store_counts(regions: &[RegionInfo]) -> BTreeMap<u64, [u64; 6]> {
    let mut counts: BTreeMap<u64, [u64; 6]> = BTreeMap::new();
    for r in regions {
        for p in r.peers() {
            let c = counts.entry(p.store_id).or_default();
            c[0] += 1;
            c[5] += r.approximate_size;
            if r.leader.as_ref().map(|l| l.id) == Some(p.id) {
                c[1] += 1;
                c[4] += r.approximate_size;
            } else {
                c[2] += 1;
            }
        }
        for p in &r.pending_peers {
            counts.entry(p.store_id).or_default()[3] += 1;
        }
    }
    counts
}

/// `checkRegions`: the cache holds exactly `expected`. Region count; per store, the region,
/// leader and follower counts of the cache; for every peer, the cache's leader-or-follower
/// lookup of (store, region) gives the expected region; every cached region (by id) and every
/// cached region description equals the expected one.
///
/// Beyond the original: the cache's pending count per store is checked too, stores holding
/// nothing must count 0 (the original only looks at stores in the expectation), and every
/// registered store's status (leader / region / pending counts, leader / region sizes) must
/// match the expected regions: `process_region_heartbeat` refreshes them.
fn check_regions(cluster: &RaftCluster, expected: &[RegionInfo]) {
    for r in expected {
        for p in r.peers() {
            let what = format!(
                "leader-or-follower lookup of region {} on store {}",
                r.id(),
                p.store_id
            );
            check_region(
                cluster
                    .leader_or_follower_region(p.store_id, r.id())
                    .as_ref(),
                r,
                &what,
            );
        }
    }
    assert_eq!(
        cluster.region_count(),
        expected.len(),
        "number of cached regions"
    );
    let counts = expected_store_counts(expected);
    let mut stores: BTreeSet<u64> = counts.keys().copied().collect();
    stores.extend(cluster.get_stores().iter().map(StoreInfo::id));
    for r in cluster.get_regions() {
        stores.extend(r.store_ids());
    }
    for s in stores {
        let c = counts.get(&s).copied().unwrap_or_default();
        assert_eq!(
            cluster.store_region_count(s) as u64,
            c[0],
            "cache: region count of store {s}"
        );
        assert_eq!(
            cluster.store_region_count_of(s, StoreRegionKind::Leader) as u64,
            c[1],
            "cache: leader count of store {s}"
        );
        assert_eq!(
            cluster.store_region_count_of(s, StoreRegionKind::Follower) as u64,
            c[2],
            "cache: follower count of store {s}"
        );
        assert_eq!(
            cluster.store_region_count_of(s, StoreRegionKind::Pending) as u64,
            c[3],
            "cache: pending peer count of store {s}"
        );
    }
    for r in cluster.get_regions() {
        let want = expected
            .iter()
            .find(|e| e.id() == r.id())
            .unwrap_or_else(|| panic!("unexpected cached {}", describe(&r)));
        check_region(Some(&r), want, "get_regions");
    }
    for r in expected {
        check_region(
            cluster.get_region(r.id()).as_ref(),
            r,
            &format!("get_region({})", r.id()),
        );
    }
    let mut metas = cluster.get_meta_regions();
    metas.sort_by_key(|m| m.id);
    let mut want: Vec<Region> = expected.iter().map(|r| r.meta.clone()).collect();
    want.sort_by_key(|m| m.id);
    assert_eq!(metas, want, "get_meta_regions");
    check_store_statuses(cluster, expected);
}

/// Every registered store's status matches the expected regions.
fn check_store_statuses(cluster: &RaftCluster, expected: &[RegionInfo]) {
    let counts = expected_store_counts(expected);
    for s in cluster.get_stores() {
        let c = counts.get(&s.id()).copied().unwrap_or_default();
        let got = [
            s.region_count as u64,
            s.leader_count as u64,
            s.pending_peer_count as u64,
            s.leader_size,
            s.region_size,
        ];
        let want = [c[0], c[1], c[3], c[4], c[5]];
        assert_eq!(
            got,
            want,
            "status of store {} as [region count, leader count, pending peer count, leader size, \
             region size]: not refreshed after a heartbeat?",
            s.id()
        );
    }
}

fn accept(cluster: &RaftCluster, r: &RegionInfo) {
    if let Err(e) = cluster.process_region_heartbeat(r.clone()) {
        panic!("heartbeat refused: {e}\n  heartbeat {}", describe(r));
    }
}

fn refuse(cluster: &RaftCluster, r: &RegionInfo) {
    match cluster.process_region_heartbeat(r.clone()) {
        Err(Error::StaleRegion { .. }) => {}
        Err(e) => panic!(
            "stale heartbeat refused with {e:?}, expected Error::StaleRegion\n  heartbeat {}",
            describe(r)
        ),
        Ok(()) => panic!(
            "stale heartbeat accepted\n  heartbeat {}\n  cached    {}",
            describe(r),
            cluster
                .get_region(r.id())
                .map_or("nothing".into(), |c| describe(&c))
        ),
    }
}

// ---- the original's 18 tests ----

/// `TestRegionNotUpdate3C`: re-sending every region unchanged is accepted and changes nothing.
#[test]
fn region_not_update_3c() {
    let (cluster, regions) = set_up_test_cluster();
    for r in &regions {
        accept(&cluster, r);
        check_regions(&cluster, &regions);
    }
}

/// `TestRegionUpdateVersion3C`: a heartbeat with a newer version is accepted and cached.
#[test]
fn region_update_version_3c() {
    let (cluster, mut regions) = set_up_test_cluster();
    for i in 0..regions.len() {
        regions[i] = inc_version(&regions[i]);
        accept(&cluster, &regions[i]);
        check_regions(&cluster, &regions);
    }
}

/// For every region of the fixture in turn: the heartbeat `cached(origin)` is accepted, then
/// `sent(origin)` is refused as stale and the cache keeps what it had.
fn stale_after(cached: fn(&RegionInfo) -> RegionInfo, sent: fn(&RegionInfo) -> RegionInfo) {
    let (cluster, mut regions) = set_up_test_cluster();
    for i in 0..regions.len() {
        let origin = regions[i].clone();
        regions[i] = cached(&origin);
        accept(&cluster, &regions[i]);
        check_regions(&cluster, &regions);
        refuse(&cluster, &sent(&origin));
        check_regions(&cluster, &regions);
    }
}

/// `TestRegionWithStaleVersion3C`: after version + 1 is cached, the original region with
/// conf_ver + 1 (an older version, a newer conf_ver) is refused and the cache keeps the newer
/// version. The original only asks for "an error"; here it must be `Error::StaleRegion`.
#[test]
fn region_with_stale_version_3c() {
    stale_after(inc_version, inc_conf_ver);
}

/// `TestRegionUpdateVersionAndConfver3C`: version + 1 and conf_ver + 1 together are accepted.
#[test]
fn region_update_version_and_conf_ver_3c() {
    let (cluster, mut regions) = set_up_test_cluster();
    for i in 0..regions.len() {
        regions[i] = inc_conf_ver(&inc_version(&regions[i]));
        accept(&cluster, &regions[i]);
        check_regions(&cluster, &regions);
    }
}

/// `TestRegionWithStaleConfVer3C`: after conf_ver + 1 is cached, the original (older conf_ver,
/// same version) is refused with `Error::StaleRegion` and the cache keeps conf_ver + 1.
#[test]
fn region_with_stale_conf_ver_3c() {
    stale_after(inc_conf_ver, |r| r.clone());
}

/// The mirror of `region_with_stale_version_3c`, which the original lacks: after conf_ver + 1
/// is cached, the original region with version + 1 (a newer version, an older conf_ver) is
/// refused with `Error::StaleRegion`. Either half being older makes a heartbeat stale; catches
/// an epoch compared as one number (version first, conf_ver only on a tie).
#[test]
fn region_with_newer_version_but_stale_conf_ver_3c() {
    stale_after(inc_conf_ver, inc_version);
}

/// `TestRegionAddPendingPeer3C`: a heartbeat marking one (seeded random) peer pending is
/// accepted, cached with its pending peer, and counted. The original's final per-store
/// pending-count check compares against an empty expectation and so checks nothing; here every
/// store's pending count, in the cache and in its status, is checked after each heartbeat, and
/// at the end each store reports exactly the pending peers it holds.
#[test]
fn region_add_pending_peer_3c() {
    let (cluster, mut regions) = set_up_test_cluster();
    let mut rng = StdRng::seed_from_u64(3);
    let mut pending_on: BTreeMap<u64, usize> = BTreeMap::new();
    for i in 0..regions.len() {
        let peer = regions[i].peers()[rng.gen_range(0..3)].clone();
        *pending_on.entry(peer.store_id).or_default() += 1;
        regions[i].pending_peers = vec![peer];
        accept(&cluster, &regions[i]);
        check_regions(&cluster, &regions);
    }
    for s in 0..=3 {
        let want = pending_on.get(&s).copied().unwrap_or(0);
        assert_eq!(
            cluster.store_region_count_of(s, StoreRegionKind::Pending),
            want,
            "cache: pending peers on store {s}"
        );
        if let Some(store) = cluster.get_store(s) {
            assert_eq!(
                store.pending_peer_count, want,
                "status: pending peers of store {s}"
            );
        }
    }
}

/// `TestRegionRemovePendingPeer3C`: marking a peer pending and then clearing the pending peers
/// are both cached; at the end stores 1, 2, 3 report no pending peer. Also checked (beyond the
/// original): while a peer is pending its store counts it.
#[test]
fn region_remove_pending_peer_3c() {
    let (cluster, mut regions) = set_up_test_cluster();
    for i in 0..regions.len() {
        // The second peer: on stores 1, 2, 0 for regions 0, 1, 2.
        let peer = regions[i].peers()[1].clone();
        regions[i].pending_peers = vec![peer.clone()];
        accept(&cluster, &regions[i]);
        check_regions(&cluster, &regions);
        if let Some(s) = cluster.get_store(peer.store_id) {
            assert_eq!(
                s.pending_peer_count, 1,
                "status: store {} holds pending peer {}",
                peer.store_id, peer.id
            );
        }
        regions[i].pending_peers.clear();
        accept(&cluster, &regions[i]);
        check_regions(&cluster, &regions);
    }
    for s in 1..=3 {
        let store = cluster.get_store(s).expect("registered store");
        assert_eq!(
            store.pending_peer_count, 0,
            "status: pending peers of store {s}"
        );
    }
}

/// `TestRegionRemovePeers3C`: each region reduced to its first peer with an unchanged epoch is
/// cached as such (an implementation that skips heartbeats whose epoch did not change fails
/// here), and the stores that lost a peer see it in their statuses.
#[test]
fn region_remove_peers_3c() {
    let (cluster, mut regions) = set_up_test_cluster();
    for i in 0..regions.len() {
        regions[i] = with_meta(&regions[i], |m| m.peers.truncate(1));
        accept(&cluster, &regions[i]);
        check_regions(&cluster, &regions);
    }
}

/// `TestRegionAddBackPeers3C`: a region reduced to its first peer, then the original 3-peer
/// region, both with the same epoch: both are accepted and cached.
#[test]
fn region_add_back_peers_3c() {
    let (cluster, mut regions) = set_up_test_cluster();
    for i in 0..regions.len() {
        let origin = regions[i].clone();
        regions[i] = with_meta(&origin, |m| m.peers.truncate(1));
        accept(&cluster, &regions[i]);
        check_regions(&cluster, &regions);
        regions[i] = origin;
        accept(&cluster, &regions[i]);
        check_regions(&cluster, &regions);
    }
}

/// `TestRegionChangeLeader3C`: a new leader (the second peer) is cached; leader and follower
/// counts, the lookups, and (beyond the original) the stores' leader counts follow.
#[test]
fn region_change_leader_3c() {
    let (cluster, mut regions) = set_up_test_cluster();
    for i in 0..regions.len() {
        regions[i].leader = Some(regions[i].peers()[1].clone());
        accept(&cluster, &regions[i]);
        check_regions(&cluster, &regions);
    }
}

/// `TestRegionChangeApproximateSize3C`: a new approximate size (144) is cached, and (beyond
/// the original) the stores' sizes follow.
#[test]
fn region_change_approximate_size_3c() {
    let (cluster, mut regions) = set_up_test_cluster();
    for i in 0..regions.len() {
        regions[i].approximate_size = 144;
        accept(&cluster, &regions[i]);
        check_regions(&cluster, &regions);
    }
}

/// `TestRegionCounts3C`: stores 0, 1, 2 each hold a peer of the three regions. Beyond the
/// original: store 3 holds none, and the registered stores' statuses say the same.
#[test]
fn region_counts_3c() {
    let (cluster, _) = set_up_test_cluster();
    for s in 0..=2 {
        assert_eq!(cluster.store_region_count(s), 3, "regions on store {s}");
    }
    assert_eq!(cluster.store_region_count(3), 0, "regions on store 3");
    for s in 1..=3 {
        let want = if s == 3 { 0 } else { 3 };
        assert_eq!(
            cluster.get_store(s).map(|s| s.region_count),
            Some(want),
            "status: region count of store {s}"
        );
    }
}

/// `TestRegionGetRegions3C`: `get_regions` and `get_meta_regions` give the heartbeated regions,
/// all of them (the original only checks that each one returned is expected).
#[test]
fn region_get_regions_3c() {
    let (cluster, regions) = set_up_test_cluster();
    let got = cluster.get_regions();
    assert_eq!(got.len(), regions.len(), "get_regions");
    for r in &got {
        check_region(Some(r), &regions[r.id() as usize], "get_regions");
    }
    let metas = cluster.get_meta_regions();
    assert_eq!(metas.len(), regions.len(), "get_meta_regions");
    for m in &metas {
        assert_eq!(m, &regions[m.id as usize].meta, "get_meta_regions");
    }
}

/// `TestRegionGetStores3C`: the stores of each cached region hold a peer of it, and its
/// follower stores hold a non-leader peer. Stronger than the original, which passes the
/// expected region (so the answer does not depend on the heartbeats at all): here the cached
/// region is used and the sets must be exactly the registered stores of its (non-leader) peers.
#[test]
fn region_get_stores_3c() {
    let (cluster, regions) = set_up_test_cluster();
    for want in &regions {
        let r = cluster.get_region(want.id()).expect("region cached");
        let registered = |s: &u64| (1..=3).contains(s);
        let stores: BTreeSet<u64> = cluster
            .get_region_stores(&r)
            .iter()
            .map(StoreInfo::id)
            .collect();
        let expect: BTreeSet<u64> = want.store_ids().into_iter().filter(registered).collect();
        assert_eq!(stores, expect, "stores of region {}", r.id());
        let followers: BTreeSet<u64> = cluster
            .get_follower_stores(&r)
            .iter()
            .map(StoreInfo::id)
            .collect();
        let leader = want.leader_store_id();
        let expect: BTreeSet<u64> = want
            .store_ids()
            .into_iter()
            .filter(|s| registered(s) && Some(*s) != leader)
            .collect();
        assert_eq!(followers, expect, "follower stores of region {}", r.id());
    }
}

/// `TestRegionGetStoresInfo3C`: every registered store's leader count, region count, leader
/// size and region size match the cached regions, so heartbeat processing must refresh the
/// statuses of the stores involved. The fixture's sizes are all 0, so (beyond the original)
/// the regions are then heartbeated again with distinct sizes and new leaders, and the
/// statuses are compared with values computed from the regions sent.
#[test]
fn region_get_stores_info_3c() {
    let (cluster, mut regions) = set_up_test_cluster();
    let check_against_cache = || {
        for s in cluster.get_stores() {
            let id = s.id();
            assert_eq!(
                s.leader_count,
                cluster.store_region_count_of(id, StoreRegionKind::Leader),
                "leader count of store {id}"
            );
            assert_eq!(
                s.region_count,
                cluster.store_region_count(id),
                "region count of store {id}"
            );
        }
    };
    check_against_cache();
    check_store_statuses(&cluster, &regions);
    for (i, r) in regions.iter_mut().enumerate() {
        r.approximate_size = 10 * (i as u64 + 1);
        r.leader = Some(r.peers()[2].clone());
        accept(&cluster, r);
    }
    check_against_cache();
    check_store_statuses(&cluster, &regions);
}

/// `TestHeartbeatSplit3C`: a split's halves arrive in either order (the one that keeps the old
/// id, or the new one first); lookups by key follow, and a range the old region covered but no
/// heartbeat has claimed yet finds nothing. Regions without peers or leader are accepted.
#[test]
fn heartbeat_split_3c() {
    let cluster = RaftCluster::new(1, 1, ScheduleConfig::default());
    let region = |id, start: &[u8], end: &[u8], version| {
        RegionInfo::new(new_region(id, start, end, 1, version, Vec::new()), None)
    };
    let find = |key: &[u8]| cluster.search_region(key).map(|r| r.id());

    let r1 = region(1, b"", b"", 1);
    accept(&cluster, &r1);
    check_region(
        cluster.search_region(b"foo").as_ref(),
        &r1,
        "lookup of \"foo\"",
    );

    // Split: region 2 [∅, m) and region 1 [m, ∅) version 2; region 2 arrives first.
    let r2 = region(2, b"", b"m", 1);
    let r1 = region(1, b"m", b"", 2);
    accept(&cluster, &r2);
    check_region(cluster.search_region(b"a").as_ref(), &r2, "lookup of \"a\"");
    assert_eq!(
        find(b"z"),
        None,
        "lookup of \"z\": region 1's old range is gone"
    );
    accept(&cluster, &r1);
    check_region(cluster.search_region(b"z").as_ref(), &r1, "lookup of \"z\"");

    // Split region 1: region 3 [m, q) and region 1 [q, ∅) version 3; region 1 arrives first.
    let r3 = region(3, b"m", b"q", 1);
    let r1 = region(1, b"q", b"", 3);
    accept(&cluster, &r1);
    check_region(cluster.search_region(b"z").as_ref(), &r1, "lookup of \"z\"");
    check_region(cluster.search_region(b"a").as_ref(), &r2, "lookup of \"a\"");
    assert_eq!(find(b"n"), None, "lookup of \"n\": not claimed yet");
    accept(&cluster, &r3);
    check_region(cluster.search_region(b"n").as_ref(), &r3, "lookup of \"n\"");
    assert_eq!(cluster.region_count(), 3, "regions 1, 2, 3");
}

/// The original's `core.SplitRegions`: each region [s, e) splits at the byte s/2 + e/2 (an
/// empty start is 0, an empty end 255); with n regions the left half gets id + n, the right
/// id + 2n, both version + 1.
fn split_regions(regions: &[RegionInfo]) -> Vec<RegionInfo> {
    let n = regions.len() as u64;
    let mut out = Vec::with_capacity(regions.len() * 2);
    for r in regions {
        let start = r.start_key().first().copied().unwrap_or(0);
        let end = r.end_key().first().copied().unwrap_or(u8::MAX);
        let middle = vec![start / 2 + end / 2];
        let left = with_meta(r, |m| {
            m.id += n;
            m.end_key = middle.clone();
            m.mut_region_epoch().version += 1;
        });
        let right = with_meta(r, |m| {
            m.id += 2 * n;
            m.start_key = middle.clone();
            m.mut_region_epoch().version += 1;
        });
        out.push(left);
        out.push(right);
    }
    out
}

/// The original's `core.MergeRegions`: adjacent pairs merge into a region with id left + n and
/// the epoch of the half with the larger version, version + 1.
fn merge_regions(regions: &[RegionInfo]) -> Vec<RegionInfo> {
    let n = regions.len() as u64;
    regions
        .chunks(2)
        .map(|pair| {
            let (left, right) = (&pair[0], pair.last().unwrap_or(&pair[0]));
            let mut epoch = if left.epoch().version > right.epoch().version {
                left.epoch().clone()
            } else {
                right.epoch().clone()
            };
            epoch.version += 1;
            let mut meta = Region::new();
            meta.id = left.id() + n;
            meta.start_key = left.start_key().to_vec();
            meta.end_key = right.end_key().to_vec();
            meta.set_region_epoch(epoch);
            RegionInfo::new(meta, None)
        })
        .collect()
}

/// The original's `heartbeatRegions`: every region is accepted and then found by id, by its
/// start key and by the byte before its end; once all are in, the same again, and the byte
/// after the end finds another region. Beyond the original: the cache holds exactly these
/// regions.
fn heartbeat_regions(cluster: &RaftCluster, regions: &[RegionInfo]) {
    let lookups = |r: &RegionInfo| {
        check_region(cluster.get_region(r.id()).as_ref(), r, "lookup by id");
        check_region(
            cluster.search_region(r.start_key()).as_ref(),
            r,
            "lookup by start key",
        );
        if let Some(&end) = r.end_key().first() {
            check_region(
                cluster.search_region(&[end.wrapping_sub(1)]).as_ref(),
                r,
                "lookup of the byte before the end key",
            );
        }
    };
    for r in regions {
        accept(cluster, r);
        lookups(r);
    }
    for r in regions {
        lookups(r);
        if let Some(&end) = r.end_key().first() {
            let after = cluster
                .search_region(&[end.wrapping_add(1)])
                .map(|o| o.id());
            assert!(
                after.is_some() && after != Some(r.id()),
                "lookup of the byte after the end of {} found {after:?}",
                describe(r)
            );
        }
    }
    assert_eq!(
        cluster.region_count(),
        regions.len(),
        "number of cached regions"
    );
}

/// `TestRegionSplitAndMerge3C`: 7 rounds of splits, 7 of merges, then 14 rounds where every
/// third merges and the others split, each round heartbeated region by region and checked
/// with `heartbeat_regions`. Regions without peers or leader, epoch starting at (0, 0).
#[test]
fn region_split_and_merge_3c() {
    let cluster = RaftCluster::new(1, 1, ScheduleConfig::default());
    let mut meta = Region::new();
    meta.mut_region_epoch();
    let mut regions = vec![RegionInfo::new(meta, None)];
    let n = 7;
    for _ in 0..n {
        regions = split_regions(&regions);
        heartbeat_regions(&cluster, &regions);
    }
    for _ in 0..n {
        regions = merge_regions(&regions);
        heartbeat_regions(&cluster, &regions);
    }
    for i in 0..2 * n {
        regions = if (i + 1) % 3 == 0 {
            merge_regions(&regions)
        } else {
            split_regions(&regions)
        };
        heartbeat_regions(&cluster, &regions);
    }
}

/// Beyond the original: heartbeats of one region race. In each of 20,000 rounds, four threads
/// released together by a barrier send versions 1 to 4 of a fresh region, while two threads
/// look regions up. Whatever the order, the cache must end at version 4: a heartbeat must be
/// checked and stored under one hold of the lock. Checked under one hold and stored under
/// another, an older heartbeat checked before a newer one was stored overwrites it.
///
/// A race cannot be forced, so this test only makes the bug likely to show: it never fails
/// on correct code. With the lock split between check and store, 9 to 58 of the 20,000
/// rounds ended on an older version in each of eight runs on two cores, one of which was
/// kept busy in half of them, except one busy run where none did. That is why the split lock
/// is not in the mutant catalog, which must catch every entry every time. The lookups make
/// the bug show: a heartbeat taking the lock a second time waits behind them, and the
/// heartbeats queued before it go first. The original's concurrency test almost never shows
/// it.
#[test]
fn racing_heartbeats_of_one_region_keep_the_newest_3c() {
    const ROUNDS: u64 = 20_000;
    const THREADS: u64 = 4;
    let cluster = RaftCluster::new(1, 10_000, ScheduleConfig::default());
    cluster.put_store(new_store(1)).expect("put store");
    let barrier = std::sync::Barrier::new(THREADS as usize);
    let racing = AtomicUsize::new(THREADS as usize);
    // The first failure. After one, the racing threads stop calling the cluster but keep
    // meeting at the barrier, so a heartbeat that panics or errs ends the test instead of
    // leaving the others waiting there for ever.
    let failure: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|scope| {
        // Lookups run meanwhile, as clients' do: a heartbeat that takes the lock a second
        // time then waits behind them, and the heartbeats queued before it go first.
        for _ in 0..2 {
            let (cluster, racing) = (&cluster, &racing);
            scope.spawn(move || {
                while racing.load(Ordering::Relaxed) > 0 {
                    let _ = cluster.search_region(b"00000000");
                }
            });
        }
        for version in 1..=THREADS {
            let (cluster, barrier, racing, failure) = (&cluster, &barrier, &racing, &failure);
            scope.spawn(move || {
                for round in 0..ROUNDS {
                    let start = format!("{round:08}").into_bytes();
                    let end = format!("{:08}", round + 1).into_bytes();
                    let peer = new_peer(ROUNDS + 1 + round, 1);
                    let region =
                        new_region(round + 1, &start, &end, 1, version, vec![peer.clone()]);
                    let info = RegionInfo::new(region, Some(peer));
                    barrier.wait();
                    if failure.lock().is_ok_and(|f| f.is_some()) {
                        continue;
                    }
                    let what = match catch_unwind(AssertUnwindSafe(|| {
                        cluster.process_region_heartbeat(info)
                    })) {
                        Ok(Ok(()) | Err(Error::StaleRegion { .. })) => continue,
                        Ok(Err(e)) => format!("{e:?}"),
                        Err(panic) => panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "a panic".to_owned()),
                    };
                    if let Ok(mut first) = failure.lock() {
                        first.get_or_insert(format!(
                            "region {}, version {version}: {what}",
                            round + 1
                        ));
                    }
                }
                racing.fetch_sub(1, Ordering::Relaxed);
            });
        }
    });
    if let Some(failure) = failure.into_inner().ok().flatten() {
        panic!("a racing heartbeat failed: {failure}");
    }
    let regressed: Vec<(u64, Option<u64>)> = (1..=ROUNDS)
        .map(|id| (id, cluster.get_region(id).map(|r| r.epoch().version)))
        .filter(|(_, version)| *version != Some(THREADS))
        .collect();
    assert!(
        regressed.is_empty(),
        "{} of {ROUNDS} regions did not end at the newest version {THREADS} heartbeated; \
         (region, cached version) of the first: {:?}",
        regressed.len(),
        &regressed[..regressed.len().min(10)]
    );
}

/// The 2000 single-peer regions of `TestConcurrentHandleRegion3C`: region i + 1 covers
/// `[format!("{:5}", i), format!("{:5}", i + 1))` (the first start and the last end
/// unbounded), epoch (1, 1), one peer (id 2001 + i) on store 1, which leads.
fn concurrent_regions() -> Vec<RegionHeartbeatRequest> {
    let n = 2000u64;
    (0..n)
        .map(|i| {
            let start = if i == 0 {
                Vec::new()
            } else {
                format!("{i:5}").into_bytes()
            };
            let end = if i == n - 1 {
                Vec::new()
            } else {
                format!("{:5}", i + 1).into_bytes()
            };
            let peer = new_peer(n + 1 + i, 1);
            let mut req = RegionHeartbeatRequest::new();
            req.set_region(new_region(i + 1, &start, &end, 1, 1, vec![peer.clone()]));
            req.set_leader(peer);
            req
        })
        .collect()
}

/// The cache holds exactly the 2000 regions of `reqs`, each found by id and by every key of
/// its range's ends, and store 1 counts them all.
fn check_concurrent_result(cluster: &RaftCluster, reqs: &[RegionHeartbeatRequest]) {
    assert_eq!(
        cluster.region_count(),
        reqs.len(),
        "number of cached regions"
    );
    for req in reqs {
        let want = RegionInfo::from_heartbeat(req);
        check_region(
            cluster.get_region(want.id()).as_ref(),
            &want,
            "lookup by id",
        );
        check_region(
            cluster.search_region(want.start_key()).as_ref(),
            &want,
            "lookup by start key",
        );
        if !want.start_key().is_empty() {
            let mut inside = want.start_key().to_vec();
            inside.push(b'~');
            check_region(
                cluster.search_region(&inside).as_ref(),
                &want,
                "lookup inside the range",
            );
        }
    }
    let n = reqs.len();
    let s1 = cluster.get_store(1).expect("store 1");
    assert_eq!(
        (s1.region_count, s1.leader_count, s1.region_size as usize),
        (n, n, n),
        "store 1 status (region count, leader count, region size)"
    );
    for s in 2..=3 {
        let st = cluster.get_store(s).expect("store");
        assert_eq!(
            (st.region_count, st.leader_count),
            (0, 0),
            "store {s} status"
        );
    }
}

/// `TestConcurrentHandleRegion3C`: 2000 heartbeats of distinct regions from 4 threads, first
/// through `SchedulerService::region_heartbeat`, then through
/// `RaftCluster::process_region_heartbeat` on a fresh cluster. The original only waits for
/// any response on one stream; here every call must succeed and afterwards the cache must
/// hold exactly the 2000 regions, each findable by key, with store 1 counting all of them.
/// Then 4 threads race heartbeats of versions 1 to 8 of the same 50 regions in different
/// orders: only `Error::StaleRegion` may come back, and each region must end at version 8
/// (checking staleness and storing must not interleave with another heartbeat). No sleeps.
#[test]
fn concurrent_handle_region_3c() {
    const THREADS: usize = 4;
    let reqs = concurrent_regions();

    let service = SchedulerService::new(1, 10_000, ScheduleConfig::default(), 0);
    for s in 1..=3 {
        service.put_store(new_store(s)).expect("put store");
    }
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (service, reqs) = (&service, &reqs);
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for req in reqs.iter().skip(t).step_by(THREADS) {
                        if let Err(e) = service.region_heartbeat(req, Duration::from_secs(1)) {
                            failures.push(format!("region {}: {e}", req.get_region().id));
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("heartbeat thread panicked"))
            .collect()
    });
    assert!(failures.is_empty(), "refused heartbeats: {failures:?}");
    check_concurrent_result(service.cluster(), &reqs);

    let cluster = RaftCluster::new(1, 10_000, ScheduleConfig::default());
    for s in 1..=3 {
        cluster.put_store(new_store(s)).expect("put store");
    }
    let infos: Vec<RegionInfo> = reqs.iter().map(RegionInfo::from_heartbeat).collect();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (cluster, infos) = (&cluster, &infos);
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for r in infos.iter().skip(t).step_by(THREADS) {
                        if let Err(e) = cluster.process_region_heartbeat(r.clone()) {
                            failures.push(format!("region {}: {e}", r.id()));
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("heartbeat thread panicked"))
            .collect()
    });
    assert!(failures.is_empty(), "refused heartbeats: {failures:?}");
    check_concurrent_result(&cluster, &reqs);

    // Races on the same regions: versions 1..=8 of regions 1..=50, each thread in its own
    // seeded order.
    let cluster = RaftCluster::new(1, 10_000, ScheduleConfig::default());
    cluster.put_store(new_store(1)).expect("put store");
    let versions: Vec<RegionInfo> = infos[..50]
        .iter()
        .flat_map(|r| (1..=8).map(move |v| with_meta(r, |m| m.mut_region_epoch().version = v)))
        .collect();
    let unexpected: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (cluster, versions) = (&cluster, &versions);
                scope.spawn(move || {
                    let mut order: Vec<&RegionInfo> = versions.iter().collect();
                    let mut rng = StdRng::seed_from_u64(t as u64);
                    for i in (1..order.len()).rev() {
                        order.swap(i, rng.gen_range(0..=i));
                    }
                    let mut unexpected = Vec::new();
                    for r in order {
                        match cluster.process_region_heartbeat(r.clone()) {
                            Ok(()) | Err(Error::StaleRegion { .. }) => {}
                            Err(e) => unexpected.push(format!("{}: {e:?}", describe(r))),
                        }
                    }
                    unexpected
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("heartbeat thread panicked"))
            .collect()
    });
    assert!(unexpected.is_empty(), "unexpected errors: {unexpected:?}");
    assert_eq!(cluster.region_count(), 50, "number of cached regions");
    for r in &infos[..50] {
        let cached = cluster.get_region(r.id()).expect("region cached");
        assert_eq!(
            cached.epoch().version,
            8,
            "region {}: the newest version heartbeated is 8",
            r.id()
        );
    }
    assert_eq!(
        cluster
            .get_store(1)
            .map(|s| (s.region_count, s.leader_count)),
        Some((50, 50)),
        "store 1 status"
    );
}

// ---- staleness rules the original does not test ----

/// A cluster model with stores 1, 2 and 3 registered.
fn cluster_of_three_stores() -> RaftCluster {
    let cluster = RaftCluster::new(1, 100, ScheduleConfig::default());
    for s in 1..=3 {
        cluster.put_store(new_store(s)).expect("put store");
    }
    cluster
}

/// Region `id` over `range` at epoch `(conf_ver, version)`, with peers `id * 10` and
/// `id * 10 + 1` on the two `stores`, led by the first; approximate size 7.
fn two_peer_region(
    id: u64,
    range: (&[u8], &[u8]),
    epoch: (u64, u64),
    stores: [u64; 2],
) -> RegionInfo {
    let peers = vec![
        new_peer(id * 10, stores[0]),
        new_peer(id * 10 + 1, stores[1]),
    ];
    let leader = peers[0].clone();
    let region = new_region(id, range.0, range.1, epoch.0, epoch.1, peers);
    let mut r = RegionInfo::new(region, Some(leader));
    r.approximate_size = 7;
    r
}

/// A heartbeat whose range overlaps a cached region of another id with a newer version is
/// stale (that region came from a later split or merge), even when nothing with its own id is
/// cached; the cache and the store statuses do not change. One whose overlapped regions all
/// have older versions is accepted and replaces them.
#[test]
fn stale_overlapping_region_3c() {
    let cluster = cluster_of_three_stores();
    let region = |id, start: &[u8], end: &[u8], version, stores| {
        two_peer_region(id, (start, end), (1, version), stores)
    };
    // Region 1 [∅, ∅) split into 2 [∅, m) and 1 [m, ∅), both version 2.
    let left = region(2, b"", b"m", 2, [1, 2]);
    let right = region(1, b"m", b"", 2, [1, 3]);
    accept(&cluster, &left);
    accept(&cluster, &right);
    let expected = vec![left.clone(), right.clone()];
    check_regions(&cluster, &expected);

    // A region 5 from before the split (version 1) covering everything: stale against both.
    refuse(&cluster, &region(5, b"", b"", 1, [2, 3]));
    check_regions(&cluster, &expected);
    // A region 6 at version 1 overlapping only the left half: stale against region 2.
    refuse(&cluster, &region(6, b"a", b"c", 1, [2, 3]));
    check_regions(&cluster, &expected);

    // Merge: region 2 [∅, ∅) version 3 takes region 1's range.
    let merged = region(2, b"", b"", 3, [2, 3]);
    accept(&cluster, &merged);
    check_regions(&cluster, std::slice::from_ref(&merged));
}

/// The overlap rule counts conf_ver too: a heartbeat of a region not cached yet, whose range
/// overlaps a cached region of another id with the same version but a larger conf_ver, is
/// stale (spec: an overlapping region with a larger version or conf_ver) and changes nothing.
/// Catches an overlap check that compares versions alone.
#[test]
fn stale_overlapping_conf_ver_3c() {
    let cluster = cluster_of_three_stores();
    let region = |id, start: &[u8], end: &[u8], conf_ver, stores| {
        two_peer_region(id, (start, end), (conf_ver, 2), stores)
    };
    let left = region(2, b"", b"m", 3, [1, 2]);
    let right = region(1, b"m", b"", 1, [1, 3]);
    accept(&cluster, &left);
    accept(&cluster, &right);
    let expected = vec![left.clone(), right.clone()];
    check_regions(&cluster, &expected);
    // Region 7 at version 2, conf_ver 1, inside region 2's range (conf_ver 3).
    refuse(&cluster, &region(7, b"a", b"c", 1, [2, 3]));
    check_regions(&cluster, &expected);
    // At region 2's conf_ver it is not stale, and replaces the range it overlaps.
    let newer = region(7, b"", b"m", 3, [2, 3]);
    accept(&cluster, &newer);
    check_regions(&cluster, &[newer, right]);
}

/// A stale heartbeat for a cached id is refused even when its range does not overlap the
/// cached range of that id (region 1 at version 2 claiming a range now held by region 3,
/// while region 1 is cached at version 3 elsewhere): the same-id check cannot be left to the
/// overlap check.
#[test]
fn stale_region_with_a_moved_range_3c() {
    let cluster = RaftCluster::new(1, 100, ScheduleConfig::default());
    let region = |id, start: &[u8], end: &[u8], version| {
        RegionInfo::new(new_region(id, start, end, 1, version, Vec::new()), None)
    };
    let r1 = region(1, b"q", b"", 3);
    let r3 = region(3, b"m", b"q", 1);
    accept(&cluster, &r1);
    accept(&cluster, &r3);
    refuse(&cluster, &region(1, b"m", b"q", 2));
    check_region(cluster.get_region(1).as_ref(), &r1, "region 1");
    check_region(cluster.search_region(b"n").as_ref(), &r3, "lookup of \"n\"");
    assert_eq!(cluster.region_count(), 2);
}

/// When a heartbeat replaces regions its range overlaps (a merge), the stores of the regions
/// removed have their statuses refreshed too, not only the stores of the new region.
#[test]
fn overlapped_regions_leave_store_statuses_3c() {
    let cluster = RaftCluster::new(1, 100, ScheduleConfig::default());
    for s in 1..=4 {
        cluster.put_store(new_store(s)).expect("put store");
    }
    let region = |id, start: &[u8], end: &[u8], version, stores: [u64; 3]| {
        let peers: Vec<Peer> = stores
            .iter()
            .enumerate()
            .map(|(i, &s)| new_peer(id * 10 + i as u64, s))
            .collect();
        let leader = peers[0].clone();
        let mut r = RegionInfo::new(new_region(id, start, end, 1, version, peers), Some(leader));
        r.approximate_size = 5;
        r
    };
    let left = region(1, b"", b"m", 2, [1, 2, 3]);
    let right = region(2, b"m", b"", 2, [4, 2, 3]);
    accept(&cluster, &left);
    accept(&cluster, &right);
    check_regions(&cluster, &[left.clone(), right]);
    // Region 1 merges region 2.
    let merged = region(1, b"", b"", 3, [1, 2, 3]);
    accept(&cluster, &merged);
    check_regions(&cluster, &[merged]);
    let s4 = cluster.get_store(4).expect("store 4");
    assert_eq!(
        (s4.region_count, s4.leader_count, s4.region_size),
        (0, 0, 0),
        "store 4 lost its only region in the merge"
    );
}

// ---- through the service ----

const T0: Duration = Duration::from_secs(100);

fn store_stats(id: u64) -> StoreStats {
    let mut s = StoreStats::new();
    s.store_id = id;
    s.capacity = 1000 << 20;
    s.available = 900 << 20;
    s
}

/// A heartbeat: region `id` over `[start, end)` with epoch (conf_ver, version), peers as
/// (peer id, store id), led by peer `leader`, size in MiB.
pub(crate) fn heartbeat(
    id: u64,
    range: (&[u8], &[u8]),
    epoch: (u64, u64),
    peers: &[(u64, u64)],
    leader: u64,
    size_mib: u64,
) -> RegionHeartbeatRequest {
    let peers: Vec<Peer> = peers.iter().map(|&(p, s)| new_peer(p, s)).collect();
    let mut req = RegionHeartbeatRequest::new();
    if let Some(l) = peers.iter().find(|p| p.id == leader) {
        req.set_leader(l.clone());
    }
    req.set_region(new_region(id, range.0, range.1, epoch.0, epoch.1, peers));
    req.approximate_size = size_mib << 20;
    req
}

/// Stores 1-4 up and heartbeating, store 5 a tombstone; region 10 `[∅, m)` epoch (2, 3) with
/// peers 11, 12, 13 on stores 1, 2, 3 led by 11; region 20 `[m, ∅)` epoch (1, 1) with peers
/// 21, 22, 23 on stores 2, 3, 4 led by 22. Ids below 100 are allocated.
fn service_with_regions() -> SchedulerService {
    let s = SchedulerService::new(1, 100, ScheduleConfig::default(), 0);
    for id in 1..=5 {
        s.put_store(new_store(id)).expect("put store");
        s.store_heartbeat(&store_stats(id), T0)
            .expect("store heartbeat");
    }
    s.cluster()
        .set_store_state(5, StoreState::Tombstone)
        .expect("tombstone");
    let r10 = heartbeat(10, (b"", b"m"), (2, 3), &[(11, 1), (12, 2), (13, 3)], 11, 4);
    let r20 = heartbeat(20, (b"m", b""), (1, 1), &[(21, 2), (22, 3), (23, 4)], 22, 6);
    for r in [r10, r20] {
        s.region_heartbeat(&r, T0).expect("fixture heartbeat");
    }
    s
}

/// Everything a bad heartbeat must leave alone.
fn observable(s: &SchedulerService) -> (Vec<RegionInfo>, Vec<StoreInfo>, Vec<Region>) {
    let c = s.cluster();
    (c.get_regions(), c.get_stores(), c.get_meta_regions())
}

/// Whether a refusal is the expected one.
type Check = fn(&Error) -> bool;

/// Region 10 of `service_with_regions` with a visible change: led by 12, size 50 MiB.
fn good_heartbeat() -> RegionHeartbeatRequest {
    heartbeat(
        10,
        (b"", b"m"),
        (2, 3),
        &[(11, 1), (12, 2), (13, 3)],
        12,
        50,
    )
}

/// `good_heartbeat` spoilt by `f`.
fn bad(f: impl FnOnce(&mut RegionHeartbeatRequest)) -> RegionHeartbeatRequest {
    let mut req = good_heartbeat();
    f(&mut req);
    req
}

/// Malformed and stale heartbeats are refused by `SchedulerService::region_heartbeat` with the
/// right error, and the whole observable state (regions, store statuses) is identical before
/// and after: no region, no peers, no leader, a leader that is not a peer, a store or peer id
/// twice, an unknown store, a tombstone store, ids never allocated, a zero epoch, an empty or
/// inverted range, a pending peer outside the region, a stale epoch for a cached id, and a
/// range overlapping a region of another id whose version is equal or newer. Each bad
/// heartbeat otherwise carries a visible change (new leader, new size), so accepting it would
/// show. Not in the original.
#[test]
fn bad_heartbeats_change_nothing_3c() {
    let s = service_with_regions();
    let invalid: Check = |e| matches!(e, Error::InvalidRequest(_));
    let stale_10: Check = |e| {
        matches!(
            e,
            Error::StaleRegion {
                region_id: 10,
                against_id: 10,
                ..
            }
        )
    };
    let cases: Vec<(&str, RegionHeartbeatRequest, Check)> = vec![
        ("no region", bad(|r| r.clear_region()), invalid),
        ("no peers", bad(|r| r.mut_region().peers.clear()), invalid),
        ("no leader", bad(|r| r.clear_leader()), invalid),
        (
            "leader not a peer",
            bad(|r| r.set_leader(new_peer(14, 4))),
            invalid,
        ),
        (
            "leader with a peer's id on another store",
            bad(|r| r.set_leader(new_peer(12, 3))),
            invalid,
        ),
        (
            "a store twice",
            bad(|r| r.mut_region().peers[2].store_id = 2),
            invalid,
        ),
        (
            "a peer id twice",
            bad(|r| r.mut_region().peers[2].id = 12),
            invalid,
        ),
        (
            "unknown store",
            bad(|r| r.mut_region().peers[2].store_id = 9),
            |e| *e == Error::StoreNotFound(9),
        ),
        (
            "tombstone store",
            bad(|r| r.mut_region().peers[2].store_id = 5),
            |e| *e == Error::StoreTombstone(5),
        ),
        (
            "region id never allocated",
            bad(|r| r.mut_region().id = 500),
            invalid,
        ),
        (
            "peer id never allocated",
            bad(|r| r.mut_region().peers[2].id = 600),
            invalid,
        ),
        (
            "no epoch",
            bad(|r| r.mut_region().clear_region_epoch()),
            invalid,
        ),
        (
            "conf_ver 0",
            bad(|r| r.mut_region().mut_region_epoch().conf_ver = 0),
            invalid,
        ),
        (
            "version 0",
            bad(|r| r.mut_region().mut_region_epoch().version = 0),
            invalid,
        ),
        (
            "inverted range",
            bad(|r| r.mut_region().start_key = b"n".to_vec()),
            invalid,
        ),
        (
            "empty range",
            bad(|r| r.mut_region().start_key = b"m".to_vec()),
            invalid,
        ),
        (
            "pending peer outside the region",
            bad(|r| r.set_pending_peers(vec![new_peer(14, 4)].into())),
            invalid,
        ),
        (
            "older version",
            bad(|r| r.mut_region().mut_region_epoch().version = 2),
            stale_10,
        ),
        (
            "older conf_ver",
            bad(|r| r.mut_region().mut_region_epoch().conf_ver = 1),
            stale_10,
        ),
        // Region 30 claiming part of region 20's range at region 20's version (1).
        (
            "overlaps a region of equal version",
            heartbeat(30, (b"x", b""), (1, 1), &[(31, 1), (32, 2)], 31, 1),
            |e| {
                matches!(
                    e,
                    Error::StaleRegion {
                        region_id: 30,
                        against_id: 20,
                        ..
                    }
                )
            },
        ),
        // Region 30 at version 2 claiming part of region 10's range (version 3).
        (
            "overlaps a region of newer version",
            heartbeat(30, (b"a", b"b"), (1, 2), &[(31, 1), (32, 2)], 31, 1),
            |e| {
                matches!(
                    e,
                    Error::StaleRegion {
                        region_id: 30,
                        against_id: 10,
                        ..
                    }
                )
            },
        ),
    ];

    let before = observable(&s);
    for (name, req, ok) in &cases {
        match s.region_heartbeat(req, T0 + Duration::from_secs(1)) {
            Ok(resp) => panic!("{name}: heartbeat accepted (response {resp:?})"),
            Err(e) => assert!(ok(&e), "{name}: refused with the wrong error: {e:?}"),
        }
        assert!(
            observable(&s) == before,
            "{name}: a refused heartbeat changed the scheduler's state"
        );
    }
    // The good one is accepted and shows.
    s.region_heartbeat(&good_heartbeat(), T0)
        .expect("good heartbeat");
    let r = s.cluster().get_region(10).expect("region 10");
    assert_eq!(
        (r.leader_store_id(), r.approximate_size),
        (Some(2), 50),
        "the good heartbeat is cached"
    );
}

/// A heartbeat accepted by the service refreshes the statuses of the stores involved: a new
/// leader and size move leader counts and sizes, a pending peer is counted, and a removed peer
/// leaves its store. Not in the original.
#[test]
fn accepted_heartbeat_updates_store_statuses_3c() {
    let s = service_with_regions();
    let status = |id| {
        let st = s.cluster().get_store(id).expect("store");
        (
            st.region_count,
            st.leader_count,
            st.pending_peer_count,
            st.leader_size,
            st.region_size,
        )
    };
    // Region 10 (size 4) on 1, 2, 3 led from 1; region 20 (size 6) on 2, 3, 4 led from 3.
    assert_eq!(status(1), (1, 1, 0, 4, 4));
    assert_eq!(status(2), (2, 0, 0, 0, 10));
    assert_eq!(status(4), (1, 0, 0, 0, 6));

    let mut hb = heartbeat(
        10,
        (b"", b"m"),
        (2, 3),
        &[(11, 1), (12, 2), (13, 3)],
        12,
        50,
    );
    hb.set_pending_peers(vec![new_peer(13, 3)].into());
    s.region_heartbeat(&hb, T0).expect("heartbeat");
    assert_eq!(status(1), (1, 0, 0, 0, 50), "store 1 lost leadership");
    assert_eq!(status(2), (2, 1, 0, 50, 56), "store 2 leads region 10");
    assert_eq!(status(3), (2, 1, 1, 6, 56), "store 3's peer 13 is pending");

    // Peer 13 removed (conf_ver 3).
    let hb = heartbeat(10, (b"", b"m"), (3, 3), &[(11, 1), (12, 2)], 12, 50);
    s.region_heartbeat(&hb, T0).expect("heartbeat");
    assert_eq!(
        status(3),
        (1, 1, 0, 6, 6),
        "store 3 lost its peer of region 10"
    );
}

/// `ask_split` refuses an unknown region and a stale epoch (older version or older conf_ver)
/// and, for the current epoch, hands out a new region id and one new peer id per peer, all
/// fresh and distinct, also across calls. From the original's `TestValidRequestRegion` and
/// `TestAskSplit` (not in its 3C filter).
#[test]
fn ask_split_3c() {
    let s = service_with_regions();
    let region = |id, conf_ver, version| {
        let peers = vec![new_peer(11, 1), new_peer(12, 2), new_peer(13, 3)];
        new_region(id, b"", b"m", conf_ver, version, peers)
    };
    assert_eq!(
        s.ask_split(&region(99, 2, 3)).map(|_| ()),
        Err(Error::RegionNotFound(99))
    );
    for (conf_ver, version) in [(2, 2), (1, 3), (1, 1)] {
        match s.ask_split(&region(10, conf_ver, version)) {
            Err(Error::StaleRegion { region_id: 10, .. }) => {}
            other => {
                panic!("ask_split with epoch ({conf_ver}, {version}) against (2, 3): {other:?}")
            }
        }
    }
    let mut seen = BTreeSet::new();
    for _ in 0..2 {
        let resp = s.ask_split(&region(10, 2, 3)).expect("ask_split");
        assert_eq!(resp.new_peer_ids.len(), 3, "one new peer id per peer");
        for id in std::iter::once(resp.new_region_id).chain(resp.new_peer_ids.iter().copied()) {
            assert!(id >= 100, "id {id} was taken before");
            assert!(s.cluster().is_allocated(id), "id {id} is allocated");
            assert!(seen.insert(id), "id {id} handed out twice");
        }
    }
}

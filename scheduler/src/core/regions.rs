//! The region cache: regions by id and by key range, and per store the regions it leads, the
//! regions it follows and the regions where its peer is pending, each with its total size.
//!
//! The range index never holds two overlapping regions: [`RegionsInfo::put_region`] removes
//! whatever the new region overlaps. Lookups by id are hash lookups; per-store sets support
//! O(1) insert, remove and random pick, so a heartbeat costs a few map operations whatever the
//! number of regions.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use rand::Rng;

use super::region::{ranges_overlap, RegionInfo};

/// A set of region ids with O(1) insert, remove and uniform random pick, and the sum of the
/// sizes of its regions.
#[derive(Debug, Default, Clone)]
struct RegionSet {
    ids: Vec<u64>,
    pos: HashMap<u64, usize>,
    size: u64,
}

impl RegionSet {
    fn insert(&mut self, id: u64, size: u64) {
        if self.pos.contains_key(&id) {
            return;
        }
        self.pos.insert(id, self.ids.len());
        self.ids.push(id);
        self.size += size;
    }

    fn remove(&mut self, id: u64, size: u64) {
        let Some(i) = self.pos.remove(&id) else {
            return;
        };
        self.ids.swap_remove(i);
        if let Some(&moved) = self.ids.get(i) {
            self.pos.insert(moved, i);
        }
        self.size = self.size.saturating_sub(size);
    }

    fn contains(&self, id: u64) -> bool {
        self.pos.contains_key(&id)
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn random(&self, rng: &mut impl Rng) -> Option<u64> {
        if self.ids.is_empty() {
            None
        } else {
            Some(self.ids[rng.gen_range(0..self.ids.len())])
        }
    }
}

/// Which of a store's regions to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreRegionKind {
    /// Regions whose leader is on the store.
    Leader,
    /// Regions with a peer on the store that is not the leader.
    Follower,
    /// Regions whose peer on the store is pending.
    Pending,
}

/// The region cache (see the module docs).
#[derive(Debug, Default)]
pub struct RegionsInfo {
    by_id: HashMap<u64, RegionInfo>,
    /// Start key → region id; ranges never overlap.
    by_start: BTreeMap<Vec<u8>, u64>,
    leaders: HashMap<u64, RegionSet>,
    followers: HashMap<u64, RegionSet>,
    pending: HashMap<u64, RegionSet>,
}

impl RegionsInfo {
    /// An empty cache.
    pub fn new() -> RegionsInfo {
        RegionsInfo::default()
    }

    /// The region with this id.
    pub fn get(&self, region_id: u64) -> Option<&RegionInfo> {
        self.by_id.get(&region_id)
    }

    /// The number of cached regions.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no region is cached.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The region whose range contains `key`.
    pub fn search(&self, key: &[u8]) -> Option<&RegionInfo> {
        let (_, id) = self
            .by_start
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()?;
        self.by_id.get(id).filter(|r| r.contains(key))
    }

    /// Every cached region whose range overlaps `[start, end)` (an empty end is unbounded),
    /// ordered by start key. A range whose non-empty end is not after its start counts as the
    /// single key `start`, so that even a malformed region never lands on top of another in
    /// the index.
    pub fn overlaps(&self, start: &[u8], end: &[u8]) -> Vec<&RegionInfo> {
        if !end.is_empty() && end <= start {
            return self.search(start).into_iter().collect();
        }
        let mut found = Vec::new();
        if let Some((_, id)) = self
            .by_start
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(start)))
            .next_back()
        {
            if let Some(r) = self.by_id.get(id) {
                if ranges_overlap(r.start_key(), r.end_key(), start, end) {
                    found.push(r);
                }
            }
        }
        let upper = if end.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Excluded(end)
        };
        for (_, id) in self
            .by_start
            .range::<[u8], _>((Bound::Excluded(start), upper))
        {
            if let Some(r) = self.by_id.get(id) {
                found.push(r);
            }
        }
        found
    }

    /// Every cached region, ordered by start key.
    pub fn regions(&self) -> impl Iterator<Item = &RegionInfo> + '_ {
        self.by_start.values().filter_map(|id| self.by_id.get(id))
    }

    /// Puts `region` in the cache, replacing the cached region with its id and removing every
    /// region its range overlaps. Returns the regions removed because they overlapped (not the
    /// old version of `region` itself).
    pub fn put_region(&mut self, region: RegionInfo) -> Vec<RegionInfo> {
        let id = region.id();
        let same_range = self.by_id.get(&id).is_some_and(|old| {
            old.start_key() == region.start_key() && old.end_key() == region.end_key()
        });
        if let Some(old) = self.by_id.get(&id).cloned() {
            self.unindex(&old);
            if !same_range && self.by_start.get(old.start_key()) == Some(&id) {
                self.by_start.remove(old.start_key());
            }
        }
        let mut removed = Vec::new();
        if !same_range {
            let overlapped: Vec<u64> = self
                .overlaps(region.start_key(), region.end_key())
                .into_iter()
                .map(RegionInfo::id)
                .filter(|&o| o != id)
                .collect();
            for o in overlapped {
                if let Some(r) = self.remove_region(o) {
                    removed.push(r);
                }
            }
            self.by_start.insert(region.start_key().to_vec(), id);
        }
        self.index(&region);
        self.by_id.insert(id, region);
        removed
    }

    /// Removes the region with this id; returns it.
    pub fn remove_region(&mut self, region_id: u64) -> Option<RegionInfo> {
        let old = self.by_id.remove(&region_id)?;
        self.unindex(&old);
        if self.by_start.get(old.start_key()) == Some(&region_id) {
            self.by_start.remove(old.start_key());
        }
        Some(old)
    }

    fn index(&mut self, r: &RegionInfo) {
        let leader = r.leader_store_id();
        for p in r.peers() {
            let set = if Some(p.store_id) == leader {
                &mut self.leaders
            } else {
                &mut self.followers
            };
            set.entry(p.store_id)
                .or_default()
                .insert(r.id(), r.approximate_size);
        }
        for p in &r.pending_peers {
            self.pending
                .entry(p.store_id)
                .or_default()
                .insert(r.id(), r.approximate_size);
        }
    }

    fn unindex(&mut self, r: &RegionInfo) {
        for p in r.peers() {
            for map in [&mut self.leaders, &mut self.followers] {
                if let Some(set) = map.get_mut(&p.store_id) {
                    set.remove(r.id(), r.approximate_size);
                }
            }
        }
        for p in &r.pending_peers {
            if let Some(set) = self.pending.get_mut(&p.store_id) {
                set.remove(r.id(), r.approximate_size);
            }
        }
    }

    fn set(&self, store_id: u64, kind: StoreRegionKind) -> Option<&RegionSet> {
        match kind {
            StoreRegionKind::Leader => self.leaders.get(&store_id),
            StoreRegionKind::Follower => self.followers.get(&store_id),
            StoreRegionKind::Pending => self.pending.get(&store_id),
        }
    }

    /// How many of the store's regions are of `kind`.
    pub fn store_count(&self, store_id: u64, kind: StoreRegionKind) -> usize {
        self.set(store_id, kind).map_or(0, RegionSet::len)
    }

    /// The total approximate size of the store's regions of `kind`.
    pub fn store_size(&self, store_id: u64, kind: StoreRegionKind) -> u64 {
        self.set(store_id, kind).map_or(0, |s| s.size)
    }

    /// How many regions have a peer on the store.
    pub fn store_region_count(&self, store_id: u64) -> usize {
        self.store_count(store_id, StoreRegionKind::Leader)
            + self.store_count(store_id, StoreRegionKind::Follower)
    }

    /// The total approximate size of the regions with a peer on the store.
    pub fn store_region_size(&self, store_id: u64) -> u64 {
        self.store_size(store_id, StoreRegionKind::Leader)
            + self.store_size(store_id, StoreRegionKind::Follower)
    }

    /// The region `region_id` if the store leads it or follows in it.
    pub fn leader_or_follower(&self, store_id: u64, region_id: u64) -> Option<&RegionInfo> {
        let member = [StoreRegionKind::Leader, StoreRegionKind::Follower]
            .into_iter()
            .any(|k| self.set(store_id, k).is_some_and(|s| s.contains(region_id)));
        if member {
            self.by_id.get(&region_id)
        } else {
            None
        }
    }

    /// A region of `kind` on the store, chosen uniformly with `rng`.
    pub fn random_region(
        &self,
        store_id: u64,
        kind: StoreRegionKind,
        rng: &mut impl Rng,
    ) -> Option<&RegionInfo> {
        let id = self.set(store_id, kind)?.random(rng)?;
        self.by_id.get(&id)
    }
}

#[cfg(test)]
mod tests {
    use proto::metapb::{Peer, Region};
    use rand::SeedableRng;

    use super::*;

    fn region(id: u64, start: &[u8], end: &[u8], stores: &[u64]) -> RegionInfo {
        let mut r = Region::new();
        r.id = id;
        r.start_key = start.to_vec();
        r.end_key = end.to_vec();
        for (i, s) in stores.iter().enumerate() {
            let mut p = Peer::new();
            p.id = id * 10 + i as u64;
            p.store_id = *s;
            r.peers.push(p);
        }
        let leader = r.peers.first().cloned();
        let mut info = RegionInfo::new(r, leader);
        info.approximate_size = 1;
        info
    }

    #[test]
    fn put_replaces_overlaps_and_keeps_the_index_consistent() {
        let mut c = RegionsInfo::new();
        assert!(c.put_region(region(1, b"", b"", &[1, 2, 3])).is_empty());
        assert_eq!(c.store_region_count(1), 1);
        assert_eq!(c.store_count(1, StoreRegionKind::Leader), 1);
        assert_eq!(c.store_count(2, StoreRegionKind::Follower), 1);
        // Left half of a split: same id, smaller range; the right half arrives later.
        assert!(c.put_region(region(1, b"", b"m", &[1, 2, 3])).is_empty());
        assert!(c.search(b"z").is_none());
        assert_eq!(c.search(b"a").map(RegionInfo::id), Some(1));
        assert!(c.put_region(region(2, b"m", b"", &[2, 3, 4])).is_empty());
        assert_eq!(c.store_region_count(4), 1);
        // A region covering both removes both.
        let removed = c.put_region(region(3, b"", b"", &[5]));
        let mut ids: Vec<u64> = removed.iter().map(RegionInfo::id).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![1, 2]);
        assert_eq!(c.len(), 1);
        for s in 1..=4 {
            assert_eq!(c.store_region_count(s), 0, "store {s}");
            assert_eq!(c.store_region_size(s), 0, "store {s}");
        }
        assert_eq!(c.store_region_size(5), 1);
    }

    #[test]
    fn overlaps_finds_the_containing_region_and_those_starting_inside() {
        let mut c = RegionsInfo::new();
        c.put_region(region(1, b"", b"c", &[1]));
        c.put_region(region(2, b"c", b"f", &[1]));
        c.put_region(region(3, b"f", b"", &[1]));
        let ids = |v: Vec<&RegionInfo>| v.into_iter().map(RegionInfo::id).collect::<Vec<_>>();
        assert_eq!(ids(c.overlaps(b"b", b"d")), vec![1, 2]);
        assert_eq!(ids(c.overlaps(b"c", b"f")), vec![2]);
        assert_eq!(ids(c.overlaps(b"d", b"")), vec![2, 3]);
        assert_eq!(ids(c.overlaps(b"", b"")), vec![1, 2, 3]);
        // Empty and inverted ranges count as their start key, and do not panic.
        assert_eq!(ids(c.overlaps(b"d", b"d")), vec![2]);
        assert_eq!(ids(c.overlaps(b"g", b"a")), vec![3]);
        assert_eq!(ids(c.overlaps(b"c", b"c")), vec![2]);
    }

    #[test]
    fn random_pick_and_sizes_follow_updates() {
        let mut c = RegionsInfo::new();
        for id in 1..=50 {
            let key = [id as u8];
            let end = [id as u8 + 1];
            c.put_region(region(id, &key, &end, &[1, 2]));
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..100 {
            let r = c
                .random_region(2, StoreRegionKind::Follower, &mut rng)
                .expect("store 2 follows every region");
            assert!(r.store_peer(2).is_some());
        }
        for id in 1..=50 {
            c.remove_region(id);
        }
        assert!(c
            .random_region(2, StoreRegionKind::Follower, &mut rng)
            .is_none());
        assert_eq!(c.store_region_size(1), 0);
    }
}

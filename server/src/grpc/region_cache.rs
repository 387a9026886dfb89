//! [`RegionCache`]: what a client remembers of regions, their leaders and store addresses
//! between calls, so that a call in the common case is one rpc to the right store instead of
//! three (region lookup, store lookup, the call). An entry goes as soon as a store says it
//! is wrong (a stale epoch, a key outside the region, a missing region); a `NotLeader` hint
//! or a successful call updates the leader; an unreachable store loses its address and
//! leadership.

use std::collections::BTreeMap;

use proto::metapb::{Peer, Region};

/// Regions by start key, with the leader last seen, and store addresses by id.
#[derive(Debug, Default)]
pub struct RegionCache {
    regions: BTreeMap<Vec<u8>, (Region, Option<Peer>)>,
    stores: BTreeMap<u64, String>,
}

/// Whether `key` is in `[start, end)`, an empty end being the end of the key space.
fn contains(region: &Region, key: &[u8]) -> bool {
    region.start_key.as_slice() <= key && (region.end_key.is_empty() || key < &region.end_key[..])
}

/// Whether two regions' key ranges overlap.
fn overlaps(a: &Region, b: &Region) -> bool {
    let starts_before_b_ends = b.end_key.is_empty() || a.start_key < b.end_key;
    let ends_after_b_starts = a.end_key.is_empty() || b.start_key < a.end_key;
    starts_before_b_ends && ends_after_b_starts
}

impl RegionCache {
    /// The region holding `key` and its leader, if known.
    pub fn region(&self, key: &[u8]) -> Option<(Region, Option<Peer>)> {
        self.regions
            .range(..=key.to_vec())
            .next_back()
            .map(|(_, entry)| entry)
            .filter(|(region, _)| contains(region, key))
            .cloned()
    }

    /// Remembers `region` and its leader, forgetting every region it overlaps.
    pub fn insert(&mut self, region: Region, leader: Option<Peer>) {
        self.regions.retain(|_, (old, _)| !overlaps(old, &region));
        self.regions
            .insert(region.start_key.clone(), (region, leader));
    }

    /// Forgets region `region_id`.
    pub fn forget_region(&mut self, region_id: u64) {
        self.regions.retain(|_, (r, _)| r.id != region_id);
    }

    /// Records `leader` as region `region_id`'s leader (`None`: unknown).
    pub fn set_leader(&mut self, region_id: u64, leader: Option<Peer>) {
        if let Some((_, l)) = self.regions.values_mut().find(|(r, _)| r.id == region_id) {
            *l = leader;
        }
    }

    /// Store `store_id`'s address, if known.
    pub fn store(&self, store_id: u64) -> Option<String> {
        self.stores.get(&store_id).cloned()
    }

    /// Remembers store `store_id`'s address.
    pub fn insert_store(&mut self, store_id: u64, addr: String) {
        self.stores.insert(store_id, addr);
    }

    /// Forgets store `store_id`'s address, and that it leads anything.
    pub fn forget_store(&mut self, store_id: u64) {
        self.stores.remove(&store_id);
        for (_, leader) in self.regions.values_mut() {
            if leader.as_ref().is_some_and(|l| l.store_id == store_id) {
                *leader = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(id: u64, start: &str, end: &str) -> Region {
        Region {
            id,
            start_key: start.into(),
            end_key: end.into(),
            peers: vec![peer(id * 10 + 1, 1), peer(id * 10 + 2, 2)].into(),
            ..Default::default()
        }
    }

    fn peer(id: u64, store_id: u64) -> Peer {
        Peer {
            id,
            store_id,
            ..Default::default()
        }
    }

    fn id_of(c: &RegionCache, key: &str) -> Option<u64> {
        c.region(key.as_bytes()).map(|(r, _)| r.id)
    }

    #[test]
    fn finds_the_region_holding_a_key_and_nothing_in_a_gap() {
        let mut c = RegionCache::default();
        c.insert(region(1, "", "f"), None);
        c.insert(region(3, "m", ""), None);
        assert_eq!(id_of(&c, ""), Some(1));
        assert_eq!(id_of(&c, "e"), Some(1));
        assert_eq!(id_of(&c, "f"), None, "[f, m) is not known");
        assert_eq!(id_of(&c, "m"), Some(3));
        assert_eq!(id_of(&c, "zzz"), Some(3));
    }

    #[test]
    fn a_newer_region_replaces_every_region_it_overlaps() {
        let mut c = RegionCache::default();
        c.insert(region(1, "", ""), Some(peer(11, 1)));
        // A split: the left half comes back from the scheduler first.
        c.insert(region(1, "", "m"), None);
        assert_eq!(id_of(&c, "a"), Some(1));
        assert_eq!(id_of(&c, "x"), None, "the old whole-range entry is gone");
        c.insert(region(2, "m", ""), None);
        assert_eq!(id_of(&c, "x"), Some(2));
        // A merge-like overlap over both.
        c.insert(region(5, "c", "p"), None);
        assert_eq!(id_of(&c, "a"), None);
        assert_eq!(id_of(&c, "d"), Some(5));
        assert_eq!(id_of(&c, "x"), None);
    }

    #[test]
    fn leaders_follow_hints_and_leave_with_their_store() {
        let mut c = RegionCache::default();
        c.insert(region(1, "", "m"), Some(peer(11, 1)));
        c.insert(region(2, "m", ""), Some(peer(21, 1)));
        c.insert_store(1, "a:1".into());
        c.set_leader(2, Some(peer(22, 2)));
        assert_eq!(c.region(b"x").and_then(|(_, l)| l), Some(peer(22, 2)));
        c.forget_store(1);
        assert_eq!(c.store(1), None);
        assert_eq!(c.region(b"a").and_then(|(_, l)| l), None);
        assert_eq!(c.region(b"x").and_then(|(_, l)| l), Some(peer(22, 2)));
        c.forget_region(2);
        assert_eq!(id_of(&c, "x"), None);
        assert_eq!(id_of(&c, "a"), Some(1));
    }
}

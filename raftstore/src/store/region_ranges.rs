//! The store's map from key ranges to the regions that own them.
//!
//! Every initialised peer on a store owns the user keys of its region's range, and no two may
//! own the same key: a write applied by one region must never land in another's data, and a
//! snapshot must never overwrite a neighbour. The map is the store's single answer to "which
//! region holds this key here", kept exact at every step:
//!
//! - a region enters it when its peer starts initialised, when a snapshot initialises or
//!   moves it, and when a split creates it (after its parent shrank, never before);
//! - it leaves when its peer is destroyed;
//! - uninitialised peers (created from a message, waiting for their first snapshot) own no
//!   keys and are not in it.
//!
//! [`RegionRanges::insert`] refuses a range that overlaps another region's, so a bug that
//! would let two regions own one key fails where it happens instead of corrupting data.

use std::collections::BTreeMap;
use std::ops::Bound;

use proto::metapb::Region;

/// A range owned by a region: `[start, end)`, an empty `end` meaning unbounded, and the
/// region as the store last recorded it.
#[derive(Debug, Clone, PartialEq)]
struct Owned {
    region_id: u64,
    end: Vec<u8>,
    region: Region,
}

/// Non-overlapping key ranges of the store's initialised regions.
#[derive(Debug, Default, Clone)]
pub struct RegionRanges {
    /// Start key → owner.
    by_start: BTreeMap<Vec<u8>, Owned>,
    /// Region id → its start key in `by_start`.
    starts: BTreeMap<u64, Vec<u8>>,
}

impl RegionRanges {
    /// The ids of the regions whose ranges share a key with `[start, end)` (empty `end`:
    /// unbounded), in key order.
    pub fn overlapping(&self, start: &[u8], end: &[u8]) -> Vec<u64> {
        let mut out = Vec::new();
        // The region starting at or before `start` may reach into the range ...
        if let Some((_, owned)) = self
            .by_start
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(start)))
            .next_back()
        {
            if owned.end.is_empty() || owned.end.as_slice() > start {
                out.push(owned.region_id);
            }
        }
        // ... and every region starting inside it does.
        for (s, owned) in self
            .by_start
            .range::<[u8], _>((Bound::Excluded(start), Bound::Unbounded))
        {
            if !end.is_empty() && s.as_slice() >= end {
                break;
            }
            out.push(owned.region_id);
        }
        out
    }

    /// The region that owns `key`, if any.
    pub fn region_of_key(&self, key: &[u8]) -> Option<u64> {
        let (_, owned) = self
            .by_start
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()?;
        (owned.end.is_empty() || key < owned.end.as_slice()).then_some(owned.region_id)
    }

    /// The region that owns the range starting at `key`, as last recorded (a region's right
    /// neighbour starts at its end key).
    pub fn region_starting_at(&self, key: &[u8]) -> Option<&Region> {
        self.by_start.get(key).map(|o| &o.region)
    }

    /// Whether `region_id` owns a range here.
    pub fn contains(&self, region_id: u64) -> bool {
        self.starts.contains_key(&region_id)
    }

    /// How many regions own a range.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether no region owns a range.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Records (or moves, or updates the recorded copy of) `region`'s range. Refused with the
    /// id of a region it would overlap; the map is then unchanged.
    pub fn insert(&mut self, region: &Region) -> Result<(), u64> {
        let (start, end) = (region.get_start_key(), region.get_end_key());
        if let Some(&other) = self
            .overlapping(start, end)
            .iter()
            .find(|&&id| id != region.id)
        {
            return Err(other);
        }
        self.remove(region.id);
        self.by_start.insert(
            start.to_vec(),
            Owned {
                region_id: region.id,
                end: end.to_vec(),
                region: region.clone(),
            },
        );
        self.starts.insert(region.id, start.to_vec());
        self.debug_check();
        Ok(())
    }

    /// Forgets `region_id`'s range (nothing if it has none).
    pub fn remove(&mut self, region_id: u64) {
        if let Some(start) = self.starts.remove(&region_id) {
            if self
                .by_start
                .get(&start)
                .is_some_and(|o| o.region_id == region_id)
            {
                self.by_start.remove(&start);
            }
        }
    }

    /// In debug builds, panics if two ranges overlap or the two indexes disagree: the
    /// invariant every change keeps.
    pub fn debug_check(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        let mut prev_end: Option<&[u8]> = None;
        for (start, owned) in &self.by_start {
            if let Some(end) = prev_end {
                assert!(
                    !end.is_empty() && end <= start.as_slice(),
                    "region ranges overlap at region {} (start {start:02x?})",
                    owned.region_id
                );
            }
            assert_eq!(
                self.starts.get(&owned.region_id),
                Some(start),
                "region ranges index out of step for region {}",
                owned.region_id
            );
            prev_end = Some(&owned.end);
        }
        assert_eq!(self.starts.len(), self.by_start.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(id: u64, start: &[u8], end: &[u8]) -> Region {
        Region {
            id,
            start_key: start.to_vec(),
            end_key: end.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn overlapping_ranges_are_refused_and_found() {
        let mut m = RegionRanges::default();
        m.insert(&region(1, b"", b"m")).unwrap();
        m.insert(&region(2, b"m", b"")).unwrap();
        assert_eq!(m.insert(&region(3, b"a", b"b")), Err(1));
        assert_eq!(m.insert(&region(3, b"l", b"n")), Err(1));
        assert_eq!(m.insert(&region(3, b"z", b"")), Err(2));
        assert_eq!(m.overlapping(b"l", b"n"), vec![1, 2]);
        assert_eq!(m.overlapping(b"m", b""), vec![2]);
        assert_eq!(m.overlapping(b"", b"m"), vec![1]);
        assert_eq!(m.region_of_key(b"m"), Some(2));
        assert_eq!(m.region_of_key(b"lzz"), Some(1));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn a_split_shrinks_the_parent_before_the_child_enters() {
        let mut m = RegionRanges::default();
        m.insert(&region(1, b"", b"")).unwrap();
        // The child cannot enter while the parent still covers it.
        assert_eq!(m.insert(&region(2, b"k", b"")), Err(1));
        m.insert(&region(1, b"", b"k")).unwrap();
        m.insert(&region(2, b"k", b"")).unwrap();
        assert_eq!(m.region_of_key(b"a"), Some(1));
        assert_eq!(m.region_of_key(b"k"), Some(2));
        m.remove(1);
        assert_eq!(m.region_of_key(b"a"), None);
        assert!(m.contains(2) && !m.contains(1));
        assert_eq!(m.region_starting_at(b"k").map(|r| r.id), Some(2));
        m.debug_check();
    }

    #[test]
    fn moving_a_region_replaces_its_old_range() {
        let mut m = RegionRanges::default();
        m.insert(&region(1, b"a", b"c")).unwrap();
        m.insert(&region(1, b"b", b"d")).unwrap();
        assert_eq!(m.region_of_key(b"a"), None);
        assert_eq!(m.region_of_key(b"c"), Some(1));
        assert_eq!(m.len(), 1);
    }
}

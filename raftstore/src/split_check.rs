//! The split checker: measuring a region and choosing where to split it.
//!
//! A leader's split-check tick hands a [`SplitCheckTask`] an engine snapshot of its region.
//! The task walks the region's `default` column family in key order, summing key and value
//! lengths (the size the original course counts). The split key is the first key at which
//! the running size exceeds `split_size`; it is kept only if the region's size exceeds
//! `max_size`, so a region splits into a left part of about `split_size` and the rest. The
//! walk stops as soon as the size passes `max_size`: it never reads more than that.
//!
//! The result goes back to the peer, which records the size (the region's approximate size,
//! reported to the scheduler) and, with a split key, asks the scheduler for the new ids and
//! proposes the split with the epoch the task saw; a region that changed meanwhile refuses it.

use engine::{Cf, Snapshot};
use proto::metapb::{Region, RegionEpoch};

use crate::util::KeyRange;
use crate::Result;

/// Measures `region` in `snap` and picks a split key.
#[derive(Debug)]
pub struct SplitCheckTask {
    /// The region, as its leader knew it when the check started.
    pub region: Region,
    /// The kv engine as of the check's start.
    pub snap: Snapshot,
    /// Split regions larger than this ...
    pub max_size: u64,
    /// ... where the running size exceeds this.
    pub split_size: u64,
}

/// What a split check found.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitCheckResult {
    /// The region's epoch when the check started: the split must be proposed with it.
    pub epoch: RegionEpoch,
    /// The region's size: exact if no split key was found, else at least `max_size`.
    pub size: u64,
    /// Where to split, if the region is too big.
    pub split_key: Option<Vec<u8>>,
}

impl SplitCheckTask {
    /// Walks the region (see the module docs).
    pub fn run(self) -> Result<SplitCheckResult> {
        let range = KeyRange::of_region(&self.region);
        let mut it = self
            .snap
            .iter_cf(Cf::Default, &range.start, range.end_bound())?;
        it.seek_to_first();
        let mut size = 0u64;
        let mut split_key = None;
        while let Some((k, v)) = it.item() {
            size += (k.len() + v.len()) as u64;
            if split_key.is_none() && size > self.split_size && k > range.start.as_slice() {
                split_key = Some(k.to_vec());
            }
            if size > self.max_size {
                break;
            }
            it.next();
        }
        it.status()?;
        Ok(SplitCheckResult {
            epoch: self.region.get_region_epoch().clone(),
            size,
            split_key: split_key.filter(|_| size > self.max_size),
        })
    }
}

#[cfg(test)]
mod tests {
    use engine::{Cf, Durability, EngineOptions, Engines, WriteBatch};
    use proto::metapb::Region;

    use super::SplitCheckTask;

    fn check(engines: &Engines, region: Region, max: u64, split: u64) -> super::SplitCheckResult {
        SplitCheckTask {
            region,
            snap: engines.kv.snapshot().unwrap(),
            max_size: max,
            split_size: split,
        }
        .run()
        .unwrap()
    }

    #[test]
    fn splits_where_the_running_size_passes_the_split_size_only_when_too_big() {
        let dir = tempfile::tempdir().unwrap();
        let engines = Engines::open(dir.path(), &EngineOptions::for_tests()).unwrap();
        let mut wb = WriteBatch::new();
        // Ten pairs of 2 + 8 = 10 bytes: k0..k9; plus a lock-CF pair that does not count.
        for i in 0..10 {
            wb.put_cf(Cf::Default, format!("k{i}").as_bytes(), b"vvvvvvvv")
                .unwrap();
        }
        wb.put_cf(Cf::Lock, b"k5", &[0; 1000]).unwrap();
        engines.kv.write(wb, Durability::Sync).unwrap();
        let whole = Region::default();

        let r = check(&engines, whole.clone(), 1000, 500);
        assert_eq!((r.size, r.split_key), (100, None), "small enough");

        let r = check(&engines, whole.clone(), 60, 35);
        // Running sizes 10, 20, 30, 40: k3 passes 35.
        assert_eq!(r.split_key.as_deref(), Some(&b"k3"[..]));
        assert!(r.size > 60);

        // Only the region's own range counts.
        let right = Region {
            start_key: b"k5".to_vec(),
            ..Default::default()
        };
        let r = check(&engines, right, 60, 35);
        assert_eq!((r.size, r.split_key), (50, None));
    }

    #[test]
    fn never_splits_at_the_region_start() {
        let dir = tempfile::tempdir().unwrap();
        let engines = Engines::open(dir.path(), &EngineOptions::for_tests()).unwrap();
        let mut wb = WriteBatch::new();
        wb.put_cf(Cf::Default, b"a", &[0; 100]).unwrap();
        wb.put_cf(Cf::Default, b"b", &[0; 100]).unwrap();
        engines.kv.write(wb, Durability::Sync).unwrap();
        let region = Region {
            start_key: b"a".to_vec(),
            ..Default::default()
        };
        let r = check(&engines, region, 150, 50);
        assert_eq!(r.split_key.as_deref(), Some(&b"b"[..]));
    }
}

//! Deleting the user data of a destroyed peer's region.
//!
//! A peer that leaves its region (removed by a conf change, or found stale) is destroyed in
//! two durable steps and one background one:
//!
//! 1. its region state becomes `Tombstone` and its apply state goes, in one synced kv batch:
//!    from then on no restart brings the peer back, and no late message recreates it;
//! 2. its raft state and log go, in one synced raft batch;
//! 3. a [`ClearRegionDataTask`] deletes the keys of its range from every data column family,
//!    in bounded batches.
//!
//! Until step 3 ends, the store refuses snapshots into that range (their data would be
//! deleted under them). If a crash loses part of step 3, the store finds the tombstone at its
//! next start and clears the range again, unless another region owns it by then (its own
//! snapshot cleared the range before filling it).

use engine::{Cf, Engines};

use crate::snap::region_task::delete_some;
use crate::util::KeyRange;
use crate::Result;

/// Deletes every key of the data column families in `range`, which region `region_id`
/// owned on this store before it was destroyed.
#[derive(Debug)]
pub struct ClearRegionDataTask {
    /// The destroyed region.
    pub region_id: u64,
    /// Its range.
    pub range: KeyRange,
    batch_bytes: usize,
    /// The column family being cleared (index into [`Cf::DATA`]) and where to go on in it.
    cf: usize,
    from: Vec<u8>,
}

impl ClearRegionDataTask {
    /// A task clearing `range` in batches of about `batch_bytes` of keys.
    pub fn new(region_id: u64, range: KeyRange, batch_bytes: usize) -> ClearRegionDataTask {
        let from = range.start.clone();
        ClearRegionDataTask {
            region_id,
            range,
            batch_bytes: batch_bytes.max(1),
            cf: 0,
            from,
        }
    }

    /// One batch of deletes. `Ok(Some(task))`: more to do.
    pub fn step(mut self, engines: &Engines) -> Result<Option<ClearRegionDataTask>> {
        let Some(&cf) = Cf::DATA.get(self.cf) else {
            return Ok(None);
        };
        match delete_some(
            engines,
            cf,
            &self.from,
            self.range.end_bound(),
            self.batch_bytes,
        )? {
            Some(next) => self.from = next,
            None => {
                self.cf += 1;
                self.from = self.range.start.clone();
                if self.cf == Cf::DATA.len() {
                    return Ok(None);
                }
            }
        }
        Ok(Some(self))
    }
}

#[cfg(test)]
mod tests {
    use engine::{Cf, Durability, EngineOptions, Engines, WriteBatch};

    use super::ClearRegionDataTask;
    use crate::task::{Task, TaskResult};
    use crate::util::KeyRange;

    #[test]
    fn clears_every_data_cf_in_the_range_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let engines = Engines::open(dir.path(), &EngineOptions::for_tests()).unwrap();
        let mut wb = WriteBatch::new();
        for &cf in Cf::DATA {
            for k in [&b"a"[..], b"b", b"c", b"d"] {
                wb.put_cf(cf, k, b"v").unwrap();
            }
        }
        engines.kv.write(wb, Durability::Sync).unwrap();
        let range = KeyRange {
            start: b"b".to_vec(),
            end: b"d".to_vec(),
        };
        // Tiny batches: many steps.
        let task = Task::ClearRegionData(ClearRegionDataTask::new(7, range, 1));
        match task.run(&engines) {
            TaskResult::RegionDataCleared { region_id, result } => {
                assert_eq!(region_id, 7);
                result.unwrap();
            }
            other => panic!("unexpected result {other:?}"),
        }
        for &cf in Cf::DATA {
            assert!(engines.kv.get_cf(cf, b"a").unwrap().is_some());
            assert!(engines.kv.get_cf(cf, b"b").unwrap().is_none());
            assert!(engines.kv.get_cf(cf, b"c").unwrap().is_none());
            assert!(engines.kv.get_cf(cf, b"d").unwrap().is_some());
        }
    }
}

//! Raft-log GC: deleting the log entries a `CompactLog` made unnecessary.
//!
//! Applying `CompactLog` moves the region's truncated state (in the apply state, in the kv
//! engine, written buffered like every apply) and hands the deletion of the entries up to it to
//! a [`RaftLogGcTask`]. The task first **syncs the kv engine**: until the apply state that
//! says "these entries are compacted" is durable, a crash could roll it back to an older one
//! that still needs them to replay, and a store whose log lost entries it must replay cannot
//! restart. Then it deletes the entries in bounded batches. Losing those deletes in a crash
//! is harmless: they are garbage below the truncated index, and the peer's next GC (which
//! starts at the log's first remaining key after a restart) deletes them again.

use engine::{keys, Cf, Durability, Engines, WriteBatch};

use crate::Result;

/// Deletes region `region_id`'s raft log entries in `[start, end)` (`start = 0`: from the first
/// entry still stored).
#[derive(Debug)]
pub struct RaftLogGcTask {
    /// The region.
    pub region_id: u64,
    /// The first index to delete (0: the first one stored).
    pub start: u64,
    /// One past the last index to delete.
    pub end: u64,
    batch_bytes: usize,
    synced: bool,
    deleted_to: u64,
}

impl RaftLogGcTask {
    /// A task deleting `[start, end)` of `region_id`'s log in batches of about `batch_bytes`
    /// of keys.
    pub fn new(region_id: u64, start: u64, end: u64, batch_bytes: usize) -> RaftLogGcTask {
        RaftLogGcTask {
            region_id,
            start,
            end,
            batch_bytes: batch_bytes.max(1),
            synced: false,
            deleted_to: start,
        }
    }

    /// One step: the kv sync first, then one batch of deletes. `Ok(Some(task))`: more to do.
    ///
    /// The entries are deleted by index, without reading them: an LSM tree keeps the
    /// tombstones of earlier deletes for a while, and walking over them on every GC would make
    /// each GC cost more than the last. Only a task that starts "from the first entry still
    /// stored" (`start = 0`) looks for that entry, once.
    pub fn step(mut self, engines: &Engines) -> Result<Option<RaftLogGcTask>> {
        if !self.synced {
            engines.kv.sync()?;
            self.synced = true;
            return Ok(Some(self));
        }
        if self.deleted_to == 0 {
            let from = keys::raft_log_key(self.region_id, 0);
            let to = keys::raft_log_key(self.region_id, self.end);
            let mut it = engines.raft.iter_cf(Cf::Raft, &from, Some(&to))?;
            it.seek_to_first();
            self.deleted_to = it.key().and_then(keys::raft_log_index).unwrap_or(self.end);
            it.status()?;
        }
        if self.deleted_to >= self.end {
            return Ok(None);
        }
        let per_batch = (self.batch_bytes / keys::RAFT_LOG_KEY_LEN).max(1) as u64;
        let until = self.end.min(self.deleted_to.saturating_add(per_batch));
        let mut wb = WriteBatch::with_capacity((until - self.deleted_to) as usize);
        for index in self.deleted_to..until {
            wb.delete_cf(Cf::Raft, &keys::raft_log_key(self.region_id, index))?;
        }
        engines.raft.write(wb, Durability::Buffered)?;
        self.deleted_to = until;
        Ok((until < self.end).then_some(self))
    }
}

#[cfg(test)]
mod tests {
    //! The original's framework test `TestGcRaftLog`, on [`RaftLogGcTask`]; plus the order of
    //! its work (the kv sync comes before any delete) and its bounded batches.

    use engine::{keys, Cf, Durability, EngineOptions, Engines, WriteBatch};
    use proto::eraftpb::Entry;

    use super::RaftLogGcTask;
    use crate::task::{Task, TaskResult};

    fn open(opts: &EngineOptions) -> (tempfile::TempDir, Engines) {
        let dir = tempfile::tempdir().unwrap();
        let engines = Engines::open(dir.path(), opts).unwrap();
        (dir, engines)
    }

    /// Region 1's log entries `[0, 100)` (the original's fixture), synced.
    fn fill(engines: &Engines) {
        let mut wb = WriteBatch::new();
        for index in 0..100 {
            let e = Entry {
                index,
                term: 1,
                ..Default::default()
            };
            wb.put_msg_cf(Cf::Raft, &keys::raft_log_key(1, index), &e)
                .unwrap();
        }
        engines.raft.write(wb, Durability::Sync).unwrap();
    }

    fn stored(engines: &Engines) -> Vec<u64> {
        crate::meta::raft_log_indexes(&engines.raft, 1).unwrap()
    }

    /// Runs a task to its end the way a worker does; returns how many entries it collected.
    fn gc(engines: &Engines, start: u64, end: u64, batch_bytes: usize) -> usize {
        let before = stored(engines).len();
        match Task::RaftLogGc(RaftLogGcTask::new(1, start, end, batch_bytes)).run(engines) {
            TaskResult::RaftLogGcDone { region_id, result } => {
                assert_eq!(region_id, 1);
                result.unwrap();
            }
            other => panic!("a GC task reported {other:?}"),
        }
        before - stored(engines).len()
    }

    /// `TestGcRaftLog`: (start, end) → entries collected and the range left, where start 0
    /// means "from the first entry still stored".
    #[test]
    fn gc_raft_log_collects_the_requested_range() {
        let (_dir, engines) = open(&EngineOptions::for_tests());
        fill(&engines);
        for (start, end, collected, left_from) in [
            (0, 10, 10, 10),
            (0, 50, 40, 50),
            (50, 50, 0, 50),
            (50, 60, 10, 60),
        ] {
            assert_eq!(
                gc(&engines, start, end, 1 << 20),
                collected,
                "task ({start}, {end})"
            );
            assert_eq!(
                stored(&engines),
                (left_from..100).collect::<Vec<_>>(),
                "after task ({start}, {end})"
            );
        }
        // Another region's log is not touched.
        let mut wb = WriteBatch::new();
        wb.put_cf(Cf::Raft, &keys::raft_log_key(2, 3), b"e")
            .unwrap();
        engines.raft.write(wb, Durability::Sync).unwrap();
        assert_eq!(gc(&engines, 0, 100, 1 << 20), 40);
        assert!(engines
            .raft
            .get_cf(Cf::Raft, &keys::raft_log_key(2, 3))
            .unwrap()
            .is_some());
    }

    /// The first step makes the kv engine durable (the apply state that says the entries are
    /// compacted) and deletes nothing; the deletes follow in batches of about `batch_bytes`.
    #[test]
    fn the_kv_engine_is_synced_before_any_entry_is_deleted() {
        let (_dir, engines) = open(&EngineOptions::for_simulation());
        fill(&engines);
        let mut wb = WriteBatch::new();
        wb.put_cf(Cf::Raft, b"apply state", b"truncated at 59")
            .unwrap();
        engines.kv.write(wb, Durability::Buffered).unwrap();

        let task = RaftLogGcTask::new(1, 0, 60, 100);
        let mut task = task.step(&engines).unwrap().expect("more to do");
        assert_eq!(
            stored(&engines).len(),
            100,
            "the first step deletes nothing"
        );
        engines.simulate_crash().unwrap();
        assert!(
            engines
                .kv
                .get_cf(Cf::Raft, b"apply state")
                .unwrap()
                .is_some(),
            "the first step synced the kv engine"
        );
        let mut steps = 1;
        loop {
            let left = stored(&engines).len();
            match task.step(&engines).unwrap() {
                Some(next) => task = next,
                None => break,
            }
            steps += 1;
            assert!(left - stored(&engines).len() < 60, "one step, one batch");
        }
        assert!(
            steps > 3,
            "60 keys of 19 bytes take several 100-byte batches"
        );
        assert_eq!(stored(&engines), (60..100).collect::<Vec<_>>());
    }
}

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

use engine::{keys, Cf, Engines};

use crate::snap::region_task::delete_some_in;
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
    pub fn step(mut self, engines: &Engines) -> Result<Option<RaftLogGcTask>> {
        if !self.synced {
            engines.kv.sync()?;
            self.synced = true;
            return Ok(Some(self));
        }
        if self.deleted_to >= self.end {
            return Ok(None);
        }
        let from = keys::raft_log_key(self.region_id, self.deleted_to);
        let to = keys::raft_log_key(self.region_id, self.end);
        match delete_some_in(&engines.raft, Cf::Raft, &from, Some(&to), self.batch_bytes)? {
            Some(next) => {
                self.deleted_to = keys::raft_log_index(&next).unwrap_or(self.end);
                Ok(Some(self))
            }
            None => Ok(None),
        }
    }
}

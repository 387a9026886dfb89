//! The handler's part in snapshots (provided framework code): spawning the generation raft
//! asked for, starting the application of one raft received, and taking task results back.

use super::PeerMsgHandler;
use crate::peer_storage::ApplySnapResult;
use crate::snap::SnapKey;
use crate::task::{ApplySnapTask, GenSnapTask, Task, TaskResult};
use crate::Result;

impl PeerMsgHandler<'_, '_> {
    /// If raft asked the peer storage for a snapshot, spawns its generation over an engine
    /// snapshot taken now (the kv engine holds exactly the data up to the applied index).
    pub(super) fn maybe_spawn_snapshot_generation(&mut self) -> Result<()> {
        let Some((index, term)) = self.peer.storage_mut().take_gen_request()? else {
            return Ok(());
        };
        let kv_snap = self.ctx.engines.kv.snapshot()?;
        tracing::debug!("{} generates a snapshot at {index}/{term}", self.peer.tag);
        self.ctx.fx.spawn(Task::GenSnapshot(GenSnapTask {
            region_id: self.peer.region_id,
            index,
            term,
            kv_snap,
            mgr: self.ctx.snap_mgr.clone(),
        }));
        Ok(())
    }

    /// A `Ready`'s snapshot is persisted (the region is `Applying`): spawns the application
    /// of its data and holds the peer's `Ready`s until it is done. Call it right after
    /// `save_ready_state` returns the snapshot.
    pub fn start_applying_snapshot(&mut self, applied: ApplySnapResult) {
        let ApplySnapResult {
            region, key, data, ..
        } = applied;
        for p in region.get_peers() {
            self.peer.peer_cache.insert(p.id, p.clone());
        }
        // The snapshot's range was checked against the store's other regions when it
        // arrived; from now on it is this region's.
        if let Err(other) = self.ctx.meta.region_ranges.insert(&region) {
            tracing::error!(
                "{}: snapshot region overlaps region {other} of this store",
                self.peer.tag
            );
        }
        tracing::info!(
            "{} applies snapshot {key} ({} bytes)",
            self.peer.tag,
            data.file_size
        );
        self.peer.applying_snapshot = Some(key);
        self.ctx.fx.spawn(Task::ApplySnapshot(ApplySnapTask::new(
            key,
            data,
            self.ctx.snap_mgr,
            self.ctx.cfg.task_batch_bytes,
        )));
    }

    /// Whether raft took snapshot `key` (it waits in raft's log for the next `Ready`).
    pub fn snapshot_pending(&self, key: &SnapKey) -> bool {
        self.peer
            .raft_group
            .raft
            .raft_log
            .pending_snapshot
            .as_ref()
            .is_some_and(|s| SnapKey::of(self.peer.region_id, s) == *key)
    }

    /// A task of this peer finished.
    pub fn on_task_done(&mut self, result: TaskResult) {
        if self.peer.stopped {
            return;
        }
        match result {
            TaskResult::SnapshotGenerated { result, .. } => {
                self.peer.storage_mut().on_snapshot_generated(result);
            }
            TaskResult::SnapshotApplied { key, result, .. } => {
                if self.peer.applying_snapshot != Some(key) {
                    tracing::warn!(
                        "{}: snapshot {key} applied, but not expected",
                        self.peer.tag
                    );
                    return;
                }
                if let Err(e) = result {
                    // The region's data is neither the old nor the snapshot's: the peer must
                    // not serve anything. A restart applies the snapshot again.
                    tracing::error!(
                        "{}: applying snapshot {key} failed, the peer stops: {e}",
                        self.peer.tag
                    );
                    self.stop(&e);
                    return;
                }
                self.peer.applying_snapshot = None;
                self.ctx.snap_mgr.delete_received(&key);
                let deferred = std::mem::take(&mut self.peer.deferred_entries);
                if !deferred.is_empty() {
                    if let Err(e) = self.apply_committed(&deferred) {
                        tracing::error!(
                            "{}: a peer stops after a failed apply: {e}",
                            self.peer.tag
                        );
                        self.stop(&e);
                    }
                }
            }
            TaskResult::SplitChecked { result, .. } => self.on_split_checked(result),
            TaskResult::RegionDataCleared { .. } => {
                // A store-level result; the store handles it before it reaches a peer.
            }
            TaskResult::RaftLogGcDone { result, .. } => {
                if let Err(e) = result {
                    // The entries stay as garbage below the truncated index; the next GC
                    // tries again from where this one started.
                    tracing::warn!("{}: raft-log GC failed: {e}", self.peer.tag);
                    self.peer.last_compacted_idx = 0;
                }
            }
        }
    }
}

//! Background work a store hands to its runtime.
//!
//! The store never blocks on slow work and never spawns threads: it pushes a [`Task`] to
//! [`crate::Effects::spawn`], goes on handling events, and later receives the task's
//! [`TaskResult`] as a [`crate::StoreEvent::TaskDone`]. A task is plain deterministic code over
//! the store's engines, run in steps ([`Task::step`]) of one bounded batch each:
//!
//! - the **simulator** runs each step as an event after a seeded delay, so a slow snapshot or a
//!   crash between two steps of one task are faults the seed can choose, and drops the task
//!   (and its result) if the store restarted meanwhile;
//! - a **threaded runtime** runs [`Task::run`] on a worker thread.
//!
//! | task | spawned when | result |
//! |---|---|---|
//! | [`GenSnapTask`] | raft asks the peer storage for a snapshot | the raft snapshot, its file written |
//! | [`ApplySnapTask`] | a `Ready` carried a snapshot (or a store restarted while applying one) | the region is `Normal` with the snapshot's data |
//! | [`RaftLogGcTask`] | a `CompactLog` was applied | the entries below the truncated index are deleted |
//! | [`SplitCheckTask`] | a leader's split-check tick | the region's size and maybe a split key |
//! | [`ClearRegionDataTask`] | a peer was destroyed (or found tombstoned at start) | its range holds no data |

use engine::Engines;
use proto::eraftpb::Snapshot;

pub use crate::raftlog_gc::RaftLogGcTask;
pub use crate::region_cleanup::ClearRegionDataTask;
pub use crate::snap::region_task::{ApplySnapTask, GenSnapTask};
use crate::snap::SnapKey;
pub use crate::split_check::{SplitCheckResult, SplitCheckTask};
use crate::Result;

/// A piece of background work for one region.
#[derive(Debug)]
pub enum Task {
    /// Generate a snapshot.
    GenSnapshot(GenSnapTask),
    /// Apply a received snapshot (boxed: it carries the file's reader and description).
    ApplySnapshot(Box<ApplySnapTask>),
    /// Delete compacted raft log entries.
    RaftLogGc(RaftLogGcTask),
    /// Measure a region and pick a split key.
    SplitCheck(SplitCheckTask),
    /// Delete a destroyed region's data.
    ClearRegionData(ClearRegionDataTask),
}

/// What kind of task, for fault injection and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// [`Task::GenSnapshot`].
    GenSnapshot,
    /// [`Task::ApplySnapshot`].
    ApplySnapshot,
    /// [`Task::RaftLogGc`].
    RaftLogGc,
    /// [`Task::SplitCheck`].
    SplitCheck,
    /// [`Task::ClearRegionData`].
    ClearRegionData,
}

/// What a finished task reports back to its store.
#[derive(Debug)]
pub enum TaskResult {
    /// A snapshot generation ended.
    SnapshotGenerated {
        /// The region.
        region_id: u64,
        /// The snapshot, or why there is none.
        result: Result<Snapshot>,
    },
    /// A snapshot application ended.
    SnapshotApplied {
        /// The region.
        region_id: u64,
        /// The snapshot.
        key: SnapKey,
        /// `Ok` once the region is `Normal` with the snapshot's data.
        result: Result<()>,
    },
    /// A raft-log GC ended.
    RaftLogGcDone {
        /// The region.
        region_id: u64,
        /// `Ok` once the entries are deleted.
        result: Result<()>,
    },
    /// A split check ended.
    SplitChecked {
        /// The region.
        region_id: u64,
        /// What it found.
        result: Result<SplitCheckResult>,
    },
    /// A destroyed region's data is deleted (a store-level result: the region's peer is gone).
    RegionDataCleared {
        /// The destroyed region.
        region_id: u64,
        /// `Ok` once the range holds no data.
        result: Result<()>,
    },
}

impl TaskResult {
    /// The region the result is for.
    pub fn region_id(&self) -> u64 {
        match self {
            TaskResult::SnapshotGenerated { region_id, .. }
            | TaskResult::SnapshotApplied { region_id, .. }
            | TaskResult::RaftLogGcDone { region_id, .. }
            | TaskResult::SplitChecked { region_id, .. }
            | TaskResult::RegionDataCleared { region_id, .. } => *region_id,
        }
    }
}

/// The outcome of one [`Task::step`].
#[derive(Debug)]
pub enum TaskStep {
    /// The task is over.
    Done(TaskResult),
    /// More to do: step this again.
    Yield(Task),
}

impl Task {
    /// The region the task works for.
    pub fn region_id(&self) -> u64 {
        match self {
            Task::GenSnapshot(t) => t.region_id,
            Task::ApplySnapshot(t) => t.region_id,
            Task::RaftLogGc(t) => t.region_id,
            Task::SplitCheck(t) => t.region.id,
            Task::ClearRegionData(t) => t.region_id,
        }
    }

    /// The task's kind.
    pub fn kind(&self) -> TaskKind {
        match self {
            Task::GenSnapshot(_) => TaskKind::GenSnapshot,
            Task::ApplySnapshot(_) => TaskKind::ApplySnapshot,
            Task::RaftLogGc(_) => TaskKind::RaftLogGc,
            Task::SplitCheck(_) => TaskKind::SplitCheck,
            Task::ClearRegionData(_) => TaskKind::ClearRegionData,
        }
    }

    /// Does one bounded piece of the task's work over `engines`.
    pub fn step(self, engines: &Engines) -> TaskStep {
        match self {
            Task::GenSnapshot(t) => {
                let region_id = t.region_id;
                TaskStep::Done(TaskResult::SnapshotGenerated {
                    region_id,
                    result: t.run(),
                })
            }
            Task::ApplySnapshot(t) => {
                let (region_id, key) = (t.region_id, t.key);
                match t.step(engines) {
                    Ok(Some(t)) => TaskStep::Yield(Task::ApplySnapshot(t)),
                    Ok(None) => TaskStep::Done(TaskResult::SnapshotApplied {
                        region_id,
                        key,
                        result: Ok(()),
                    }),
                    Err(e) => TaskStep::Done(TaskResult::SnapshotApplied {
                        region_id,
                        key,
                        result: Err(e),
                    }),
                }
            }
            Task::RaftLogGc(t) => {
                let region_id = t.region_id;
                match t.step(engines) {
                    Ok(Some(t)) => TaskStep::Yield(Task::RaftLogGc(t)),
                    Ok(None) => TaskStep::Done(TaskResult::RaftLogGcDone {
                        region_id,
                        result: Ok(()),
                    }),
                    Err(e) => TaskStep::Done(TaskResult::RaftLogGcDone {
                        region_id,
                        result: Err(e),
                    }),
                }
            }
            Task::SplitCheck(t) => {
                let region_id = t.region.id;
                TaskStep::Done(TaskResult::SplitChecked {
                    region_id,
                    result: t.run(),
                })
            }
            Task::ClearRegionData(t) => {
                let region_id = t.region_id;
                match t.step(engines) {
                    Ok(Some(t)) => TaskStep::Yield(Task::ClearRegionData(t)),
                    Ok(None) => TaskStep::Done(TaskResult::RegionDataCleared {
                        region_id,
                        result: Ok(()),
                    }),
                    Err(e) => TaskStep::Done(TaskResult::RegionDataCleared {
                        region_id,
                        result: Err(e),
                    }),
                }
            }
        }
    }

    /// Runs the task to its end (a worker thread's loop).
    pub fn run(self, engines: &Engines) -> TaskResult {
        let mut task = self;
        loop {
            match task.step(engines) {
                TaskStep::Done(result) => return result,
                TaskStep::Yield(next) => task = next,
            }
        }
    }
}

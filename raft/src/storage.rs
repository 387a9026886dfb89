//! The [`Storage`] trait (the read side of what the application persisted for raft) and
//! [`MemStorage`], an in-memory implementation for tests and examples.
//!
//! Raft only reads from storage; the application writes to it while processing a
//! [`Ready`](crate::Ready): it appends entries, saves the hard state, applies snapshots and
//! compacts the log.

use std::sync::Arc;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use crate::errors::{Error, Result, StorageError};

/// The persisted state raft restarts from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RaftState {
    /// The last saved term, vote and commit index.
    pub hard_state: HardState,
    /// The last saved membership.
    pub conf_state: ConfState,
}

impl RaftState {
    /// Builds a raft state from its two parts.
    pub fn new(hard_state: HardState, conf_state: ConfState) -> RaftState {
        RaftState {
            hard_state,
            conf_state,
        }
    }

    /// Whether the state has a membership (a peer created from a message has none yet).
    pub fn initialized(&self) -> bool {
        !self.conf_state.voters.is_empty()
    }
}

// ANCHOR: storage
/// The read side of the persisted raft state and log.
///
/// Indexes: the log holds entries `first_index() ..= last_index()`; the entry just before
/// the first (`first_index() - 1`) is the last one covered by the latest snapshot or
/// compaction, and only its term is still known.
pub trait Storage {
    /// The saved hard state and membership.
    fn initial_state(&self) -> Result<RaftState>;

    /// Entries `[low, high)`. `Compacted` if `low` is not after the compacted prefix,
    /// `Unavailable` if `high` is past `last_index() + 1`.
    fn entries(&self, low: u64, high: u64) -> Result<Vec<Entry>>;

    /// The term of entry `idx`, valid for `first_index() - 1 ..= last_index()`.
    fn term(&self, idx: u64) -> Result<u64>;

    /// The index of the first entry still available (snapshot index + 1).
    fn first_index(&self) -> Result<u64>;

    /// The index of the last entry.
    fn last_index(&self) -> Result<u64>;

    /// The latest snapshot. May be `Err(Store(SnapshotTemporarilyUnavailable))` while one is
    /// being generated: raft tries again later.
    fn snapshot(&self) -> Result<Snapshot>;
}
// ANCHOR_END: storage

/// The state behind a [`MemStorage`]: a log, a hard state, a membership and the latest
/// snapshot.
#[derive(Debug, Clone, Default)]
pub struct MemStorageCore {
    raft_state: RaftState,
    // Entries after the compacted prefix; `entries[i].index == compacted_index + 1 + i`.
    entries: Vec<Entry>,
    // The last compacted (or snapshotted) entry: the "dummy" entry of the Go course.
    compacted_index: u64,
    compacted_term: u64,
    // The latest snapshot created or applied; returned by `snapshot()`.
    snapshot: Snapshot,
    // When set, the next `snapshot()` call fails with `SnapshotTemporarilyUnavailable`.
    trigger_snap_unavailable: bool,
}

impl MemStorageCore {
    /// The saved hard state.
    pub fn hard_state(&self) -> &HardState {
        &self.raft_state.hard_state
    }

    /// The saved membership.
    pub fn conf_state(&self) -> &ConfState {
        &self.raft_state.conf_state
    }

    /// Saves the hard state.
    pub fn set_hard_state(&mut self, hs: HardState) {
        self.raft_state.hard_state = hs;
    }

    /// Saves the membership.
    pub fn set_conf_state(&mut self, cs: ConfState) {
        self.raft_state.conf_state = cs;
    }

    /// Sets the saved commit index (a shortcut for tests).
    pub fn commit_to(&mut self, index: u64) -> Result<()> {
        if index > self.last_index() {
            return Err(Error::Store(StorageError::Unavailable));
        }
        self.raft_state.hard_state.commit = index;
        Ok(())
    }

    /// The metadata of the latest snapshot created or applied.
    pub fn snapshot_metadata(&self) -> &SnapshotMetadata {
        self.snapshot.get_metadata()
    }

    /// Makes the next [`Storage::snapshot`] call fail with
    /// [`StorageError::SnapshotTemporarilyUnavailable`] (for tests).
    pub fn trigger_snap_unavailable(&mut self) {
        self.trigger_snap_unavailable = true;
    }

    /// The first available index (compacted index + 1).
    pub fn first_index(&self) -> u64 {
        self.compacted_index + 1
    }

    /// The last index of the log.
    pub fn last_index(&self) -> u64 {
        self.compacted_index + self.entries.len() as u64
    }

    /// Replaces the whole state with `snap`: the log becomes empty after the snapshot's
    /// index, the membership becomes the snapshot's, and the hard state's term and commit are
    /// raised to cover it. `SnapshotOutOfDate` if the snapshot is not newer than the storage.
    pub fn apply_snapshot(&mut self, snap: Snapshot) -> Result<()> {
        let meta = snap.get_metadata();
        let index = meta.index;
        if index <= self.compacted_index.max(self.snapshot.get_metadata().index) {
            return Err(Error::Store(StorageError::SnapshotOutOfDate));
        }
        self.compacted_index = index;
        self.compacted_term = meta.term;
        self.entries.clear();
        let hs = &mut self.raft_state.hard_state;
        hs.term = hs.term.max(meta.term);
        hs.commit = hs.commit.max(index);
        self.raft_state.conf_state = meta.get_conf_state().clone();
        self.snapshot = snap;
        Ok(())
    }

    /// Records a snapshot at `idx` (with membership `cs`, or the saved one) carrying `data`,
    /// and returns it. `SnapshotOutOfDate` if `idx` is not newer than the latest snapshot,
    /// `Compacted`/`Unavailable` if the entry at `idx` is not in the log.
    pub fn create_snapshot(
        &mut self,
        idx: u64,
        cs: Option<ConfState>,
        data: Vec<u8>,
    ) -> Result<Snapshot> {
        if idx <= self.snapshot.get_metadata().index {
            return Err(Error::Store(StorageError::SnapshotOutOfDate));
        }
        let term = self.term_of(idx)?;
        let mut snap = Snapshot {
            data: data.into(),
            ..Default::default()
        };
        let meta = snap.mut_metadata();
        meta.index = idx;
        meta.term = term;
        meta.set_conf_state(cs.unwrap_or_else(|| self.raft_state.conf_state.clone()));
        self.snapshot = snap.clone();
        Ok(snap)
    }

    /// Discards the entries up to and including `compact_index`. `Compacted` if they are
    /// already gone, `Unavailable` if `compact_index` is past the last index.
    pub fn compact(&mut self, compact_index: u64) -> Result<()> {
        if compact_index <= self.compacted_index {
            return Err(Error::Store(StorageError::Compacted));
        }
        if compact_index > self.last_index() {
            return Err(Error::Store(StorageError::Unavailable));
        }
        let term = self.term_of(compact_index)?;
        let n = (compact_index - self.compacted_index) as usize;
        self.entries.drain(..n);
        self.compacted_index = compact_index;
        self.compacted_term = term;
        Ok(())
    }

    /// Appends `ents`; entries that overlap the log replace it from their first index on
    /// (the old tail is dropped). Entries at or below the compacted index are skipped. A gap
    /// after the last index, or non-contiguous `ents`, is an error.
    pub fn append(&mut self, ents: &[Entry]) -> Result<()> {
        let Some(first) = ents.first() else {
            return Ok(());
        };
        for (i, w) in ents.windows(2).enumerate() {
            if w[0].index.checked_add(1) != Some(w[1].index) {
                return Err(Error::Store(StorageError::Other(format!(
                    "entries to append are not contiguous at position {}: {} then {}",
                    i + 1,
                    w[0].index,
                    w[1].index
                ))));
            }
        }
        if first.index > self.last_index() + 1 {
            return Err(Error::Store(StorageError::Other(format!(
                "missing log entries: last index {}, appending from {}",
                self.last_index(),
                first.index
            ))));
        }
        // Skip what is already compacted.
        let skip = (self.compacted_index + 1).saturating_sub(first.index) as usize;
        let Some(ents) = ents.get(skip..) else {
            return Ok(());
        };
        let Some(first) = ents.first() else {
            return Ok(());
        };
        let keep = (first.index - self.compacted_index - 1) as usize;
        self.entries.truncate(keep);
        self.entries.extend_from_slice(ents);
        Ok(())
    }

    fn term_of(&self, idx: u64) -> Result<u64> {
        if idx == self.compacted_index {
            return Ok(self.compacted_term);
        }
        if idx < self.compacted_index {
            return Err(Error::Store(StorageError::Compacted));
        }
        match self.entries.get((idx - self.compacted_index - 1) as usize) {
            Some(e) => Ok(e.term),
            None => Err(Error::Store(StorageError::Unavailable)),
        }
    }
}

/// An in-memory [`Storage`]: a cheap, cloneable handle to a shared [`MemStorageCore`].
///
/// Tests keep a clone and change the state (append entries, set the hard state, compact)
/// while a raft node reads it through its own clone.
///
/// ```
/// use raft::{eraftpb::Entry, MemStorage, Storage};
/// let s = MemStorage::new_with_conf_state(vec![1, 2, 3]);
/// let mut e = Entry::default();
/// e.index = 1;
/// e.term = 1;
/// s.wl().append(&[e]).unwrap();
/// assert_eq!(s.last_index().unwrap(), 1);
/// assert_eq!(s.initial_state().unwrap().conf_state.voters, vec![1, 2, 3]);
/// ```
#[derive(Clone, Default)]
pub struct MemStorage {
    core: Arc<RwLock<MemStorageCore>>,
}

impl std::fmt::Debug for MemStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let core = self.core.read();
        f.debug_struct("MemStorage")
            .field("first_index", &core.first_index())
            .field("last_index", &core.last_index())
            .field("hard_state", &core.raft_state.hard_state)
            .finish()
    }
}

impl MemStorage {
    /// An empty storage: no entries, empty hard state, no membership.
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// An empty storage whose membership (and snapshot metadata's membership) is `voters`.
    pub fn new_with_conf_state(voters: Vec<u64>) -> MemStorage {
        let s = MemStorage::new();
        {
            let mut core = s.wl();
            let cs = ConfState {
                voters,
                ..Default::default()
            };
            core.snapshot.mut_metadata().set_conf_state(cs.clone());
            core.raft_state.conf_state = cs;
        }
        s
    }

    /// Locks the core for reading.
    pub fn rl(&self) -> RwLockReadGuard<'_, MemStorageCore> {
        self.core.read()
    }

    /// Locks the core for writing.
    pub fn wl(&self) -> RwLockWriteGuard<'_, MemStorageCore> {
        self.core.write()
    }
}

impl Storage for MemStorage {
    fn initial_state(&self) -> Result<RaftState> {
        Ok(self.rl().raft_state.clone())
    }

    fn entries(&self, low: u64, high: u64) -> Result<Vec<Entry>> {
        let core = self.rl();
        if low <= core.compacted_index {
            return Err(Error::Store(StorageError::Compacted));
        }
        if high > core.last_index() + 1 || low > high {
            return Err(Error::Store(StorageError::Unavailable));
        }
        let lo = (low - core.compacted_index - 1) as usize;
        let hi = (high - core.compacted_index - 1) as usize;
        match core.entries.get(lo..hi) {
            Some(ents) => Ok(ents.to_vec()),
            None => Err(Error::Store(StorageError::Unavailable)),
        }
    }

    fn term(&self, idx: u64) -> Result<u64> {
        self.rl().term_of(idx)
    }

    fn first_index(&self) -> Result<u64> {
        Ok(self.rl().first_index())
    }

    fn last_index(&self) -> Result<u64> {
        Ok(self.rl().last_index())
    }

    fn snapshot(&self) -> Result<Snapshot> {
        let mut core = self.wl();
        if core.trigger_snap_unavailable {
            core.trigger_snap_unavailable = false;
            return Err(Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        Ok(core.snapshot.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ent(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Default::default()
        }
    }

    fn storage_with(ents: &[(u64, u64)]) -> MemStorage {
        let s = MemStorage::new();
        let ents: Vec<Entry> = ents.iter().map(|&(i, t)| ent(i, t)).collect();
        s.wl().append(&ents).unwrap();
        s
    }

    /// Storage with the compacted prefix at (3, 3) and entries (4,4), (5,5).
    fn compacted_storage() -> MemStorage {
        let s = storage_with(&[(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]);
        s.wl().compact(3).unwrap();
        s
    }

    #[test]
    fn term_answers_the_compacted_entry_and_the_log() {
        let s = compacted_storage();
        assert_eq!(s.term(2), Err(Error::Store(StorageError::Compacted)));
        assert_eq!(s.term(3), Ok(3));
        assert_eq!(s.term(4), Ok(4));
        assert_eq!(s.term(5), Ok(5));
        assert_eq!(s.term(6), Err(Error::Store(StorageError::Unavailable)));
    }

    #[test]
    fn entries_checks_both_bounds() {
        let s = compacted_storage();
        assert_eq!(s.entries(2, 6), Err(Error::Store(StorageError::Compacted)));
        assert_eq!(s.entries(3, 4), Err(Error::Store(StorageError::Compacted)));
        assert_eq!(s.entries(4, 5), Ok(vec![ent(4, 4)]));
        assert_eq!(s.entries(4, 6), Ok(vec![ent(4, 4), ent(5, 5)]));
        assert_eq!(s.entries(5, 5), Ok(vec![]));
        assert_eq!(
            s.entries(4, 7),
            Err(Error::Store(StorageError::Unavailable))
        );
        assert_eq!(
            s.entries(5, 4),
            Err(Error::Store(StorageError::Unavailable))
        );
    }

    #[test]
    fn first_and_last_index() {
        let s = compacted_storage();
        assert_eq!(s.first_index(), Ok(4));
        assert_eq!(s.last_index(), Ok(5));
        s.wl().append(&[ent(6, 5)]).unwrap();
        assert_eq!(s.last_index(), Ok(6));
        let empty = MemStorage::new();
        assert_eq!(empty.first_index(), Ok(1));
        assert_eq!(empty.last_index(), Ok(0));
        assert_eq!(empty.term(0), Ok(0));
    }

    #[test]
    fn compact_rejects_old_and_future_indexes() {
        let s = compacted_storage();
        assert_eq!(
            s.wl().compact(2),
            Err(Error::Store(StorageError::Compacted))
        );
        assert_eq!(
            s.wl().compact(3),
            Err(Error::Store(StorageError::Compacted))
        );
        assert_eq!(
            s.wl().compact(6),
            Err(Error::Store(StorageError::Unavailable))
        );
        s.wl().compact(4).unwrap();
        assert_eq!(s.first_index(), Ok(5));
        assert_eq!(s.term(4), Ok(4));
        s.wl().compact(5).unwrap();
        assert_eq!(s.first_index(), Ok(6));
        assert_eq!(s.last_index(), Ok(5));
        assert_eq!(s.term(5), Ok(5));
    }

    #[test]
    fn append_overlapping_truncates_the_tail() {
        type Case = (Vec<(u64, u64)>, Vec<(u64, u64)>);
        let cases: Vec<Case> = vec![
            (vec![(4, 4), (5, 5)], vec![(4, 4), (5, 5)]),
            (vec![(4, 4), (5, 6), (6, 6)], vec![(4, 4), (5, 6), (6, 6)]),
            (vec![(4, 4), (5, 5), (6, 5)], vec![(4, 4), (5, 5), (6, 5)]),
            // Entries at or below the compacted index are skipped.
            (vec![(2, 3), (3, 3), (4, 5)], vec![(4, 5)]),
            (vec![(4, 5)], vec![(4, 5)]),
            (vec![(6, 5)], vec![(4, 4), (5, 5), (6, 5)]),
        ];
        for (input, want) in cases {
            let s = compacted_storage();
            let ents: Vec<Entry> = input.iter().map(|&(i, t)| ent(i, t)).collect();
            s.wl().append(&ents).unwrap();
            let want: Vec<Entry> = want.iter().map(|&(i, t)| ent(i, t)).collect();
            let last = s.last_index().unwrap();
            assert_eq!(s.entries(4, last + 1).unwrap(), want, "input {input:?}");
        }
    }

    #[test]
    fn append_rejects_gaps_and_non_contiguous_entries() {
        let s = compacted_storage();
        assert!(matches!(
            s.wl().append(&[ent(7, 5)]),
            Err(Error::Store(StorageError::Other(_)))
        ));
        assert!(matches!(
            s.wl().append(&[ent(6, 5), ent(8, 5)]),
            Err(Error::Store(StorageError::Other(_)))
        ));
        assert_eq!(s.last_index(), Ok(5));
    }

    #[test]
    fn create_snapshot_records_index_term_and_membership() {
        let s = compacted_storage();
        let cs = ConfState {
            voters: vec![1, 2, 3],
            ..Default::default()
        };
        let snap = s
            .wl()
            .create_snapshot(4, Some(cs.clone()), b"data".to_vec())
            .unwrap();
        assert_eq!(snap.get_metadata().index, 4);
        assert_eq!(snap.get_metadata().term, 4);
        assert_eq!(snap.get_metadata().get_conf_state(), &cs);
        assert_eq!(&snap.data[..], b"data");
        assert_eq!(s.snapshot().unwrap(), snap);
        assert_eq!(
            s.wl().create_snapshot(4, None, vec![]),
            Err(Error::Store(StorageError::SnapshotOutOfDate))
        );
        assert_eq!(
            s.wl().create_snapshot(6, None, vec![]),
            Err(Error::Store(StorageError::Unavailable))
        );
        let snap5 = s.wl().create_snapshot(5, None, vec![]).unwrap();
        assert_eq!(snap5.get_metadata().term, 5);
    }

    #[test]
    fn apply_snapshot_replaces_the_log_and_rejects_old_snapshots() {
        let s = MemStorage::new();
        s.wl().set_hard_state(HardState {
            term: 1,
            commit: 3,
            ..Default::default()
        });
        let mut snap = Snapshot::default();
        snap.mut_metadata().index = 2;
        snap.mut_metadata().term = 1;
        snap.mut_metadata().mut_conf_state().voters = vec![1, 2];
        s.wl().apply_snapshot(snap.clone()).unwrap();
        assert_eq!(s.first_index(), Ok(3));
        assert_eq!(s.last_index(), Ok(2));
        assert_eq!(s.term(2), Ok(1));
        let st = s.initial_state().unwrap();
        assert_eq!(st.conf_state.voters, vec![1, 2]);
        // The commit index never moves backwards.
        assert_eq!(st.hard_state.commit, 3);
        assert_eq!(
            s.wl().apply_snapshot(snap.clone()),
            Err(Error::Store(StorageError::SnapshotOutOfDate))
        );
        snap.mut_metadata().index = 1;
        assert_eq!(
            s.wl().apply_snapshot(snap),
            Err(Error::Store(StorageError::SnapshotOutOfDate))
        );
        s.wl().append(&[ent(3, 1)]).unwrap();
        assert_eq!(s.entries(3, 4), Ok(vec![ent(3, 1)]));
    }

    #[test]
    fn snapshot_can_be_temporarily_unavailable() {
        let s = MemStorage::new();
        s.wl().trigger_snap_unavailable();
        assert_eq!(
            s.snapshot(),
            Err(Error::Store(StorageError::SnapshotTemporarilyUnavailable))
        );
        assert!(s.snapshot().is_ok());
    }

    #[test]
    fn new_with_conf_state_sets_membership() {
        let s = MemStorage::new_with_conf_state(vec![1, 2]);
        assert_eq!(s.initial_state().unwrap().conf_state.voters, vec![1, 2]);
        assert_eq!(
            s.rl().snapshot_metadata().get_conf_state().voters,
            vec![1, 2]
        );
        assert!(s.initial_state().unwrap().initialized());
    }
}

//! [`RaftLog`]: the node's view of the log, stable and unstable entries together, with the
//! `committed`, `applied` and `stabled` cursors.
//!
//! As in the Go course, `entries` holds the log not yet compacted. One refinement (as
//! raft-rs's `unstable` + storage): once more than `2 *` [`MEM_KEEP`] (512) entries are both
//! applied and persisted, [`RaftLog::maybe_compact`] releases all but the last `MEM_KEEP` of
//! them from memory — the storage holds them — and [`RaftLog::term`],
//! [`RaftLog::all_entries`] and [`RaftLog::entries_from`] read that released part back from
//! storage. Unstable and not-yet-applied entries always stay in memory, so the leader never
//! reads storage on the replication path unless a follower lags more than `MEM_KEEP` entries
//! behind what the leader applied and persisted.
//! Layout:
//!
//! ```text
//!  snapshot/compacted  | released (storage) |       entries (in memory)                 |
//!  ... first_index()-1 | first_index() ...  | mem_first_index() ... applied ... committed ... stabled ... last_index()
//! ```
//! (`stabled` may be anywhere from `first_index() - 1` to `last_index()`; the invariant is
//! `first_index() - 1 <= applied <= committed <= last_index()`; the released range is empty
//! unless `maybe_compact` released something, and never covers an unapplied or unstable
//! entry.)

use std::borrow::Cow;

use crate::eraftpb::{Entry, Snapshot};
use crate::errors::{Error, Result, StorageError};
use crate::storage::Storage;

/// How many applied and persisted entries [`RaftLog::maybe_compact`] keeps in memory when it
/// releases older ones (it releases only once twice as many have piled up, so the cost of
/// shifting `entries` is amortized). At least 1: the log relies on `entries` being non-empty
/// whenever something is released.
pub const MEM_KEEP: u64 = 256;

#[cfg(test)]
thread_local! {
    // Unit tests and the simulation may lower the bound to exercise the released path.
    static TEST_MEM_KEEP: std::cell::Cell<u64> = const { std::cell::Cell::new(MEM_KEEP) };
}

#[cfg(test)]
pub(crate) fn set_test_mem_keep(keep: u64) {
    TEST_MEM_KEEP.with(|k| k.set(keep.max(1)));
}

/// The raft log of one node.
pub struct RaftLog<S: Storage> {
    /// The persisted part of the log, as the application saved it.
    pub storage: S,
    /// The highest index known to be committed (stored on a quorum).
    pub committed: u64,
    /// The highest index handed to the application to apply (`applied <= committed`).
    pub applied: u64,
    /// The highest index persisted to storage; entries after it are unstable.
    pub stabled: u64,
    /// The entries not yet compacted, stable and unstable, without a dummy entry — all of
    /// them, except that [`RaftLog::maybe_compact`] may release from memory a prefix of
    /// entries that are both applied and persisted (it keeps at least the last 256 such
    /// entries, and never releases an unapplied or unstable one). So `entries[0].index` is
    /// [`RaftLog::mem_first_index`], which is `first_index()` unless something was released;
    /// the released entries are in storage ([`RaftLog::all_entries`] includes them).
    pub entries: Vec<Entry>,
    /// A snapshot received from the leader, waiting to be handed out in a `Ready`.
    pub pending_snapshot: Option<Snapshot>,
    // The entry just before `entries[0]` (compacted or covered by a snapshot).
    dummy_index: u64,
    dummy_term: u64,
}

impl<S: Storage> std::fmt::Debug for RaftLog<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftLog")
            .field("first_index", &self.first_index())
            .field("last_index", &self.last_index())
            .field("committed", &self.committed)
            .field("applied", &self.applied)
            .field("stabled", &self.stabled)
            .field("pending_snapshot", &self.pending_snapshot.is_some())
            .finish()
    }
}

impl<S: Storage> RaftLog<S> {
    /// Builds the log from what `storage` holds: every stored entry is loaded, `stabled` is
    /// the storage's last index, `committed` comes from the hard state and `applied` is the
    /// first index − 1.
    pub fn new(storage: S) -> Result<Self> {
        // lab:begin 2aa
        // lab:stub let _ = storage;
        // lab:stub todo!("2aa: load the log from storage")
        let first = storage.first_index()?;
        let last = storage.last_index()?;
        let dummy_index = first.saturating_sub(1);
        let dummy_term = storage.term(dummy_index)?;
        let entries = if last >= first {
            storage.entries(first, last + 1)?
        } else {
            Vec::new()
        };
        let want = last.saturating_add(1).saturating_sub(first);
        if entries.len() as u64 != want
            || entries
                .iter()
                .enumerate()
                .any(|(i, e)| e.index != first + i as u64)
        {
            return Err(Error::Store(StorageError::Other(format!(
                "storage returned {} entries for [{first}, {}), or not contiguous",
                entries.len(),
                last + 1
            ))));
        }
        let hs = storage.initial_state()?.hard_state;
        if hs.commit > last {
            return Err(Error::Store(StorageError::Other(format!(
                "hard state commit {} is past the last index {last}",
                hs.commit
            ))));
        }
        Ok(RaftLog {
            storage,
            committed: hs.commit.max(dummy_index),
            applied: dummy_index,
            stabled: last,
            entries,
            pending_snapshot: None,
            dummy_index,
            dummy_term,
        })
        // lab:end 2aa
    }

    /// Drops from memory the entries the storage has compacted (only entries already
    /// applied are dropped). Also releases from memory old entries that are applied and
    /// persisted (they stay readable from storage; see the module docs).
    pub fn maybe_compact(&mut self) {
        // lab:begin 2c
        // lab:stub // TODO(2c): drop the entries that storage has compacted.
        let Ok(storage_first) = self.storage.first_index() else {
            return;
        };
        let done = self.applied.min(self.stabled);
        let compact_to = storage_first.saturating_sub(1).min(done);
        if compact_to > self.dummy_index {
            if let Ok(term) = self.term(compact_to) {
                // The entries at or below `compact_to` still in memory.
                let n = (compact_to + 1).saturating_sub(self.mem_first_index()) as usize;
                if n <= self.entries.len() {
                    self.entries.drain(..n);
                    self.dummy_index = compact_to;
                    self.dummy_term = term;
                }
            }
        }
        // Release applied and persisted entries beyond the last `keep` of them, in batches
        // of at least `keep`. At least one entry stays in memory.
        #[cfg(not(test))]
        let keep = MEM_KEEP;
        #[cfg(test)]
        let keep = TEST_MEM_KEEP.with(|k| k.get());
        let mem_first = self.mem_first_index();
        let new_first = done.saturating_sub(keep) + 1;
        if new_first > mem_first.saturating_add(keep) {
            let n = ((new_first - mem_first) as usize).min(self.entries.len().saturating_sub(1));
            self.entries.drain(..n);
        }
        // lab:end 2c
    }

    /// All entries not yet compacted (a copy), without a dummy entry: the ones released from
    /// memory are read back from storage.
    pub fn all_entries(&self) -> Vec<Entry> {
        let (first, mem_first) = (self.first_index(), self.mem_first_index());
        if mem_first > first {
            if let Ok(mut v) = self.storage.entries(first, mem_first) {
                v.extend_from_slice(&self.entries);
                return v;
            }
        }
        self.entries.clone()
    }

    /// The entries from `lo` to the end of the log: borrowed when they are all in memory,
    /// else with the released part read back from storage. `Compacted` when `lo` is at or
    /// below the compacted index (or storage no longer has the released part).
    pub fn entries_from(&self, lo: u64) -> Result<Cow<'_, [Entry]>> {
        let mem_first = self.mem_first_index();
        if lo >= mem_first {
            return Ok(Cow::Borrowed(self.slice_from(lo)));
        }
        if lo <= self.dummy_index {
            return Err(Error::Store(StorageError::Compacted));
        }
        let mut v = self
            .storage
            .entries(lo, mem_first)
            .map_err(|_| Error::Store(StorageError::Compacted))?;
        v.extend_from_slice(&self.entries);
        Ok(Cow::Owned(v))
    }

    /// The entries not yet persisted (index > `stabled`).
    pub fn unstable_entries(&self) -> &[Entry] {
        // lab:begin 2ab
        // lab:stub todo!("2ab: the entries after stabled")
        let from = self.stabled.saturating_add(1).max(self.first_index());
        self.slice_from(from)
        // lab:end 2ab
    }

    /// The committed entries not yet applied (`applied + 1 ..= committed`), copied.
    pub fn next_ents(&self) -> Vec<Entry> {
        // lab:begin 2ab
        // lab:stub todo!("2ab: the entries committed but not applied")
        let lo = self.applied.saturating_add(1).max(self.first_index());
        let hi = self.committed.min(self.last_index());
        if lo > hi {
            return Vec::new();
        }
        self.slice(lo, hi + 1).to_vec()
        // lab:end 2ab
    }

    /// Whether some committed entries wait to be applied.
    pub fn has_next_ents(&self) -> bool {
        let lo = self.applied.saturating_add(1).max(self.first_index());
        lo <= self.committed.min(self.last_index())
    }

    /// The index of the first entry not compacted (the index after the compacted prefix or
    /// the pending snapshot).
    pub fn first_index(&self) -> u64 {
        self.dummy_index + 1
    }

    /// The index of the first entry held in memory, `entries[0]` (`last_index() + 1` when
    /// there is none): `first_index()` unless `maybe_compact` released a prefix.
    pub fn mem_first_index(&self) -> u64 {
        match self.entries.first() {
            Some(e) => e.index,
            None => self.dummy_index + 1,
        }
    }

    /// The index of the last entry (the snapshot's index when the log is empty after one).
    pub fn last_index(&self) -> u64 {
        // lab:begin 2aa
        // lab:stub todo!("2aa: the last index of the log")
        match self.entries.last() {
            Some(e) => e.index,
            None => self.dummy_index,
        }
        // lab:end 2aa
    }

    /// The term of the last entry.
    pub fn last_term(&self) -> u64 {
        // lab:begin 2aa
        // lab:stub todo!("2aa: the term of the last entry")
        match self.entries.last() {
            Some(e) => e.term,
            None => self.dummy_term,
        }
        // lab:end 2aa
    }

    /// The term of entry `i`: known for `first_index() - 1 ..= last_index()` (the first of
    /// them is the compacted entry or the pending snapshot's index). `Compacted` below,
    /// `Unavailable` above.
    pub fn term(&self, i: u64) -> Result<u64> {
        // lab:begin 2aa
        // lab:stub let _ = i;
        // lab:stub todo!("2aa: the term of an entry")
        if i == self.dummy_index {
            return Ok(self.dummy_term);
        }
        if i < self.dummy_index {
            return Err(Error::Store(StorageError::Compacted));
        }
        let mem_first = self.mem_first_index();
        if i < mem_first {
            // Released from memory: storage has it (unless it compacted it since).
            return self
                .storage
                .term(i)
                .map_err(|_| Error::Store(StorageError::Compacted));
        }
        match self.entries.get((i - mem_first) as usize) {
            Some(e) => Ok(e.term),
            None => Err(Error::Store(StorageError::Unavailable)),
        }
        // lab:end 2aa
    }

    /// Whether entry `i` exists with term `term`.
    pub fn match_term(&self, i: u64, term: u64) -> bool {
        self.term(i).map(|t| t == term).unwrap_or(false)
    }

    /// Whether a log ending at (`last_index`, `term`) is at least as up to date as this one.
    pub fn is_up_to_date(&self, last_index: u64, term: u64) -> bool {
        // lab:begin 2aa
        // lab:stub let _ = (last_index, term);
        // lab:stub todo!("2aa: compare (last term, last index)")
        let my_term = self.last_term();
        term > my_term || (term == my_term && last_index >= self.last_index())
        // lab:end 2aa
    }

    /// The in-memory entries `[lo, hi)`, clamped to what is in memory.
    pub fn slice(&self, lo: u64, hi: u64) -> &[Entry] {
        let first = self.mem_first_index();
        let lo = lo.max(first);
        let hi = hi.min(self.last_index() + 1);
        if lo >= hi {
            return &[];
        }
        self.entries
            .get((lo - first) as usize..(hi - first) as usize)
            .unwrap_or(&[])
    }

    /// The in-memory entries from `lo` to the end.
    pub fn slice_from(&self, lo: u64) -> &[Entry] {
        let first = self.mem_first_index();
        let lo = lo.max(first);
        self.entries.get((lo - first) as usize..).unwrap_or(&[])
    }

    /// Appends entries the leader created (their index continues the log). Returns the new
    /// last index.
    pub fn append(&mut self, ents: Vec<Entry>) -> u64 {
        // lab:begin 2aa
        // lab:stub let _ = ents;
        // lab:stub todo!("2aa: append entries at the end of the log")
        if let Some(first) = ents.first() {
            self.truncate_and_append_from(first.index);
            self.entries.extend(ents);
        }
        self.last_index()
        // lab:end 2aa
    }

    /// The follower side of `MsgAppend`: if entry `idx` has term `term`, append `ents`
    /// (which follow `idx`), deleting only a conflicting suffix, and raise `committed` to
    /// `min(committed_hint, idx + ents.len())`. Returns the index of the last entry the
    /// message covers, or `None` if the log does not match at `idx` (or the message would
    /// rewrite committed entries).
    pub fn maybe_append(
        &mut self,
        idx: u64,
        term: u64,
        committed_hint: u64,
        ents: &[Entry],
    ) -> Option<u64> {
        self.maybe_append_owned(idx, term, committed_hint, ents.to_vec())
    }

    /// [`RaftLog::maybe_append`] taking the entries by value: the new ones move into the log
    /// instead of being copied (what `Raft::step` uses for an incoming `MsgAppend`).
    pub fn maybe_append_owned(
        &mut self,
        idx: u64,
        term: u64,
        committed_hint: u64,
        ents: Vec<Entry>,
    ) -> Option<u64> {
        // lab:begin 2ab
        // lab:stub let _ = (idx, term, committed_hint, ents);
        // lab:stub todo!("2ab: check the previous entry, resolve conflicts, append, commit")
        if !self.match_term(idx, term) {
            return None;
        }
        let last_new = idx.checked_add(ents.len() as u64)?;
        if ents
            .iter()
            .enumerate()
            .any(|(i, e)| idx.checked_add(i as u64 + 1) != Some(e.index))
        {
            return None;
        }
        let conflict = self.find_conflict(&ents);
        if conflict != 0 {
            if conflict <= self.committed {
                return None;
            }
            let start = (conflict - idx - 1) as usize;
            let mut ents = ents;
            ents.drain(..start.min(ents.len()));
            self.truncate_and_append_from(conflict);
            if self.entries.is_empty() {
                self.entries = ents;
            } else {
                self.entries.append(&mut ents);
            }
        }
        self.commit_to(committed_hint.min(last_new));
        Some(last_new)
        // lab:end 2ab
    }

    /// The index of the first entry of `ents` that is missing from the log or has another
    /// term there; 0 when every entry is already present.
    pub fn find_conflict(&self, ents: &[Entry]) -> u64 {
        for e in ents {
            if !self.match_term(e.index, e.term) {
                return e.index;
            }
        }
        0
    }

    /// The largest index `<= index` whose entry has a term `<= term` (stopping at the
    /// compacted entry). A follower rejecting an append uses it as the hint of where its log
    /// may match; the leader uses it again on its own log, so a divergent suffix is skipped
    /// a term at a time rather than an entry at a time.
    pub fn find_conflict_by_term(&self, index: u64, term: u64) -> u64 {
        let mut i = index.min(self.last_index());
        let floor = self.first_index().saturating_sub(1);
        while i > floor {
            match self.term(i) {
                Ok(t) if t > term => i -= 1,
                _ => break,
            }
        }
        i
    }

    // Drops the entries from `index` on so that an entry at `index` comes next.
    fn truncate_and_append_from(&mut self, index: u64) {
        let first = self.mem_first_index();
        if index <= first && index > self.dummy_index + 1 {
            // Rewriting the log at or before its first entry in memory, after some were
            // released: take the released entries before `index` back from storage (raft
            // itself never rewrites applied entries; only a direct caller of `append` can).
            if let Ok(kept) = self.storage.entries(self.dummy_index + 1, index) {
                self.entries = kept;
                self.stabled = self.stabled.min(index - 1);
                return;
            }
        }
        if index <= first {
            // Everything in memory is replaced (or the append starts before it: keep the
            // dummy consistent with what follows).
            self.entries.clear();
            if index <= self.dummy_index {
                self.dummy_index = index.saturating_sub(1);
            }
        } else {
            self.entries.truncate((index - first) as usize);
        }
        self.stabled = self.stabled.min(index.saturating_sub(1));
    }

    /// Raises `committed` to `i` (never lowers it; clamped to the last index).
    pub fn commit_to(&mut self, i: u64) {
        let i = i.min(self.last_index());
        if i > self.committed {
            self.committed = i;
        }
    }

    /// Commits `max_index` if its entry has term `term` (the leader only commits entries
    /// of its own term by counting replicas). Returns whether `committed` moved.
    pub fn maybe_commit(&mut self, max_index: u64, term: u64) -> bool {
        if max_index > self.committed && self.match_term(max_index, term) {
            self.commit_to(max_index);
            return true;
        }
        false
    }

    /// Records that entries up to `i` were applied (clamped to `committed`).
    pub fn applied_to(&mut self, i: u64) {
        let i = i.min(self.committed);
        if i > self.applied {
            self.applied = i;
        }
    }

    /// Records that entries up to `i` (with term `term`) were persisted. Ignored if the
    /// entry has since been replaced.
    pub fn stable_to(&mut self, i: u64, term: u64) {
        if i > self.stabled && self.match_term(i, term) {
            self.stabled = i;
        }
    }

    /// Records that the pending snapshot at `index` was persisted and drops it.
    pub fn stable_snap_to(&mut self, index: u64) {
        if let Some(s) = &self.pending_snapshot {
            if s.get_metadata().index == index {
                self.pending_snapshot = None;
            }
        }
        if index > self.stabled && index <= self.last_index() {
            self.stabled = index;
        }
    }

    /// Resets the log to `snap`: no entries, every cursor at the snapshot's index, and the
    /// snapshot kept as pending until the application takes it from a `Ready`.
    pub fn restore(&mut self, snap: Snapshot) {
        // lab:begin 2c
        // lab:stub let _ = snap;
        // lab:stub todo!("2c: reset the log to a snapshot")
        let meta = snap.get_metadata();
        self.entries.clear();
        self.dummy_index = meta.index;
        self.dummy_term = meta.term;
        self.committed = meta.index;
        self.applied = meta.index;
        self.stabled = meta.index;
        self.pending_snapshot = Some(snap);
        // lab:end 2c
    }

    /// The snapshot to send to a follower that needs compacted entries: the pending one if
    /// any, else the storage's.
    pub fn snapshot(&self) -> Result<Snapshot> {
        if let Some(s) = &self.pending_snapshot {
            return Ok(s.clone());
        }
        self.storage.snapshot()
    }
}

// lab:needs 2aa,2ab,2c
#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;

    fn ent(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Default::default()
        }
    }

    fn ents(v: &[(u64, u64)]) -> Vec<Entry> {
        v.iter().map(|&(i, t)| ent(i, t)).collect()
    }

    fn log_with(v: &[(u64, u64)]) -> RaftLog<MemStorage> {
        let s = MemStorage::new();
        s.wl().append(&ents(v)).unwrap();
        RaftLog::new(s).unwrap()
    }

    #[test]
    fn new_loads_storage() {
        let s = MemStorage::new();
        s.wl().append(&ents(&[(1, 1), (2, 1), (3, 2)])).unwrap();
        s.wl().compact(1).unwrap();
        s.wl().set_hard_state(crate::eraftpb::HardState {
            term: 2,
            commit: 2,
            ..Default::default()
        });
        let l = RaftLog::new(s).unwrap();
        assert_eq!(l.first_index(), 2);
        assert_eq!(l.last_index(), 3);
        assert_eq!(l.applied, 1);
        assert_eq!(l.committed, 2);
        assert_eq!(l.stabled, 3);
        assert_eq!(l.term(1), Ok(1));
        assert_eq!(l.term(0), Err(Error::Store(StorageError::Compacted)));
        assert_eq!(l.term(4), Err(Error::Store(StorageError::Unavailable)));
        assert_eq!(l.all_entries(), ents(&[(2, 1), (3, 2)]));
        assert!(l.unstable_entries().is_empty());
        assert_eq!(l.next_ents(), ents(&[(2, 1)]));
    }

    #[test]
    fn empty_log() {
        let l = RaftLog::new(MemStorage::new()).unwrap();
        assert_eq!((l.first_index(), l.last_index(), l.last_term()), (1, 0, 0));
        assert_eq!((l.committed, l.applied, l.stabled), (0, 0, 0));
        assert_eq!(l.term(0), Ok(0));
        assert!(l.next_ents().is_empty());
    }

    #[test]
    fn maybe_append_truncates_only_the_conflicting_suffix() {
        // (prev index, prev term, commit, entries) -> (result, last index, committed, unstable)
        type Case = (
            u64,
            u64,
            u64,
            Vec<(u64, u64)>,
            Option<u64>,
            u64,
            u64,
            Vec<(u64, u64)>,
        );
        let cases: Vec<Case> = vec![
            (3, 2, 3, vec![], None, 3, 1, vec![]),
            (4, 3, 3, vec![], None, 3, 1, vec![]),
            (3, 3, 3, vec![], Some(3), 3, 3, vec![]),
            (3, 3, 3, vec![(4, 4)], Some(4), 4, 3, vec![(4, 4)]),
            (
                3,
                3,
                4,
                vec![(4, 4), (5, 4)],
                Some(5),
                5,
                4,
                vec![(4, 4), (5, 4)],
            ),
            (2, 2, 3, vec![(3, 3)], Some(3), 3, 3, vec![]),
            (1, 1, 3, vec![(2, 4)], Some(2), 2, 2, vec![(2, 4)]),
            (0, 0, 3, vec![(1, 1), (2, 2)], Some(2), 3, 2, vec![]),
        ];
        for (idx, term, commit, es, want, last, committed, unstable) in cases {
            let mut l = log_with(&[(1, 1), (2, 2), (3, 3)]);
            l.committed = 1;
            let got = l.maybe_append(idx, term, commit, &ents(&es));
            assert_eq!(got, want, "case {idx} {term} {es:?}");
            assert_eq!(l.last_index(), last);
            assert_eq!(l.committed, committed);
            assert_eq!(l.unstable_entries(), &ents(&unstable)[..]);
        }
    }

    #[test]
    fn maybe_append_refuses_to_rewrite_committed_entries() {
        let mut l = log_with(&[(1, 1), (2, 2), (3, 3)]);
        l.committed = 3;
        assert_eq!(l.maybe_append(1, 1, 3, &ents(&[(2, 5)])), None);
        assert_eq!(l.all_entries(), ents(&[(1, 1), (2, 2), (3, 3)]));
    }

    #[test]
    fn commit_and_apply_cursors() {
        let mut l = log_with(&[(1, 1), (2, 1), (3, 2)]);
        assert!(!l.maybe_commit(2, 2));
        assert!(l.maybe_commit(3, 2));
        assert_eq!(l.committed, 3);
        l.commit_to(10);
        assert_eq!(l.committed, 3);
        l.commit_to(1);
        assert_eq!(l.committed, 3);
        l.applied_to(2);
        assert_eq!(l.next_ents(), ents(&[(3, 2)]));
        l.applied_to(5);
        assert_eq!(l.applied, 3);
        assert!(!l.has_next_ents());
    }

    #[test]
    fn append_then_stable() {
        let mut l = log_with(&[(1, 1)]);
        assert_eq!(l.append(ents(&[(2, 2), (3, 2)])), 3);
        assert_eq!(l.unstable_entries(), &ents(&[(2, 2), (3, 2)])[..]);
        l.stable_to(3, 1);
        assert_eq!(l.stabled, 1);
        l.stable_to(3, 2);
        assert!(l.unstable_entries().is_empty());
    }

    #[test]
    fn restore_and_compact() {
        let mut l = log_with(&[(1, 1), (2, 1), (3, 2)]);
        let mut snap = Snapshot::default();
        snap.mut_metadata().index = 11;
        snap.mut_metadata().term = 11;
        l.restore(snap);
        assert_eq!(l.last_index(), 11);
        assert_eq!(l.first_index(), 12);
        assert_eq!(l.term(11), Ok(11));
        assert_eq!((l.committed, l.applied, l.stabled), (11, 11, 11));
        assert!(l.pending_snapshot.is_some());
        l.stable_snap_to(11);
        assert!(l.pending_snapshot.is_none());

        let mut l = log_with(&[(1, 1), (2, 1), (3, 2)]);
        l.commit_to(3);
        l.applied_to(2);
        l.storage.wl().compact(3).unwrap();
        l.maybe_compact();
        // Only applied entries leave memory.
        assert_eq!(l.first_index(), 3);
        assert_eq!(l.term(2), Ok(1));
        l.applied_to(3);
        l.maybe_compact();
        assert_eq!(l.first_index(), 4);
        assert_eq!(l.last_index(), 3);
        assert_eq!(l.term(3), Ok(2));
    }

    #[test]
    fn applied_and_stable_entries_are_released_and_read_back() {
        set_test_mem_keep(2);
        // 1..=10 in storage and memory; 11..=12 unstable.
        let all: Vec<(u64, u64)> = (1..=12).map(|i| (i, 1 + i / 4)).collect();
        let mut l = log_with(&all[..10]);
        l.append(ents(&all[10..]));
        l.commit_to(11);
        l.applied_to(9);
        l.maybe_compact();
        // Applied and stable: 1..=9; the last 2 of them stay, the rest is released.
        assert_eq!(l.first_index(), 1);
        assert_eq!(l.mem_first_index(), 8);
        assert_eq!(l.entries, ents(&all[7..]));
        assert_eq!(l.all_entries(), ents(&all));
        for &(i, t) in &all {
            assert_eq!(l.term(i), Ok(t), "term({i})");
        }
        assert_eq!(l.term(0), Ok(0));
        assert_eq!(l.term(13), Err(Error::Store(StorageError::Unavailable)));
        assert_eq!(l.entries_from(3).unwrap().to_vec(), ents(&all[2..]));
        assert!(matches!(l.entries_from(9).unwrap(), Cow::Borrowed(_)));
        assert_eq!(l.slice(1, 9), &ents(&all[7..8])[..]);
        assert_eq!(l.next_ents(), ents(&all[9..11]));
        assert_eq!(l.unstable_entries(), &ents(&all[10..])[..]);
        assert_eq!(l.find_conflict(&ents(&all[1..5])), 0);
        assert_eq!(l.find_conflict_by_term(12, 2), 7);
        // Nothing more to release until 2 * keep entries pile up again.
        l.maybe_compact();
        assert_eq!(l.mem_first_index(), 8);
        // Storage compacts behind the log's back: the released part is gone.
        l.storage.wl().compact(5).unwrap();
        assert_eq!(l.term(3), Err(Error::Store(StorageError::Compacted)));
        assert_eq!(
            l.entries_from(3),
            Err(Error::Store(StorageError::Compacted))
        );
        assert_eq!(l.entries_from(8).unwrap().to_vec(), ents(&all[7..]));
        // The next compaction catches up: the dummy moves to storage's compacted index.
        l.maybe_compact();
        assert_eq!(l.first_index(), 6);
        assert_eq!(l.term(5), Ok(all[4].1));
        assert_eq!(l.term(4), Err(Error::Store(StorageError::Compacted)));
        assert_eq!(l.entries_from(6).unwrap().to_vec(), ents(&all[5..]));
        assert_eq!(l.all_entries(), ents(&all[5..]));
        // A follower append of entries it already has changes nothing; new ones move in.
        let mut new = ents(&all[5..]);
        new.push(ent(13, 9));
        assert_eq!(l.maybe_append_owned(5, all[4].1, 11, new), Some(13));
        assert_eq!(l.all_entries().last(), Some(&ent(13, 9)));
        assert_eq!(l.mem_first_index(), 8);
        // Rewriting before the in-memory entries (only a direct `append` can) reloads them.
        l.committed = 5;
        l.applied = 5;
        l.append(ents(&[(7, 9)]));
        assert_eq!(l.all_entries(), ents(&[(6, all[5].1), (7, 9)]));
        assert_eq!(l.mem_first_index(), 6);
        assert_eq!(l.stabled, 6);
        set_test_mem_keep(MEM_KEEP);
    }

    #[test]
    fn maybe_append_owned_matches_maybe_append() {
        for (idx, term, commit, es) in [
            (3, 3, 3, vec![(4, 4), (5, 4)]),
            (2, 2, 3, vec![(3, 3)]),
            (1, 1, 3, vec![(2, 4)]),
            (1, 1, 3, vec![(2, 2), (3, 4), (4, 4)]),
            (0, 0, 3, vec![(1, 1), (2, 2)]),
            (3, 2, 3, vec![]),
            (1, 1, 3, vec![(3, 4)]),
        ] {
            let mut a = log_with(&[(1, 1), (2, 2), (3, 3)]);
            let mut b = log_with(&[(1, 1), (2, 2), (3, 3)]);
            a.committed = 1;
            b.committed = 1;
            let ra = a.maybe_append(idx, term, commit, &ents(&es));
            let rb = b.maybe_append_owned(idx, term, commit, ents(&es));
            assert_eq!(ra, rb, "{idx} {term} {es:?}");
            assert_eq!(a.entries, b.entries);
            assert_eq!((a.committed, a.stabled), (b.committed, b.stabled));
        }
    }

    #[test]
    fn new_rejects_a_commit_past_the_log() {
        let s = MemStorage::new();
        s.wl().set_hard_state(crate::eraftpb::HardState {
            term: 1,
            commit: 5,
            ..Default::default()
        });
        assert!(matches!(
            RaftLog::new(s),
            Err(Error::Store(StorageError::Other(_)))
        ));
    }

    proptest::proptest! {
        /// Whatever a leader sends, the log's invariants hold afterwards.
        #[test]
        fn invariants_hold_under_random_appends(
            ops in proptest::collection::vec((0u64..8, 0u64..4, 0u64..10, proptest::collection::vec(1u64..4, 0..4)), 1..30)
        ) {
            let mut l = log_with(&[(1, 1), (2, 1)]);
            for (idx, term, commit, terms) in ops {
                let es: Vec<Entry> = terms.iter().enumerate().map(|(i, &t)| ent(idx + 1 + i as u64, t.max(term))).collect();
                let _ = l.maybe_append(idx, term, commit, &es);
                proptest::prop_assert!(l.first_index() - 1 <= l.applied);
                proptest::prop_assert!(l.applied <= l.committed);
                proptest::prop_assert!(l.committed <= l.last_index());
                proptest::prop_assert!(l.stabled <= l.last_index());
                for (i, e) in l.entries.iter().enumerate() {
                    proptest::prop_assert_eq!(e.index, l.first_index() + i as u64);
                }
            }
        }
    }
}
// lab:end-needs

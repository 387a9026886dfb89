//! A peer's persistent raft state: [`PeerStorage`] implements [`raft::Storage`] on a store's
//! [`Engines`].
//!
//! What it owns, per region (keys in [`engine::keys`], all in [`Cf::Raft`]):
//! - in the **raft engine**: the raft log entries and the [`RaftLocalState`] (hard state, last
//!   index and term). Both are written by [`PeerStorage::save_ready_state`], in one batch,
//!   synced before the `Ready`'s messages may leave;
//! - in the **kv engine**: the [`RaftApplyState`] (applied index, truncated state), written by
//!   the apply code in the same batch as the data it describes, and the region state.
//!
//! Both states are cached in memory; the engines are read only for log entries. The log holds
//! entries `truncated index + 1 ..= last index`; of the truncated entry only its term is known.
//! Persisted state always satisfies truncated ≤ applied ≤ last and commit ≤ last:
//!
//! ```text
//!   index   5 │ 6   7   8   9  10  11  12
//!           ▲   ▲           ▲       ▲   ▲
//!   truncated   first     applied  commit  last
//! ```

mod snapshot;

use std::cell::RefCell;

use engine::{keys, Cf, Durability, Engines, WriteBatch};
use proto::eraftpb::{Entry, EntryType, HardState, Snapshot};
use proto::metapb::Region;
use proto::raft_serverpb::{PeerState, RaftApplyState, RaftLocalState};
use protobuf::Message as _;
use raft::{RaftState, Ready, StorageError};

use crate::meta::{self, initial_apply_state, initial_raft_state};
use crate::util::{conf_state_from_region, extra_data_ranges, KeyRange};
use crate::{Error, Result};

pub use snapshot::ApplySnapResult;
use snapshot::GenState;

/// The raft log and raft/apply state of one peer, on the store's engines.
///
/// A peer of an *initialised* region (one whose region lists its peers: bootstrapped, split,
/// or after a snapshot) starts at log index/term 5; a peer created from a raft message for a
/// region it knows nothing about is *uninitialised* (no peers, everything 0) until a snapshot
/// arrives.
#[derive(Debug)]
pub struct PeerStorage {
    engines: Engines,
    region: Region,
    raft_state: RaftLocalState,
    apply_state: RaftApplyState,
    tag: String,
    /// Where the generation of a snapshot for raft stands (raft asks through `&self`).
    gen: RefCell<GenState>,
}

/// Loads a region's raft state; a missing one is the initial state (written now) for an
/// initialised region, and all zero for an uninitialised one.
///
/// A peer created from a message (log empty, maybe a vote cast) whose region then becomes
/// initialised by a split gets the split's initial log (5, 5) under its hard state: the term
/// is raised to at least 5 (the vote is kept only if its term is kept), commit to at least 5.
fn init_raft_state(engines: &Engines, region: &Region) -> Result<RaftLocalState> {
    let initialised = !region.get_peers().is_empty();
    let loaded = meta::raft_local_state(&engines.raft, region.id)?;
    let state = match loaded {
        Some(mut state) if !initialised || state.last_index != 0 => {
            if !state.has_hard_state() {
                state.set_hard_state(HardState::default());
            }
            return Ok(state);
        }
        None if !initialised => {
            let mut state = RaftLocalState::default();
            state.set_hard_state(HardState::default());
            return Ok(state);
        }
        // A region created by a split: its raft state starts here.
        None => initial_raft_state(),
        Some(old) => {
            let mut state = initial_raft_state();
            let (hs, old_hs) = (state.mut_hard_state(), old.get_hard_state());
            if old_hs.term >= hs.term {
                hs.term = old_hs.term;
                hs.vote = old_hs.vote;
            }
            hs.commit = hs.commit.max(old_hs.commit);
            state
        }
    };
    let mut wb = WriteBatch::new();
    meta::write_raft_state(&mut wb, region.id, &state)?;
    engines.raft.write(wb, Durability::Sync)?;
    Ok(state)
}

/// A region whose state is `Applying` was receiving a snapshot when the store stopped. The
/// snapshot's apply state (applied = truncated = the snapshot's index) was persisted first; if
/// the raft engine's write did not follow, the raft state still describes the log from before
/// the snapshot, none of which survives a snapshot. Resets it to the snapshot's (last index and
/// term = the truncated state, commit = its index, term raised to at least its term) and deletes
/// the old entries after it, durably.
fn recover_applying_raft_state(
    engines: &Engines,
    region_id: u64,
    apply: &RaftApplyState,
    state: &mut RaftLocalState,
) -> Result<()> {
    let t = apply.get_truncated_state();
    if state.last_index == t.index && state.last_term == t.term {
        return Ok(());
    }
    let mut raft_wb = WriteBatch::new();
    for index in t.index + 1..=state.last_index {
        raft_wb.delete_cf(Cf::Raft, &keys::raft_log_key(region_id, index))?;
    }
    state.last_index = t.index;
    state.last_term = t.term;
    let hs = state.mut_hard_state();
    if hs.term < t.term {
        hs.term = t.term;
        hs.vote = 0;
    }
    hs.commit = t.index;
    meta::write_raft_state(&mut raft_wb, region_id, state)?;
    engines.raft.write(raft_wb, Durability::Sync)?;
    Ok(())
}

/// Loads a region's apply state, like [`init_raft_state`].
fn init_apply_state(engines: &Engines, region: &Region) -> Result<RaftApplyState> {
    if let Some(mut state) = meta::apply_state(&engines.kv, region.id)? {
        if !state.has_truncated_state() {
            state.set_truncated_state(Default::default());
        }
        return Ok(state);
    }
    if region.get_peers().is_empty() {
        let mut state = RaftApplyState::default();
        state.set_truncated_state(Default::default());
        return Ok(state);
    }
    let state = initial_apply_state();
    let mut wb = WriteBatch::new();
    meta::write_apply_state(&mut wb, region.id, &state)?;
    engines.kv.write(wb, Durability::Sync)?;
    Ok(state)
}

fn is_empty_hard_state(hs: &HardState) -> bool {
    hs.term == 0 && hs.vote == 0 && hs.commit == 0
}

impl PeerStorage {
    /// Opens the storage of `region`'s peer on `engines`: loads the raft and apply states (see
    /// [`PeerStorage`] for missing ones) and checks that they agree with each other and with
    /// the log. A broken invariant is [`Error::Corrupt`], never a panic.
    pub fn new(engines: Engines, region: Region, tag: String) -> Result<PeerStorage> {
        let mut raft_state = init_raft_state(&engines, &region)?;
        let apply_state = init_apply_state(&engines, &region)?;
        let applying = meta::region_local_state(&engines.kv, region.id)?
            .is_some_and(|s| s.get_state() == PeerState::Applying);
        if applying {
            recover_applying_raft_state(&engines, region.id, &apply_state, &mut raft_state)?;
        }
        let ps = PeerStorage {
            engines,
            region,
            raft_state,
            apply_state,
            tag,
            gen: RefCell::new(GenState::default()),
        };
        ps.validate()?;
        tracing::debug!(
            tag = %ps.tag,
            last_index = ps.raft_state.last_index,
            applied = ps.apply_state.applied_index,
            truncated = ps.truncated_index(),
            "peer storage loaded"
        );
        Ok(ps)
    }

    /// The invariants of persisted state: truncated ≤ applied ≤ last, commit ≤ last, an
    /// initialised region has a hard state, and the last entry (if any after the truncated
    /// one) is stored with the recorded last term.
    fn validate(&self) -> Result<()> {
        let (last, last_term) = (self.raft_state.last_index, self.raft_state.last_term);
        let applied = self.apply_state.applied_index;
        let (truncated, truncated_term) = (self.truncated_index(), self.truncated_term());
        let commit = self.raft_state.get_hard_state().commit;
        let fail = |what: String| Err(Error::Corrupt(format!("{}: {what}", self.tag)));
        if last < applied {
            return fail(format!("last index {last} < applied index {applied}"));
        }
        if applied < truncated {
            return fail(format!(
                "applied index {applied} < truncated index {truncated}"
            ));
        }
        if commit > last {
            return fail(format!("commit index {commit} > last index {last}"));
        }
        if self.is_initialized() && is_empty_hard_state(self.raft_state.get_hard_state()) {
            return fail("initialised region with an empty hard state".into());
        }
        if last == truncated {
            if last_term != truncated_term {
                return fail(format!(
                    "last term {last_term} != truncated term {truncated_term} at index {last}"
                ));
            }
        } else {
            let key = keys::raft_log_key(self.region.id, last);
            match self.engines.raft.get_msg_cf::<Entry>(Cf::Raft, &key)? {
                None => return fail(format!("last entry {last} is missing")),
                Some(e) if e.index != last || e.term != last_term => {
                    return fail(format!(
                        "last entry is ({}, {}), the raft state says ({last}, {last_term})",
                        e.index, e.term
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Whether the region lists its peers (bootstrapped, split, or a snapshot applied).
    pub fn is_initialized(&self) -> bool {
        !self.region.get_peers().is_empty()
    }

    /// The region as this peer knows it.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// Replaces the region (after a conf change, a split or a snapshot was persisted).
    pub fn set_region(&mut self, region: Region) {
        self.region = region;
    }

    /// The region's id.
    pub fn region_id(&self) -> u64 {
        self.region.id
    }

    /// The tag used in logs and error messages.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The store's engines.
    pub fn engines(&self) -> &Engines {
        &self.engines
    }

    /// The cached raft state (hard state, last index and term), as last persisted.
    pub fn raft_state(&self) -> &RaftLocalState {
        &self.raft_state
    }

    /// The cached apply state.
    pub fn apply_state(&self) -> &RaftApplyState {
        &self.apply_state
    }

    /// Replaces the cached apply state; the caller wrote `state` into the kv batch that holds
    /// the data it describes (so applied index and data are persisted together).
    pub fn set_apply_state(&mut self, state: RaftApplyState) {
        self.apply_state = state;
    }

    /// The index of the last applied entry.
    pub fn applied_index(&self) -> u64 {
        self.apply_state.applied_index
    }

    /// The index of the last entry removed by log compaction (or covered by a snapshot).
    pub fn truncated_index(&self) -> u64 {
        self.apply_state.get_truncated_state().index
    }

    /// The term of the entry at [`PeerStorage::truncated_index`].
    pub fn truncated_term(&self) -> u64 {
        self.apply_state.get_truncated_state().term
    }

    /// The index of the first entry still in the log (truncated index + 1).
    pub fn first_index(&self) -> u64 {
        self.truncated_index() + 1
    }

    /// The index of the last entry in the log.
    pub fn last_index(&self) -> u64 {
        self.raft_state.last_index
    }

    /// The term of the last entry in the log.
    pub fn last_term(&self) -> u64 {
        self.raft_state.last_term
    }

    /// `Ok` if entries `[low, high)` may be read: `Compacted` at or below the truncated index,
    /// `Unavailable` past the last index.
    fn check_range(&self, low: u64, high: u64) -> raft::Result<()> {
        if low > high {
            return Err(StorageError::Other(format!(
                "{}: entries range [{low}, {high}) is inverted",
                self.tag
            ))
            .into());
        }
        if low <= self.truncated_index() {
            return Err(StorageError::Compacted.into());
        }
        if high > self.raft_state.last_index.saturating_add(1) {
            return Err(StorageError::Unavailable.into());
        }
        Ok(())
    }

    /// Stages `entries` (from a `Ready`) into `raft_wb` and updates the cached last index and
    /// term: entries at or below the truncated index are skipped, and stored entries after
    /// the new last entry are deleted (a new leader overwrote them). The caller persists the
    /// raft state with the batch.
    ///
    /// `entries` must be contiguous and must not leave a hole after the current last index.
    pub fn append(&mut self, entries: &[Entry], raft_wb: &mut WriteBatch) -> Result<()> {
        // lab:begin 2b
        // lab:stub let _ = (entries, raft_wb);
        // lab:stub todo!("2b: write the entries, delete stale ones after them, update last index/term")
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        if entries.windows(2).any(|w| w[1].index != w[0].index + 1) {
            return Err(Error::other(format!(
                "{}: entries to append are not contiguous ({}..={}, {} entries)",
                self.tag,
                first.index,
                last.index,
                entries.len()
            )));
        }
        let first_index = self.truncated_index() + 1;
        if last.index < first_index {
            return Ok(());
        }
        // Entries already compacted away are not written again.
        let entries = &entries[first_index.saturating_sub(first.index) as usize..];
        let new_first = entries[0].index;
        if new_first > self.raft_state.last_index.saturating_add(1) {
            return Err(Error::other(format!(
                "{}: appending from index {new_first} would leave a hole after last index {}",
                self.tag, self.raft_state.last_index
            )));
        }
        let region_id = self.region.id;
        let mut buf = Vec::new();
        for e in entries {
            buf.clear();
            e.write_to_vec(&mut buf)
                .map_err(|err| Error::other(format!("{}: encoding entry: {err}", self.tag)))?;
            raft_wb.put_cf(Cf::Raft, &keys::raft_log_key(region_id, e.index), &buf)?;
        }
        // A new leader may have overwritten a longer suffix: drop what is past the new end.
        for index in last.index + 1..=self.raft_state.last_index {
            raft_wb.delete_cf(Cf::Raft, &keys::raft_log_key(region_id, index))?;
        }
        self.raft_state.last_index = last.index;
        self.raft_state.last_term = last.term;
        Ok(())
        // lab:end 2b
    }

    /// Persists what a `Ready` asks to persist before its messages are sent: its snapshot (see
    /// [`PeerStorage::apply_snapshot`]), its entries and its hard state (if changed), in one
    /// raft-engine batch together with the raft state, written with [`Durability::Sync`] (a
    /// peer must not vote or acknowledge entries it could forget in a crash). A ready that
    /// only moves the commit index may be written buffered: a lost commit index is recovered
    /// (from the applied index at a restart, and from the leader). A snapshot's apply
    /// and region state go to the kv engine, synced, *before* the raft batch: a crash between the
    /// two leaves a region `Applying` whose raft state [`PeerStorage::new`] derives from them.
    /// Nothing is written when nothing changed. The ready is not modified. If a write fails,
    /// the cached state is left as it was.
    ///
    /// Returns what a snapshot changed, for the caller to apply its data
    /// ([`crate::peer_msg_handler::PeerMsgHandler::start_applying_snapshot`]).
    pub fn save_ready_state(&mut self, ready: &Ready) -> Result<Option<ApplySnapResult>> {
        // lab:begin 2b
        // lab:stub let _ = ready;
        // lab:stub todo!("2b: append the entries and update the hard state; write them with the raft state in one synced batch")
        let prev = (
            self.raft_state.clone(),
            self.apply_state.clone(),
            self.region.clone(),
        );
        let res = (|| {
            let mut kv_wb = WriteBatch::new();
            let mut raft_wb = WriteBatch::new();
            let applied = match &ready.snapshot {
                Some(snap) => Some(self.apply_snapshot(snap, &mut kv_wb, &mut raft_wb)?),
                None => None,
            };
            self.append(&ready.entries, &mut raft_wb)?;
            if let Some(hs) = &ready.hard_state {
                self.raft_state.set_hard_state(hs.clone());
            }
            if self.raft_state != prev.0 {
                meta::write_raft_state(&mut raft_wb, self.region.id, &self.raft_state)?;
            }
            if !kv_wb.is_empty() {
                self.engines.kv.write(kv_wb, Durability::Sync)?;
            }
            // Term, vote and entries must be on disk before a message relies on them. The
            // commit index mostly need not be (Raft keeps it volatile): one that a crash loses
            // comes back from the applied index at the restart and from the leader. Not when it
            // commits a conf change: a peer removed by it may destroy itself on hearing of the
            // commit, and a survivor that forgot it would wait for that peer's vote forever. So
            // a ready that only moves the commit index, over committed entries it carries in
            // full and none of them a conf change, is written without a sync; the next synced
            // write covers it.
            let hs_before = prev.0.get_hard_state();
            let hs_after = self.raft_state.get_hard_state();
            let commit_only = ready.entries.is_empty()
                && applied.is_none()
                && (hs_before.term, hs_before.vote) == (hs_after.term, hs_after.vote)
                && ready.committed_entries.last().map(|e| e.index) == Some(hs_after.commit)
                && ready
                    .committed_entries
                    .iter()
                    .all(|e| e.get_entry_type() != EntryType::EntryConfChange);
            if !raft_wb.is_empty() {
                if commit_only {
                    self.engines.raft.write(raft_wb, Durability::Buffered)?;
                } else {
                    self.engines.raft.write(raft_wb, Durability::Sync)?;
                }
            }
            Ok(applied)
        })();
        if res.is_err() {
            // Nothing (or not everything) was written: keep the cache equal to the disk as
            // far as it can be; the peer stops after a failed ready anyway.
            (self.raft_state, self.apply_state, self.region) = prev;
        }
        res
        // lab:end 2b
    }

    /// Adds to the batches the deletion of everything this peer persisted about its region's
    /// raft group: region state and apply state (kv), raft state and every log entry (raft).
    /// Used when a peer is destroyed or replaced by a snapshot; the caller may write a new
    /// region state (e.g. Tombstone) later in the same batch.
    pub fn clear_meta(&self, kv_wb: &mut WriteBatch, raft_wb: &mut WriteBatch) -> Result<()> {
        clear_meta(&self.engines, kv_wb, raft_wb, self.region.id)
    }

    /// The range of user data to delete when this peer is destroyed (all data column
    /// families); `None` for an uninitialised peer, which owns no data.
    pub fn clear_data_range(&self) -> Option<KeyRange> {
        self.is_initialized()
            .then(|| KeyRange::of_region(&self.region))
    }

    /// The ranges of this peer's current data that `new_region` no longer covers (to delete
    /// when a snapshot narrows the region).
    pub fn clear_extra_data_ranges(&self, new_region: &Region) -> Vec<KeyRange> {
        if self.is_initialized() {
            extra_data_ranges(&self.region, new_region)
        } else {
            Vec::new()
        }
    }
}

/// Adds the deletion of a region's persisted raft-group state to the batches: region state and
/// apply state from the kv engine, raft state and all log entries from the raft engine (found
/// by scanning the region's log keys, so entries past the recorded last index go too).
pub fn clear_meta(
    engines: &Engines,
    kv_wb: &mut WriteBatch,
    raft_wb: &mut WriteBatch,
    region_id: u64,
) -> Result<()> {
    kv_wb.delete_cf(Cf::Raft, &keys::region_state_key(region_id))?;
    kv_wb.delete_cf(Cf::Raft, &keys::apply_state_key(region_id))?;
    clear_raft_log(engines, raft_wb, region_id)
}

/// Adds the deletion of a region's raft state and every raft log entry it has in the raft
/// engine to `raft_wb`.
pub fn clear_raft_log(engines: &Engines, raft_wb: &mut WriteBatch, region_id: u64) -> Result<()> {
    // Log keys `01 02 id 01 index` all sort before the raft state key `01 02 id 02`.
    engines.raft.delete_range_to_batch(
        Cf::Raft,
        &keys::raft_log_key(region_id, 0),
        &keys::raft_state_key(region_id),
        raft_wb,
    )?;
    raft_wb.delete_cf(Cf::Raft, &keys::raft_state_key(region_id))?;
    Ok(())
}

impl raft::Storage for PeerStorage {
    /// The persisted hard state and the membership from the region's peers; all empty for an
    /// uninitialised peer that never voted.
    fn initial_state(&self) -> raft::Result<RaftState> {
        let hs = self.raft_state.get_hard_state();
        if is_empty_hard_state(hs) {
            if self.is_initialized() {
                return Err(StorageError::Other(format!(
                    "{}: initialised region with an empty hard state",
                    self.tag
                ))
                .into());
            }
            return Ok(RaftState::default());
        }
        Ok(RaftState::new(
            hs.clone(),
            conf_state_from_region(&self.region),
        ))
    }

    /// Entries `[low, high)`, read in one bounded scan of the raft engine. `Compacted` at or
    /// below the truncated index, `Unavailable` past the last index or when an entry is
    /// missing (a hole in the log).
    fn entries(&self, low: u64, high: u64) -> raft::Result<Vec<Entry>> {
        self.check_range(low, high)?;
        if low == high {
            return Ok(Vec::new());
        }
        let (start, end) = keys::raft_log_range(self.region.id, low, high);
        let mut it = self
            .engines
            .raft
            .iter_cf(Cf::Raft, &start, Some(&end))
            .map_err(Error::from)?;
        it.seek_to_first();
        let mut out = Vec::with_capacity((high - low).min(4096) as usize);
        let mut next = low;
        while let Some((key, value)) = it.item() {
            if keys::raft_log_index(key) != Some(next) {
                break; // a hole: `next` is missing
            }
            let entry = Entry::parse_from_bytes(value).map_err(|e| {
                StorageError::Other(format!(
                    "{}: log entry {next} does not decode: {e}",
                    self.tag
                ))
            })?;
            if entry.index != next {
                return Err(StorageError::Other(format!(
                    "{}: log key {next} holds entry {}",
                    self.tag, entry.index
                ))
                .into());
            }
            out.push(entry);
            next += 1;
            it.next();
        }
        it.status().map_err(Error::from)?;
        if next != high {
            tracing::warn!(tag = %self.tag, missing = next, low, high, "hole in the raft log");
            return Err(StorageError::Unavailable.into());
        }
        Ok(out)
    }

    /// The term of entry `idx`: the truncated term at the truncated index, else the stored
    /// entry's (from the cache when it must be the last term).
    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.truncated_index() {
            return Ok(self.truncated_term());
        }
        self.check_range(idx, idx.saturating_add(1))?;
        // Terms never decrease along the log: if both ends agree, so does everything between.
        if self.truncated_term() == self.raft_state.last_term || idx == self.raft_state.last_index {
            return Ok(self.raft_state.last_term);
        }
        let key = keys::raft_log_key(self.region.id, idx);
        match self
            .engines
            .raft
            .get_msg_cf::<Entry>(Cf::Raft, &key)
            .map_err(Error::from)?
        {
            None => Err(StorageError::Unavailable.into()),
            Some(e) if e.index != idx => Err(StorageError::Other(format!(
                "{}: log key {idx} holds entry {}",
                self.tag, e.index
            ))
            .into()),
            Some(e) => Ok(e.term),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.truncated_index() + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.raft_state.last_index)
    }

    /// The snapshot raft sends to a follower that lags behind the log. Generated
    /// asynchronously: the first call asks for a generation (the peer's handler spawns it)
    /// and answers "temporarily unavailable", like every call until it is done; then a valid
    /// result is handed out once (see [`PeerStorage::take_gen_request`]).
    fn snapshot(&self) -> raft::Result<Snapshot> {
        self.poll_generated_snapshot()
    }
}

// lab:needs 2aa..3b
#[cfg(test)]
mod tests;
// lab:end-needs

//! The apply oracle: checks from outside the stores that each store applies every committed
//! command exactly once, in log order, and that all stores apply the same command at each
//! index.
//!
//! The original course cannot see this: with only idempotent `Put`s and `Delete`s, an entry
//! applied twice is invisible to clients unless the second apply lands after a newer write to
//! the same key, which a workload almost never arranges. The oracle watches the stores'
//! writes instead of their answers.
//!
//! # How it works
//! A [`WriteObserver`] on each store's kv engine sees every batch the store writes, whatever
//! code wrote it. A batch that moves a region's applied index (`RaftApplyState`) from `a` to
//! `b` must carry (together with data written since the previous apply-state write) exactly
//! the `Put`s and `Delete`s of the committed entries `a+1..=b`, read from the store's own raft
//! log, in order. An entry's command counts whole or not at all: a store may reject a command
//! when it applies it (its epoch went stale, say), but it may never apply part of one, apply
//! one twice, apply entries out of order, or write data the log does not hold. Every applied
//! entry's term and bytes are also compared across stores (state-machine safety at the store
//! level).
//!
//! After a store starts (a restart after a crash included), the oracle's expectation restarts
//! from the applied index the store's engine holds: re-applying entries the crash rolled back
//! is correct, not a violation.
//!
//! # The data each region holds
//! The oracle also keeps a model of every store's user data (see the `data` module) with a digest of
//! each region's pairs. Whenever a store's region reaches an applied index with its data in
//! place, the digest must equal the one any other store had at that index: replicas hold
//! the same bytes at the same index, checked at every apply, not only at the end of a test.
//! That is what makes snapshots checkable: a snapshot's data is not in the log, but the
//! region it installs (when its state goes from `Applying` back to `Normal`) must hold exactly
//! what the region held, on the stores that applied the log, at the snapshot's index. A
//! generated snapshot taken at the wrong index, an application that keeps stale keys, a file
//! damaged on the way: each fails the run at the end of the application.
//!
//! Which region a write belongs to follows the region states the store writes: writes into
//! a `Normal` region are commands being applied (they must come with an apply state that
//! covers their entries); writes into an `Applying` region are a snapshot's data going in;
//! writes outside every region (data a region gave up) only update the model.
//!
//! # Limits
//! - A batch that moves the applied index of two or more regions at once is checked for
//!   order only (which data belongs to which region is not attributed).
//! - Whether a command should have been rejected is not judged; a lost acknowledged write is
//!   the linearizability checker's to catch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use engine::{keys, BatchOp, Cf, Engine, Engines, WriteBatch, WriteObserver};
use parking_lot::Mutex;
use proto::eraftpb::{Entry, EntryType};
use proto::raft_cmdpb::{CmdType, RaftCmdRequest};
use proto::raft_serverpb::{PeerState, RaftApplyState, RegionLocalState};
use protobuf::Message;

mod data;

use data::{Digest, StoreData};

/// At most this many violations are kept (the first one is what matters).
const MAX_VIOLATIONS: usize = 8;

/// A data write, owned.
#[derive(Clone, PartialEq, Eq)]
struct DataOp {
    cf: Cf,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

impl DataOp {
    fn of(op: &BatchOp<'_>) -> DataOp {
        DataOp {
            cf: op.cf,
            key: op.key.to_vec(),
            value: op.value.map(<[u8]>::to_vec),
        }
    }

    fn as_batch_op(&self) -> BatchOp<'_> {
        BatchOp {
            cf: self.cf,
            key: &self.key,
            value: self.value.as_deref(),
        }
    }
}

impl PartialEq<DataOp> for BatchOp<'_> {
    fn eq(&self, other: &DataOp) -> bool {
        self.cf == other.cf && self.key == other.key && self.value == other.value.as_deref()
    }
}

impl std::fmt::Debug for DataOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = String::from_utf8_lossy(&self.key[..self.key.len().min(24)]).into_owned();
        match &self.value {
            Some(v) => write!(f, "put {}:{key:?} ({} bytes)", self.cf.name(), v.len()),
            None => write!(f, "delete {}:{key:?}", self.cf.name()),
        }
    }
}

/// What the oracle knows of one store.
struct StoreTrack {
    /// The store's raft engine, where the entries being applied are read from.
    raft: Engine,
    /// Region id → the applied index checked so far.
    applied: HashMap<u64, u64>,
    /// Data written into Normal regions since the store's last apply-state write.
    pending: Vec<DataOp>,
    /// The store's data and regions, as its writes left them.
    data: StoreData,
}

/// What a committed entry is, as far as the oracle cares.
struct Applied {
    index: u64,
    /// The writes the entry's command makes (empty for reads, admin commands, conf changes,
    /// no-ops and commands the store must reject as malformed).
    writes: Vec<DataOp>,
}

#[derive(Default)]
struct State {
    stores: BTreeMap<u64, StoreTrack>,
    /// (region, index) → (term, hash of the entry's type and bytes, store) as the first
    /// store to apply it applied it.
    agreed: HashMap<(u64, u64), (u64, u64, u64)>,
    /// (region, applied index) → (digest of the region's data, store) as the first store to
    /// reach that index with its data in place had it.
    digests: HashMap<(u64, u64), (Digest, u64)>,
    /// Snapshots checked against the data the region held at their index.
    verified_snapshots: u64,
    violations: Vec<String>,
    verified_entries: u64,
    unattributed_batches: u64,
}

impl State {
    fn violation(&mut self, msg: String) {
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(format!("apply oracle: {msg}"));
        }
    }

    fn observe(&mut self, store_id: u64, batch: &WriteBatch) {
        let mut data = Vec::new();
        let mut applies = Vec::new();
        let mut region_states = Vec::new();
        for op in batch.ops() {
            if op.cf != Cf::Raft {
                data.push(op);
            } else if let Some(region) = keys::decode_apply_state_key(op.key) {
                applies.push((region, op.value));
            } else if let Some((region, keys::REGION_STATE_SUFFIX)) =
                keys::decode_region_meta_key(op.key)
            {
                region_states.push((region, op.value));
            }
        }
        let mut states = Vec::with_capacity(applies.len());
        for (region, value) in applies {
            match value.map(RaftApplyState::parse_from_bytes).transpose() {
                Ok(state) => states.push((region, state)),
                Err(e) => {
                    self.violation(format!(
                        "store {store_id} region {region}: wrote an apply state that does not decode: {e}"
                    ));
                    return;
                }
            }
        }
        let Some(track) = self.stores.get_mut(&store_id) else {
            return;
        };
        // Region states first: the ranges and states as of this batch decide what each write
        // of it is.
        let mut installed = Vec::new();
        for (region, value) in region_states {
            let state = match value.map(RegionLocalState::parse_from_bytes).transpose() {
                Ok(state) => state,
                Err(e) => {
                    let msg = format!(
                        "store {store_id} region {region}: wrote a region state that does not decode: {e}"
                    );
                    self.violation(msg);
                    return;
                }
            };
            let before = track.data.region(region).map(|r| r.state);
            track.data.set_region(region, state.as_ref());
            let after = track.data.region(region).map(|r| r.state);
            if before == Some(PeerState::Applying) && after == Some(PeerState::Normal) {
                installed.push(region);
            }
        }
        let mut commands = Vec::new();
        for op in &data {
            if track.data.write(op) == Some(PeerState::Normal) {
                commands.push(*op);
            }
        }
        if states.is_empty() {
            track.pending.extend(commands.iter().map(DataOp::of));
        } else {
            // What this batch and the ones before it since the last apply state wrote into
            // Normal regions, borrowed (the common case, data and apply state in one batch,
            // copies nothing).
            let pending = std::mem::take(&mut track.pending);
            let writes: Vec<BatchOp<'_>> = pending
                .iter()
                .map(DataOp::as_batch_op)
                .chain(commands.iter().copied())
                .collect();
            self.check_applies(store_id, states, &writes);
        }
        for region in installed {
            self.check_installed(store_id, region);
        }
    }

    /// Checks the apply states a batch wrote, given the command data it (and the batches
    /// since the last apply state) wrote.
    fn check_applies(
        &mut self,
        store_id: u64,
        states: Vec<(u64, Option<RaftApplyState>)>,
        writes: &[BatchOp<'_>],
    ) {
        let mut moved = Vec::new(); // (region, from, state)
        let mut reached = Vec::new(); // (region, applied index)
        {
            let Some(track) = self.stores.get_mut(&store_id) else {
                return;
            };
            for (region, state) in states {
                let Some(state) = state else {
                    track.applied.remove(&region); // the peer was destroyed
                    continue;
                };
                reached.push((region, state.applied_index));
                match track.applied.insert(region, state.applied_index) {
                    None => {} // first sight (a new peer): the baseline
                    Some(from) => moved.push((region, from, state)),
                }
            }
        }
        match moved.as_slice() {
            [] => {}
            [(region, from, state)] => {
                let (region, from) = (*region, *from);
                self.check_apply(store_id, region, from, state, writes);
            }
            several => {
                self.unattributed_batches += 1;
                let backwards: Vec<String> = several
                    .iter()
                    .filter(|(_, from, s)| s.applied_index < *from)
                    .map(|(r, from, s)| format!("region {r}: {from} → {}", s.applied_index))
                    .collect();
                if !backwards.is_empty() {
                    self.violation(format!(
                        "store {store_id}: applied index went backwards ({})",
                        backwards.join(", ")
                    ));
                }
            }
        }
        for (region, index) in reached {
            self.agree_digest(store_id, region, index, false);
        }
    }

    /// A region's state went from Applying to Normal: its data must be what the region held
    /// at its applied index.
    fn check_installed(&mut self, store_id: u64, region: u64) {
        let Some(&index) = self
            .stores
            .get(&store_id)
            .and_then(|t| t.applied.get(&region))
        else {
            self.violation(format!(
                "store {store_id} region {region}: finished applying a snapshot without an apply state"
            ));
            return;
        };
        self.verified_snapshots += 1;
        self.agree_digest(store_id, region, index, true);
    }

    /// Compares (or records) the digest of `region`'s data on `store_id` at applied index
    /// `index`, if the region is Normal there. A snapshot (`installed`) must match a state
    /// some store had: it cannot be the first to reach its index.
    fn agree_digest(&mut self, store_id: u64, region: u64, index: u64, installed: bool) {
        let Some(mine) = self
            .stores
            .get(&store_id)
            .and_then(|t| t.data.region(region))
            .filter(|r| r.state == PeerState::Normal)
            .map(|r| r.digest)
        else {
            return;
        };
        match self.digests.get(&(region, index)) {
            Some(&(first, other)) if first != mine => self.violation(format!(
                "store {store_id} region {region}: {} applied index {index}, its data ({} pairs, digest {:016x}) differs from store {other}'s at that index ({} pairs, digest {:016x})",
                if installed { "a snapshot brought the region to" } else { "at" },
                mine.pairs,
                mine.sum,
                first.pairs,
                first.sum
            )),
            Some(_) => {}
            None if installed => self.violation(format!(
                "store {store_id} region {region}: installed a snapshot at index {index} ({} pairs), but no store ever held the region at that index",
                mine.pairs
            )),
            None => {
                self.digests.insert((region, index), (mine, store_id));
            }
        }
    }

    /// Checks one batch that moved `region`'s applied index from `from` to `state`'s.
    fn check_apply(
        &mut self,
        store_id: u64,
        region: u64,
        from: u64,
        state: &RaftApplyState,
        writes: &[BatchOp<'_>],
    ) {
        let to = state.applied_index;
        let where_ = || format!("store {store_id} region {region}");
        if to < from {
            self.violation(format!(
                "{}: applied index went backwards from {from} to {to} with no restart in between",
                where_()
            ));
            return;
        }
        if to > from && state.get_truncated_state().index >= to {
            // A snapshot (only a snapshot truncates the log at the applied index): its data is
            // not in the log, and the entries the raft engine may still hold at those indexes
            // are the old, overwritten ones. The region's digest is checked once the region
            // holds the snapshot's data (see `check_installed`).
            return;
        }
        let raft = self.stores[&store_id].raft.clone();
        let mut entries = Vec::with_capacity((to - from) as usize);
        for index in from + 1..=to {
            let entry = match raft.get_msg_cf::<Entry>(Cf::Raft, &keys::raft_log_key(region, index))
            {
                Ok(Some(e)) => e,
                Ok(None) => {
                    self.violation(format!(
                        "{}: applied index moved {from} → {to}, but the raft log has no entry {index}",
                        where_()
                    ));
                    return;
                }
                Err(e) => {
                    self.violation(format!(
                        "{}: cannot read raft log entry {index}: {e}",
                        where_()
                    ));
                    return;
                }
            };
            self.agree(store_id, region, &entry);
            entries.push(Applied {
                index,
                writes: writes_of(entry),
            });
        }
        self.verified_entries += entries.len() as u64;
        if !is_whole_commands_in_order(&entries, writes) {
            let mut msg = format!(
                "{}: the batch moving the applied index {from} → {to} does not apply entries {}..={to} once each in order",
                where_(),
                from + 1
            );
            let written: Vec<DataOp> = writes.iter().map(DataOp::of).collect();
            let _ = write!(msg, "\n    written: {written:?}");
            for e in &entries {
                let _ = write!(msg, "\n    entry {}: {:?}", e.index, e.writes);
            }
            self.violation(msg);
        }
    }

    /// Records (or compares with) what the first store applied at this index.
    fn agree(&mut self, store_id: u64, region: u64, entry: &Entry) {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        entry.get_data().hash(&mut h);
        (entry.get_entry_type() as i32).hash(&mut h);
        let mine = (entry.term, h.finish(), store_id);
        let first = *self.agreed.entry((region, entry.index)).or_insert(mine);
        if (first.0, first.1) != (mine.0, mine.1) {
            self.violation(format!(
                "region {region} index {}: store {} applied an entry of term {}, store {store_id} one of term {} (or different bytes)",
                entry.index, first.2, first.0, mine.0
            ));
        }
    }
}

/// The writes of an entry's command; none for anything that is not a well-formed normal
/// command with a known column family on every write.
fn writes_of(entry: Entry) -> Vec<DataOp> {
    if entry.get_entry_type() != EntryType::EntryNormal || entry.get_data().is_empty() {
        return Vec::new();
    }
    let Ok(mut req) = RaftCmdRequest::parse_from_bytes(entry.get_data()) else {
        return Vec::new();
    };
    let mut writes = Vec::new();
    for r in req.mut_requests().iter_mut() {
        let (cf, key, value) = match r.get_cmd_type() {
            CmdType::Put => {
                let mut p = r.take_put();
                (p.take_cf(), p.take_key(), Some(p.take_value()))
            }
            CmdType::Delete => {
                let mut d = r.take_delete();
                (d.take_cf(), d.take_key(), None)
            }
            _ => continue,
        };
        let Ok(cf) = Cf::from_client(&cf) else {
            return Vec::new();
        };
        writes.push(DataOp { cf, key, value });
    }
    writes
}

/// Whether `written` is the concatenation of the writes of some of `entries`, each taken
/// whole, in order (a search over (entry, position) pairs, each visited once).
fn is_whole_commands_in_order(entries: &[Applied], written: &[BatchOp<'_>]) -> bool {
    let mut stack = vec![(0usize, 0usize)];
    let mut seen = HashSet::new();
    while let Some((i, j)) = stack.pop() {
        if j == written.len() {
            return true; // the remaining entries were rejected or write nothing
        }
        if i == entries.len() || !seen.insert((i, j)) {
            continue;
        }
        stack.push((i + 1, j)); // entry i rejected
        let w = &entries[i].writes;
        if !w.is_empty() && written.len() - j >= w.len() && written[j..j + w.len()] == w[..] {
            stack.push((i + 1, j + w.len())); // entry i applied (tried first)
        }
    }
    false
}

/// Installed on one store's kv engine.
struct KvObserver {
    store_id: u64,
    state: Arc<Mutex<State>>,
}

impl WriteObserver for KvObserver {
    fn on_write(&self, batch: &WriteBatch) {
        self.state.lock().observe(self.store_id, batch);
    }
}

/// The apply oracle of one cluster (see the module docs). Cheap to clone (shared state).
#[derive(Clone, Default)]
pub struct ApplyOracle {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for ApplyOracle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.lock();
        f.debug_struct("ApplyOracle")
            .field("stores", &s.stores.len())
            .field("verified_entries", &s.verified_entries)
            .field("violations", &s.violations.len())
            .finish()
    }
}

impl ApplyOracle {
    /// An oracle watching no store yet.
    pub fn new() -> Self {
        ApplyOracle::default()
    }

    /// Watches store `store_id`'s engines from now on (installs the observer on its kv
    /// engine). Call [`ApplyOracle::restarted`] whenever the store starts.
    pub fn watch(&self, store_id: u64, engines: &Engines) -> engine::Result<()> {
        let data = StoreData::load(&engines.kv)?;
        self.state.lock().stores.insert(
            store_id,
            StoreTrack {
                raft: engines.raft.clone(),
                applied: HashMap::new(),
                pending: Vec::new(),
                data,
            },
        );
        engines.kv.set_write_observer(Arc::new(KvObserver {
            store_id,
            state: self.state.clone(),
        }))
    }

    /// The store is starting over its engines: expect it to continue from the applied index
    /// each region's engine state holds, forget data written without an apply state (a
    /// restarted store redoes it), and read its data again (a crash rolled some back). The
    /// data of every Normal region must be what it was, on any store, at its applied index.
    pub fn restarted(&self, store_id: u64, kv: &Engine) -> engine::Result<()> {
        let mut applied = HashMap::new();
        let lower = [keys::LOCAL_PREFIX, keys::REGION_RAFT_PREFIX];
        let upper = [keys::LOCAL_PREFIX, keys::REGION_RAFT_PREFIX + 1];
        let mut it = kv.iter_cf(Cf::Raft, &lower, Some(&upper))?;
        it.seek_to_first();
        while let Some((key, value)) = it.item() {
            if let Some(region) = keys::decode_apply_state_key(key) {
                let state = RaftApplyState::parse_from_bytes(value).map_err(|source| {
                    engine::Error::Decode {
                        key: key.to_vec(),
                        message: "RaftApplyState",
                        source,
                    }
                })?;
                applied.insert(region, state.applied_index);
            }
            it.next();
        }
        it.status()?;
        let data = StoreData::load(kv)?;
        let mut s = self.state.lock();
        let Some(track) = s.stores.get_mut(&store_id) else {
            return Ok(());
        };
        let reached: Vec<(u64, u64)> = applied.iter().map(|(&r, &i)| (r, i)).collect();
        track.applied = applied;
        track.pending.clear();
        track.data = data;
        for (region, index) in reached {
            s.agree_digest(store_id, region, index, false);
        }
        Ok(())
    }

    /// Takes the violations found so far.
    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().violations)
    }

    /// Whether a violation is waiting (cheap; checked after every store event).
    pub fn has_violations(&self) -> bool {
        !self.state.lock().violations.is_empty()
    }

    /// How many applied entries the oracle has checked.
    pub fn verified_entries(&self) -> u64 {
        self.state.lock().verified_entries
    }

    /// How many snapshot installs were checked against the region's data at their index.
    pub fn verified_snapshots(&self) -> u64 {
        self.state.lock().verified_snapshots
    }

    /// The term of entry `index` of `region` as the first store to apply it applied it;
    /// `None` if no watched store has applied that index through the log.
    pub fn applied_term(&self, region: u64, index: u64) -> Option<u64> {
        self.state
            .lock()
            .agreed
            .get(&(region, index))
            .map(|&(term, _, _)| term)
    }

    /// How many batches moved several regions at once (checked for order only).
    pub fn unattributed_batches(&self) -> u64 {
        self.state.lock().unattributed_batches
    }
}

// lab:needs 2aa..3b
#[cfg(test)]
mod tests;
// lab:end-needs

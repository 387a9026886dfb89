//! Simulated durability: the engine remembers what each unsynced batch overwrote, so a
//! simulated crash can roll the engine back to its last sync point.
//!
//! A real engine appends every batch to a journal; a crash keeps the journal up to the last
//! fsync and loses the rest. The simulator keeps a crashed store's engines open (as the
//! original harness does), so the loss has to be modelled: every
//! [`Durability::Buffered`](crate::Durability::Buffered) batch records, before it commits, the
//! value each of its keys held (or that the key was absent); a sync point drops the records;
//! [`Engine::simulate_crash`] writes the recorded values back.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use fjall::{PersistMode, Slice};

use crate::write_batch::Op;
use crate::{Cf, Durability, Engine, EngineKind, Error, Result, WriteBatch, WriteFuse};

/// A key and the value it held just before a batch (`None` = absent).
type Previous = (Cf, Slice, Option<Slice>);

/// What one buffered batch overwrote: each `(cf, key)` it touched (once, even if the batch
/// touched it several times) with its value just before the batch.
type Undo = Vec<Previous>;

/// The undo records of the batches no sync point has covered yet, oldest first.
///
/// The mutex is held across "read the previous values" and "commit", so no other writer can
/// slip a change in between and make a record lie. The simulator is single-threaded; the lock
/// only keeps the mode right for tests that write from several threads.
#[derive(Default)]
pub(crate) struct SimJournal {
    unsynced: Mutex<Vec<Undo>>,
    /// The armed [`WriteFuse`], and which engine of the store this one is to it.
    fuse: Mutex<Option<(WriteFuse, EngineKind)>>,
}

impl SimJournal {
    /// The records, even if a writer panicked while holding them (a panic cannot happen
    /// between a commit and its record, so they are still consistent).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Vec<Undo>> {
        self.unsynced.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fuse(&self) -> MutexGuard<'_, Option<(WriteFuse, EngineKind)>> {
        self.fuse.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a write (`batch` is `None` for a sync) on the armed fuse, if any, and says
    /// whether the write is lost.
    pub(crate) fn fuse_takes(&self, batch: Option<&WriteBatch>) -> bool {
        match &*self.fuse() {
            Some((fuse, kind)) => fuse.takes(*kind, batch),
            None => false,
        }
    }
}

impl Engine {
    /// [`Engine::write`] of a non-empty batch in simulated-durability mode.
    pub(crate) fn write_simulated(
        &self,
        journal: &SimJournal,
        wb: WriteBatch,
        durability: Durability,
    ) -> Result<()> {
        let mut unsynced = journal.lock();
        match durability {
            Durability::Sync => {
                self.commit(wb.ops, None)?;
                // This batch and every earlier one are now durable.
                unsynced.clear();
            }
            Durability::Buffered => {
                let undo = self.undo_of(&wb)?;
                self.commit(wb.ops, None)?;
                unsynced.push(undo);
            }
        }
        Ok(())
    }

    /// [`Engine::write`] of a batch a blown [`WriteFuse`] lost: it lands, so the dying
    /// process reads coherent state, but as an unsynced batch whatever its durability, so the
    /// crash that follows rolls it back.
    pub(crate) fn write_lost(&self, journal: &SimJournal, wb: WriteBatch) -> Result<()> {
        self.write_simulated(journal, wb, Durability::Buffered)
    }

    /// Arms `fuse` on this engine, which is the `kind` engine of its store (replacing any
    /// fuse armed before). From now on every write and sync counts on the fuse, and once it
    /// has blown they are lost: see [`WriteFuse`]. To crash both engines of a store at one
    /// point, arm the same fuse on both ([`crate::Engines::arm_write_fuse`]).
    ///
    /// Errors with [`Error::NotSimulated`] unless the engine was opened with
    /// [`EngineOptions::simulated_durability`](crate::EngineOptions::simulated_durability):
    /// only its crash journal can undo the lost writes.
    pub fn arm_write_fuse(&self, fuse: WriteFuse, kind: EngineKind) -> Result<()> {
        let journal = self.inner.sim.as_ref().ok_or(Error::NotSimulated)?;
        *journal.fuse() = Some((fuse, kind));
        Ok(())
    }

    /// Removes the armed fuse, if any, and returns it. Writes count on nothing and land
    /// normally again. The writes a blown fuse lost stay unsynced: a later sync point would
    /// make them durable, so crash the engine ([`Engine::simulate_crash`]) to lose them.
    pub fn disarm_write_fuse(&self) -> Option<WriteFuse> {
        self.inner
            .sim
            .as_ref()
            .and_then(|j| j.fuse().take().map(|(f, _)| f))
    }

    /// Whether a fuse is armed on this engine and has blown (the process it stands for is
    /// dead; nothing it writes or sends from now on may count).
    pub fn write_fuse_blown(&self) -> bool {
        self.inner
            .sim
            .as_ref()
            .is_some_and(|j| j.fuse().as_ref().is_some_and(|(f, _)| f.is_blown()))
    }

    /// [`Engine::sync`] in simulated-durability mode: a sync point without an fsync.
    pub(crate) fn sync_simulated(&self, journal: &SimJournal) -> Result<()> {
        let mut unsynced = journal.lock();
        self.inner.db.persist(PersistMode::Buffer)?;
        unsynced.clear();
        Ok(())
    }

    /// The current value of every key `wb` touches, first touch only.
    fn undo_of(&self, wb: &WriteBatch) -> Result<Undo> {
        let mut undo = Vec::with_capacity(wb.ops.len());
        let mut seen = std::collections::BTreeSet::new();
        for op in &wb.ops {
            if wb.ops.len() > 1 && !seen.insert((op.cf, &*op.key)) {
                continue; // a later op on a key: the record already holds the pre-batch value
            }
            let previous = self.keyspace(op.cf)?.get(&*op.key)?;
            undo.push((op.cf, op.key.clone(), previous));
        }
        Ok(undo)
    }

    /// Simulates a crash of the machine: rolls the engine back to its last sync point by
    /// undoing, as one atomic batch, every [`Durability::Buffered`] batch written since the
    /// last [`Durability::Sync`] write or [`Engine::sync`]. Returns how many batches were lost.
    ///
    /// For the simulator, which keeps a crashed store's engines open and hands them to the
    /// restarted store: the engine stays usable, and later writes can be lost by a later
    /// crash in the same way. A second crash with no write in between loses nothing.
    /// Snapshots and iterators taken before the crash keep seeing the old state.
    ///
    /// Errors: [`Error::NotSimulated`] if the engine was not opened with
    /// [`EngineOptions::simulated_durability`](crate::EngineOptions::simulated_durability)
    /// (a real engine cannot unwrite), [`Error::Closed`] after [`Engine::close`]. If writing
    /// the rollback fails, the records are kept, so the crash can be retried.
    pub fn simulate_crash(&self) -> Result<usize> {
        self.check_open()?;
        let journal = self.inner.sim.as_ref().ok_or(Error::NotSimulated)?;
        let mut unsynced = journal.lock();
        let lost = unsynced.len();
        if lost == 0 {
            return Ok(0);
        }
        // Undoing the batches newest first leaves each key with the value recorded by the
        // oldest lost batch that touched it; collect exactly that, one op per key.
        let mut restore: BTreeMap<(Cf, &[u8]), &Previous> = BTreeMap::new();
        for undo in unsynced.iter() {
            for previous in undo {
                restore
                    .entry((previous.0, &*previous.1))
                    .or_insert(previous);
            }
        }
        let ops = restore
            .into_values()
            .map(|(cf, key, value)| Op {
                cf: *cf,
                key: key.clone(),
                value: value.clone(),
            })
            .collect();
        self.commit(ops, None)?;
        unsynced.clear();
        Ok(lost)
    }

    /// How many [`Durability::Buffered`] batches a crash would lose now (always 0 outside
    /// simulated-durability mode). For tests and diagnostics.
    pub fn unsynced_batches(&self) -> usize {
        self.inner.sim.as_ref().map_or(0, |j| j.lock().len())
    }
}

//! One engine: a fjall database and its column families.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use crate::error::{check_key, check_value};
use crate::sim::SimJournal;
use crate::write_batch::Op;
use crate::{Cf, DbIterator, Error, Result, Snapshot, WriteBatch, WriteObserver};

/// How durable a write must be when [`Engine::write`] returns.
///
/// In [simulated-durability mode](EngineOptions::simulated_durability) neither level fsyncs;
/// instead the engine remembers which [`Durability::Buffered`] batches no sync has covered
/// yet, and [`Engine::simulate_crash`] drops exactly those.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The batch is in the journal and fsynced: it survives a crash of the machine.
    /// The raft log and hard state need this before messages that depend on them leave.
    Sync,
    /// The batch is in the journal's buffer: it survives a crash of the process only once a
    /// later [`Durability::Sync`] write or [`Engine::sync`] flushes it.
    Buffered,
}

/// Knobs for opening an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Block cache size in bytes.
    pub cache_bytes: u64,
    /// Background flush/compaction threads (at least 1).
    pub worker_threads: usize,
    /// Simulated durability, for the deterministic simulator (default `false`).
    ///
    /// The engine tracks every [`Durability::Buffered`] batch that no sync point (a
    /// [`Durability::Sync`] write or [`Engine::sync`]) has covered yet, together with what
    /// each batch overwrote, so that [`Engine::simulate_crash`] can roll the engine back to
    /// its last synced state: a simulated crash loses exactly what a real crash may lose, and
    /// a missing sync fails a test instead of hiding.
    ///
    /// Costs: every buffered write first reads the previous value of each key it touches,
    /// and the undo records live in memory until the next sync point. In exchange, nothing is
    /// ever fsynced (a sync point only flushes to the OS), so **the files on disk are not
    /// crash-safe in this mode**: a real power loss may lose "synced" writes, and a directory
    /// reopened after the handles were dropped holds every write, synced or not.
    pub simulated_durability: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            cache_bytes: 64 << 20,
            worker_threads: 2,
            simulated_durability: false,
        }
    }
}

impl EngineOptions {
    /// Small caches and one worker thread, so a five-store test cluster (ten engines) stays
    /// light on a two-core machine.
    pub fn for_tests() -> Self {
        EngineOptions {
            cache_bytes: 1 << 20,
            worker_threads: 1,
            simulated_durability: false,
        }
    }

    /// [`EngineOptions::for_tests`] with [`EngineOptions::simulated_durability`] on: what the
    /// simulator's stores open their engines with, so that a simulated crash
    /// ([`Engine::simulate_crash`]) loses the writes that were never synced.
    pub fn for_simulation() -> Self {
        EngineOptions {
            simulated_durability: true,
            ..EngineOptions::for_tests()
        }
    }
}

/// A value read from the engine: shares the engine's buffer, so a point read copies nothing.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Value(pub(crate) fjall::Slice);

impl Deref for Value {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Value {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Value({:02x?})", &*self.0)
    }
}

impl PartialEq<[u8]> for Value {
    fn eq(&self, other: &[u8]) -> bool {
        &*self.0 == other
    }
}

impl From<Value> for Vec<u8> {
    fn from(v: Value) -> Vec<u8> {
        v.0.to_vec()
    }
}

pub(crate) struct Inner {
    pub(crate) db: Database,
    /// Indexed by [`Cf::slot`]; `None` for column families this engine did not open.
    pub(crate) cfs: [Option<Keyspace>; 4],
    path: PathBuf,
    closed: AtomicBool,
    /// `Some` in simulated-durability mode: the undo records of the unsynced batches.
    pub(crate) sim: Option<SimJournal>,
    /// The test oracle watching every batch, once one is installed.
    observer: OnceLock<Arc<dyn WriteObserver>>,
}

/// One fjall database with a fixed set of column families. Cheap to clone (a handle).
///
/// An engine is closed by [`Engine::close`]; from then on every call on it, its snapshots
/// and iterators opened later returns [`Error::Closed`]. The files are released when the last
/// handle is dropped.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("path", &self.inner.path)
            .field("closed", &self.is_closed())
            .field("simulated", &self.is_simulated())
            .finish()
    }
}

impl Engine {
    /// Opens (or creates) an engine at `path` with the given column families.
    pub fn open(path: impl AsRef<Path>, cfs: &[Cf], opts: &EngineOptions) -> Result<Engine> {
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path)?;
        let db = Database::builder(&path)
            .cache_size(opts.cache_bytes)
            .worker_threads(opts.worker_threads.max(1))
            .open()?;
        let mut slots: [Option<Keyspace>; 4] = [None, None, None, None];
        for &cf in cfs {
            slots[cf.slot()] = Some(db.keyspace(cf.name(), KeyspaceCreateOptions::default)?);
        }
        Ok(Engine {
            inner: Arc::new(Inner {
                db,
                cfs: slots,
                path,
                closed: AtomicBool::new(false),
                sim: opts.simulated_durability.then(SimJournal::default),
                observer: OnceLock::new(),
            }),
        })
    }

    /// The directory the engine lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether [`Engine::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Whether the engine was opened with [`EngineOptions::simulated_durability`].
    pub fn is_simulated(&self) -> bool {
        self.inner.sim.is_some()
    }

    /// Installs the [`WriteObserver`] that sees every batch written from now on. An engine has
    /// at most one observer for its whole life; a second call returns
    /// [`Error::ObserverInstalled`] and changes nothing. For test oracles: without an
    /// observer a write pays one atomic load for this hook.
    pub fn set_write_observer(&self, observer: Arc<dyn WriteObserver>) -> Result<()> {
        self.inner
            .observer
            .set(observer)
            .map_err(|_| Error::ObserverInstalled)
    }

    /// Flushes everything written so far to disk and refuses further use. In
    /// simulated-durability mode this is a sync point too (nothing is left to lose), and,
    /// like every sync point of that mode, it does not fsync.
    pub fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        match &self.inner.sim {
            None => self.inner.db.persist(PersistMode::SyncAll)?,
            Some(journal) => {
                let mut unsynced = journal.lock();
                self.inner.db.persist(PersistMode::Buffer)?;
                unsynced.clear();
            }
        }
        Ok(())
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn keyspace(&self, cf: Cf) -> Result<&Keyspace> {
        self.check_open()?;
        self.inner.cfs[cf.slot()]
            .as_ref()
            .ok_or(Error::CfNotOpen(cf))
    }

    /// Reads the latest value of `key` in `cf`; `Ok(None)` if it is absent.
    pub fn get_cf(&self, cf: Cf, key: &[u8]) -> Result<Option<Value>> {
        check_key(key)?;
        Ok(self.keyspace(cf)?.get(key)?.map(Value))
    }

    /// Reads and decodes a protobuf message; a value that fails to decode is
    /// [`Error::Decode`].
    pub fn get_msg_cf<M: protobuf::Message>(&self, cf: Cf, key: &[u8]) -> Result<Option<M>> {
        self.get_cf(cf, key)?
            .map(|v| crate::write_batch::decode_msg(key, &v))
            .transpose()
    }

    /// Writes one key (buffered durability). For several keys use a [`WriteBatch`].
    pub fn put_cf(&self, cf: Cf, key: &[u8], value: &[u8]) -> Result<()> {
        let mut wb = WriteBatch::new();
        wb.put_cf(cf, key, value)?;
        self.write(wb, Durability::Buffered)
    }

    /// Deletes one key (buffered durability). Deleting an absent key is not an error.
    pub fn delete_cf(&self, cf: Cf, key: &[u8]) -> Result<()> {
        let mut wb = WriteBatch::new();
        wb.delete_cf(cf, key)?;
        self.write(wb, Durability::Buffered)
    }

    /// Commits `wb` atomically: after a crash either all of it or none of it is visible.
    ///
    /// The batch is visible to reads as soon as this returns, whatever `durability` is. An
    /// empty batch writes nothing, but with [`Durability::Sync`] it still syncs.
    pub fn write(&self, wb: WriteBatch, durability: Durability) -> Result<()> {
        self.check_open()?;
        if wb.is_empty() {
            if durability == Durability::Sync {
                self.sync()?;
            }
            return Ok(());
        }
        if let Some(journal) = &self.inner.sim {
            if journal.fuse_takes(Some(&wb)) {
                // The process died before this write: nobody may see it (see `WriteFuse`).
                return self.write_lost(journal, wb);
            }
        }
        if let Some(observer) = self.inner.observer.get() {
            observer.on_write(&wb);
        }
        if let Some(journal) = &self.inner.sim {
            return self.write_simulated(journal, wb, durability);
        }
        self.commit(
            wb.ops,
            Some(match durability {
                Durability::Sync => PersistMode::SyncData,
                Durability::Buffered => PersistMode::Buffer,
            }),
        )
    }

    /// Commits `ops` as one fjall batch persisted with `mode` (`None`: left in the journal's
    /// in-process buffer, as the simulated-durability mode does, which models durability
    /// itself and so spares a `write` system call per batch).
    #[inline]
    pub(crate) fn commit(&self, ops: Vec<Op>, mode: Option<PersistMode>) -> Result<()> {
        let mut batch = self.inner.db.batch().durability(mode);
        for op in ops {
            let ks = self.keyspace(op.cf)?;
            match op.value {
                Some(v) => batch.insert(ks, op.key, v),
                None => batch.remove(ks, op.key),
            }
        }
        batch.commit()?;
        Ok(())
    }

    /// Makes every write so far durable (a sync point: a journal is sequential, so syncing
    /// now covers every earlier buffered write).
    ///
    /// In simulated-durability mode it flushes to the OS without fsync and forgets the undo
    /// records: [`Engine::simulate_crash`] can no longer lose those writes.
    pub fn sync(&self) -> Result<()> {
        self.check_open()?;
        if let Some(journal) = &self.inner.sim {
            if journal.fuse_takes(None) {
                return Ok(()); // the process died before this sync (see `WriteFuse`)
            }
            return self.sync_simulated(journal);
        }
        self.inner.db.persist(PersistMode::SyncData)?;
        Ok(())
    }

    /// Compacts `cf` fully: flushes its memtable and merges all its tables into one sorted
    /// run, dropping the overwritten versions and tombstones no open snapshot can still see.
    /// Blocks until done. Reads return the same data before and after; only their cost
    /// changes (a scan walks every version of a key the LSM tree still holds).
    ///
    /// A maintenance operation for after bulk deletes, and for the simulator between the
    /// phases of a test (standing in for the background compaction a long-running store
    /// would have done); it rewrites the whole column family, so it has no place on a hot
    /// path.
    // fjall exposes memtable rotation and major compaction as public but doc-hidden API;
    // the engine test `compaction_drops_dead_versions_and_keeps_data` breaks if they change.
    pub fn compact_cf(&self, cf: Cf) -> Result<()> {
        let ks = self.keyspace(cf)?;
        ks.rotate_memtable_and_wait()?;
        ks.major_compact()?;
        Ok(())
    }

    /// A point-in-time view of every column family: later writes are invisible to it.
    pub fn snapshot(&self) -> Result<Snapshot> {
        self.check_open()?;
        Ok(Snapshot::new(self.clone(), self.inner.db.snapshot()))
    }

    /// An iterator over the current state of `cf` within `[lower, upper)` (`None` = unbounded);
    /// shorthand for a snapshot's [`Snapshot::iter_cf`].
    pub fn iter_cf(&self, cf: Cf, lower: &[u8], upper: Option<&[u8]>) -> Result<DbIterator> {
        self.snapshot()?.iter_cf(cf, lower, upper)
    }

    /// Adds a delete of every key of `cf` in `[start, end)` to `wb`, so the range delete
    /// commits atomically with the rest of the batch. Returns how many keys it deleted.
    ///
    /// fjall has no native range delete, so this reads the range; use it for bounded ranges
    /// (a region's raft log, a destroyed peer's data).
    pub fn delete_range_to_batch(
        &self,
        cf: Cf,
        start: &[u8],
        end: &[u8],
        wb: &mut WriteBatch,
    ) -> Result<usize> {
        let mut it = self.iter_cf(cf, start, Some(end))?;
        it.seek_to_first();
        let mut n = 0;
        while let Some(key) = it.key_slice() {
            wb.delete_raw(cf, key);
            n += 1;
            it.next();
        }
        it.status()?;
        Ok(n)
    }

    /// Deletes every key of `cf` in `[start, end)`, committing in chunks of `chunk` keys so
    /// memory stays bounded. Not atomic as a whole: after a crash a prefix may be deleted.
    /// Returns how many keys it deleted.
    pub fn delete_range_cf(
        &self,
        cf: Cf,
        start: &[u8],
        end: &[u8],
        durability: Durability,
    ) -> Result<usize> {
        const CHUNK: usize = 4096;
        let mut it = self.iter_cf(cf, start, Some(end))?;
        it.seek_to_first();
        let mut total = 0;
        let mut wb = WriteBatch::new();
        while let Some(key) = it.key_slice() {
            wb.delete_raw(cf, key);
            total += 1;
            if wb.len() >= CHUNK {
                self.write(std::mem::take(&mut wb), durability)?;
            }
            it.next();
        }
        it.status()?;
        self.write(wb, durability)?;
        Ok(total)
    }
}

/// Validates a key/value pair before it reaches the LSM tree.
pub(crate) fn check_kv(key: &[u8], value: &[u8]) -> Result<()> {
    check_key(key)?;
    check_value(value)
}

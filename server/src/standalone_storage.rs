//! Stage 1: a storage on one local engine, without replication.

use engine::{Cf, DbIterator, Durability, Engine, WriteBatch};
use proto::kvrpcpb::Context;

use crate::storage::{Modify, Storage, StorageReader};
use crate::{Config, Result};

/// A [`Storage`] on a single local engine (in `<db_path>/kv`) holding the data column
/// families. Writes are synced before [`Storage::write`] returns.
#[derive(Debug)]
pub struct StandaloneStorage {
    engine: Engine,
}

impl StandaloneStorage {
    /// Opens (or creates) the storage under `config.db_path`.
    pub fn new(config: &Config) -> Result<Self> {
        // lab:begin 1
        // lab:stub let _ = config;
        // lab:stub todo!("1: open an engine with the data column families under config.db_path")
        let engine = Engine::open(config.db_path.join("kv"), Cf::DATA, &config.engine)?;
        Ok(StandaloneStorage { engine })
        // lab:end 1
    }
}

impl Storage for StandaloneStorage {
    fn write(&self, _ctx: &Context, batch: Vec<Modify>) -> Result<()> {
        // lab:begin 1
        // lab:stub let _ = batch;
        // lab:stub todo!("1: apply the batch atomically with one engine write batch")
        let mut wb = WriteBatch::with_capacity(batch.len());
        for m in &batch {
            match m {
                Modify::Put { cf, key, value } => wb.put_cf(*cf, key, value)?,
                Modify::Delete { cf, key } => wb.delete_cf(*cf, key)?,
            }
        }
        self.engine.write(wb, Durability::Sync)?;
        Ok(())
        // lab:end 1
    }

    fn reader(&self, _ctx: &Context) -> Result<Box<dyn StorageReader>> {
        // lab:begin 1
        // lab:stub todo!("1: return a reader over an engine snapshot")
        Ok(Box::new(SnapshotReader {
            snap: self.engine.snapshot()?,
        }))
        // lab:end 1
    }

    fn stop(&self) -> Result<()> {
        // lab:begin 1
        // lab:stub todo!("1: flush and close the engine")
        self.engine.close()?;
        Ok(())
        // lab:end 1
    }
}

// lab:begin 1
/// Reads one engine snapshot.
struct SnapshotReader {
    snap: engine::Snapshot,
}

impl StorageReader for SnapshotReader {
    fn get_cf(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.snap.get_cf(cf, key)?.map(Vec::from))
    }

    fn iter_cf(&self, cf: Cf) -> Result<DbIterator> {
        Ok(self.snap.iter_cf(cf, b"", None)?)
    }
}
// lab:end 1

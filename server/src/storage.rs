//! The storage abstraction the KV service runs on.
//!
//! Stage 1 implements it on one local engine ([`crate::StandaloneStorage`]); stage 2b
//! implements it on a raft group, so the raw and transactional handlers never change.

use engine::{Cf, DbIterator};
use proto::kvrpcpb::Context;

use crate::Result;

/// One change of a write batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modify {
    /// Set `key` to `value` in `cf`.
    Put {
        /// Column family.
        cf: Cf,
        /// Key.
        key: Vec<u8>,
        /// New value.
        value: Vec<u8>,
    },
    /// Remove `key` from `cf` (removing an absent key is not an error).
    Delete {
        /// Column family.
        cf: Cf,
        /// Key.
        key: Vec<u8>,
    },
}

impl Modify {
    /// The column family the change touches.
    pub fn cf(&self) -> Cf {
        match self {
            Modify::Put { cf, .. } | Modify::Delete { cf, .. } => *cf,
        }
    }

    /// The key the change touches.
    pub fn key(&self) -> &[u8] {
        match self {
            Modify::Put { key, .. } | Modify::Delete { key, .. } => key,
        }
    }

    /// The new value, for a put.
    pub fn value(&self) -> Option<&[u8]> {
        match self {
            Modify::Put { value, .. } => Some(value),
            Modify::Delete { .. } => None,
        }
    }
}

/// Where the KV service keeps its data.
pub trait Storage: Send + Sync {
    /// Applies `batch` atomically: afterwards every change is visible, or (on error) none.
    fn write(&self, ctx: &Context, batch: Vec<Modify>) -> Result<()>;

    /// A reader over a consistent snapshot: writes made after it was opened are invisible.
    fn reader(&self, ctx: &Context) -> Result<Box<dyn StorageReader>>;

    /// Flushes and releases the storage; later calls fail with [`crate::Error::Stopped`] or an
    /// engine error.
    fn stop(&self) -> Result<()>;
}

/// A consistent, read-only view of the storage.
pub trait StorageReader: Send {
    /// The value of `key` in `cf`; `Ok(None)` when it is absent (absence is not an error).
    fn get_cf(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// An unpositioned cursor over `cf` in key order (call `seek` first).
    fn iter_cf(&self, cf: Cf) -> Result<DbIterator>;

    /// Releases the snapshot. Dropping the reader does the same; this names the moment.
    fn close(self: Box<Self>) {}
}

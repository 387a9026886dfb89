//! Point-in-time views of an engine.

use crate::db::Value;
use crate::error::check_key;
use crate::{Cf, DbIterator, Engine, Result};

/// A consistent view of every column family of an engine as of its creation: writes made
/// after it was taken are invisible to it. Cheap to clone. Keep snapshots short-lived: the
/// engine keeps the versions a snapshot can see until it is dropped.
#[derive(Clone)]
pub struct Snapshot {
    engine: Engine,
    snap: fjall::Snapshot,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("engine", &self.engine)
            .finish()
    }
}

impl Snapshot {
    pub(crate) fn new(engine: Engine, snap: fjall::Snapshot) -> Self {
        Snapshot { engine, snap }
    }

    /// The engine this snapshot was taken of.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Reads `key` in `cf` as of the snapshot; `Ok(None)` if absent.
    pub fn get_cf(&self, cf: Cf, key: &[u8]) -> Result<Option<Value>> {
        use fjall::Readable;
        check_key(key)?;
        let ks = self.engine.keyspace(cf)?;
        Ok(self.snap.get(ks, key)?.map(Value))
    }

    /// Reads and decodes a protobuf message as of the snapshot.
    pub fn get_msg_cf<M: protobuf::Message>(&self, cf: Cf, key: &[u8]) -> Result<Option<M>> {
        self.get_cf(cf, key)?
            .map(|v| crate::write_batch::decode_msg(key, &v))
            .transpose()
    }

    /// An iterator over `cf` as of the snapshot, limited to `[lower, upper)`
    /// (`upper = None` is unbounded). It starts unpositioned: call
    /// [`DbIterator::seek`] or [`DbIterator::seek_to_first`].
    pub fn iter_cf(&self, cf: Cf, lower: &[u8], upper: Option<&[u8]>) -> Result<DbIterator> {
        let ks = self.engine.keyspace(cf)?.clone();
        Ok(DbIterator::new(
            self.clone(),
            ks,
            lower.to_vec(),
            upper.map(<[u8]>::to_vec),
        ))
    }

    /// Calls `f(key, value)` for every pair of `cf` in `[start, end)` in key order, until `f`
    /// returns `false`.
    pub fn scan_cf(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let mut it = self.iter_cf(cf, start, end)?;
        it.seek_to_first();
        while let Some((k, v)) = it.item() {
            if !f(k, v) {
                break;
            }
            it.next();
        }
        it.status()
    }

    pub(crate) fn range(
        &self,
        ks: &fjall::Keyspace,
        from: &[u8],
        upper: Option<&[u8]>,
    ) -> fjall::Iter {
        use fjall::Readable;
        use std::ops::Bound;
        let upper = match upper {
            Some(u) => Bound::Excluded(u),
            None => Bound::Unbounded,
        };
        let lower = if from.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Included(from)
        };
        self.snap.range::<&[u8], _>(ks, (lower, upper))
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        self.engine.check_open()
    }
}

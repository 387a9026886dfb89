//! Atomic write batches that span column families.

use crate::db::check_kv;
use crate::error::check_key;
use crate::{Cf, Error, Result};

pub(crate) struct Op {
    pub(crate) cf: Cf,
    pub(crate) key: fjall::Slice,
    /// `None` is a delete.
    pub(crate) value: Option<fjall::Slice>,
}

/// A set of puts and deletes over any column families of one engine, committed atomically
/// by [`crate::Engine::write`]. Later operations on the same key win.
///
/// Keys and values are validated when added, so a bad key is reported where it was made.
#[derive(Default)]
pub struct WriteBatch {
    pub(crate) ops: Vec<Op>,
    bytes: usize,
}

impl std::fmt::Debug for WriteBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBatch")
            .field("ops", &self.ops.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        WriteBatch::default()
    }

    /// An empty batch with room for `n` operations.
    pub fn with_capacity(n: usize) -> Self {
        WriteBatch {
            ops: Vec::with_capacity(n),
            bytes: 0,
        }
    }

    /// Number of operations in the batch.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Approximate size of the batch's keys and values in bytes.
    pub fn data_size(&self) -> usize {
        self.bytes
    }

    /// Adds a put of `key` → `value` in `cf`.
    pub fn put_cf(&mut self, cf: Cf, key: &[u8], value: &[u8]) -> Result<()> {
        check_kv(key, value)?;
        self.bytes += key.len() + value.len();
        self.ops.push(Op {
            cf,
            key: key.into(),
            value: Some(value.into()),
        });
        Ok(())
    }

    /// Adds a delete of `key` in `cf`.
    pub fn delete_cf(&mut self, cf: Cf, key: &[u8]) -> Result<()> {
        check_key(key)?;
        self.delete_raw(cf, fjall::Slice::from(key));
        Ok(())
    }

    /// A delete of a key that came out of the engine (already valid).
    pub(crate) fn delete_raw(&mut self, cf: Cf, key: fjall::Slice) {
        self.bytes += key.len();
        self.ops.push(Op {
            cf,
            key,
            value: None,
        });
    }

    /// Adds a put of a protobuf message, encoded.
    pub fn put_msg_cf<M: protobuf::Message>(&mut self, cf: Cf, key: &[u8], msg: &M) -> Result<()> {
        let bytes = msg.write_to_bytes().map_err(|source| Error::Encode {
            message: std::any::type_name::<M>(),
            source,
        })?;
        self.put_cf(cf, key, &bytes)
    }

    /// Moves every operation of `other` to the end of this batch.
    pub fn append(&mut self, other: &mut WriteBatch) {
        self.bytes += std::mem::take(&mut other.bytes);
        self.ops.append(&mut other.ops);
    }

    /// Removes every operation.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.bytes = 0;
    }
}

/// Decodes a stored protobuf message, naming the key when the bytes are corrupt.
pub(crate) fn decode_msg<M: protobuf::Message>(key: &[u8], bytes: &[u8]) -> Result<M> {
    M::parse_from_bytes(bytes).map_err(|source| Error::Decode {
        key: key.to_vec(),
        message: std::any::type_name::<M>(),
        source,
    })
}

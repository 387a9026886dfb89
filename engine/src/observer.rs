//! Write observers: a hook that sees every batch an engine commits, for test oracles.
//!
//! The simulator checks the stores from outside: an observer installed on a store's kv
//! engine sees each batch the store writes (whatever code wrote it), so a harness can verify,
//! for example, that every committed command is applied exactly once and in order, without
//! trusting the store to report what it did.

use crate::{Cf, WriteBatch};

/// One operation of a batch, as an observer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOp<'a> {
    /// The column family written.
    pub cf: Cf,
    /// The key written.
    pub key: &'a [u8],
    /// The new value, `None` for a delete.
    pub value: Option<&'a [u8]>,
}

/// Sees every non-empty batch an engine commits through [`Engine::write`](crate::Engine::write)
/// (and the single-key writes built on it), on the writing thread, just before the batch
/// commits. Installed with [`Engine::set_write_observer`](crate::Engine::set_write_observer).
///
/// The rollback of [`Engine::simulate_crash`](crate::Engine::simulate_crash) is not a write
/// and is not observed: whoever crashes the engine knows it did. Neither are the writes a
/// blown [`WriteFuse`](crate::WriteFuse) lost: the process that made them was already dead.
/// (A batch that landed before the blow was observed, even if the crash then rolls it back
/// for want of a sync, as with any crash.)
pub trait WriteObserver: Send + Sync {
    /// Called with the batch about to commit. Must not write to the same engine.
    fn on_write(&self, batch: &WriteBatch);
}

impl WriteBatch {
    /// The batch's operations in order (later operations on a key win).
    pub fn ops(&self) -> impl Iterator<Item = BatchOp<'_>> {
        self.ops.iter().map(|op| BatchOp {
            cf: op.cf,
            key: &op.key,
            value: op.value.as_deref(),
        })
    }
}

//! Ordered, bounded cursors over a snapshot.

use crate::{Error, Result, Snapshot};

/// A cursor over one column family of a [`Snapshot`], in ascending key order, confined to
/// `[lower, upper)`.
///
/// The shape is the course's (`seek`, `valid`, `next`, `item`): position it with
/// [`DbIterator::seek`] or [`DbIterator::seek_to_first`], then read [`DbIterator::item`] and
/// advance with [`DbIterator::next`] while [`DbIterator::valid`]. A read error makes the
/// iterator invalid and is reported by [`DbIterator::status`]. Because it reads a snapshot,
/// writes made after the snapshot are never seen.
pub struct DbIterator {
    snap: Snapshot,
    ks: fjall::Keyspace,
    lower: Vec<u8>,
    upper: Option<Vec<u8>>,
    iter: Option<fjall::Iter>,
    current: Option<(fjall::Slice, fjall::Slice)>,
    error: Option<Error>,
}

impl std::fmt::Debug for DbIterator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbIterator")
            .field("lower", &self.lower)
            .field("upper", &self.upper)
            .field("key", &self.key())
            .finish()
    }
}

impl DbIterator {
    pub(crate) fn new(
        snap: Snapshot,
        ks: fjall::Keyspace,
        lower: Vec<u8>,
        upper: Option<Vec<u8>>,
    ) -> Self {
        DbIterator {
            snap,
            ks,
            lower,
            upper,
            iter: None,
            current: None,
            error: None,
        }
    }

    /// Positions the cursor at the first key ≥ `key` (and ≥ the lower bound).
    pub fn seek(&mut self, key: &[u8]) {
        self.current = None;
        self.error = None;
        if let Err(e) = self.snap.check_open() {
            self.error = Some(e);
            self.iter = None;
            return;
        }
        let from = if key > self.lower.as_slice() {
            key
        } else {
            self.lower.as_slice()
        };
        self.iter = Some(self.snap.range(&self.ks, from, self.upper.as_deref()));
        self.next();
    }

    /// Positions the cursor at the first key of the range.
    pub fn seek_to_first(&mut self) {
        let lower = std::mem::take(&mut self.lower);
        self.seek(&lower);
        self.lower = lower;
    }

    /// Whether the cursor points at a pair.
    pub fn valid(&self) -> bool {
        self.current.is_some()
    }

    /// Moves to the next pair; past the last one the cursor becomes invalid.
    // Not `Iterator::next`: a cursor lends its current item instead of yielding owned pairs.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) {
        let Some(iter) = self.iter.as_mut() else {
            self.current = None;
            return;
        };
        self.current = match iter.next() {
            None => None,
            Some(guard) => match guard.into_inner() {
                Ok(kv) => Some(kv),
                Err(e) => {
                    self.error = Some(e.into());
                    self.iter = None;
                    None
                }
            },
        };
    }

    /// The current key, if valid.
    pub fn key(&self) -> Option<&[u8]> {
        self.current.as_ref().map(|(k, _)| &**k)
    }

    /// The current value, if valid.
    pub fn value(&self) -> Option<&[u8]> {
        self.current.as_ref().map(|(_, v)| &**v)
    }

    /// The current pair, if valid.
    pub fn item(&self) -> Option<(&[u8], &[u8])> {
        self.current.as_ref().map(|(k, v)| (&**k, &**v))
    }

    /// The error that ended the iteration early, if any (reported once).
    pub fn status(&mut self) -> Result<()> {
        match self.error.take() {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// Collects up to `limit` pairs from the current position on, advancing the cursor.
    pub fn take_pairs(&mut self, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::with_capacity(limit.min(1024));
        while out.len() < limit {
            let Some((k, v)) = self.item() else { break };
            out.push((k.to_vec(), v.to_vec()));
            self.next();
        }
        self.status()?;
        Ok(out)
    }

    /// The current key as the engine's own buffer (for deletes without a copy).
    pub(crate) fn key_slice(&self) -> Option<fjall::Slice> {
        self.current.as_ref().map(|(k, _)| k.clone())
    }
}

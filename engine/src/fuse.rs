//! Write fuses: a simulated crash between two writes of one logical step.
//!
//! A store writes its two engines several times while it handles one event (the raft log and
//! raft state, then the applied data and apply state, then a region state, ...). A crash
//! *between events* never separates those writes; a real crash can. A [`WriteFuse`], armed on
//! both engines of a store ([`crate::Engines::arm_write_fuse`]), picks the write where the
//! machine dies: it counts the store's writes (across both engines) and blows at the `n+1`-th,
//! optionally counting only from the first batch a trigger matches.
//!
//! From the write that blows it on, the process is dead: nothing it does reaches the disk or
//! anyone else. The engine models that without lying to the dying process: the lost writes
//! still land, so whatever the store reads for the rest of the event stays coherent, but they
//! land as unsynced writes whatever their [`Durability`](crate::Durability) (and a sync does
//! nothing), so the crash that follows ([`crate::Engines::simulate_crash`]) rolls every one of
//! them back together with the writes that were not synced before the blow. No
//! [`WriteObserver`](crate::WriteObserver) sees them: an oracle watches what reached the disk.
//!
//! Only engines in [simulated-durability mode](crate::EngineOptions::simulated_durability)
//! take a fuse; the mode's crash journal is what undoes the lost writes.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::WriteBatch;

/// Which of a store's two engines a write goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EngineKind {
    /// The kv engine: user data, apply state and region state.
    Kv,
    /// The raft engine: raft log and raft state.
    Raft,
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EngineKind::Kv => "kv",
            EngineKind::Raft => "raft",
        })
    }
}

/// Decides whether a batch starts a fuse's count (see [`WriteFuse::after_first`]).
pub type FuseTrigger = dyn Fn(EngineKind, &WriteBatch) -> bool + Send + Sync;

/// Where a fuse blew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuseBlow {
    /// The engine whose write was lost first.
    pub engine: EngineKind,
    /// Whether that write was a sync ([`crate::Engine::sync`], or an empty
    /// [`Durability::Sync`](crate::Durability::Sync) batch) rather than a batch.
    pub sync: bool,
    /// Writes that landed while the fuse was armed, before the one that was lost (those
    /// before the trigger included).
    pub landed: u32,
}

struct FuseState {
    /// Writes that may land once counting has started.
    after: u32,
    /// `None` once counting has started (or from the start, without a trigger).
    trigger: Option<Arc<FuseTrigger>>,
    /// Writes that landed since counting started.
    counted: u32,
    /// Writes that landed in total.
    landed: u32,
    blown: Option<FuseBlow>,
}

/// A crash armed on the writes of a store's engines: shared by both engines (clones share
/// it), it lets `n` writes land and loses the next one and every write after it.
///
/// A lost write still lands, so that whatever the dying store reads for the rest of its
/// step stays coherent, but as an unsynced write whatever its durability (and a lost sync
/// does nothing), so the crash that follows ([`crate::Engines::simulate_crash`]) rolls back
/// every lost write together with the writes that were not synced before the blow. No
/// [`WriteObserver`](crate::WriteObserver) sees a lost write: an oracle watches what reached
/// the disk.
///
/// A *write* is a non-empty batch ([`crate::Engine::write`] and the helpers built on it) or a
/// sync point ([`crate::Engine::sync`], an empty [`Durability::Sync`](crate::Durability::Sync)
/// batch). Empty buffered batches are no writes.
#[derive(Clone)]
pub struct WriteFuse {
    state: Arc<Mutex<FuseState>>,
}

impl std::fmt::Debug for WriteFuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("WriteFuse")
            .field("after", &s.after)
            .field("triggered", &s.trigger.is_none())
            .field("counted", &s.counted)
            .field("landed", &s.landed)
            .field("blown", &s.blown)
            .finish()
    }
}

impl WriteFuse {
    /// A fuse that lets `n` writes land and blows at the next one (`0`: the first write is
    /// lost).
    pub fn after_writes(n: u32) -> WriteFuse {
        WriteFuse::new(n, None)
    }

    /// A fuse that lets every write land until the first batch `trigger` matches, then lets
    /// `n` writes land counting that batch, and blows at the next one (`0`: the matching batch
    /// itself is lost). Syncs never match.
    pub fn after_first(
        n: u32,
        trigger: impl Fn(EngineKind, &WriteBatch) -> bool + Send + Sync + 'static,
    ) -> WriteFuse {
        WriteFuse::new(n, Some(Arc::new(trigger)))
    }

    fn new(after: u32, trigger: Option<Arc<FuseTrigger>>) -> WriteFuse {
        WriteFuse {
            state: Arc::new(Mutex::new(FuseState {
                after,
                trigger,
                counted: 0,
                landed: 0,
                blown: None,
            })),
        }
    }

    /// The state, even if a trigger panicked while it was held (the counters stay coherent:
    /// a trigger runs before any of them changes).
    fn lock(&self) -> MutexGuard<'_, FuseState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the fuse blew: the writes from the blow on are lost.
    pub fn is_blown(&self) -> bool {
        self.lock().blown.is_some()
    }

    /// Where the fuse blew, if it did.
    pub fn blow(&self) -> Option<FuseBlow> {
        self.lock().blown
    }

    /// Whether the count has started: the trigger matched a batch (always, for a fuse
    /// without one).
    pub fn triggered(&self) -> bool {
        self.lock().trigger.is_none()
    }

    /// How many writes landed so far (before the blow, if it blew).
    pub fn landed(&self) -> u32 {
        self.lock().landed
    }

    /// Counts one write to `engine` (`batch` is `None` for a sync) and says whether it is
    /// lost.
    pub(crate) fn takes(&self, engine: EngineKind, batch: Option<&WriteBatch>) -> bool {
        let mut s = self.lock();
        if s.blown.is_some() {
            return true;
        }
        if let Some(trigger) = &s.trigger {
            let starts = batch.is_some_and(|wb| trigger(engine, wb));
            if !starts {
                s.landed += 1;
                return false;
            }
            s.trigger = None;
        }
        if s.counted >= s.after {
            s.blown = Some(FuseBlow {
                engine,
                sync: batch.is_none(),
                landed: s.landed,
            });
            return true;
        }
        s.counted += 1;
        s.landed += 1;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cf;

    fn batch(key: &[u8]) -> WriteBatch {
        let mut wb = WriteBatch::new();
        wb.put_cf(Cf::Default, key, b"v").expect("valid");
        wb
    }

    #[test]
    fn blows_after_n_writes_and_stays_blown() {
        let fuse = WriteFuse::after_writes(2);
        let wb = batch(b"a");
        assert!(!fuse.takes(EngineKind::Kv, Some(&wb)));
        assert!(!fuse.takes(EngineKind::Raft, None));
        assert!(!fuse.is_blown());
        assert!(fuse.takes(EngineKind::Raft, Some(&wb)));
        assert!(fuse.takes(EngineKind::Kv, None), "a blown fuse stays blown");
        assert_eq!(
            fuse.blow(),
            Some(FuseBlow {
                engine: EngineKind::Raft,
                sync: false,
                landed: 2
            })
        );
        assert_eq!(fuse.landed(), 2);
    }

    #[test]
    fn a_trigger_starts_the_count_and_syncs_never_match() {
        let fuse = WriteFuse::after_first(1, |engine, wb| {
            engine == EngineKind::Kv && wb.ops().any(|op| op.key == b"t")
        });
        let (other, t) = (batch(b"a"), batch(b"t"));
        assert!(!fuse.takes(EngineKind::Kv, Some(&other)));
        assert!(!fuse.takes(EngineKind::Kv, None));
        assert!(!fuse.takes(EngineKind::Raft, Some(&t)), "wrong engine");
        assert!(!fuse.triggered());
        assert!(!fuse.takes(EngineKind::Kv, Some(&t)), "the trigger lands");
        assert!(fuse.triggered());
        assert!(fuse.takes(EngineKind::Kv, None), "the next write is lost");
        assert_eq!(
            fuse.blow(),
            Some(FuseBlow {
                engine: EngineKind::Kv,
                sync: true,
                landed: 4
            })
        );
    }

    #[test]
    fn zero_loses_the_trigger_itself() {
        let fuse = WriteFuse::after_first(0, |_, wb| wb.ops().any(|op| op.key == b"t"));
        assert!(!fuse.takes(EngineKind::Kv, Some(&batch(b"a"))));
        assert!(fuse.takes(EngineKind::Kv, Some(&batch(b"t"))));
        assert_eq!(fuse.blow().map(|b| b.landed), Some(1));
    }
}

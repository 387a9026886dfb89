//! What a scheduler must not forget across a restart, and the trait through which it keeps
//! it (the original keeps it in etcd; `tinykv-scheduler` keeps it in a file).
//!
//! Regions are not here: every store reports its regions in heartbeats, so a restarted
//! scheduler relearns them within a heartbeat interval. What no heartbeat can tell it is
//! kept instead: whether the cluster was bootstrapped (else a fresh store would bootstrap a
//! second cluster over the same keys), the stores' addresses (else running stores, which
//! register only when they start, could not be found), and how far the id allocator got
//! (else ids would be handed out twice). Ids are reserved in blocks of [`ID_BLOCK`]: the
//! allocator saves a new limit before it hands out the first id above the last one, so
//! a restart may skip ids but never repeats one.

use proto::metapb::Store;

/// How many ids one saved limit covers.
pub const ID_BLOCK: u64 = 1000;

/// What a scheduler saved, as read back at its start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SavedMeta {
    /// Whether some store bootstrapped the cluster.
    pub bootstrapped: bool,
    /// Every id below this may have been handed out.
    pub id_limit: u64,
    /// Every store registered, tombstones included.
    pub stores: Vec<Store>,
}

/// Durable storage for a scheduler's [`SavedMeta`]. Each call returns once what it saves
/// survives a crash of the process and of the machine.
pub trait MetaStore: Send + Sync + std::fmt::Debug {
    /// Records that ids below `limit` may be handed out.
    fn save_id_limit(&self, limit: u64) -> std::io::Result<()>;
    /// Records that the cluster is bootstrapped.
    fn save_bootstrapped(&self) -> std::io::Result<()>;
    /// Records a store's description (a new store, a new address, a new state).
    fn save_store(&self, store: &Store) -> std::io::Result<()>;
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use parking_lot::Mutex;
    use proto::metapb::{Store, StoreState};

    use super::*;
    use crate::{Error, ScheduleConfig, SchedulerService};

    /// A meta store in memory that can be told to fail.
    #[derive(Debug, Default)]
    struct MemMeta {
        saved: Mutex<SavedMeta>,
        fail: AtomicBool,
    }

    impl MemMeta {
        fn check(&self) -> std::io::Result<()> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(std::io::Error::other("disk full"));
            }
            Ok(())
        }
    }

    impl MetaStore for MemMeta {
        fn save_id_limit(&self, limit: u64) -> std::io::Result<()> {
            self.check()?;
            self.saved.lock().id_limit = limit;
            Ok(())
        }
        fn save_bootstrapped(&self) -> std::io::Result<()> {
            self.check()?;
            self.saved.lock().bootstrapped = true;
            Ok(())
        }
        fn save_store(&self, store: &Store) -> std::io::Result<()> {
            self.check()?;
            let mut saved = self.saved.lock();
            saved.stores.retain(|s| s.id != store.id);
            saved.stores.push(store.clone());
            Ok(())
        }
    }

    fn store(id: u64, addr: &str) -> Store {
        Store {
            id,
            address: addr.into(),
            ..Default::default()
        }
    }

    /// A scheduler over `meta`, restarted from what it holds.
    fn start(meta: &Arc<MemMeta>) -> SchedulerService {
        let saved = meta.saved.lock().clone();
        SchedulerService::new(1, 100, ScheduleConfig::default(), 0).with_meta(saved, meta.clone())
    }

    #[test]
    fn every_id_handed_out_is_below_the_saved_limit_and_never_repeats_after_a_restart() {
        let meta = Arc::new(MemMeta::default());
        let mut seen = std::collections::BTreeSet::new();
        for _restart in 0..3 {
            let svc = start(&meta);
            for _ in 0..(ID_BLOCK + ID_BLOCK / 2) {
                let id = svc.cluster().alloc_id();
                assert!(id >= 100, "below the first id: {id}");
                assert!(
                    id < meta.saved.lock().id_limit,
                    "id {id} handed out above the saved limit"
                );
                assert!(seen.insert(id), "id {id} handed out twice");
            }
        }
    }

    #[test]
    fn a_restarted_scheduler_is_bootstrapped_and_knows_every_store() {
        let meta = Arc::new(MemMeta::default());
        let svc = start(&meta);
        assert!(!svc.is_bootstrapped());
        svc.bootstrap(store(1, "a:1")).expect("bootstrap");
        svc.put_store(store(2, "b:2")).expect("register");
        svc.put_store(store(2, "b:3")).expect("a new address");
        let mut gone = store(3, "c:3");
        gone.set_state(StoreState::Tombstone);
        svc.put_store(gone).expect("register");
        drop(svc);

        let svc = start(&meta);
        assert!(svc.is_bootstrapped());
        assert!(matches!(
            svc.bootstrap(store(4, "d:4")),
            Err(Error::AlreadyBootstrapped)
        ));
        assert_eq!(svc.get_store(1).map(|s| s.address), Some("a:1".into()));
        assert_eq!(svc.get_store(2).map(|s| s.address), Some("b:3".into()));
        assert!(
            matches!(
                svc.put_store(store(3, "c:9")),
                Err(Error::StoreTombstone(3))
            ),
            "a tombstone stays one"
        );
    }

    #[test]
    fn what_cannot_be_saved_is_refused_not_half_done() {
        let meta = Arc::new(MemMeta::default());
        let svc = start(&meta);
        meta.fail.store(true, Ordering::SeqCst);
        assert!(matches!(
            svc.bootstrap(store(1, "a:1")),
            Err(Error::Meta(_))
        ));
        assert!(
            !svc.is_bootstrapped(),
            "an unsaved bootstrap did not happen"
        );
        assert!(matches!(
            svc.put_store(store(2, "b:2")),
            Err(Error::Meta(_))
        ));
        meta.fail.store(false, Ordering::SeqCst);
        svc.bootstrap(store(1, "a:1")).expect("saved now");
        assert!(start(&meta).is_bootstrapped());
    }

    #[test]
    #[should_panic(expected = "cannot save its id limit")]
    fn an_id_whose_limit_cannot_be_saved_is_not_handed_out() {
        let meta = Arc::new(MemMeta::default());
        let svc = start(&meta);
        meta.fail.store(true, Ordering::SeqCst);
        svc.cluster().alloc_id();
    }
}

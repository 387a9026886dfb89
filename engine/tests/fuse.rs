//! Write fuses: a crash between two writes of a store. The fuse counts writes across both
//! engines, every write from the blow on is lost to the crash (however it was meant to be
//! durable) and unseen by observers, and a disarmed engine writes normally again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use engine::{
    Cf, CrashLoss, Durability, Engine, EngineKind, EngineOptions, Engines, Error, FuseBlow,
    WriteBatch, WriteFuse, WriteObserver,
};
use proptest::prelude::*;

fn open_sim(dir: &tempfile::TempDir) -> Engines {
    Engines::open(dir.path(), &EngineOptions::for_simulation()).unwrap()
}

fn get(e: &Engine, cf: Cf, key: &[u8]) -> Option<Vec<u8>> {
    e.get_cf(cf, key).unwrap().map(Vec::from)
}

fn batch(cf: Cf, key: &[u8], value: &[u8]) -> WriteBatch {
    let mut wb = WriteBatch::new();
    wb.put_cf(cf, key, value).unwrap();
    wb
}

/// Counts the batches an engine's observer saw, and remembers their first keys.
#[derive(Default)]
struct Seen {
    batches: AtomicUsize,
    keys: Mutex<Vec<Vec<u8>>>,
}

impl Seen {
    fn keys(&self) -> Vec<Vec<u8>> {
        self.keys.lock().unwrap().clone()
    }
}

impl WriteObserver for Seen {
    fn on_write(&self, batch: &WriteBatch) {
        self.batches.fetch_add(1, Ordering::SeqCst);
        if let Some(op) = batch.ops().next() {
            self.keys.lock().unwrap().push(op.key.to_vec());
        }
    }
}

#[test]
fn the_fuse_counts_writes_across_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    let engines = open_sim(&dir);
    let fuse = WriteFuse::after_writes(3);
    engines.arm_write_fuse(&fuse).unwrap();
    engines
        .raft
        .write(batch(Cf::Raft, b"log1", b"1"), Durability::Sync)
        .unwrap();
    engines.kv.put_cf(Cf::Default, b"a", b"1").unwrap();
    engines.kv.sync().unwrap();
    assert!(!engines.write_fuse_blown());
    assert_eq!(fuse.landed(), 3);
    engines.raft.put_cf(Cf::Raft, b"log2", b"2").unwrap();
    assert!(engines.write_fuse_blown());
    assert!(engines.kv.write_fuse_blown() && engines.raft.write_fuse_blown());
    assert_eq!(
        fuse.blow(),
        Some(FuseBlow {
            engine: EngineKind::Raft,
            sync: false,
            landed: 3
        })
    );
}

/// The lost writes land for the dying process (its reads stay coherent) but a crash rolls
/// them back, even those written as synced, together with whatever was unsynced at the blow;
/// what was synced before the blow survives.
#[test]
fn lost_writes_are_visible_until_the_crash_rolls_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let engines = open_sim(&dir);
    engines.kv.put_cf(Cf::Default, b"synced", b"0").unwrap();
    engines.sync().unwrap();

    let fuse = WriteFuse::after_writes(2);
    engines.arm_write_fuse(&fuse).unwrap();
    engines
        .raft
        .write(batch(Cf::Raft, b"log", b"1"), Durability::Sync)
        .unwrap(); // lands, durable
    engines.kv.put_cf(Cf::Default, b"buffered", b"1").unwrap(); // lands, unsynced
    engines
        .kv
        .write(batch(Cf::Default, b"lost", b"1"), Durability::Sync)
        .unwrap(); // blows: lost, and it does not make `buffered` durable
    engines.kv.sync().unwrap(); // lost
    engines
        .raft
        .write(batch(Cf::Raft, b"log", b"2"), Durability::Sync)
        .unwrap(); // lost
    assert!(fuse.is_blown());
    assert_eq!(
        get(&engines.kv, Cf::Default, b"lost").as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        get(&engines.raft, Cf::Raft, b"log").as_deref(),
        Some(&b"2"[..])
    );

    engines.disarm_write_fuse();
    assert!(!engines.write_fuse_blown());
    let loss = engines.simulate_crash().unwrap();
    assert_eq!(loss, CrashLoss { kv: 2, raft: 1 });
    assert_eq!(get(&engines.kv, Cf::Default, b"lost"), None);
    assert_eq!(get(&engines.kv, Cf::Default, b"buffered"), None);
    assert_eq!(
        get(&engines.kv, Cf::Default, b"synced").as_deref(),
        Some(&b"0"[..])
    );
    assert_eq!(
        get(&engines.raft, Cf::Raft, b"log").as_deref(),
        Some(&b"1"[..])
    );
}

#[test]
fn observers_see_only_the_writes_that_landed() {
    let dir = tempfile::tempdir().unwrap();
    let engines = open_sim(&dir);
    let seen = Arc::new(Seen::default());
    engines.kv.set_write_observer(seen.clone()).unwrap();
    let fuse = WriteFuse::after_writes(1);
    engines.arm_write_fuse(&fuse).unwrap();
    engines.kv.put_cf(Cf::Default, b"landed", b"1").unwrap();
    engines.kv.put_cf(Cf::Default, b"lost", b"1").unwrap();
    engines
        .kv
        .write(batch(Cf::Default, b"lost2", b"1"), Durability::Sync)
        .unwrap();
    engines
        .kv
        .delete_range_cf(Cf::Default, b"a", b"z", Durability::Sync)
        .unwrap();
    assert_eq!(seen.keys(), vec![b"landed".to_vec()]);

    engines.disarm_write_fuse();
    engines.simulate_crash().unwrap();
    engines.kv.put_cf(Cf::Default, b"after", b"1").unwrap();
    assert_eq!(seen.batches.load(Ordering::SeqCst), 2);
    assert_eq!(seen.keys()[1], b"after".to_vec());
}

/// Disarming ends the fuse's reach: writes land normally, syncs are sync points again, and a
/// new fuse counts from zero.
#[test]
fn disarm_resets_the_engines() {
    let dir = tempfile::tempdir().unwrap();
    let engines = open_sim(&dir);
    let fuse = WriteFuse::after_writes(0);
    engines.arm_write_fuse(&fuse).unwrap();
    engines.kv.put_cf(Cf::Default, b"lost", b"1").unwrap();
    assert!(engines.write_fuse_blown());
    assert!(engines.kv.disarm_write_fuse().is_some());
    assert!(engines.raft.disarm_write_fuse().is_some());
    assert!(engines.kv.disarm_write_fuse().is_none());
    assert!(!engines.write_fuse_blown());
    assert!(fuse.is_blown(), "the fuse itself stays blown");
    assert_eq!(engines.simulate_crash().unwrap().total(), 1);

    engines.kv.put_cf(Cf::Default, b"kept", b"1").unwrap();
    engines.kv.sync().unwrap();
    assert_eq!(engines.simulate_crash().unwrap().total(), 0);
    assert_eq!(
        get(&engines.kv, Cf::Default, b"kept").as_deref(),
        Some(&b"1"[..])
    );

    let second = WriteFuse::after_writes(1);
    engines.arm_write_fuse(&second).unwrap();
    engines.kv.put_cf(Cf::Default, b"x", b"1").unwrap();
    assert!(!second.is_blown());
    engines.kv.put_cf(Cf::Default, b"y", b"1").unwrap();
    assert!(second.is_blown());
    engines.disarm_write_fuse();
}

/// A trigger picks the write the count starts from: a batch of the raft engine writing a
/// given key, here; writes before it land whatever the count.
#[test]
fn a_trigger_starts_the_count_at_the_batch_it_matches() {
    let dir = tempfile::tempdir().unwrap();
    let engines = open_sim(&dir);
    let fuse = WriteFuse::after_first(1, |engine, wb| {
        engine == EngineKind::Raft && wb.ops().any(|op| op.key == b"state")
    });
    engines.arm_write_fuse(&fuse).unwrap();
    for i in 0u8..5 {
        engines.kv.put_cf(Cf::Default, &[b'k', i], b"1").unwrap();
    }
    engines.kv.put_cf(Cf::Raft, b"state", b"1").unwrap(); // kv engine: no match
    assert!(!fuse.triggered());
    engines
        .raft
        .write(batch(Cf::Raft, b"state", b"1"), Durability::Sync)
        .unwrap();
    assert!(fuse.triggered() && !fuse.is_blown());
    engines.kv.sync().unwrap();
    assert!(fuse.is_blown());
    assert_eq!(
        fuse.blow(),
        Some(FuseBlow {
            engine: EngineKind::Kv,
            sync: true,
            landed: 7
        })
    );
    engines.disarm_write_fuse();
    // The lost sync did not make the six buffered kv writes durable.
    assert_eq!(
        engines.simulate_crash().unwrap(),
        CrashLoss { kv: 6, raft: 0 }
    );
}

#[test]
fn only_simulated_engines_take_a_fuse() {
    let dir = tempfile::tempdir().unwrap();
    let engines = Engines::open(dir.path(), &EngineOptions::for_tests()).unwrap();
    let fuse = WriteFuse::after_writes(0);
    assert!(matches!(
        engines.arm_write_fuse(&fuse),
        Err(Error::NotSimulated)
    ));
    assert!(matches!(
        engines.kv.arm_write_fuse(fuse.clone(), EngineKind::Kv),
        Err(Error::NotSimulated)
    ));
    engines.kv.put_cf(Cf::Default, b"a", b"1").unwrap();
    assert!(!fuse.is_blown() && !engines.write_fuse_blown());
    assert!(engines.kv.disarm_write_fuse().is_none());
}

type State = BTreeMap<(Cf, Vec<u8>), Vec<u8>>;

/// One write of the property test, to the kv or the raft engine.
#[derive(Debug, Clone)]
enum Step {
    Put {
        raft: bool,
        key: u8,
        value: u8,
        sync: bool,
    },
    Sync {
        raft: bool,
    },
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (any::<bool>(), 0u8..4, any::<u8>(), prop::bool::weighted(0.3))
            .prop_map(|(raft, key, value, sync)| Step::Put { raft, key, value, sync }),
        1 => any::<bool>().prop_map(|raft| Step::Sync { raft }),
    ]
}

fn dump(e: &Engine, cf: Cf) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    e.snapshot()
        .unwrap()
        .scan_cf(cf, b"", None, |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            true
        })
        .unwrap();
    out
}

/// A fuse blowing at write `n` of a random sequence, then a crash, leaves each engine exactly
/// where a crash right before write `n` would have: at its last sync point before it.
#[test]
fn a_crash_at_the_blow_lands_where_a_crash_before_that_write_would() {
    let dir = tempfile::tempdir().unwrap();
    let engines = open_sim(&dir);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(48));
    let strategy = (prop::collection::vec(step_strategy(), 0..24), 0u32..28);
    let result = runner.run(&strategy, |(steps, n)| {
        for e in [&engines.kv, &engines.raft] {
            e.delete_range_cf(Cf::Raft, b"\0", b"\xff", Durability::Sync)
                .unwrap();
        }
        // The model: per engine, the current and the durable state, up to write `n`.
        let (mut current, mut durable) =
            ([State::new(), State::new()], [State::new(), State::new()]);
        for step in steps.iter().take(n as usize) {
            match *step {
                Step::Put {
                    raft,
                    key,
                    value,
                    sync,
                } => {
                    let i = usize::from(raft);
                    current[i].insert((Cf::Raft, vec![key]), vec![value]);
                    if sync {
                        durable[i] = current[i].clone();
                    }
                }
                Step::Sync { raft } => {
                    let i = usize::from(raft);
                    durable[i] = current[i].clone();
                }
            }
        }
        let fuse = WriteFuse::after_writes(n);
        engines.arm_write_fuse(&fuse).unwrap();
        for step in &steps {
            match *step {
                Step::Put {
                    raft,
                    key,
                    value,
                    sync,
                } => {
                    let e = if raft { &engines.raft } else { &engines.kv };
                    let durability = if sync {
                        Durability::Sync
                    } else {
                        Durability::Buffered
                    };
                    e.write(batch(Cf::Raft, &[key], &[value]), durability)
                        .unwrap();
                }
                Step::Sync { raft } => {
                    let e = if raft { &engines.raft } else { &engines.kv };
                    e.sync().unwrap();
                }
            }
        }
        prop_assert_eq!(fuse.is_blown(), (n as usize) < steps.len());
        engines.disarm_write_fuse();
        engines.simulate_crash().unwrap();
        for (i, e) in [&engines.kv, &engines.raft].into_iter().enumerate() {
            let want: Vec<(Vec<u8>, Vec<u8>)> = durable[i]
                .iter()
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect();
            prop_assert_eq!(dump(e, Cf::Raft), want);
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

//! Simulated durability: a simulated crash loses exactly the writes no sync point covered,
//! restores what they overwrote, and leaves the engine usable.

use std::collections::BTreeMap;

use engine::{Cf, Value};
use engine::{CrashLoss, Durability, Engine, EngineOptions, Engines, Error, WriteBatch};
use proptest::prelude::*;

type State = BTreeMap<(Cf, Vec<u8>), Vec<u8>>;

fn open_sim(dir: &tempfile::TempDir) -> Engine {
    Engine::open(dir.path(), Cf::KV_ENGINE, &EngineOptions::for_simulation()).unwrap()
}

/// Every pair of every column family.
fn dump(e: &Engine) -> State {
    let snap = e.snapshot().unwrap();
    let mut out = State::new();
    for &cf in Cf::KV_ENGINE {
        snap.scan_cf(cf, b"", None, |k, v| {
            out.insert((cf, k.to_vec()), v.to_vec());
            true
        })
        .unwrap();
    }
    out
}

fn get(e: &Engine, cf: Cf, key: &[u8]) -> Option<Vec<u8>> {
    e.get_cf(cf, key).unwrap().map(Vec::from)
}

fn put_sync(e: &Engine, cf: Cf, key: &[u8], value: &[u8]) {
    let mut wb = WriteBatch::new();
    wb.put_cf(cf, key, value).unwrap();
    e.write(wb, Durability::Sync).unwrap();
}

#[test]
fn options_keep_their_meaning() {
    assert!(!EngineOptions::default().simulated_durability);
    assert!(!EngineOptions::for_tests().simulated_durability);
    let sim = EngineOptions::for_simulation();
    let tests = EngineOptions::for_tests();
    assert!(sim.simulated_durability);
    assert_eq!(sim.cache_bytes, tests.cache_bytes);
    assert_eq!(sim.worker_threads, tests.worker_threads);
}

#[test]
fn buffered_writes_are_lost_and_synced_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_sim(&dir);
    assert!(e.is_simulated());
    put_sync(&e, Cf::Default, b"a", b"1");
    assert_eq!(e.unsynced_batches(), 0);
    e.put_cf(Cf::Default, b"b", b"2").unwrap();
    e.delete_cf(Cf::Default, b"a").unwrap();
    // Buffered writes are visible at once, as in a real engine.
    assert_eq!(get(&e, Cf::Default, b"a"), None);
    assert_eq!(get(&e, Cf::Default, b"b").as_deref(), Some(&b"2"[..]));
    assert_eq!(e.unsynced_batches(), 2);

    assert_eq!(e.simulate_crash().unwrap(), 2);
    assert_eq!(e.unsynced_batches(), 0);
    assert_eq!(get(&e, Cf::Default, b"a").as_deref(), Some(&b"1"[..]));
    assert_eq!(get(&e, Cf::Default, b"b"), None);
}

#[test]
fn sync_makes_earlier_buffered_writes_durable() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_sim(&dir);
    e.put_cf(Cf::Default, b"a", b"1").unwrap();
    e.put_cf(Cf::Lock, b"b", b"2").unwrap();
    e.sync().unwrap();
    assert_eq!(e.unsynced_batches(), 0);
    e.put_cf(Cf::Default, b"c", b"3").unwrap();
    e.put_cf(Cf::Default, b"a", b"overwritten").unwrap();

    assert_eq!(e.simulate_crash().unwrap(), 2);
    assert_eq!(get(&e, Cf::Default, b"a").as_deref(), Some(&b"1"[..]));
    assert_eq!(get(&e, Cf::Lock, b"b").as_deref(), Some(&b"2"[..]));
    assert_eq!(get(&e, Cf::Default, b"c"), None);
}

#[test]
fn a_sync_write_makes_earlier_buffered_writes_durable() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_sim(&dir);
    e.put_cf(Cf::Default, b"a", b"1").unwrap();
    e.put_cf(Cf::Write, b"b", b"2").unwrap();
    put_sync(&e, Cf::Raft, b"c", b"3");
    assert_eq!(e.unsynced_batches(), 0);
    assert_eq!(e.simulate_crash().unwrap(), 0);
    assert_eq!(get(&e, Cf::Default, b"a").as_deref(), Some(&b"1"[..]));
    assert_eq!(get(&e, Cf::Write, b"b").as_deref(), Some(&b"2"[..]));
    assert_eq!(get(&e, Cf::Raft, b"c").as_deref(), Some(&b"3"[..]));

    // An empty batch written with `Sync` is a sync point too.
    e.put_cf(Cf::Default, b"d", b"4").unwrap();
    e.write(WriteBatch::new(), Durability::Sync).unwrap();
    assert_eq!(e.unsynced_batches(), 0);
    // An empty buffered batch is not a batch at all.
    e.write(WriteBatch::new(), Durability::Buffered).unwrap();
    assert_eq!(e.unsynced_batches(), 0);
    assert_eq!(e.simulate_crash().unwrap(), 0);
    assert_eq!(get(&e, Cf::Default, b"d").as_deref(), Some(&b"4"[..]));
}

#[test]
fn overwrite_chains_restore_the_synced_value() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_sim(&dir);
    put_sync(&e, Cf::Default, b"a", b"1");
    e.put_cf(Cf::Default, b"a", b"2").unwrap();
    e.delete_cf(Cf::Default, b"a").unwrap();
    assert_eq!(get(&e, Cf::Default, b"a"), None);
    assert_eq!(e.simulate_crash().unwrap(), 2);
    assert_eq!(get(&e, Cf::Default, b"a").as_deref(), Some(&b"1"[..]));

    // A key that was absent at the sync point is absent again, however often it changed.
    e.put_cf(Cf::Default, b"n", b"1").unwrap();
    e.delete_cf(Cf::Default, b"n").unwrap();
    e.put_cf(Cf::Default, b"n", b"3").unwrap();
    assert_eq!(e.simulate_crash().unwrap(), 3);
    assert_eq!(get(&e, Cf::Default, b"n"), None);
    assert_eq!(get(&e, Cf::Default, b"a").as_deref(), Some(&b"1"[..]));
}

#[test]
fn a_batch_spanning_cfs_is_undone_whole() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_sim(&dir);
    put_sync(&e, Cf::Write, b"w", b"old");
    let before = dump(&e);

    let mut wb = WriteBatch::new();
    wb.put_cf(Cf::Default, b"k", b"d").unwrap();
    wb.put_cf(Cf::Lock, b"k", b"l").unwrap();
    wb.delete_cf(Cf::Write, b"w").unwrap();
    wb.put_cf(Cf::Raft, b"r", b"state").unwrap();
    e.write(wb, Durability::Buffered).unwrap();
    assert_ne!(dump(&e), before);
    assert_eq!(e.unsynced_batches(), 1);

    assert_eq!(e.simulate_crash().unwrap(), 1);
    assert_eq!(dump(&e), before);
}

#[test]
fn range_deletes_are_undone() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_sim(&dir);
    // More keys than one chunk of `delete_range_cf`, so it commits several batches.
    let mut wb = WriteBatch::new();
    for i in 0u32..5000 {
        wb.put_cf(Cf::Raft, &i.to_be_bytes(), &i.to_le_bytes())
            .unwrap();
    }
    e.write(wb, Durability::Sync).unwrap();
    let before = dump(&e);

    let n = e
        .delete_range_cf(
            Cf::Raft,
            &0u32.to_be_bytes(),
            &u32::MAX.to_be_bytes(),
            Durability::Buffered,
        )
        .unwrap();
    assert_eq!(n, 5000);
    assert!(dump(&e).is_empty());
    let lost = e.simulate_crash().unwrap();
    assert!(lost >= 2, "chunked into several batches, lost {lost}");
    assert_eq!(dump(&e), before);

    // A range delete inside a batch is undone with the rest of the batch.
    let mut wb = WriteBatch::new();
    let n = e
        .delete_range_to_batch(
            Cf::Raft,
            &10u32.to_be_bytes(),
            &20u32.to_be_bytes(),
            &mut wb,
        )
        .unwrap();
    assert_eq!(n, 10);
    wb.put_cf(Cf::Raft, &15u32.to_be_bytes(), b"new").unwrap();
    wb.put_cf(Cf::Default, b"x", b"y").unwrap();
    e.write(wb, Durability::Buffered).unwrap();
    assert_eq!(dump(&e).len(), 5000 - 10 + 2);
    assert_eq!(e.simulate_crash().unwrap(), 1);
    assert_eq!(dump(&e), before);

    // A synced range delete stays.
    e.delete_range_cf(
        Cf::Raft,
        &0u32.to_be_bytes(),
        &100u32.to_be_bytes(),
        Durability::Sync,
    )
    .unwrap();
    assert_eq!(e.simulate_crash().unwrap(), 0);
    assert_eq!(dump(&e).len(), 4900);
}

#[test]
fn repeated_ops_on_a_key_in_one_batch_restore_the_pre_batch_value() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_sim(&dir);
    put_sync(&e, Cf::Default, b"a", b"1");
    let before = dump(&e);

    let mut wb = WriteBatch::new();
    wb.put_cf(Cf::Default, b"a", b"2").unwrap();
    wb.delete_cf(Cf::Default, b"a").unwrap();
    wb.put_cf(Cf::Default, b"a", b"3").unwrap();
    wb.put_cf(Cf::Default, b"b", b"x").unwrap();
    wb.delete_cf(Cf::Default, b"b").unwrap();
    wb.put_cf(Cf::Lock, b"a", b"same key, other cf").unwrap();
    wb.delete_cf(Cf::Lock, b"a").unwrap();
    wb.put_cf(Cf::Lock, b"a", b"l").unwrap();
    e.write(wb, Durability::Buffered).unwrap();
    assert_eq!(get(&e, Cf::Default, b"a").as_deref(), Some(&b"3"[..]));
    assert_eq!(get(&e, Cf::Default, b"b"), None);
    assert_eq!(get(&e, Cf::Lock, b"a").as_deref(), Some(&b"l"[..]));

    assert_eq!(e.simulate_crash().unwrap(), 1);
    assert_eq!(dump(&e), before);
}

#[test]
fn crashing_a_normal_engine_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), Cf::KV_ENGINE, &EngineOptions::for_tests()).unwrap();
    assert!(!e.is_simulated());
    e.put_cf(Cf::Default, b"a", b"1").unwrap();
    assert_eq!(e.unsynced_batches(), 0);
    assert!(matches!(e.simulate_crash(), Err(Error::NotSimulated)));
    assert_eq!(get(&e, Cf::Default, b"a").as_deref(), Some(&b"1"[..]));

    let dir = tempfile::tempdir().unwrap();
    let engines = Engines::open(dir.path(), &EngineOptions::for_tests()).unwrap();
    assert!(matches!(engines.simulate_crash(), Err(Error::NotSimulated)));
}

#[test]
fn crashing_a_closed_engine_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_sim(&dir);
    e.put_cf(Cf::Default, b"a", b"1").unwrap();
    e.close().unwrap();
    assert_eq!(e.unsynced_batches(), 0, "close flushes everything");
    assert!(matches!(e.simulate_crash(), Err(Error::Closed)));
}

#[test]
fn a_second_crash_in_a_row_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_sim(&dir);
    put_sync(&e, Cf::Default, b"a", b"1");
    e.put_cf(Cf::Default, b"a", b"2").unwrap();
    assert_eq!(e.simulate_crash().unwrap(), 1);
    let after_first = dump(&e);
    assert_eq!(e.simulate_crash().unwrap(), 0);
    assert_eq!(dump(&e), after_first);
}

#[test]
fn the_engine_keeps_working_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_sim(&dir);
    put_sync(&e, Cf::Default, b"a", b"1");
    e.put_cf(Cf::Default, b"a", b"2").unwrap();
    assert_eq!(e.simulate_crash().unwrap(), 1);

    // New buffered writes build on the rolled-back state and can be lost again.
    e.put_cf(Cf::Default, b"b", b"1").unwrap();
    e.put_cf(Cf::Default, b"a", b"3").unwrap();
    assert_eq!(e.unsynced_batches(), 2);
    assert_eq!(e.simulate_crash().unwrap(), 2);
    assert_eq!(get(&e, Cf::Default, b"a").as_deref(), Some(&b"1"[..]));
    assert_eq!(get(&e, Cf::Default, b"b"), None);

    // Synced writes after a crash survive the next one.
    e.put_cf(Cf::Default, b"b", b"2").unwrap();
    e.sync().unwrap();
    e.put_cf(Cf::Default, b"c", b"lost").unwrap();
    assert_eq!(e.simulate_crash().unwrap(), 1);
    assert_eq!(get(&e, Cf::Default, b"b").as_deref(), Some(&b"2"[..]));
    assert_eq!(get(&e, Cf::Default, b"c"), None);

    // A clone of the handle shares the same journal.
    let clone = e.clone();
    clone.put_cf(Cf::Default, b"d", b"1").unwrap();
    assert_eq!(e.unsynced_batches(), 1);
    assert_eq!(e.simulate_crash().unwrap(), 1);
    assert_eq!(get(&clone, Cf::Default, b"d"), None);
}

#[test]
fn each_engine_of_a_store_loses_its_own_unsynced_tail() {
    let dir = tempfile::tempdir().unwrap();
    let engines = Engines::open(dir.path(), &EngineOptions::for_simulation()).unwrap();
    // kv buffers; a raft sync does not make kv durable (separate journals).
    engines.kv.put_cf(Cf::Default, b"k", b"v").unwrap();
    put_sync(&engines.raft, Cf::Raft, b"log", b"1");
    engines.raft.put_cf(Cf::Raft, b"log2", b"2").unwrap();
    engines.raft.put_cf(Cf::Raft, b"log3", b"3").unwrap();

    let loss = engines.simulate_crash().unwrap();
    assert_eq!(loss, CrashLoss { kv: 1, raft: 2 });
    assert_eq!(loss.total(), 3);
    assert_eq!(get(&engines.kv, Cf::Default, b"k"), None);
    assert_eq!(
        get(&engines.raft, Cf::Raft, b"log").as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(get(&engines.raft, Cf::Raft, b"log2"), None);

    // `Engines::sync` is a sync point for both.
    engines.kv.put_cf(Cf::Default, b"k", b"v").unwrap();
    engines.raft.put_cf(Cf::Raft, b"log2", b"2").unwrap();
    engines.sync().unwrap();
    assert_eq!(engines.simulate_crash().unwrap(), CrashLoss::default());
    assert_eq!(
        get(&engines.kv, Cf::Default, b"k").as_deref(),
        Some(&b"v"[..])
    );
}

/// Writers on several threads: every record is taken under the same lock as its commit, so
/// a crash still lands exactly on the synced state.
#[test]
fn concurrent_buffered_writers_roll_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_sim(&dir);
    for k in 0u8..8 {
        put_sync(&e, Cf::Default, &[k], b"synced");
    }
    let before = dump(&e);
    let threads: Vec<_> = (0u8..4)
        .map(|t| {
            let e = e.clone();
            std::thread::spawn(move || {
                for i in 0u32..200 {
                    let mut wb = WriteBatch::new();
                    let k = (i % 8) as u8;
                    if (i + u32::from(t)) % 3 == 0 {
                        wb.delete_cf(Cf::Default, &[k]).unwrap();
                    } else {
                        wb.put_cf(Cf::Default, &[k], &[t; 4]).unwrap();
                    }
                    wb.put_cf(Cf::Lock, &[k, t], &i.to_be_bytes()).unwrap();
                    e.write(wb, Durability::Buffered).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(e.unsynced_batches(), 800);
    assert_eq!(e.simulate_crash().unwrap(), 800);
    assert_eq!(dump(&e), before);
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Step {
    /// A batch of `(cf, key, Some(value) = put / None = delete)`.
    Batch {
        ops: Vec<(Cf, u8, Option<u8>)>,
        sync: bool,
    },
    /// `put_cf` / `delete_cf` (buffered).
    Single(Cf, u8, Option<u8>),
    Sync,
    Crash,
}

fn cf_strategy() -> impl Strategy<Value = Cf> {
    prop::sample::select(vec![Cf::Default, Cf::Write, Cf::Raft])
}

fn op_strategy() -> impl Strategy<Value = (Cf, u8, Option<u8>)> {
    (cf_strategy(), 0u8..4, prop::option::weighted(0.7, 0u8..8))
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (prop::collection::vec(op_strategy(), 0..5), prop::bool::weighted(0.25))
            .prop_map(|(ops, sync)| Step::Batch { ops, sync }),
        3 => op_strategy().prop_map(|(cf, k, v)| Step::Single(cf, k, v)),
        1 => Just(Step::Sync),
        1 => Just(Step::Crash),
    ]
}

fn key(k: u8) -> Vec<u8> {
    vec![b'k', k]
}

fn apply(model: &mut State, (cf, k, v): (Cf, u8, Option<u8>)) {
    match v {
        Some(v) => model.insert((cf, key(k)), vec![v]),
        None => model.remove(&(cf, key(k))),
    };
}

/// Random buffered/synced puts, deletes, syncs and crashes against a model that keeps the
/// current state and the durable state (the state at the last sync point).
#[test]
fn a_crash_lands_on_the_durable_state() {
    // Opening an engine takes a good fraction of a second, so every case reuses one engine,
    // emptied by a synced range delete first.
    let dir = tempfile::tempdir().unwrap();
    let e = open_sim(&dir);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    let strategy = prop::collection::vec(step_strategy(), 0..40);
    let result = runner.run(&strategy, |steps| {
        for &cf in Cf::KV_ENGINE {
            e.delete_range_cf(cf, b"\0", b"\xff", Durability::Sync)
                .unwrap();
        }
        prop_assert_eq!(e.unsynced_batches(), 0);
        prop_assert!(dump(&e).is_empty());
        run_steps(&e, steps)
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

fn run_steps(e: &Engine, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut current = State::new();
    let mut durable = State::new();
    let mut unsynced = 0usize;
    for step in steps {
        match step {
            Step::Batch { ops, sync } => {
                let mut wb = WriteBatch::new();
                for &(cf, k, v) in &ops {
                    match v {
                        Some(v) => wb.put_cf(cf, &key(k), &[v]).unwrap(),
                        None => wb.delete_cf(cf, &key(k)).unwrap(),
                    }
                    apply(&mut current, (cf, k, v));
                }
                if sync {
                    e.write(wb, Durability::Sync).unwrap();
                    durable = current.clone();
                    unsynced = 0;
                } else {
                    e.write(wb, Durability::Buffered).unwrap();
                    unsynced += usize::from(!ops.is_empty());
                }
            }
            Step::Single(cf, k, v) => {
                match v {
                    Some(v) => e.put_cf(cf, &key(k), &[v]).unwrap(),
                    None => e.delete_cf(cf, &key(k)).unwrap(),
                }
                apply(&mut current, (cf, k, v));
                unsynced += 1;
            }
            Step::Sync => {
                e.sync().unwrap();
                durable = current.clone();
                unsynced = 0;
            }
            Step::Crash => {
                prop_assert_eq!(e.simulate_crash().unwrap(), unsynced);
                current = durable.clone();
                unsynced = 0;
            }
        }
        prop_assert_eq!(e.unsynced_batches(), unsynced);
        prop_assert_eq!(&dump(e), &current);
    }
    prop_assert_eq!(e.simulate_crash().unwrap(), unsynced);
    prop_assert_eq!(&dump(e), &durable);
    Ok(())
}

/// `Value` stays usable as before (the mode changes nothing about reads).
#[test]
fn reads_in_simulated_mode_are_ordinary() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_sim(&dir);
    e.put_cf(Cf::Default, b"a", b"1").unwrap();
    let v: Value = e.get_cf(Cf::Default, b"a").unwrap().unwrap();
    assert_eq!(&*v, b"1");
    let snap = e.snapshot().unwrap();
    e.simulate_crash().unwrap();
    // A snapshot taken before the crash still sees the state it was taken of.
    assert_eq!(
        snap.get_cf(Cf::Default, b"a").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(e.get_cf(Cf::Default, b"a").unwrap(), None);
}

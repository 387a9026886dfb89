//! The wrapper's cost over raw fjall: batched puts, point gets and a full scan, measured
//! through `engine` and through fjall directly in the same run.
//!
//! Two parts: criterion measures each operation on both paths (its usual report), then an
//! interleaved comparison alternates short rounds of the two paths (so background load on the
//! machine hits both alike) and prints the median ratio `engine / raw` per operation
//! (1.00 = no overhead; the budget is 1.10).
//!
//! `cargo bench -p engine` (add `-- --quick` for a shorter criterion part).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use engine::{Cf, Durability, Engine, EngineOptions, WriteBatch};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};

const BATCH: u64 = 100;
const VALUE: usize = 100;
const PRELOAD: u64 = 50_000;
const ROUNDS: usize = 15;

fn key(i: u64) -> [u8; 8] {
    // Spread keys so that neighbours in insertion order are not neighbours on disk.
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes()
}

/// Both paths over identical data: reads use `default`; puts go to `lock`, so the read data
/// stays the same size on both sides however many puts each side ran.
struct Setup {
    ours: Engine,
    raw_db: Database,
    raw_default: Keyspace,
    raw_lock: Keyspace,
    value: Vec<u8>,
    next_put: u64,
    next_raw_put: u64,
    get_cursor: u64,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Setup {
    fn new() -> Setup {
        let opts = EngineOptions::default();
        let dirs = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        let ours = Engine::open(dirs.0.path(), Cf::DATA, &opts).expect("open engine");
        let raw_db = Database::builder(dirs.1.path())
            .cache_size(opts.cache_bytes)
            .worker_threads(opts.worker_threads)
            .open()
            .expect("open raw fjall");
        let raw_default = raw_db
            .keyspace("default", KeyspaceCreateOptions::default)
            .expect("keyspace");
        let raw_lock = raw_db
            .keyspace("lock", KeyspaceCreateOptions::default)
            .expect("keyspace");
        let value = vec![0xABu8; VALUE];
        for chunk in 0..PRELOAD / BATCH {
            let mut wb = WriteBatch::with_capacity(BATCH as usize);
            let mut rb = raw_db.batch().durability(Some(PersistMode::Buffer));
            for j in 0..BATCH {
                let k = key(chunk * BATCH + j);
                wb.put_cf(Cf::Default, &k, &value).expect("put");
                rb.insert(&raw_default, k, value.as_slice());
            }
            ours.write(wb, Durability::Buffered).expect("write");
            rb.commit().expect("commit");
        }
        Setup {
            ours,
            raw_db,
            raw_default,
            raw_lock,
            value,
            next_put: 0,
            next_raw_put: 0,
            get_cursor: 0,
            _dirs: dirs,
        }
    }

    fn put_ours(&mut self) {
        let mut wb = WriteBatch::with_capacity(BATCH as usize);
        for _ in 0..BATCH {
            wb.put_cf(Cf::Lock, &key(self.next_put), &self.value)
                .expect("put");
            self.next_put += 1;
        }
        self.ours.write(wb, Durability::Buffered).expect("write");
    }

    fn put_raw(&mut self) {
        let mut rb = self.raw_db.batch().durability(Some(PersistMode::Buffer));
        for _ in 0..BATCH {
            rb.insert(
                &self.raw_lock,
                key(self.next_raw_put),
                self.value.as_slice(),
            );
            self.next_raw_put += 1;
        }
        rb.commit().expect("commit");
    }

    fn next_get_key(&mut self) -> [u8; 8] {
        self.get_cursor = (self.get_cursor + 7919) % PRELOAD;
        key(self.get_cursor)
    }

    fn get_ours(&mut self) {
        let k = self.next_get_key();
        black_box(self.ours.get_cf(Cf::Default, &k).expect("get"));
    }

    fn get_raw(&mut self) {
        let k = self.next_get_key();
        black_box(self.raw_default.get(k).expect("get"));
    }

    fn scan_ours(&mut self) {
        let mut n = 0usize;
        let mut it = self.ours.iter_cf(Cf::Default, b"", None).expect("iter");
        it.seek_to_first();
        while let Some((k, v)) = it.item() {
            n += k.len() + v.len();
            it.next();
        }
        black_box(n);
    }

    fn scan_raw(&mut self) {
        let mut n = 0usize;
        let snap = self.raw_db.snapshot();
        for guard in snap.iter(&self.raw_default) {
            let (k, v) = guard.into_inner().expect("read");
            n += k.len() + v.len();
        }
        black_box(n);
    }
}

type Op = fn(&mut Setup);

const OPS: [(&str, Op, Op, u32); 3] = [
    (
        "batched put (100 x 100 B)",
        Setup::put_ours,
        Setup::put_raw,
        200,
    ),
    ("point get", Setup::get_ours, Setup::get_raw, 20_000),
    ("full scan (50k keys)", Setup::scan_ours, Setup::scan_raw, 3),
];

fn time(s: &mut Setup, op: Op, n: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        op(s);
    }
    start.elapsed()
}

fn main() {
    let mut s = Setup::new();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    for (name, ours, raw, _) in OPS {
        let mut g = c.benchmark_group(name);
        g.bench_function("engine", |b| b.iter(|| ours(&mut s)));
        g.bench_function("raw_fjall", |b| b.iter(|| raw(&mut s)));
        g.finish();
    }
    c.final_summary();

    println!("\nengine / raw fjall, median of {ROUNDS} interleaved rounds (budget: ≤ 1.10)");
    for (name, ours, raw, n) in OPS {
        let mut ratios = Vec::with_capacity(ROUNDS);
        let (mut t_ours, mut t_raw) = (Duration::ZERO, Duration::ZERO);
        for round in 0..ROUNDS {
            // Alternate which side goes first so neither always gets the warmer cache.
            let (a, b) = if round % 2 == 0 {
                let a = time(&mut s, ours, n);
                (a, time(&mut s, raw, n))
            } else {
                let b = time(&mut s, raw, n);
                (time(&mut s, ours, n), b)
            };
            t_ours += a;
            t_raw += b;
            ratios.push(a.as_secs_f64() / b.as_secs_f64());
        }
        ratios.sort_by(f64::total_cmp);
        let per_op = |t: Duration| t.as_secs_f64() * 1e6 / f64::from(n) / ROUNDS as f64;
        println!(
            "  {name:<26} engine {:>10.2} µs/op   raw {:>10.2} µs/op   ratio {:.3}",
            per_op(t_ours),
            per_op(t_raw),
            ratios[ROUNDS / 2]
        );
    }
}

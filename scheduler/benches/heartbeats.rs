//! Region heartbeat throughput and the cost of one balance pass.
//!
//! Setup: 5 stores, 10,000 regions of 3 peers each, all known to the scheduler. One iteration
//! feeds 100,000 heartbeats over those regions (most unchanged, some with a new leader, a new
//! size, a pending peer, or a conf change that moves a replica), on a fresh scheduler each
//! time so every iteration does the same work. Three levels are measured in the same run:
//! - `baseline`: cloning each heartbeat's region into a hash map by id (the floor: what any
//!   cache of heartbeats must pay);
//! - `process_region_heartbeat`: the cluster model alone (stale checks, range index,
//!   per-store indexes, store statuses);
//! - `service`: the whole request path (validation, the model, operator dispatch).
//!
//! A summary line prints heartbeats/s of each and their ratio to the baseline; the goal is at
//! least 200,000 heartbeats/s through the service on a 2-core machine.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use proto::metapb::{Peer, Region, Store};
use proto::schedulerpb::{RegionHeartbeatRequest, StoreStats};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scheduler::core::RegionInfo;
use scheduler::schedulers::BalanceRegionScheduler;
use scheduler::{ScheduleConfig, SchedulerService};

const STORES: u64 = 5;
const REGIONS: u64 = 10_000;
const HEARTBEATS: usize = 100_000;
/// Ids below this are taken by the fixture (regions 1..=REGIONS, then peers).
const FIRST_FREE_ID: u64 = 1_000_000;

fn key(i: u64) -> Vec<u8> {
    format!("k{i:08}").into_bytes()
}

/// The fixture's regions: region i covers [key(i), key(i+1)) with peers on three
/// consecutive stores of the first `spread`; the first and last are unbounded on their open
/// side.
fn regions(spread: u64) -> Vec<RegionHeartbeatRequest> {
    (1..=REGIONS)
        .map(|id| {
            let mut r = Region::new();
            r.id = id;
            if id > 1 {
                r.start_key = key(id);
            }
            if id < REGIONS {
                r.end_key = key(id + 1);
            }
            r.mut_region_epoch().conf_ver = 1;
            r.mut_region_epoch().version = 1;
            for k in 0..3 {
                let mut p = Peer::new();
                p.store_id = (id + k) % spread + 1;
                p.id = REGIONS + id * 3 + k;
                r.peers.push(p);
            }
            let mut req = RegionHeartbeatRequest::new();
            req.set_leader(r.peers[0].clone());
            req.set_region(r);
            req.approximate_size = 1 << 20;
            req
        })
        .collect()
}

/// The heartbeat stream: a seeded mix of repeats and changes, applied to a running copy of
/// each region so every heartbeat is one a store could send.
fn heartbeats(base: &[RegionHeartbeatRequest]) -> Vec<RegionHeartbeatRequest> {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut state = base.to_vec();
    let mut next_peer = FIRST_FREE_ID / 2;
    (0..HEARTBEATS)
        .map(|i| {
            let n = state.len();
            let hb = &mut state[i % n];
            match rng.gen_range(0..100) {
                0..=69 => {}
                70..=79 => {
                    let peers = hb.get_region().peers.clone();
                    hb.set_leader(peers[rng.gen_range(0..peers.len())].clone());
                }
                80..=89 => hb.approximate_size = rng.gen_range(1..200) << 20,
                90..=94 => {
                    hb.pending_peers.clear();
                    let p = hb.get_region().peers[1].clone();
                    if rng.gen_bool(0.5) {
                        hb.pending_peers.push(p);
                    }
                }
                _ => {
                    // Move the last replica to the store that holds none.
                    let r = hb.mut_region();
                    let used: Vec<u64> = r.peers.iter().map(|p| p.store_id).collect();
                    let free = (1..=STORES).find(|s| !used.contains(s)).unwrap_or(1);
                    let last = r.peers.len() - 1;
                    r.peers[last].store_id = free;
                    r.peers[last].id = next_peer;
                    next_peer += 1;
                    r.mut_region_epoch().conf_ver += 2;
                    hb.pending_peers.clear();
                    if !hb.get_region().peers.contains(hb.get_leader()) {
                        let first = hb.get_region().peers[0].clone();
                        hb.set_leader(first);
                    }
                }
            }
            hb.clone()
        })
        .collect()
}

fn loaded_service(base: &[RegionHeartbeatRequest]) -> SchedulerService {
    let s = SchedulerService::new(1, FIRST_FREE_ID, ScheduleConfig::default(), 7);
    for id in 1..=STORES {
        let mut st = Store::new();
        st.id = id;
        s.put_store(st).expect("store");
        let mut stats = StoreStats::new();
        stats.store_id = id;
        s.store_heartbeat(&stats, Duration::ZERO)
            .expect("store heartbeat");
    }
    for req in base {
        s.region_heartbeat(req, Duration::ZERO)
            .expect("fixture heartbeat");
    }
    s
}

fn bench(c: &mut Criterion) {
    let base = regions(STORES);
    let stream = heartbeats(&base);
    let mut g = c.benchmark_group("region_heartbeats");
    g.sample_size(10);
    g.throughput(Throughput::Elements(HEARTBEATS as u64));
    g.bench_function("baseline_hashmap_clone", |b| {
        b.iter_batched(
            HashMap::new,
            |mut m: HashMap<u64, Region>| {
                for req in &stream {
                    m.insert(req.get_region().id, req.get_region().clone());
                }
                m
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("process_region_heartbeat", |b| {
        b.iter_batched(
            || loaded_service(&base),
            |s| {
                for req in &stream {
                    let _ = black_box(
                        s.cluster()
                            .process_region_heartbeat(RegionInfo::from_heartbeat(req)),
                    );
                }
                s
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("service", |b| {
        b.iter_batched(
            || loaded_service(&base),
            |s| {
                for req in &stream {
                    let _ = black_box(s.region_heartbeat(req, Duration::from_secs(1)));
                }
                s
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();

    // One balance pass: on the balanced fixture (every source is tried, nothing is worth
    // moving) and on one whose regions all live on stores 1-3 (a move is found and built).
    let balanced = loaded_service(&base);
    let skewed = loaded_service(&regions(3));
    let mut g = c.benchmark_group("balance_region");
    for (name, svc) in [
        ("balanced_no_move", &balanced),
        ("skewed_finds_a_move", &skewed),
    ] {
        g.bench_function(name, |b| {
            let mut sched = BalanceRegionScheduler::new(1);
            b.iter(|| {
                let op = sched.schedule(svc.cluster(), Duration::ZERO);
                assert_eq!(op.is_some(), name == "skewed_finds_a_move", "{name}");
                black_box(op)
            })
        });
    }
    g.finish();

    summary(&base, &stream);
}

/// Heartbeats/s of each level, best of 5 runs, and the ratio to the baseline.
fn summary(base: &[RegionHeartbeatRequest], stream: &[RegionHeartbeatRequest]) {
    let best = |f: &mut dyn FnMut() -> Duration| (0..5).map(|_| f()).min().unwrap_or_default();
    let baseline = best(&mut || {
        let mut m = HashMap::new();
        let t = Instant::now();
        for req in stream {
            m.insert(req.get_region().id, req.get_region().clone());
        }
        black_box(&m);
        t.elapsed()
    });
    let model = best(&mut || {
        let s = loaded_service(base);
        let t = Instant::now();
        for req in stream {
            let _ = black_box(
                s.cluster()
                    .process_region_heartbeat(RegionInfo::from_heartbeat(req)),
            );
        }
        t.elapsed()
    });
    let service = best(&mut || {
        let s = loaded_service(base);
        let t = Instant::now();
        for req in stream {
            let _ = black_box(s.region_heartbeat(req, Duration::from_secs(1)));
        }
        t.elapsed()
    });
    let rate = |d: Duration| HEARTBEATS as f64 / d.as_secs_f64();
    println!(
        "summary: baseline {:.0} hb/s; process_region_heartbeat {:.0} hb/s ({:.2}x baseline time); service {:.0} hb/s ({:.2}x baseline time); goal >= 200000 hb/s through the service",
        rate(baseline),
        rate(model),
        model.as_secs_f64() / baseline.as_secs_f64(),
        rate(service),
        service.as_secs_f64() / baseline.as_secs_f64(),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);

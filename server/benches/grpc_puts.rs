//! Raw puts/s through the TinyKv gRPC service on loopback: three stores of a
//! [`node::LocalCluster`] on real disks, the leader's store served by `TinyKvService` over
//! `RaftStorage`, clients calling `RawPut` with the region's context. Beside it, in the same
//! run, the same puts handed to the leader's store directly (no gRPC), so the ratio is the
//! cost of the RPC layer; and raw puts through `ClusterClient` to a cluster of real
//! processes (`tinykv-scheduler` and three `tinykv-server`s, raft between them over gRPC
//! too), the whole deployed path.
//!
//! `cargo bench -p server --bench grpc_puts` (add `-- --secs 5` for longer runs).

fn main() {
    // lab:needs 2aa..3c
    run();
    // lab:end-needs
}

// lab:needs 2aa..3c
#[path = "../tests/support/procs.rs"]
#[allow(dead_code)]
mod procs;

use std::sync::Arc;
use std::time::{Duration, Instant};

use node::{ClusterOptions, LocalCluster};
use proto::kvrpcpb::{Context, RawPutRequest};
use server::grpc::{ClientConfig, GrpcServer, StopSource, TinyKvClient, TinyKvService};
use server::{RaftStorage, Server};

const VALUE: usize = 128;

fn run() {
    let secs = std::env::args()
        .skip_while(|a| a != "--secs")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3u64);
    let run = Duration::from_secs(secs);
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = LocalCluster::bootstrap(dir.path(), ClusterOptions::new(3)).expect("cluster");
    cluster.client().put(b"warm", b"up").expect("first put");
    let (region, leader) = cluster
        .scheduler()
        .service()
        .get_region(b"k")
        .expect("the region");
    let leader = leader.expect("a leader");
    let mut ctx = Context::new();
    ctx.region_id = region.id;
    ctx.set_region_epoch(region.get_region_epoch().clone());
    ctx.set_peer(leader.clone());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let storage = RaftStorage::new(cluster.router().clone(), leader.store_id);
    let stop = StopSource::new();
    let svc = TinyKvService::new(
        Arc::new(Server::new(storage.clone())),
        Arc::new(cluster.router().clone()),
        stop.token(),
    );
    let server = {
        let _rt = rt.enter();
        GrpcServer::start(
            "127.0.0.1:0".parse().expect("addr"),
            svc.into_server(),
            stop,
        )
        .expect("server")
    };
    let addr = server.addr().to_string();
    println!("raw puts of {VALUE} B, 3 stores on the real disk, {secs} s per measurement\n");
    println!(
        "{:>8} {:>16} {:>16} {:>7} {:>20}",
        "clients", "direct puts/s", "gRPC puts/s", "ratio", "gRPC p50/p99 (put)"
    );
    for clients in [1usize, 16] {
        let direct = measure(clients, run, |t| {
            let (storage, ctx) = (storage.clone(), ctx.clone());
            move |i: u64| {
                use server::storage::{Modify, Storage as _};
                let put = Modify::Put {
                    cf: engine::Cf::Default,
                    key: format!("d{t}-{i}").into_bytes(),
                    value: vec![7; VALUE],
                };
                storage.write(&ctx, vec![put]).is_ok()
            }
        });
        let grpc = measure(clients, run, |t| {
            let kv = TinyKvClient::connect_on(rt.handle().clone(), &addr, ClientConfig::default())
                .expect("client");
            let ctx = ctx.clone();
            move |i: u64| {
                let mut req = RawPutRequest::new();
                req.set_context(ctx.clone());
                req.cf = "default".into();
                req.key = format!("g{t}-{i}").into_bytes();
                req.value = vec![7; VALUE];
                kv.send_raw_put(req)
                    .is_ok_and(|r| !r.has_region_error() && r.error.is_empty())
            }
        });
        println!(
            "{:>8} {:>16.0} {:>16.0} {:>6.2}x {:>9.2} / {:>6.2} ms",
            clients,
            direct.0,
            grpc.0,
            grpc.0 / direct.0,
            grpc.1.as_secs_f64() * 1e3,
            grpc.2.as_secs_f64() * 1e3
        );
    }
    rt.block_on(server.stop()).expect("stop");
    drop(cluster);

    // The deployed path: real processes, raft over gRPC between them, a routing client.
    let procs = procs::Cluster::start(&["--no-balance"], false);
    let admin = procs::client(&procs.scheduler);
    procs::wait_until(&procs, "the region on three stores", || {
        admin.put("default", b"warm", b"up").is_ok()
            && admin
                .region(b"k")
                .ok()
                .flatten()
                .is_some_and(|(r, _)| r.get_peers().len() == 3)
    });
    println!("\nthrough tinykv-server processes (ClusterClient, 3 stores, raft over gRPC)");
    println!("{:>8} {:>16} {:>20}", "clients", "puts/s", "p50/p99 (put)");
    for clients in [1usize, 16] {
        let (rate, p50, p99) = measure(clients, run, |t| {
            let kv = procs::client(&procs.scheduler);
            move |i: u64| {
                kv.put("default", format!("p{t}-{i}").as_bytes(), &[7; VALUE])
                    .is_ok()
            }
        });
        println!(
            "{:>8} {:>16.0} {:>9.2} / {:>6.2} ms",
            clients,
            rate,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
}

/// `clients` threads each running `make(t)`'s put in a loop for `run`: puts/s, p50, p99.
fn measure<F, P>(clients: usize, run: Duration, make: F) -> (f64, Duration, Duration)
where
    F: Fn(usize) -> P,
    P: FnMut(u64) -> bool + Send + 'static,
{
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|t| {
            let mut put = make(t);
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut i = 0u64;
                while start.elapsed() < run {
                    i += 1;
                    let at = Instant::now();
                    if put(i) {
                        lat.push(at.elapsed());
                    }
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client thread"))
        .collect();
    let elapsed = start.elapsed();
    lat.sort();
    let at = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1))];
    (lat.len() as f64 / elapsed.as_secs_f64(), at(0.5), at(0.99))
}
// lab:end-needs

//! `tinykv-server`: one store of a tinykv-rs cluster, served over gRPC.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use server::cli;
use server::grpc::{
    ClientConfig, GrpcSchedulerClient, GrpcServer, GrpcTransport, SchedulerConn, StopSource,
    TinyKvService, TransportConfig,
};
use server::{RaftStorage, Server};

/// One store of a tinykv-rs cluster: its raft groups on two local engines, the TinyKv gRPC
/// service (raw get/put/delete/scan through raft, and the Raft and Snapshot streams between
/// stores), and its heartbeats to the scheduler. The first store of a new cluster bootstraps
/// it; the scheduler grows regions onto the stores that join later. Log levels come from
/// RUST_LOG (default `info`).
#[derive(Debug, Parser)]
#[command(name = "tinykv-server", version)]
struct Args {
    /// This store's id, unique in the cluster and below 1000 (the scheduler allocates the
    /// ids above). A restart must use the same id over the same --path.
    #[arg(long)]
    store_id: u64,
    /// Address to serve the TinyKv gRPC service on (other stores and clients dial it, unless
    /// --advertise-addr says otherwise).
    #[arg(long, default_value = "127.0.0.1:20160")]
    addr: String,
    /// The address other stores and clients are told to dial (default: --addr), when they
    /// reach this store through a proxy or a NAT.
    #[arg(long)]
    advertise_addr: Option<String>,
    /// The scheduler's address.
    #[arg(long, default_value = "127.0.0.1:2379")]
    scheduler: String,
    /// The store's data directory (default: /tmp/tinykv/store-<store-id>).
    #[arg(long)]
    path: Option<PathBuf>,
    /// The raft base tick in milliseconds (heartbeats every 2 ticks, elections after 10 to
    /// 19).
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
    /// How long to keep dialling a scheduler that does not answer yet, in seconds, before
    /// giving up (0: try once). Servers and the scheduler may start in any order.
    #[arg(long, default_value_t = 30)]
    scheduler_wait: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging("info");
    cli::exit("tinykv-server", run(&args))
}

fn run(args: &Args) -> Result<(), String> {
    if args.store_id == 0 || args.store_id >= 1000 {
        return Err(format!(
            "--store-id {} is out of range: use 1 to 999",
            args.store_id
        ));
    }
    if args.tick_ms == 0 {
        return Err("--tick-ms must be positive".into());
    }
    let addr = cli::listen_addr("--addr", &args.addr)?;
    let path = args
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/tinykv/store-{}", args.store_id)));
    let rt = cli::runtime()?;
    let conn = rt.block_on(connect_scheduler(
        &args.scheduler,
        Duration::from_secs(args.scheduler_wait),
    ))?;
    let router = node::Router::new();
    let storage = RaftStorage::new(router.clone(), args.store_id);
    let stop = StopSource::new();
    let kv = TinyKvService::new(
        Arc::new(Server::new(storage)),
        Arc::new(router.clone()),
        stop.token(),
    );
    let _enter = rt.enter();
    let grpc = GrpcServer::start(addr, kv.into_server(), stop).map_err(|e| e.to_string())?;
    let advertise = match &args.advertise_addr {
        // Checked, but advertised as given (a host name stays a host name).
        Some(a) => cli::listen_addr("--advertise-addr", a).map(|_| a.clone())?,
        None => grpc.addr().to_string(),
    };
    let mut nc = node::NodeConfig::new(conn.cluster_id(), args.store_id, &advertise, path);
    nc.cfg = config(args.tick_ms, args.store_id);
    let transport = GrpcTransport::new(
        args.store_id,
        rt.handle().clone(),
        Arc::new(conn.clone()),
        Arc::new(router.clone()),
        TransportConfig::default(),
    );
    let scheduler = GrpcSchedulerClient::new(
        conn,
        rt.handle().clone(),
        args.store_id,
        Arc::new(router.clone()),
    );
    let mut boot = scheduler.clone();
    let _store = node::start_node(
        &nc,
        &mut boot,
        &router,
        Box::new(transport),
        Box::new(scheduler),
    )
    .map_err(|e| format!("store {} cannot start: {e}", args.store_id))?;
    tracing::info!(
        "store {} of cluster {} serving on {} (advertised as {}) over {}",
        nc.store_id,
        nc.cluster_id,
        grpc.addr(),
        advertise,
        nc.data_dir.display()
    );
    eprintln!(
        "tinykv-server: store {} serving on {} ({})",
        nc.store_id,
        grpc.addr(),
        nc.data_dir.display()
    );
    cli::park_forever()
}

/// Dials the scheduler until it answers or `wait` has passed, so a cluster's processes may
/// start in any order (the original's scheduler client retries its first connection too).
async fn connect_scheduler(addr: &str, wait: Duration) -> Result<SchedulerConn, String> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut warned = false;
    loop {
        match SchedulerConn::connect(addr, ClientConfig::default()).await {
            Ok(conn) => return Ok(conn),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                let waited = if wait.is_zero() {
                    String::new()
                } else {
                    format!(" after {} s", wait.as_secs())
                };
                return Err(format!("cannot reach the scheduler{waited}: {e}"));
            }
            Err(e) => {
                if !warned {
                    tracing::warn!("the scheduler at {addr} does not answer yet ({e}); retrying");
                    warned = true;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// The test configuration's intervals (scheduler heartbeats every 100 ms, ...) over a base
/// tick of `tick_ms`, none shorter than the tick.
fn config(tick_ms: u64, store_id: u64) -> raftstore::Config {
    let mut cfg = raftstore::Config::test();
    let tick = Duration::from_millis(tick_ms);
    cfg.raft_base_tick = tick;
    for interval in [
        &mut cfg.scheduler_heartbeat_interval,
        &mut cfg.scheduler_store_heartbeat_interval,
        &mut cfg.kv_sync_interval,
        &mut cfg.raft_log_gc_tick_interval,
        &mut cfg.split_region_check_tick_interval,
        &mut cfg.snap_receive_timeout,
    ] {
        *interval = (*interval).max(tick);
    }
    cfg.seed = store_id;
    cfg
}

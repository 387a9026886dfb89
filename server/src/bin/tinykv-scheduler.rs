//! `tinykv-scheduler`: the placement driver of a tinykv-rs cluster, served over gRPC.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use scheduler::{ScheduleConfig, SchedulerService};
use server::cli;
use server::grpc::{GrpcServer, SchedulerGrpc, StopSource};
use server::scheduler_meta::FileMeta;

/// The placement driver of a tinykv-rs cluster: it allocates ids, knows every store and
/// region from their heartbeats, and moves replicas (the replica checker and balance-region).
/// What it must remember across a restart lives in --data-dir. Log levels come from
/// RUST_LOG (default `info`).
#[derive(Debug, Parser)]
#[command(name = "tinykv-scheduler", version)]
struct Args {
    /// Address to serve the Scheduler gRPC service on.
    #[arg(long, default_value = "127.0.0.1:2379")]
    addr: String,
    /// The cluster's id (stores check it at every call).
    #[arg(long, default_value_t = 1)]
    cluster_id: u64,
    /// Replicas per region.
    #[arg(long, default_value_t = 3)]
    max_replicas: usize,
    /// Do not move replicas between stores to balance them (the replica checker still runs).
    #[arg(long)]
    no_balance: bool,
    /// Where the scheduler keeps what it must not forget across a restart (the bootstrap,
    /// the stores, how far its ids got); regions come back with the stores' heartbeats.
    #[arg(long, default_value = "/tmp/tinykv/scheduler")]
    data_dir: PathBuf,
    /// Do not add missing replicas or remove extra ones: regions keep the peers they have
    /// until an administrator changes them (tinykv-ctl add-peer / remove-peer).
    #[arg(long)]
    no_replica_checker: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging("info");
    cli::exit("tinykv-scheduler", run(&args))
}

fn run(args: &Args) -> Result<(), String> {
    let addr = cli::listen_addr("--addr", &args.addr)?;
    let rt = cli::runtime()?;
    let opts = ScheduleConfig {
        max_replicas: args.max_replicas,
        enable_balance_region: !args.no_balance,
        enable_replica_checker: !args.no_replica_checker,
        ..ScheduleConfig::default()
    };
    // Ids below 1000 are left to the stores' --store-id flags.
    let (meta, saved) =
        FileMeta::open(&args.data_dir, args.cluster_id).map_err(|e| e.to_string())?;
    if saved.bootstrapped {
        tracing::info!(
            "cluster {} restarts from {} with {} stores",
            args.cluster_id,
            args.data_dir.display(),
            saved.stores.len()
        );
    }
    let svc = Arc::new(
        SchedulerService::new(args.cluster_id, 1000, opts, seed()).with_meta(saved, Arc::new(meta)),
    );
    let stop = StopSource::new();
    let grpc = SchedulerGrpc::new(svc, stop.token());
    let _enter = rt.enter();
    let _ticker = grpc
        .start_ticker(Duration::from_millis(100))
        .map_err(|e| e.to_string())?;
    let server = GrpcServer::start(addr, grpc.into_server(), stop).map_err(|e| e.to_string())?;
    tracing::info!(
        "scheduler of cluster {} serving on {}",
        args.cluster_id,
        server.addr()
    );
    eprintln!(
        "tinykv-scheduler: cluster {} serving on {}",
        args.cluster_id,
        server.addr()
    );
    cli::park_forever()
}

/// The balance scheduler's random choices differ from run to run.
fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

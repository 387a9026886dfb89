//! `tinykv-ctl`: talk to a running tinykv-rs cluster.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use server::grpc::{ClientConfig, ClusterClient};

/// Talk to a running tinykv-rs cluster through its scheduler: raw reads and writes (routed to
/// each key's region leader, retried on region errors), and what the scheduler knows of
/// regions and stores. Keys and values are taken as UTF-8 text.
#[derive(Debug, Parser)]
#[command(name = "tinykv-ctl", version)]
struct Args {
    /// The scheduler's address.
    #[arg(long, default_value = "127.0.0.1:2379", global = true)]
    scheduler: String,
    /// Give up on a command after this many seconds.
    #[arg(long, default_value_t = 10, global = true)]
    timeout: u64,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print the value of KEY (exit status 1 if absent).
    Get {
        key: String,
        #[arg(long, default_value = "default")]
        cf: String,
    },
    /// Set KEY to VALUE.
    Put {
        key: String,
        value: String,
        #[arg(long, default_value = "default")]
        cf: String,
    },
    /// Remove KEY.
    Delete {
        key: String,
        #[arg(long, default_value = "default")]
        cf: String,
    },
    /// Print up to LIMIT pairs from START on, across regions.
    Scan {
        #[arg(default_value = "")]
        start: String,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long, default_value = "default")]
        cf: String,
    },
    /// Print the region holding KEY and its leader.
    Region { key: String },
    /// Print store ID (or every store).
    Store { id: Option<u64> },
}

fn main() -> ExitCode {
    let args = Args::parse();
    server::cli::init_logging("warn");
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tinykv-ctl: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<ExitCode, String> {
    let cfg = ClientConfig {
        request_timeout: Duration::from_secs(args.timeout),
        ..ClientConfig::default()
    };
    let client = ClusterClient::connect(&args.scheduler, cfg)
        .map_err(|e| format!("cannot reach the scheduler at {}: {e}", args.scheduler))?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match args.cmd {
        Cmd::Get { key, cf } => match client.get(&cf, key.as_bytes()).map_err(|e| e.to_string())? {
            Some(v) => println!("{}", text(&v)),
            None => {
                eprintln!("{key}: not found");
                return Ok(ExitCode::from(1));
            }
        },
        Cmd::Put { key, value, cf } => client
            .put(&cf, key.as_bytes(), value.as_bytes())
            .map_err(|e| e.to_string())?,
        Cmd::Delete { key, cf } => client
            .delete(&cf, key.as_bytes())
            .map_err(|e| e.to_string())?,
        Cmd::Scan { start, limit, cf } => {
            for (k, v) in client
                .scan(&cf, start.as_bytes(), limit)
                .map_err(|e| e.to_string())?
            {
                println!("{}\t{}", text(&k), text(&v));
            }
        }
        Cmd::Region { key } => match client.region(key.as_bytes()).map_err(|e| e.to_string())? {
            Some((region, leader)) => {
                let e = region.get_region_epoch();
                println!(
                    "region {} [{:?}, {:?}) epoch conf_ver {} version {}",
                    region.id,
                    text(&region.start_key),
                    text(&region.end_key),
                    e.conf_ver,
                    e.version
                );
                for p in region.get_peers() {
                    let lead = leader.as_ref().is_some_and(|l| l.id == p.id);
                    println!(
                        "  peer {} on store {}{}",
                        p.id,
                        p.store_id,
                        if lead { " (leader)" } else { "" }
                    );
                }
            }
            None => {
                eprintln!("no region known for {key:?}");
                return Ok(ExitCode::from(1));
            }
        },
        Cmd::Store { id } => {
            let stores = match id {
                Some(id) => vec![client.store(id).map_err(|e| e.to_string())?],
                None => client.stores().map_err(|e| e.to_string())?,
            };
            for s in stores {
                println!("store {} at {} ({:?})", s.id, s.address, s.get_state());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

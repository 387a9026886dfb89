//! `tinykv-ctl`: talk to a running tinykv-rs cluster.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use proto::adminpb::OperatorKind;
use proto::metapb;
use server::grpc::{ClientConfig, ClusterClient};

/// Talk to a running tinykv-rs cluster through its scheduler: raw reads and writes (routed to
/// each key's region leader, retried on region errors), what the scheduler knows of regions
/// and stores, and administration (leader transfer, adding and removing peers through the
/// scheduler's operators, a split at a chosen key). Keys and values are taken as UTF-8 text.
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
    /// Print the region holding KEY (or region --id ID) and its leader.
    Region {
        #[arg(required_unless_present = "id")]
        key: Option<String>,
        #[arg(long, conflicts_with = "key")]
        id: Option<u64>,
    },
    /// Print store ID (or every store).
    Store { id: Option<u64> },
    /// Make the peer of region REGION on store STORE its leader, and wait until it leads.
    TransferLeader { region: u64, store: u64 },
    /// Add a peer of region REGION on store STORE, and wait until it is a member.
    AddPeer { region: u64, store: u64 },
    /// Remove the peer of region REGION on store STORE, and wait until it is gone.
    RemovePeer { region: u64, store: u64 },
    /// Split the region holding KEY at KEY (KEY starts the new region); print both.
    Split { key: String },
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
        Cmd::Region { key, id } => {
            let found = match (&key, id) {
                (_, Some(id)) => client.region_by_id(id),
                (Some(key), None) => client.region(key.as_bytes()),
                (None, None) => return Err("give a key or --id".into()),
            }
            .map_err(|e| e.to_string())?;
            match found {
                Some((region, leader)) => print_region(&region, leader.as_ref()),
                None => {
                    match (key, id) {
                        (_, Some(id)) => eprintln!("no region {id} known"),
                        (key, None) => eprintln!("no region known for {key:?}"),
                    }
                    return Ok(ExitCode::from(1));
                }
            }
        }
        Cmd::Store { id } => {
            let stores = match id {
                Some(id) => vec![client.store(id).map_err(|e| e.to_string())?],
                None => client.stores().map_err(|e| e.to_string())?,
            };
            for s in stores {
                println!("store {} at {} ({:?})", s.id, s.address, s.get_state());
            }
        }
        Cmd::TransferLeader { region, store } => {
            operate(&client, region, OperatorKind::TransferLeader, store)?
        }
        Cmd::AddPeer { region, store } => operate(&client, region, OperatorKind::AddPeer, store)?,
        Cmd::RemovePeer { region, store } => {
            operate(&client, region, OperatorKind::RemovePeer, store)?
        }
        Cmd::Split { key } => {
            let (left, right) = client.split(key.as_bytes()).map_err(|e| e.to_string())?;
            print_region(&left, None);
            print_region(&right, None);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs an operator to its end and prints the region as the scheduler then sees it.
fn operate(
    client: &ClusterClient,
    region: u64,
    kind: OperatorKind,
    store: u64,
) -> Result<(), String> {
    let peer = client
        .operate(region, kind, store)
        .map_err(|e| format!("{kind:?} of region {region} on store {store}: {e}"))?;
    println!("{kind:?}: peer {} on store {} done", peer.id, peer.store_id);
    if let Some((region, leader)) = client.region_by_id(region).map_err(|e| e.to_string())? {
        print_region(&region, leader.as_ref());
    }
    Ok(())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A region, its epoch and its peers (the leader marked, if known).
fn print_region(region: &metapb::Region, leader: Option<&metapb::Peer>) {
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
        let lead = leader.is_some_and(|l| l.id == p.id);
        println!(
            "  peer {} on store {}{}",
            p.id,
            p.store_id,
            if lead { " (leader)" } else { "" }
        );
    }
}

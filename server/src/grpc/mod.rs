//! The gRPC front end of a node: the `TinyKv` service a store serves (raw KV calls, and
//! the raft and snapshot streams between stores), the `Scheduler` service, and their
//! clients (a raftstore [`Transport`](raftstore::Transport), a raftstore
//! [`SchedulerClient`](raftstore::SchedulerClient) and a blocking KV client for tools).
//!
//! It is tonic without protoc or prost: `build.rs` declares the two services with
//! tonic-build's manual builder, the generated stubs live in [`pb`], and one generic
//! codec ([`codec::ProtoCodec`]) carries the `proto` crate's rust-protobuf 2 messages.
//!
//! Threads: the gRPC side is async and runs on one tokio runtime at the edge of the
//! process; the stores stay on their own threads and never see it. The stores reach it
//! through the channels of [`GrpcTransport`] and [`GrpcSchedulerClient`] (which never
//! block a store on the network, except for the scheduler's unary calls the store makes
//! synchronously anyway), and it reaches the stores through a [`StoreSink`] (their
//! [`node::Router`]).

pub mod cluster_client;
pub mod codec;
mod conn;
mod error;
pub mod kv_client;
pub mod kv_service;
pub mod region_cache;
pub mod scheduler_client;
pub mod scheduler_service;
mod serve;
mod sink;
pub mod transport;

pub use cluster_client::ClusterClient;
pub use conn::{connect, ClientConfig};
pub use error::{GrpcError, Result};
pub use kv_client::TinyKvClient;
pub use kv_service::TinyKvService;
pub use scheduler_client::{GrpcSchedulerClient, RegionAndLeader, SchedulerConn};
pub use scheduler_service::{SchedulerGrpc, Ticker};
pub use serve::{GrpcServer, StopSource, StopToken, STOP_GRACE};
pub use sink::{SinkError, StoreSink};
pub use transport::{FnResolver, GrpcTransport, ResolveAddress, ResolveFuture, TransportConfig};

/// The largest message either side accepts or sends: a snapshot chunk is at most
/// `raftstore`'s `MAX_CHUNK` (16 MiB) plus its message; a raft message with many entries
/// can be large too. tonic's default (4 MiB) would refuse those.
pub const MAX_MESSAGE_SIZE: usize = 64 << 20;

/// The generated stubs (see `build.rs`).
#[allow(missing_docs, clippy::all, clippy::pedantic, rust_2018_idioms)]
pub mod pb {
    /// Package `tinykvpb`: the `TinyKv` service.
    pub mod tinykvpb {
        include!(concat!(env!("OUT_DIR"), "/tinykvpb.TinyKv.rs"));
    }
    /// Package `schedulerpb`: the `Scheduler` service.
    pub mod schedulerpb {
        include!(concat!(env!("OUT_DIR"), "/schedulerpb.Scheduler.rs"));
    }
}

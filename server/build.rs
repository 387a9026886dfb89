//! Generates the gRPC stubs (client and server) of the `TinyKv` and `Scheduler` services.
//!
//! No protoc and no prost: the services are declared here, method by method, with
//! tonic-build's manual builder. The messages are the rust-protobuf 2 types of the `proto`
//! crate, and every method is carried by the one generic codec in `src/grpc/codec.rs`.
//! Route names follow the original course's `.proto` services, so the paths on the wire
//! (`/tinykvpb.TinyKv/RawGet`, `/schedulerpb.Scheduler/AllocID`, ...) are the original's.

use tonic_build::manual::{Builder, Method, Service};

/// The codec every method uses (a path inside this crate).
const CODEC: &str = "crate::grpc::codec::ProtoCodec";

/// How a method streams.
#[derive(Clone, Copy)]
enum Shape {
    /// One request, one response.
    Unary,
    /// A stream of requests, one response.
    ClientStream,
    /// A stream each way.
    Bidi,
}

/// A method `route` (the wire name) called `name` in Rust, from `input` to `output`
/// (paths relative to the `proto` crate).
fn method(name: &str, route: &str, input: &str, output: &str, shape: Shape) -> Method {
    let b = Method::builder()
        .name(name)
        .route_name(route)
        .input_type(format!("::proto::{input}"))
        .output_type(format!("::proto::{output}"))
        .codec_path(CODEC);
    let b = match shape {
        Shape::Unary => b,
        Shape::ClientStream => b.client_streaming(),
        Shape::Bidi => b.client_streaming().server_streaming(),
    };
    b.build()
}

/// The KV service a store serves: stage 1's raw API, and the store-to-store streams.
fn tinykv() -> Service {
    use Shape::*;
    let methods = [
        (
            "raw_get",
            "RawGet",
            "kvrpcpb::RawGetRequest",
            "kvrpcpb::RawGetResponse",
            Unary,
        ),
        (
            "raw_put",
            "RawPut",
            "kvrpcpb::RawPutRequest",
            "kvrpcpb::RawPutResponse",
            Unary,
        ),
        (
            "raw_delete",
            "RawDelete",
            "kvrpcpb::RawDeleteRequest",
            "kvrpcpb::RawDeleteResponse",
            Unary,
        ),
        (
            "raw_scan",
            "RawScan",
            "kvrpcpb::RawScanRequest",
            "kvrpcpb::RawScanResponse",
            Unary,
        ),
        (
            "raft",
            "Raft",
            "raft_serverpb::RaftMessage",
            "raft_serverpb::Done",
            ClientStream,
        ),
        (
            "snapshot",
            "Snapshot",
            "raft_serverpb::SnapshotChunk",
            "raft_serverpb::Done",
            ClientStream,
        ),
        // Not in the course's service: TiKV's call for a split at a chosen key.
        (
            "split_region",
            "SplitRegion",
            "adminpb::SplitRegionRequest",
            "adminpb::SplitRegionResponse",
            Unary,
        ),
    ];
    let mut s = Service::builder()
        .name("TinyKv")
        .package("tinykvpb")
        .comment("The KV service of a store: raw key-value calls and raft traffic between stores.");
    for (name, route, input, output, shape) in methods {
        s = s.method(method(name, route, input, output, shape));
    }
    s.build()
}

/// The scheduler's service: the calls `scheduler::SchedulerService` can answer.
///
/// `ReportSplit` is not in the course's `schedulerpb.proto` service (only its messages
/// are); it is served here so that a store's `report_split` reaches the scheduler.
/// `AddOperator` (from `adminpb.proto`) is an administrator's operator, as `tinykv-ctl`
/// sends it.
fn scheduler() -> Service {
    use Shape::*;
    let pb = |m: &str| format!("schedulerpb::{m}");
    let methods = [
        (
            "get_members",
            "GetMembers",
            "GetMembersRequest",
            "GetMembersResponse",
            Unary,
        ),
        (
            "bootstrap",
            "Bootstrap",
            "BootstrapRequest",
            "BootstrapResponse",
            Unary,
        ),
        (
            "is_bootstrapped",
            "IsBootstrapped",
            "IsBootstrappedRequest",
            "IsBootstrappedResponse",
            Unary,
        ),
        (
            "alloc_id",
            "AllocID",
            "AllocIDRequest",
            "AllocIDResponse",
            Unary,
        ),
        (
            "get_store",
            "GetStore",
            "GetStoreRequest",
            "GetStoreResponse",
            Unary,
        ),
        (
            "put_store",
            "PutStore",
            "PutStoreRequest",
            "PutStoreResponse",
            Unary,
        ),
        (
            "get_all_stores",
            "GetAllStores",
            "GetAllStoresRequest",
            "GetAllStoresResponse",
            Unary,
        ),
        (
            "store_heartbeat",
            "StoreHeartbeat",
            "StoreHeartbeatRequest",
            "StoreHeartbeatResponse",
            Unary,
        ),
        (
            "region_heartbeat",
            "RegionHeartbeat",
            "RegionHeartbeatRequest",
            "RegionHeartbeatResponse",
            Bidi,
        ),
        (
            "get_region",
            "GetRegion",
            "GetRegionRequest",
            "GetRegionResponse",
            Unary,
        ),
        (
            "get_region_by_id",
            "GetRegionByID",
            "GetRegionByIDRequest",
            "GetRegionResponse",
            Unary,
        ),
        (
            "ask_split",
            "AskSplit",
            "AskSplitRequest",
            "AskSplitResponse",
            Unary,
        ),
        (
            "report_split",
            "ReportSplit",
            "ReportSplitRequest",
            "ReportSplitResponse",
            Unary,
        ),
    ];
    let mut s = Service::builder()
        .name("Scheduler")
        .package("schedulerpb")
        .comment("The scheduler (placement driver) as stores and clients reach it.");
    for (name, route, input, output, shape) in methods {
        s = s.method(method(name, route, &pb(input), &pb(output), shape));
    }
    s.method(method(
        "add_operator",
        "AddOperator",
        "adminpb::AddOperatorRequest",
        "adminpb::AddOperatorResponse",
        Unary,
    ))
    .build()
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Writes `tinykvpb.TinyKv.rs` and `schedulerpb.Scheduler.rs` into OUT_DIR.
    Builder::new()
        .build_client(true)
        .build_server(true)
        .compile(&[tinykv(), scheduler()]);
}

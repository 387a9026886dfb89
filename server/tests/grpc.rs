//! The gRPC layer end to end on 127.0.0.1: raw KV calls, raft and snapshot streams, the
//! scheduler service and its client, the transport between two routers, and the errors a
//! wrong address or a stopped server give. Every wait is bounded; none is a fixed sleep.
//!
//! The tests that run a stage's reference are fenced in needs regions, so a handout
//! without that stage drops them; the imports and helpers only they use stay behind, hence
//! the allowance below.
#![allow(unused_imports, dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut};
use parking_lot::Mutex;
use proto::eraftpb::MessageType;
use proto::metapb;
use proto::raft_serverpb::{RaftMessage, RaftSnapshotData, SnapshotChunk};
use proto::schedulerpb::{RegionHeartbeatRequest, StoreStats};
use protobuf::Message as _;
use raft::SnapshotStatus;
use raftstore::snap::transfer::OutgoingSnapshot;
use raftstore::{SchedulerClient as _, StoreEvent, Transport as _};
use scheduler::{ScheduleConfig, SchedulerService};
use server::grpc::pb::schedulerpb::scheduler_client::SchedulerClient as SchedulerStub;
use server::grpc::pb::tinykvpb::tiny_kv_client::TinyKvClient as TinyKvStub;
use server::grpc::{
    connect, ClientConfig, FnResolver, GrpcError, GrpcSchedulerClient, GrpcServer, GrpcTransport,
    SchedulerConn, SchedulerGrpc, SinkError, StopSource, StoreSink, TinyKvClient, TinyKvService,
    TransportConfig,
};
use server::{Config, Server, StandaloneStorage};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Code;

/// The longest any wait in these tests may take.
const LIMIT: Duration = Duration::from_secs(5);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Short timeouts, so that a failure shows up fast.
fn client_cfg() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(3),
        keepalive: Duration::from_secs(1),
    }
}

/// Polls `cond` until it holds; panics after [`LIMIT`].
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Stores that collect what they are sent; a store not in `running` refuses.
struct CollectSink {
    running: Vec<u64>,
    events: Mutex<Vec<(u64, StoreEvent)>>,
}

impl CollectSink {
    fn new(running: &[u64]) -> Arc<CollectSink> {
        Arc::new(CollectSink {
            running: running.to_vec(),
            events: Mutex::new(Vec::new()),
        })
    }

    fn count(&self, pred: impl Fn(&(u64, StoreEvent)) -> bool) -> usize {
        self.events.lock().iter().filter(|e| pred(e)).count()
    }
}

impl StoreSink for CollectSink {
    fn deliver(&self, store_id: u64, ev: StoreEvent) -> Result<(), SinkError> {
        if !self.running.contains(&store_id) {
            return Err(SinkError(format!("store {store_id} is not running")));
        }
        self.events.lock().push((store_id, ev));
        Ok(())
    }
}

/// A `TinyKv` server over a fresh standalone storage in `dir`, delivering to `sink`.
fn kv_server<K: StoreSink>(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    sink: Arc<K>,
) -> GrpcServer {
    let storage = StandaloneStorage::new(&Config::test(dir)).expect("storage");
    let stop = StopSource::new();
    let svc = TinyKvService::new(Arc::new(Server::new(storage)), sink, stop.token());
    let _rt = rt.enter();
    GrpcServer::start(any_port(), svc.into_server(), stop).expect("server starts")
}

fn raft_msg(region_id: u64, to_store: u64, commit: u64) -> RaftMessage {
    let mut msg = RaftMessage::new();
    msg.region_id = region_id;
    msg.mut_from_peer().store_id = 1;
    msg.mut_from_peer().id = 11;
    msg.mut_to_peer().store_id = to_store;
    msg.mut_to_peer().id = 10 + to_store;
    msg.mut_message().set_msg_type(MessageType::MsgHeartbeat);
    msg.mut_message().commit = commit;
    msg
}

// lab:needs 1
#[test]
fn raw_put_get_scan_delete_round_trip() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = kv_server(&rt, dir.path(), CollectSink::new(&[]));
    let addr = server.addr().to_string();
    let client =
        TinyKvClient::connect_on(rt.handle().clone(), &addr, client_cfg()).expect("connect");

    for (k, v) in [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")] {
        client.raw_put("default", k, v).expect("put");
    }
    assert_eq!(
        client.raw_get("default", b"b").expect("get"),
        Some(b"2".to_vec())
    );
    assert_eq!(client.raw_get("default", b"zz").expect("get"), None);
    assert_eq!(
        client.raw_get("lock", b"b").expect("get"),
        None,
        "column families are apart"
    );
    let pairs = client.raw_scan("default", b"b", 10).expect("scan");
    assert_eq!(
        pairs,
        vec![
            (b"b".to_vec(), b"2".to_vec()),
            (b"c".to_vec(), b"3".to_vec())
        ]
    );
    assert_eq!(client.raw_scan("default", b"", 1).expect("scan").len(), 1);
    client.raw_delete("default", b"b").expect("delete");
    client
        .raw_delete("default", b"never-there")
        .expect("deleting nothing succeeds");
    assert_eq!(client.raw_get("default", b"b").expect("get"), None);

    // A bad request is the caller's fault, and says so.
    let err = client
        .raw_put("no-such-cf", b"k", b"v")
        .expect_err("unknown cf");
    assert_eq!(err.code(), Some(Code::InvalidArgument), "{err}");
    let err = client.raw_put("default", b"", b"v").expect_err("empty key");
    assert_eq!(err.code(), Some(Code::InvalidArgument), "{err}");

    // The blocking client with a runtime of its own, as a tool uses it.
    let tool = TinyKvClient::connect(&addr, client_cfg()).expect("connect");
    assert_eq!(
        tool.raw_get("default", b"a").expect("get"),
        Some(b"1".to_vec())
    );
    // Both clients' idle connections close as soon as the server asks.
    let started = Instant::now();
    rt.block_on(server.stop()).expect("stops");
    assert!(started.elapsed() < server::grpc::STOP_GRACE);
}

/// Sends any bytes as a request body and reads any bytes back.
#[derive(Default)]
struct RawBytes;

struct RawEncoder;
struct RawDecoder;

impl Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

#[test]
fn malformed_request_is_refused_and_the_server_keeps_serving() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = kv_server(&rt, dir.path(), CollectSink::new(&[]));
    let addr = server.addr().to_string();
    let status = rt.block_on(async {
        let channel = connect(&addr, &client_cfg()).await.expect("connect");
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.expect("ready");
        let path = tonic::codegen::http::uri::PathAndQuery::from_static("/tinykvpb.TinyKv/RawPut");
        // A key field announcing 100 bytes and holding 1.
        let garbage = vec![0x12, 0x64, b'k'];
        grpc.unary(tonic::Request::new(garbage), path, RawBytes)
            .await
            .expect_err("garbage must be refused")
    });
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("RawPutRequest"), "{status:?}");

    let client =
        TinyKvClient::connect_on(rt.handle().clone(), &addr, client_cfg()).expect("connect");
    client
        .raw_put("default", b"k", b"v")
        .expect("the server still serves");
    assert_eq!(
        client.raw_get("default", b"k").expect("get"),
        Some(b"v".to_vec())
    );
    rt.block_on(server.stop()).expect("stops");
}

// lab:end-needs

#[test]
fn raft_and_snapshot_streams_reach_the_stores() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = CollectSink::new(&[2, 3]);
    let server = kv_server(&rt, dir.path(), sink.clone());
    let addr = server.addr().to_string();
    rt.block_on(async {
        let channel = connect(&addr, &client_cfg()).await.expect("connect");
        let mut stub = TinyKvStub::new(channel);
        // Raft: 100 messages for stores 2 and 3, and one for a store that is not here
        // (dropped, the stream goes on).
        let mut msgs: Vec<RaftMessage> = (0..100).map(|i| raft_msg(1, 2 + i % 2, i)).collect();
        msgs.insert(50, raft_msg(1, 9, 999));
        stub.raft(tokio_stream::iter(msgs))
            .await
            .expect("raft stream");

        // Snapshot: three chunks for store 2.
        let chunks: Vec<SnapshotChunk> = (0..3u64)
            .map(|i| {
                let mut c = SnapshotChunk::new();
                c.set_message(raft_msg(7, 2, 0));
                c.data = vec![i as u8; 10];
                c.offset = i * 10;
                c
            })
            .collect();
        stub.snapshot(tokio_stream::iter(chunks.clone()))
            .await
            .expect("snapshot stream");

        // A snapshot for a store that is not here fails, so its sender reports Failure.
        let mut lost = chunks[0].clone();
        lost.mut_message().mut_to_peer().store_id = 9;
        let status = stub
            .snapshot(tokio_stream::iter(vec![lost]))
            .await
            .expect_err("nobody to take it");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    });
    let events = sink.events.lock();
    let raft: Vec<(u64, u64)> = events
        .iter()
        .filter_map(|(store, ev)| match ev {
            StoreEvent::Raft(m) => Some((*store, m.get_message().commit)),
            _ => None,
        })
        .collect();
    let expected: Vec<(u64, u64)> = (0..100).map(|i| (2 + i % 2, i)).collect();
    assert_eq!(raft, expected, "every message, in order, to its store");
    let offsets: Vec<u64> = events
        .iter()
        .filter_map(|(store, ev)| match ev {
            StoreEvent::SnapshotChunk(c) if *store == 2 => Some(c.offset),
            _ => None,
        })
        .collect();
    assert_eq!(offsets, vec![0, 10, 20]);
    drop(events);
    rt.block_on(server.stop()).expect("stops");
}

fn store(id: u64, address: &str) -> metapb::Store {
    let mut s = metapb::Store::new();
    s.id = id;
    s.address = address.to_owned();
    s
}

fn peer(store_id: u64, id: u64) -> metapb::Peer {
    raftstore::util::new_peer(store_id, id)
}

// lab:needs 3c
#[test]
fn scheduler_bootstrap_stores_ids_and_heartbeats() {
    let rt = runtime();
    let opts = ScheduleConfig {
        enable_balance_region: false,
        enable_replica_checker: false,
        ..ScheduleConfig::default()
    };
    let svc = Arc::new(SchedulerService::new(7, 10, opts, 1));
    let stop = StopSource::new();
    let grpc = SchedulerGrpc::new(svc.clone(), stop.token());
    let (server, _ticker) = {
        let _rt = rt.enter();
        let ticker = grpc
            .start_ticker(Duration::from_millis(20))
            .expect("ticker");
        let server =
            GrpcServer::start(any_port(), grpc.clone().into_server(), stop).expect("start");
        (server, ticker)
    };
    let addr = server.addr().to_string();
    let conn = rt
        .block_on(SchedulerConn::connect(&addr, client_cfg()))
        .expect("connect");
    assert_eq!(conn.cluster_id(), 7, "learnt from GetMembers");

    rt.block_on(async {
        assert!(!conn.is_bootstrapped().await.expect("call"));
        conn.bootstrap(store(1, "127.0.0.1:1"))
            .await
            .expect("bootstrap");
        assert!(conn.is_bootstrapped().await.expect("call"));
        let again = conn
            .bootstrap(store(1, "127.0.0.1:1"))
            .await
            .expect_err("once only");
        assert!(
            matches!(
                &again,
                GrpcError::Scheduler {
                    kind: proto::schedulerpb::ErrorType::ALREADY_BOOTSTRAPPED,
                    ..
                }
            ),
            "{again}"
        );
        conn.put_store(store(2, "127.0.0.1:2"))
            .await
            .expect("put store");
        conn.put_store(store(3, "127.0.0.1:3"))
            .await
            .expect("put store");
        assert_eq!(
            conn.get_store(2).await.expect("get store").address,
            "127.0.0.1:2"
        );
        let missing = conn.get_store(99).await.expect_err("unknown store");
        assert!(missing.to_string().contains("99"), "{missing}");
        assert_eq!(
            conn.get_all_stores(true).await.expect("all stores").len(),
            3
        );
        let a = conn.alloc_id().await.expect("id");
        let b = conn.alloc_id().await.expect("id");
        assert!(a >= 10 && b > a, "{a} then {b}");
        assert!(conn.get_region(b"k").await.expect("lookup").is_none());
    });

    // Another cluster's request is refused outright.
    let status = rt.block_on(async {
        let channel = connect(&addr, &client_cfg()).await.expect("connect");
        let mut req = proto::schedulerpb::AllocIDRequest::new();
        req.mut_header().cluster_id = 8;
        SchedulerStub::new(channel)
            .alloc_id(req)
            .await
            .expect_err("wrong cluster")
    });
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");

    // Store 1's client: the region heartbeat goes on the stream, and an operator's step
    // comes back on it as a SchedulerResponse for store 1.
    let sink = CollectSink::new(&[1]);
    let mut client = GrpcSchedulerClient::new(conn.clone(), rt.handle().clone(), 1, sink.clone());
    let mut region = raftstore::bootstrap::new_first_region(2, vec![peer(1, 3)]);
    region.mut_region_epoch().conf_ver = 1;
    region.mut_region_epoch().version = 1;
    let mut hb = RegionHeartbeatRequest::new();
    hb.set_region(region.clone());
    hb.set_leader(peer(1, 3));
    client.region_heartbeat(hb.clone()).expect("queued");
    wait_until("the scheduler to learn region 2", || {
        svc.get_region_by_id(2).is_some()
    });
    assert_eq!(
        rt.block_on(conn.get_region(b"any"))
            .expect("lookup")
            .map(|(r, _)| r.id),
        Some(2)
    );
    wait_until("store 1's stream to be registered", || {
        grpc.open_streams() == 1
    });
    svc.add_peer(2, &peer(2, 4), grpc.now()).expect("operator");
    wait_until("the add-peer step to reach store 1", || {
        sink.count(|(s, ev)| {
            *s == 1
                && matches!(ev, StoreEvent::SchedulerResponse(r)
                    if r.region_id == 2 && r.get_change_peer().get_peer().store_id == 2)
        }) >= 1
    });
    // The next heartbeat is answered directly with the step the operator still wants.
    let before = sink.count(|_| true);
    client.region_heartbeat(hb).expect("queued");
    wait_until("the direct answer", || sink.count(|_| true) > before);

    // Store heartbeats go out without blocking; splits are asked for synchronously.
    let mut stats = StoreStats::new();
    stats.store_id = 1;
    client.store_heartbeat(stats).expect("sent");
    wait_until("store 1's heartbeat", || {
        svc.cluster()
            .get_store(1)
            .is_some_and(|s| s.last_heartbeat.is_some())
    });
    let split = client.ask_split(&region).expect("split ids");
    assert_eq!(split.new_peer_ids.len(), 1);
    assert!(split.new_region_id >= 10);
    let alloc = client.alloc_id().expect("id");
    assert!(alloc > split.new_region_id);
    drop(client);
    rt.block_on(server.stop()).expect("stops");
}

// lab:end-needs

/// A store that only collects its events: its mailbox on `router`.
fn fake_store(router: &node::Router, id: u64) -> crossbeam_channel::Receiver<node::router::Msg> {
    let (tx, rx) = crossbeam_channel::unbounded();
    router.register(id, tx);
    rx
}

/// The next event of a fake store, within [`LIMIT`].
fn next_event(rx: &crossbeam_channel::Receiver<node::router::Msg>) -> StoreEvent {
    match rx.recv_timeout(LIMIT) {
        Ok(node::router::Msg::Event(ev)) => ev,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// A `MsgSnapshot` for store 2 announcing a file of `size` bytes.
fn snapshot_msg(size: u64) -> RaftMessage {
    let mut msg = raft_msg(5, 2, 0);
    msg.mut_message().set_msg_type(MessageType::MsgSnapshot);
    let snap = msg.mut_message().mut_snapshot();
    snap.mut_metadata().index = 6;
    snap.mut_metadata().term = 6;
    let mut data = RaftSnapshotData::new();
    data.file_size = size;
    snap.data = data.write_to_bytes().expect("encodes").into();
    msg
}

#[test]
fn transport_carries_messages_and_snapshots_between_routers() {
    let rt = runtime();
    let (dir1, dir2) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let (router1, router2) = (node::Router::new(), node::Router::new());
    let store1 = fake_store(&router1, 1);
    let store2 = fake_store(&router2, 2);
    let _server1 = kv_server(&rt, dir1.path(), Arc::new(router1.clone()));
    let server2 = kv_server(&rt, dir2.path(), Arc::new(router2.clone()));

    let addrs: Arc<Mutex<BTreeMap<u64, String>>> = Arc::default();
    addrs.lock().insert(2, server2.addr().to_string());
    let table = addrs.clone();
    let resolver = FnResolver(move |id| table.lock().get(&id).cloned());
    let cfg = TransportConfig {
        client: client_cfg(),
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        snapshot_timeout: LIMIT,
    };
    let mut transport = GrpcTransport::new(
        1,
        rt.handle().clone(),
        Arc::new(resolver),
        Arc::new(router1.clone()),
        cfg,
    );

    for i in 0..50 {
        transport.send(raft_msg(1, 2, i)).expect("queued");
    }
    for i in 0..50 {
        match next_event(&store2) {
            StoreEvent::Raft(m) => assert_eq!(m.get_message().commit, i, "in order"),
            other => panic!("unexpected {other:?}"),
        }
    }

    // A snapshot of 2.5 chunks: three chunks reach store 2, and store 1 hears Finish.
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("snap");
    let bytes: Vec<u8> = (0..2560u32).map(|i| i as u8).collect();
    std::fs::write(&path, &bytes).expect("write");
    let snap = OutgoingSnapshot::open(snapshot_msg(2560), &path, 1024).expect("open");
    transport.send_snapshot(snap).expect("started");
    let mut received = Vec::new();
    for _ in 0..3 {
        match next_event(&store2) {
            StoreEvent::SnapshotChunk(c) => received.extend_from_slice(&c.data),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(received, bytes);
    match next_event(&store1) {
        StoreEvent::SnapshotStatus {
            region_id, status, ..
        } => {
            assert_eq!(region_id, 5);
            assert_eq!(status, SnapshotStatus::Finish);
        }
        other => panic!("unexpected {other:?}"),
    }

    // A snapshot for a store with no address fails, and store 1 hears that.
    let mut lost = snapshot_msg(2560);
    lost.mut_to_peer().store_id = 9;
    let snap = OutgoingSnapshot::open(lost, &path, 1024).expect("open");
    transport.send_snapshot(snap).expect("started");
    match next_event(&store1) {
        StoreEvent::SnapshotStatus { status, .. } => assert_eq!(status, SnapshotStatus::Failure),
        other => panic!("unexpected {other:?}"),
    }

    // Store 2 goes away with the stream open: stopping does not wait for the stream.
    let started = Instant::now();
    rt.block_on(server2.stop()).expect("stops");
    assert!(
        started.elapsed() < server::grpc::STOP_GRACE,
        "the raft stream was ended"
    );
    // It comes back elsewhere; the transport finds it again.
    let dir3 = tempfile::tempdir().expect("dir");
    let server2 = kv_server(&rt, dir3.path(), Arc::new(router2.clone()));
    addrs.lock().insert(2, server2.addr().to_string());
    let mut i = 1000;
    let deadline = Instant::now() + LIMIT;
    let got = loop {
        assert!(Instant::now() < deadline, "the transport never reconnected");
        transport.send(raft_msg(1, 2, i)).expect("queued");
        i += 1;
        if let Ok(node::router::Msg::Event(StoreEvent::Raft(m))) =
            store2.recv_timeout(Duration::from_millis(20))
        {
            break m.get_message().commit;
        }
    };
    assert!(got >= 1000);
    rt.block_on(server2.stop()).expect("stops");
}

#[test]
fn wrong_or_closed_addresses_give_clear_errors() {
    let rt = runtime();
    // A port nobody listens on: bind one, then free it.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let started = Instant::now();
    let err = TinyKvClient::connect(&closed, client_cfg()).expect_err("nobody listens");
    assert!(started.elapsed() < LIMIT);
    match &err {
        GrpcError::Connect { addr, reason } => {
            assert_eq!(addr, &closed);
            assert!(reason.to_lowercase().contains("refused"), "{reason}");
        }
        other => panic!("expected a connect error, got {other}"),
    }
    assert!(err.to_string().contains(&closed), "{err}");

    let err = rt
        .block_on(SchedulerConn::connect(&closed, client_cfg()))
        .expect_err("nobody listens");
    assert!(err.to_string().contains(&closed), "{err}");

    for bad in ["", "no port here", "127.0.0.1", "https://127.0.0.1:5"] {
        let err = TinyKvClient::connect(bad, client_cfg()).expect_err("bad address");
        assert!(
            matches!(err, GrpcError::InvalidAddress { .. }),
            "{bad:?}: {err}"
        );
    }

    // A server that stops under a connected client: the next call fails, naming it.
    let dir = tempfile::tempdir().expect("dir");
    let server = kv_server(&rt, dir.path(), CollectSink::new(&[]));
    let addr = server.addr().to_string();
    let client =
        TinyKvClient::connect_on(rt.handle().clone(), &addr, client_cfg()).expect("connect");
    client.raw_put("default", b"k", b"v").expect("put");
    rt.block_on(server.stop()).expect("stops");
    let err = client.raw_get("default", b"k").expect_err("server is gone");
    assert!(err.to_string().contains(&addr), "{err}");
}

#[test]
fn starting_outside_a_runtime_is_an_error_not_a_panic() {
    let svc = Arc::new(SchedulerService::new(1, 10, ScheduleConfig::default(), 1));
    let stop = StopSource::new();
    let grpc = SchedulerGrpc::new(svc, stop.token());
    let err = grpc
        .start_ticker(Duration::from_millis(10))
        .expect_err("no runtime");
    assert!(matches!(err, GrpcError::Runtime(_)), "{err}");
    let err = GrpcServer::start(any_port(), grpc.into_server(), stop).expect_err("no runtime");
    assert!(matches!(err, GrpcError::Runtime(_)), "{err}");
}

// lab:needs 2aa..3c
/// One node of [`nodes_start_replicate_and_fail_over_over_grpc`]: its store loop and the
/// gRPC server of its store.
struct GrpcNode {
    lp: node::StoreLoop,
    server: GrpcServer,
}

/// Three nodes started as server processes start them ([`node::start_node`]), with every
/// scheduler call and all raft traffic (snapshots included) over gRPC: the first bootstraps
/// the cluster through the `Bootstrap` rpc, the others register, the replica checker's
/// steps come back on the heartbeat streams and grow the region onto them (each new peer
/// gets a snapshot over `TinyKv.Snapshot`), and when the leader's loop and port go away the
/// other two carry on. The stores share a router only so that the test's client can hand
/// them commands, as a KV service would.
#[test]
fn nodes_start_replicate_and_fail_over_over_grpc() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("dir");
    let opts = ScheduleConfig {
        enable_balance_region: false,
        ..ScheduleConfig::simulation()
    };
    let svc = Arc::new(SchedulerService::new(1, 100, opts, 0));
    let stop = StopSource::new();
    let grpc = SchedulerGrpc::new(svc.clone(), stop.token());
    let (sched_server, _ticker) = {
        let _rt = rt.enter();
        let ticker = grpc
            .start_ticker(Duration::from_millis(50))
            .expect("ticker");
        let server = GrpcServer::start(any_port(), grpc.into_server(), stop).expect("start");
        (server, ticker)
    };
    let conn = rt
        .block_on(SchedulerConn::connect(
            &sched_server.addr().to_string(),
            client_cfg(),
        ))
        .expect("connect");

    let router = node::Router::new();
    let mut nodes = BTreeMap::new();
    for id in 1..=3u64 {
        let server = kv_server(
            &rt,
            &dir.path().join(format!("kv-{id}")),
            Arc::new(router.clone()),
        );
        let mut nc = node::NodeConfig::new(
            1,
            id,
            &server.addr().to_string(),
            dir.path().join(format!("store-{id}")),
        );
        nc.cfg = raftstore::Config::test();
        nc.cfg.seed = id;
        nc.engine = engine::EngineOptions::for_tests();
        let transport = GrpcTransport::new(
            id,
            rt.handle().clone(),
            Arc::new(conn.clone()),
            Arc::new(router.clone()),
            TransportConfig {
                client: client_cfg(),
                min_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(200),
                snapshot_timeout: LIMIT,
            },
        );
        let mut scheduler = GrpcSchedulerClient::new(
            conn.clone(),
            rt.handle().clone(),
            id,
            Arc::new(router.clone()),
        );
        let mut boot = scheduler.clone();
        let lp = node::start_node(
            &nc,
            &mut boot,
            &router,
            Box::new(transport),
            Box::new(scheduler.clone()),
        )
        .expect("node starts");
        if id == 1 {
            assert!(
                svc.is_bootstrapped(),
                "the first node bootstrapped the cluster"
            );
        }
        // The others only registered: a second bootstrap is refused as "already".
        assert!(!node::ClusterBootstrap::bootstrap(
            &mut scheduler,
            &store(id, "x"),
            &metapb::Region::new()
        )
        .expect("answered"));
        nodes.insert(id, GrpcNode { lp, server });
    }

    let client = node::Client::new(router.clone(), svc.clone());
    let key = |i: usize| format!("k{i:03}").into_bytes();
    client.put(&key(0), b"v1").expect("put");
    wait_until("the region to grow onto all three stores", || {
        svc.get_region(b"k")
            .is_some_and(|(r, _)| r.get_peers().len() == 3)
    });
    for i in 0..20 {
        client.put(&key(i), b"v1").expect("put");
    }
    let leader = svc
        .get_region(b"k")
        .and_then(|(_, leader)| leader)
        .map(|p| p.store_id)
        .expect("the leader reported itself");
    let gone = nodes.remove(&leader).expect("a node");
    gone.lp.stop();
    rt.block_on(gone.server.stop()).expect("stops");
    for i in 0..20 {
        client
            .put(&key(i), b"v2")
            .expect("put after the leader left");
    }
    for i in 0..20 {
        assert_eq!(client.get(&key(i)).expect("get"), b"v2", "key {i}");
    }
    for (_, n) in std::mem::take(&mut nodes) {
        n.lp.stop();
        rt.block_on(n.server.stop()).expect("stops");
    }
    rt.block_on(sched_server.stop()).expect("stops");
}
// lab:end-needs

//! Wire-format tests for every generated message and enum.
//!
//! Messages are filled generically: a small encoder walks each message's
//! descriptor and writes a non-default value for every field (two elements
//! for repeated fields, recursively filled nested messages, including
//! raft-proto's `eraftpb` ones). Decoding those bytes must set every field,
//! leave no unknown fields, re-encode to the same bytes, and round-trip to an
//! equal value. Tables list every message and enum type, and a completeness
//! test checks the tables against the file descriptors, so a message added to
//! a `.proto` file without a test entry fails the suite.

use std::collections::{BTreeMap, BTreeSet};

use protobuf::descriptor::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto_Label as Label,
    FieldDescriptorProto_Type as Type, FileDescriptorProto,
};
use protobuf::error::WireError;
use protobuf::reflect::{ReflectFieldRef, ReflectValueRef};
use protobuf::{Message, ProtobufEnum, ProtobufError};

use proto::{adminpb, eraftpb, errorpb, kvrpcpb, metapb, raft_cmdpb, raft_serverpb, schedulerpb};

// ---------------------------------------------------------------------------
// Type tables
// ---------------------------------------------------------------------------

/// One message type under test: proto package, message name, and the
/// round-trip check instantiated for its Rust type.
struct MessageCase {
    package: &'static str,
    name: &'static str,
    check: fn(&Registry) -> Vec<u8>,
}

/// One enum type under test.
struct EnumCase {
    package: &'static str,
    name: &'static str,
    check: fn(),
}

macro_rules! message_cases {
    ($($module:ident { $($ty:ident),* $(,)? })*) => {
        &[$($(MessageCase {
            package: stringify!($module),
            name: stringify!($ty),
            check: check_message::<$module::$ty>,
        },)*)*]
    };
}

macro_rules! enum_cases {
    ($($module:ident { $($ty:ident),* $(,)? })*) => {
        &[$($(EnumCase {
            package: stringify!($module),
            name: stringify!($ty),
            check: check_enum::<$module::$ty>,
        },)*)*]
    };
}

const MESSAGES: &[MessageCase] = message_cases! {
    metapb { Cluster, Store, RegionEpoch, Region, Peer }
    errorpb {
        NotLeader, StoreNotMatch, RegionNotFound, KeyNotInRegion, EpochNotMatch, StaleCommand,
        Error,
    }
    raft_cmdpb {
        GetRequest, GetResponse, PutRequest, PutResponse, DeleteRequest, DeleteResponse,
        SnapRequest, SnapResponse, Request, Response, ChangePeerRequest, ChangePeerResponse,
        SplitRequest, SplitResponse, CompactLogRequest, CompactLogResponse,
        TransferLeaderRequest, TransferLeaderResponse, AdminRequest, AdminResponse,
        RaftRequestHeader, RaftResponseHeader, RaftCmdRequest, RaftCmdResponse,
    }
    raft_serverpb {
        RaftMessage, RaftLocalState, RaftApplyState, RaftTruncatedState, RegionLocalState,
        StoreIdent, KeyValue, RaftSnapshotData, SnapshotCFFile, SnapshotMeta, SnapshotChunk, Done,
    }
    kvrpcpb {
        RawGetRequest, RawGetResponse, RawPutRequest, RawPutResponse, RawDeleteRequest,
        RawDeleteResponse, RawScanRequest, RawScanResponse, GetRequest, GetResponse,
        PrewriteRequest, PrewriteResponse, CommitRequest, CommitResponse, ScanRequest,
        ScanResponse, BatchRollbackRequest, BatchRollbackResponse, CheckTxnStatusRequest,
        CheckTxnStatusResponse, ResolveLockRequest, ResolveLockResponse, KvPair, Mutation,
        KeyError, LockInfo, WriteConflict, Context,
    }
    schedulerpb {
        RequestHeader, ResponseHeader, Error, TsoRequest, Timestamp, TsoResponse,
        BootstrapRequest, BootstrapResponse, IsBootstrappedRequest, IsBootstrappedResponse,
        AllocIDRequest, AllocIDResponse, GetStoreRequest, GetStoreResponse, PutStoreRequest,
        PutStoreResponse, GetAllStoresRequest, GetAllStoresResponse, GetRegionRequest,
        GetRegionResponse, GetRegionByIDRequest, ScanRegionsRequest, ScanRegionsResponse,
        GetClusterConfigRequest, GetClusterConfigResponse, PutClusterConfigRequest,
        PutClusterConfigResponse, Member, GetMembersRequest, GetMembersResponse,
        RegionHeartbeatRequest, ChangePeer, TransferLeader, RegionHeartbeatResponse,
        AskSplitRequest, AskSplitResponse, ReportSplitRequest, ReportSplitResponse, SplitID,
        TimeInterval, RecordPair, StoreStats, StoreHeartbeatRequest, StoreHeartbeatResponse,
        ScatterRegionRequest, ScatterRegionResponse, GetGCSafePointRequest,
        GetGCSafePointResponse, UpdateGCSafePointRequest, UpdateGCSafePointResponse,
        GetOperatorRequest, GetOperatorResponse,
    }
    adminpb {
        AddOperatorRequest, AddOperatorResponse, SplitRegionRequest, SplitRegionResponse,
        SchedulerMeta,
    }
};

const ENUMS: &[EnumCase] = enum_cases! {
    metapb { StoreState }
    raft_cmdpb { CmdType, AdminCmdType }
    raft_serverpb { PeerState }
    kvrpcpb { Op, Action }
    schedulerpb { ErrorType, OperatorStatus }
    adminpb { OperatorKind }
};

/// Descriptors of the files we generate, one per module.
fn our_files() -> Vec<&'static FileDescriptorProto> {
    vec![
        metapb::file_descriptor_proto(),
        errorpb::file_descriptor_proto(),
        raft_cmdpb::file_descriptor_proto(),
        raft_serverpb::file_descriptor_proto(),
        kvrpcpb::file_descriptor_proto(),
        schedulerpb::file_descriptor_proto(),
        adminpb::file_descriptor_proto(),
    ]
}

// ---------------------------------------------------------------------------
// A descriptor-driven encoder that fills every field
// ---------------------------------------------------------------------------

/// Message and enum descriptors of all files (ours and raft-proto's eraftpb),
/// by fully qualified name as used in `type_name` (".package.Name").
struct Registry {
    messages: BTreeMap<String, &'static DescriptorProto>,
    enums: BTreeMap<String, &'static EnumDescriptorProto>,
}

impl Registry {
    fn new() -> Self {
        let mut reg = Registry {
            messages: BTreeMap::new(),
            enums: BTreeMap::new(),
        };
        let mut files = our_files();
        files.push(eraftpb::file_descriptor_proto());
        for file in files {
            let scope = format!(".{}", file.get_package());
            for e in file.get_enum_type() {
                reg.enums.insert(format!("{scope}.{}", e.get_name()), e);
            }
            for m in file.get_message_type() {
                reg.add_message(&scope, m);
            }
        }
        reg
    }

    fn add_message(&mut self, scope: &str, m: &'static DescriptorProto) {
        let name = format!("{scope}.{}", m.get_name());
        for e in m.get_enum_type() {
            self.enums.insert(format!("{name}.{}", e.get_name()), e);
        }
        for nested in m.get_nested_type() {
            self.add_message(&name, nested);
        }
        self.messages.insert(name, m);
    }

    /// Encodes a value of message `type_name` with every field set to a
    /// non-default value, fields in declaration order (the order rust-protobuf
    /// writes them, so re-encoding must reproduce these bytes exactly).
    fn encode_filled(&self, type_name: &str, seed: &mut u64, depth: usize) -> Vec<u8> {
        assert!(
            depth < 16,
            "{type_name}: schema nests too deep (recursive type?)"
        );
        let desc = self
            .messages
            .get(type_name)
            .unwrap_or_else(|| panic!("unknown message {type_name}"));
        let mut buf = Vec::new();
        for field in desc.get_field() {
            let count = if field.get_label() == Label::LABEL_REPEATED {
                2
            } else {
                1
            };
            for _ in 0..count {
                *seed += 1;
                self.encode_field(&mut buf, field.get_number() as u32, field, seed, depth);
            }
        }
        buf
    }

    fn encode_field(
        &self,
        buf: &mut Vec<u8>,
        number: u32,
        field: &protobuf::descriptor::FieldDescriptorProto,
        seed: &mut u64,
        depth: usize,
    ) {
        let s = *seed;
        match field.get_field_type() {
            Type::TYPE_UINT64 | Type::TYPE_UINT32 => put_varint_field(buf, number, s),
            // Negative values exercise sign extension to ten bytes.
            Type::TYPE_INT64 | Type::TYPE_INT32 => {
                put_varint_field(buf, number, (s as i64).wrapping_neg() as u64)
            }
            Type::TYPE_BOOL => put_varint_field(buf, number, 1),
            Type::TYPE_ENUM => {
                let e = self
                    .enums
                    .get(field.get_type_name())
                    .expect("enum type registered");
                let max = e
                    .get_value()
                    .iter()
                    .map(|v| v.get_number())
                    .max()
                    .expect("enum has values");
                assert_ne!(
                    max,
                    0,
                    "{}: enum has no non-default value",
                    field.get_type_name()
                );
                put_varint_field(buf, number, max as i64 as u64);
            }
            Type::TYPE_STRING => put_len_field(buf, number, format!("s{s}-é").as_bytes()),
            // Not valid UTF-8 on purpose: bytes fields must not care.
            Type::TYPE_BYTES => put_len_field(buf, number, &[0xff, s as u8, 0x00, 0x80]),
            Type::TYPE_MESSAGE => {
                let nested = self.encode_filled(field.get_type_name(), seed, depth + 1);
                put_len_field(buf, number, &nested);
            }
            other => panic!(
                "field {}: type {other:?} is not used by our protos; teach the test encoder",
                field.get_name()
            ),
        }
    }
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_tag(buf: &mut Vec<u8>, number: u32, wire_type: u32) {
    put_varint(buf, u64::from(number << 3 | wire_type));
}

fn put_varint_field(buf: &mut Vec<u8>, number: u32, v: u64) {
    put_tag(buf, number, 0);
    put_varint(buf, v);
}

fn put_len_field(buf: &mut Vec<u8>, number: u32, data: &[u8]) {
    put_tag(buf, number, 2);
    put_varint(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

/// Panics unless every field of `m`, recursively, is set: singular fields
/// non-default, repeated fields with exactly two elements.
fn assert_all_set(m: &dyn Message, path: &str) {
    for field in m.descriptor().fields() {
        let here = format!("{path}.{}", field.name());
        let is_message = field.proto().get_field_type() == Type::TYPE_MESSAGE;
        if field.is_repeated() {
            assert_eq!(
                field.len_field(m),
                2,
                "{here}: repeated field lost elements"
            );
            if let ReflectFieldRef::Repeated(items) = field.get_reflect(m) {
                for i in 0..items.len() {
                    if let ReflectValueRef::Message(sub) = items.get(i).as_ref() {
                        assert_all_set(sub, &format!("{here}[{i}]"));
                    } else {
                        assert!(!is_message, "{here}: expected message elements");
                    }
                }
            }
        } else {
            assert!(field.has_field(m), "{here}: field not set after decoding");
            if is_message {
                assert_all_set(field.get_message(m), &here);
            }
        }
    }
}

/// The round-trip check for one message type; returns the filled encoding.
fn check_message<M: Message + PartialEq + Default>(reg: &Registry) -> Vec<u8> {
    let desc = M::descriptor_static();
    let bytes = reg.encode_filled(&format!(".{}", desc.full_name()), &mut 0, 0);

    let msg = M::parse_from_bytes(&bytes)
        .unwrap_or_else(|e| panic!("{}: decode failed: {e}", desc.full_name()));
    assert!(
        msg.get_unknown_fields().iter().next().is_none(),
        "{}: some encoded fields were not recognised",
        desc.full_name()
    );
    assert_all_set(&msg, desc.name());
    if !desc.fields().is_empty() {
        assert!(
            msg != M::default(),
            "{}: filled value equals the default",
            desc.full_name()
        );
    }

    assert_eq!(
        msg.compute_size() as usize,
        bytes.len(),
        "{}: size",
        desc.full_name()
    );
    let reencoded = msg.write_to_bytes().expect("encode");
    assert_eq!(
        reencoded,
        bytes,
        "{}: re-encoding differs",
        desc.full_name()
    );
    let back = M::parse_from_bytes(&reencoded).expect("decode again");
    assert!(
        back == msg,
        "{}: round trip changed the value",
        desc.full_name()
    );

    // The default value round-trips to an empty buffer.
    assert!(M::default()
        .write_to_bytes()
        .expect("encode default")
        .is_empty());
    assert!(M::parse_from_bytes(&[]).expect("decode empty") == M::default());
    bytes
}

fn check_enum<E: ProtobufEnum + std::fmt::Debug>() {
    let desc = E::enum_descriptor_static();
    let values = E::values();
    assert!(!values.is_empty());
    assert_eq!(
        values[0].value(),
        0,
        "{}: proto3 enums start at 0",
        desc.name()
    );
    for v in values {
        assert_eq!(E::from_i32(v.value()), Some(*v), "{}: {v:?}", desc.name());
        assert_eq!(desc.value_by_number(v.value()).value(), v.value());
    }
    let numbers: BTreeSet<i32> = values.iter().map(|v| v.value()).collect();
    let unknown = (0..)
        .find(|n| !numbers.contains(n))
        .expect("some number is free");
    assert_eq!(
        E::from_i32(unknown),
        None,
        "{}: {unknown} should be unknown",
        desc.name()
    );
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn every_message_round_trips_with_all_fields_set() {
    let reg = Registry::new();
    for case in MESSAGES {
        let bytes = (case.check)(&reg);
        assert!(
            !bytes.is_empty()
                || case.name.ends_with("Response")
                || ["Done", "StaleCommand", "SnapRequest"].contains(&case.name),
            "{}.{} encodes to nothing",
            case.package,
            case.name
        );
    }
}

#[test]
fn every_enum_value_decodes() {
    for case in ENUMS {
        (case.check)();
    }
}

#[test]
fn tables_cover_every_message_and_enum() {
    let listed_messages: BTreeSet<(String, String)> = MESSAGES
        .iter()
        .map(|c| (c.package.to_owned(), c.name.to_owned()))
        .collect();
    let listed_enums: BTreeSet<(String, String)> = ENUMS
        .iter()
        .map(|c| (c.package.to_owned(), c.name.to_owned()))
        .collect();
    assert_eq!(
        listed_messages.len(),
        MESSAGES.len(),
        "a message is listed twice"
    );

    let mut declared_messages = BTreeSet::new();
    let mut declared_enums = BTreeSet::new();
    for file in our_files() {
        for m in file.get_message_type() {
            assert!(
                m.get_nested_type().is_empty() && m.get_enum_type().is_empty(),
                "nested types need table entries"
            );
            declared_messages.insert((file.get_package().to_owned(), m.get_name().to_owned()));
        }
        for e in file.get_enum_type() {
            declared_enums.insert((file.get_package().to_owned(), e.get_name().to_owned()));
        }
    }
    assert_eq!(listed_messages, declared_messages);
    assert_eq!(listed_enums, declared_enums);
}

/// A realistic RaftMessage carrying an append with entries and a snapshot:
/// the nested message is raft-proto's own `eraftpb::Message`.
#[test]
fn raft_message_carries_raft_proto_message() {
    fn takes_raft_proto(m: &raft_proto::eraftpb::Message) -> u64 {
        m.get_commit()
    }

    let mut entry = eraftpb::Entry::default();
    entry.set_entry_type(eraftpb::EntryType::EntryConfChange);
    entry.set_term(7);
    entry.set_index(42);
    entry.set_data(b"payload".to_vec().into());

    let mut inner = eraftpb::Message::default();
    inner.set_msg_type(eraftpb::MessageType::MsgAppend);
    inner.set_to(2);
    inner.set_from(1);
    inner.set_term(7);
    inner.set_log_term(6);
    inner.set_index(41);
    inner.set_commit(40);
    inner.mut_entries().push(entry);
    inner.mut_snapshot().mut_metadata().set_index(30);
    inner
        .mut_snapshot()
        .mut_metadata()
        .mut_conf_state()
        .mut_voters()
        .extend([1, 2, 3]);

    let mut msg = raft_serverpb::RaftMessage::default();
    msg.set_region_id(9);
    msg.mut_from_peer().set_id(1);
    msg.mut_from_peer().set_store_id(11);
    msg.mut_to_peer().set_id(2);
    msg.mut_to_peer().set_store_id(12);
    msg.mut_region_epoch().set_conf_ver(3);
    msg.mut_region_epoch().set_version(4);
    msg.set_start_key(b"a".to_vec());
    msg.set_end_key(b"z".to_vec());
    msg.set_message(inner.clone());

    let bytes = msg.write_to_bytes().unwrap();
    let back = raft_serverpb::RaftMessage::parse_from_bytes(&bytes).unwrap();
    assert_eq!(back, msg);
    assert_eq!(back.get_message(), &inner);
    assert_eq!(takes_raft_proto(back.get_message()), 40);
    assert_eq!(back.get_message().get_entries()[0].get_data(), b"payload");
    assert_eq!(
        back.get_message()
            .get_snapshot()
            .get_metadata()
            .get_conf_state()
            .get_voters(),
        &[1, 2, 3]
    );
    assert!(!back.get_is_tombstone());
}

/// Numbers other implementations of the course depend on.
#[test]
fn wire_numbers_match_the_course() {
    assert_eq!(raft_cmdpb::CmdType::Put as i32, 3);
    assert_eq!(raft_cmdpb::CmdType::Snap as i32, 5);
    assert_eq!(raft_cmdpb::AdminCmdType::CompactLog as i32, 3);
    assert_eq!(raft_cmdpb::AdminCmdType::TransferLeader as i32, 4);
    assert_eq!(raft_cmdpb::AdminCmdType::Split as i32, 10);
    assert_eq!(raft_serverpb::PeerState::Applying as i32, 1);
    assert_eq!(raft_serverpb::PeerState::Tombstone as i32, 2);
    assert_eq!(kvrpcpb::Op::Rollback as i32, 2);
    assert_eq!(kvrpcpb::Op::Lock as i32, 3);
    assert_eq!(kvrpcpb::Action::LockNotExistRollback as i32, 2);
    assert_eq!(metapb::StoreState::Tombstone as i32, 2);
    assert_eq!(schedulerpb::ErrorType::REGION_NOT_FOUND as i32, 6);
    assert_eq!(schedulerpb::OperatorStatus::RUNNING as i32, 4);

    let number = |d: &'static protobuf::reflect::MessageDescriptor, field: &str| {
        d.get_field_by_name(field)
            .unwrap_or_else(|| panic!("{}.{field} missing", d.name()))
            .proto()
            .get_number()
    };
    let cases: &[(&'static protobuf::reflect::MessageDescriptor, &str, i32)] = &[
        (
            raft_serverpb::RaftMessage::descriptor_static(),
            "message",
            4,
        ),
        (
            raft_serverpb::RaftMessage::descriptor_static(),
            "end_key",
            8,
        ),
        (
            raft_serverpb::RaftSnapshotData::descriptor_static(),
            "meta",
            5,
        ),
        (
            raft_cmdpb::RaftRequestHeader::descriptor_static(),
            "region_epoch",
            4,
        ),
        (
            raft_cmdpb::RaftRequestHeader::descriptor_static(),
            "term",
            5,
        ),
        (raft_cmdpb::AdminRequest::descriptor_static(), "split", 10),
        (raft_cmdpb::Request::descriptor_static(), "put", 4),
        (errorpb::Error::descriptor_static(), "stale_command", 7),
        (errorpb::Error::descriptor_static(), "store_not_match", 8),
        (kvrpcpb::Context::descriptor_static(), "term", 5),
        (kvrpcpb::RawPutRequest::descriptor_static(), "cf", 4),
        (
            schedulerpb::RegionHeartbeatRequest::descriptor_static(),
            "pending_peers",
            5,
        ),
        (
            schedulerpb::RegionHeartbeatRequest::descriptor_static(),
            "approximate_size",
            10,
        ),
        (
            schedulerpb::RegionHeartbeatResponse::descriptor_static(),
            "target_peer",
            6,
        ),
        (schedulerpb::StoreStats::descriptor_static(), "interval", 15),
    ];
    for (desc, field, expected) in cases {
        assert_eq!(number(desc, field), *expected, "{}.{field}", desc.name());
    }
}

/// Go's gogoproto writes proto3 repeated scalars packed; rust-protobuf 2
/// writes them unpacked. Both forms must decode.
#[test]
fn packed_repeated_scalars_decode() {
    let mut packed = Vec::new();
    put_len_field(&mut packed, 1, b"k");
    let mut ids = Vec::new();
    for id in [5u64, 300, 7] {
        put_varint(&mut ids, id);
    }
    put_len_field(&mut packed, 3, &ids);
    let req = raft_cmdpb::SplitRequest::parse_from_bytes(&packed).unwrap();
    assert_eq!(req.get_split_key(), b"k");
    assert_eq!(req.get_new_peer_ids(), &[5, 300, 7]);
}

/// An enum number this build does not know survives as an unknown field and
/// is written back, rather than failing the whole message.
#[test]
fn unknown_enum_value_is_kept_not_fatal() {
    let mut buf = Vec::new();
    put_varint_field(&mut buf, 1, 99); // Request.cmd_type
    let req = raft_cmdpb::Request::parse_from_bytes(&buf).unwrap();
    assert_eq!(req.get_cmd_type(), raft_cmdpb::CmdType::Invalid);
    assert_eq!(req.write_to_bytes().unwrap(), buf);
}

fn wire_error<M: Message>(bytes: &[u8]) -> ProtobufError {
    match M::parse_from_bytes(bytes) {
        Ok(_) => panic!("{}: {bytes:02x?} decoded", M::descriptor_static().name()),
        Err(e) => e,
    }
}

#[test]
fn corrupted_buffers_are_errors() {
    // A varint longer than ten bytes.
    let e = wire_error::<raft_serverpb::RaftMessage>(
        &[0x08; 1]
            .iter()
            .chain(&[0xff; 11])
            .copied()
            .collect::<Vec<_>>(),
    );
    assert!(
        matches!(e, ProtobufError::WireError(WireError::IncorrectVarint)),
        "{e:?}"
    );

    // region_id (a varint field) sent as length-delimited.
    let mut buf = Vec::new();
    put_len_field(&mut buf, 1, b"xx");
    let e = wire_error::<raft_serverpb::RaftMessage>(&buf);
    assert!(
        matches!(
            e,
            ProtobufError::WireError(WireError::UnexpectedWireType(_))
        ),
        "{e:?}"
    );

    // Field number 0 is never valid.
    let e = wire_error::<metapb::Peer>(&[0x00, 0x01]);
    assert!(
        matches!(e, ProtobufError::WireError(WireError::IncorrectTag(0))),
        "{e:?}"
    );

    // A bytes field (Region.start_key) whose length runs past the end of the
    // buffer. (rust-protobuf 2 is lenient with a *message* field cut at a field
    // boundary: it decodes what is there, so that case is not tested here.)
    let e = wire_error::<metapb::Region>(&[0x12, 0x10, b'a', b'b']);
    assert!(
        matches!(e, ProtobufError::WireError(_) | ProtobufError::IoError(_)),
        "{e:?}"
    );

    // A string field (Store.address) that is not UTF-8.
    let mut buf = Vec::new();
    put_len_field(&mut buf, 2, &[0xc3, 0x28]);
    let e = wire_error::<metapb::Store>(&buf);
    assert!(
        matches!(
            e,
            ProtobufError::Utf8(_) | ProtobufError::WireError(WireError::Utf8Error)
        ),
        "{e:?}"
    );

    // A tag with no value after it.
    let e = wire_error::<raft_cmdpb::RaftCmdRequest>(&[0x0a]);
    assert!(
        matches!(e, ProtobufError::WireError(_) | ProtobufError::IoError(_)),
        "{e:?}"
    );
}

/// Every message: dropping the last byte of its filled encoding is an error,
/// and no prefix or single-byte corruption panics.
#[test]
fn truncated_and_flipped_buffers_never_panic() {
    fn mangle<M: Message>(bytes: &[u8]) -> usize {
        let mut errors = 0;
        if !bytes.is_empty() {
            assert!(
                M::parse_from_bytes(&bytes[..bytes.len() - 1]).is_err(),
                "{}: truncated buffer decoded",
                M::descriptor_static().name()
            );
        }
        for len in 0..bytes.len() {
            errors += usize::from(M::parse_from_bytes(&bytes[..len]).is_err());
        }
        let mut copy = bytes.to_vec();
        for i in 0..copy.len() {
            for flip in [0xff, 0x80, 0x07] {
                copy[i] ^= flip;
                errors += usize::from(M::parse_from_bytes(&copy).is_err());
                copy[i] ^= flip;
            }
        }
        errors
    }

    macro_rules! mangle_all {
        ($reg:expr, $($module:ident :: $ty:ident),* $(,)?) => {{
            let mut errors = 0;
            $(
                let bytes = check_message::<$module::$ty>($reg);
                errors += mangle::<$module::$ty>(&bytes);
            )*
            errors
        }};
    }

    let reg = Registry::new();
    // The messages with the deepest nesting and the most field kinds.
    let errors = mangle_all!(
        &reg,
        raft_serverpb::RaftMessage,
        raft_serverpb::SnapshotChunk,
        raft_serverpb::RaftSnapshotData,
        raft_cmdpb::RaftCmdRequest,
        raft_cmdpb::RaftCmdResponse,
        kvrpcpb::ScanResponse,
        kvrpcpb::PrewriteRequest,
        schedulerpb::RegionHeartbeatResponse,
        schedulerpb::StoreHeartbeatRequest,
        schedulerpb::TsoResponse,
        metapb::Store,
    );
    assert!(errors > 0);
}

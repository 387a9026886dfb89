//! Protocol messages of tinykv-rs.
//!
//! Every component of the course talks in these types: the raft crate in
//! [`eraftpb`], the raftstore in [`raft_cmdpb`] and [`raft_serverpb`], the
//! scheduler in [`schedulerpb`], clients in [`kvrpcpb`], and everyone in
//! [`metapb`] and [`errorpb`]. They are generated at build time from the
//! `.proto` files in `proto/proto/` by rust-protobuf 2.28 (pure Rust, no
//! `protoc`), so they have the usual rust-protobuf 2.x API: `Default`,
//! public proto3 fields, `get_x`/`set_x`/`mut_x`/`take_x` accessors, and
//! [`protobuf::Message`] for `write_to_bytes` / `parse_from_bytes`.
//! Field names and numbers follow the original TinyKV course.
//!
//! | module | what it is for in the course |
//! |---|---|
//! | [`eraftpb`] | Raft itself (stages 2A, 2C, 3A): `Message`, `Entry`, `HardState`, `Snapshot`, `ConfChange`. Re-exported from `raft-proto` 0.7, so a raft-rs node understands our messages. |
//! | [`metapb`] | cluster metadata: `Store`, `Region` with its key range, `RegionEpoch { conf_ver, version }`, `Peer { id, store_id }` |
//! | [`errorpb`] | region errors a client must react to: `NotLeader`, `RegionNotFound`, `KeyNotInRegion`, `EpochNotMatch`, `StaleCommand`, `StoreNotMatch` |
//! | [`raft_cmdpb`] | commands proposed to a region (stages 2B, 3B): `RaftCmdRequest` with normal requests (Get/Put/Delete/Snap) or one admin request (ChangePeer, CompactLog, TransferLeader, Split), and their responses |
//! | [`raft_serverpb`] | what stores send each other (`RaftMessage`, wrapping an `eraftpb::Message`) and what they persist per peer (`RaftLocalState`, `RaftApplyState`, `RegionLocalState`) |
//! | [`schedulerpb`] | the scheduler API (stage 3C): bootstrap, id allocation, store and region heartbeats with their `ChangePeer` / `TransferLeader` answers, `AskSplit`, region lookup |
//! | [`adminpb`] | administration beside the course's services (not in the original): operators handed to the scheduler, a split at a chosen key |
//! | [`kvrpcpb`] | the client API: raw get/put/delete/scan (stage 1) and the Percolator transactions `KvGet`, `KvPrewrite`, `KvCommit`, `KvScan`, `KvCheckTxnStatus`, `KvBatchRollback`, `KvResolveLock` (stage 4) |
//!
//! ```
//! use proto::metapb::{Peer, Region};
//! use proto::raft_serverpb::RaftMessage;
//! use protobuf::Message as _;
//!
//! let mut region = Region::default();
//! region.id = 1;
//! region.mut_peers().push(Peer { id: 2, store_id: 3, ..Default::default() });
//!
//! let mut msg = RaftMessage::default();
//! msg.region_id = 1;
//! msg.mut_message().set_msg_type(proto::eraftpb::MessageType::MsgHeartbeat);
//! msg.set_end_key(region.get_end_key().to_vec());
//!
//! let bytes = msg.write_to_bytes().unwrap();
//! assert_eq!(RaftMessage::parse_from_bytes(&bytes).unwrap(), msg);
//! ```

/// Raft's messages, log entries, hard state, snapshots and conf changes,
/// re-exported from `raft-proto` 0.7 (the raft-rs definitions).
///
/// Names match the course's `eraftpb`, but some enum numbers do not: raft-rs
/// numbers `MsgTransferLeader` 13 and `MsgTimeoutNow` 14 (the Go course uses
/// 11 and 12), and it has types the course never uses (pre-vote, read index,
/// learners, joint consensus). Compare message types by name, not number.
pub use raft_proto::eraftpb;

/// The rust-protobuf output. Generated code names types of imported files as
/// `super::<file>::Type`, so `eraftpb` must be a sibling of the generated
/// modules: re-exporting raft-proto's module here makes `super::eraftpb::Message`
/// *be* `raft_proto::eraftpb::Message`, not a copy of it.
#[allow(
    renamed_and_removed_lints,
    unknown_lints,
    unused_parens,
    mismatched_lifetime_syntaxes,
    elided_lifetimes_in_paths,
    missing_docs,
    clippy::all,
    clippy::pedantic
)]
mod generated {
    pub use raft_proto::eraftpb;

    include!(concat!(env!("OUT_DIR"), "/protos/mod.rs"));
}

/// Cluster metadata: `Cluster`, `Store`, `Region`, `RegionEpoch`, `Peer`.
pub use generated::metapb;

/// Region errors returned to clients; `Error` holds one of `NotLeader`,
/// `RegionNotFound`, `KeyNotInRegion`, `EpochNotMatch`, `StaleCommand`,
/// `StoreNotMatch`.
pub use generated::errorpb;

/// Commands proposed to a region's Raft group (`RaftCmdRequest`) and their
/// answers (`RaftCmdResponse`), normal and admin.
pub use generated::raft_cmdpb;

/// Store-to-store messages (`RaftMessage`, snapshot chunks) and the per-peer
/// persistent state (`RaftLocalState`, `RaftApplyState`, `RegionLocalState`).
pub use generated::raft_serverpb;

/// The client API: raw key-value requests and Percolator transactions.
pub use generated::kvrpcpb;

/// The scheduler API: bootstrap, ids, timestamps, heartbeats and operators.
pub use generated::schedulerpb;

/// Administration calls beside the course's services: an operator handed to the scheduler
/// (`AddOperator`) and a split at a chosen key (`SplitRegion`), as `tinykv-ctl` sends them.
pub use generated::adminpb;

/// The descriptor of the import-only `proto/include/eraftpb.proto`, encoded as
/// a `FileDescriptorProto`. Only tests use it, to check that the file agrees
/// with raft-proto's real `eraftpb`.
#[doc(hidden)]
pub const ERAFTPB_IMPORT_DESCRIPTOR: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/eraftpb_import.desc"));

//! Compiles `proto/*.proto` into Rust with the pure-Rust rust-protobuf 2.28
//! code generator: no `protoc` binary is needed.
//!
//! Outputs in `OUT_DIR`:
//! - `protos/{metapb,errorpb,...}.rs` and `protos/mod.rs`, included by `src/lib.rs`;
//! - `eraftpb_import.desc`: the parsed descriptor of the import-only
//!   `proto/include/eraftpb.proto`, which `tests/eraftpb_import.rs` compares
//!   with raft-proto's real descriptor.

use std::env;
use std::fs;
use std::path::PathBuf;

use protobuf::Message;
use protobuf_codegen_pure::{Codegen, Customize};

/// The files we generate code for, in dependency order.
const PROTOS: &[&str] = &[
    "metapb.proto",
    "errorpb.proto",
    "raft_cmdpb.proto",
    "raft_serverpb.proto",
    "kvrpcpb.proto",
    "schedulerpb.proto",
    "adminpb.proto",
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let proto_dir = manifest_dir.join("proto");
    // Holds eraftpb.proto, which is only parsed to resolve imports: its Rust
    // types come from raft-proto (see src/lib.rs).
    let include_dir = proto_dir.join("include");

    // A directory makes cargo rerun the script when any file under it changes.
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=build.rs");

    let gen_dir = out_dir.join("protos");
    fs::create_dir_all(&gen_dir).expect("create OUT_DIR/protos");

    Codegen::new()
        .out_dir(&gen_dir)
        .includes([&proto_dir, &include_dir])
        .inputs(PROTOS.iter().map(|p| proto_dir.join(p)))
        .customize(Customize {
            gen_mod_rs: Some(true),
            ..Customize::default()
        })
        .run()
        .unwrap_or_else(|e| panic!("generating Rust code from {}: {e}", proto_dir.display()));

    let stub = include_dir.join("eraftpb.proto");
    let parsed = protobuf_codegen_pure::parse_and_typecheck(&[&include_dir], &[&stub])
        .unwrap_or_else(|e| panic!("parsing {}: {e}", stub.display()));
    let descriptor = parsed
        .file_descriptors
        .iter()
        .find(|d| d.get_name() == "eraftpb.proto")
        .expect("eraftpb.proto descriptor");
    let bytes = descriptor
        .write_to_bytes()
        .expect("encode eraftpb descriptor");
    fs::write(out_dir.join("eraftpb_import.desc"), bytes).expect("write eraftpb_import.desc");
}

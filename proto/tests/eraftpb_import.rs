//! `proto/include/eraftpb.proto` is only parsed to resolve imports; the Rust
//! types come from raft-proto. This test keeps the two in agreement: every
//! message and enum the import file declares must exist in raft-proto's
//! compiled `eraftpb` with exactly the same fields and values.

use std::collections::BTreeSet;

use protobuf::descriptor::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto};
use protobuf::Message;

fn import_file() -> FileDescriptorProto {
    FileDescriptorProto::parse_from_bytes(proto::ERAFTPB_IMPORT_DESCRIPTOR)
        .expect("import descriptor decodes")
}

fn fields(m: &DescriptorProto) -> BTreeSet<(String, i32, String, String, String)> {
    m.get_field()
        .iter()
        .map(|f| {
            (
                f.get_name().to_owned(),
                f.get_number(),
                format!("{:?}", f.get_label()),
                format!("{:?}", f.get_field_type()),
                f.get_type_name().to_owned(),
            )
        })
        .collect()
}

fn values(e: &EnumDescriptorProto) -> BTreeSet<(String, i32)> {
    e.get_value()
        .iter()
        .map(|v| (v.get_name().to_owned(), v.get_number()))
        .collect()
}

#[test]
fn import_file_matches_raft_proto() {
    let import = import_file();
    let real = raft_proto::eraftpb::file_descriptor_proto();
    assert_eq!(import.get_package(), real.get_package());
    assert_eq!(import.get_syntax(), real.get_syntax());

    assert!(!import.get_message_type().is_empty());
    for m in import.get_message_type() {
        let r = real
            .get_message_type()
            .iter()
            .find(|r| r.get_name() == m.get_name())
            .unwrap_or_else(|| panic!("raft-proto has no message {}", m.get_name()));
        assert_eq!(fields(m), fields(r), "message {}", m.get_name());
    }
    for e in import.get_enum_type() {
        let r = real
            .get_enum_type()
            .iter()
            .find(|r| r.get_name() == e.get_name())
            .unwrap_or_else(|| panic!("raft-proto has no enum {}", e.get_name()));
        assert_eq!(values(e), values(r), "enum {}", e.get_name());
    }
}

/// Every eraftpb type our files refer to is declared in the import file.
#[test]
fn import_file_declares_every_referenced_type() {
    let import = import_file();
    let declared: BTreeSet<String> = import
        .get_message_type()
        .iter()
        .map(|m| m.get_name())
        .chain(import.get_enum_type().iter().map(|e| e.get_name()))
        .map(|n| format!(".eraftpb.{n}"))
        .collect();

    let files = [
        proto::metapb::file_descriptor_proto(),
        proto::errorpb::file_descriptor_proto(),
        proto::raft_cmdpb::file_descriptor_proto(),
        proto::raft_serverpb::file_descriptor_proto(),
        proto::kvrpcpb::file_descriptor_proto(),
        proto::schedulerpb::file_descriptor_proto(),
    ];
    let mut referenced = BTreeSet::new();
    for file in files {
        for m in file.get_message_type() {
            for f in m.get_field() {
                if f.get_type_name().starts_with(".eraftpb.") {
                    referenced.insert(f.get_type_name().to_owned());
                }
            }
        }
    }
    for name in [
        ".eraftpb.Message",
        ".eraftpb.HardState",
        ".eraftpb.ConfChangeType",
    ] {
        assert!(referenced.contains(name), "{name} should be referenced");
    }
    assert!(
        referenced.is_subset(&declared),
        "{referenced:?} not all in {declared:?}"
    );
}

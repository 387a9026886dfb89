//! The crate's error type, and how region errors reach clients.
//!
//! Two kinds of errors share [`Error`]: failures of the store itself (engine, raft, corrupt
//! persisted state) and **region errors** that tell a client to retry elsewhere or with fresher
//! region information (`NotLeader`, `RegionNotFound`, `KeyNotInRegion`, `EpochNotMatch`,
//! `StaleCommand`, `StoreNotMatch`). `errorpb::Error::from(&err)` turns either kind into what a
//! client sees in a response header: region errors fill their `errorpb` field, everything else
//! only the `message`.

use proto::{errorpb, metapb};

/// Everything that can go wrong in the raftstore.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The storage engine failed (I/O, a closed engine, a value that does not decode).
    #[error("engine: {0}")]
    Engine(#[from] engine::Error),
    /// The raft core refused or failed.
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// Persisted state breaks an invariant (e.g. a last index below the applied index).
    #[error("corrupt state: {0}")]
    Corrupt(String),
    /// The store's engines already hold state, so they cannot be bootstrapped again.
    #[error("cannot bootstrap: the {0} engine is not empty (already bootstrapped, or old data)")]
    StoreNotEmpty(&'static str),
    /// A client command that can never succeed as sent: no requests, an unknown request type
    /// or column family, an empty key. Retrying it elsewhere does not help.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Anything else, described.
    #[error("{0}")]
    Other(String),

    /// The peer that got the request is not its region's leader.
    #[error("region {region_id} is not led by this peer (leader: {leader:?})")]
    NotLeader {
        /// The region the request was for.
        region_id: u64,
        /// The leader this peer knows of, a hint where to retry.
        leader: Option<metapb::Peer>,
    },
    /// This store has no peer of the region.
    #[error("region {0} is not found")]
    RegionNotFound(u64),
    /// A key of the request lies outside the region's range.
    #[error("key {key:02x?} is not in region {} [{:02x?}, {:02x?})", region.id, region.start_key, region.end_key)]
    KeyNotInRegion {
        /// The offending key.
        key: Vec<u8>,
        /// The region the key was checked against (boxed: it is large, errors should not be).
        region: Box<metapb::Region>,
    },
    /// The request's region epoch is not the region's current one.
    #[error("epoch not match: {message}")]
    EpochNotMatch {
        /// What differed.
        message: String,
        /// The regions now covering the range, for the client to refresh from.
        regions: Vec<metapb::Region>,
    },
    /// The proposal was overtaken (leader change, overwritten log) and will never apply.
    #[error("stale command")]
    StaleCommand,
    /// The request was addressed to another store.
    #[error("store not match: request for store {to_store_id}, this is store {my_store_id}")]
    StoreNotMatch {
        /// The store the request named.
        to_store_id: u64,
        /// The store that received it.
        my_store_id: u64,
    },
}

/// The crate's result alias.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for [`Error::Other`].
    pub fn other(msg: impl Into<String>) -> Error {
        Error::Other(msg.into())
    }

    /// Shorthand for [`Error::Corrupt`].
    pub fn corrupt(msg: impl Into<String>) -> Error {
        Error::Corrupt(msg.into())
    }
}

impl From<&Error> for errorpb::Error {
    /// The client's view of an error: the message always, plus the matching `errorpb` field
    /// for region errors (the field tells the client how to retry).
    fn from(e: &Error) -> errorpb::Error {
        let mut pb = errorpb::Error {
            message: e.to_string(),
            ..Default::default()
        };
        match e {
            Error::NotLeader { region_id, leader } => {
                let nl = pb.mut_not_leader();
                nl.region_id = *region_id;
                if let Some(l) = leader {
                    nl.set_leader(l.clone());
                }
            }
            Error::RegionNotFound(region_id) => pb.mut_region_not_found().region_id = *region_id,
            Error::KeyNotInRegion { key, region } => {
                let k = pb.mut_key_not_in_region();
                k.key = key.clone();
                k.region_id = region.id;
                k.start_key = region.start_key.clone();
                k.end_key = region.end_key.clone();
            }
            Error::EpochNotMatch { regions, .. } => {
                pb.mut_epoch_not_match()
                    .set_current_regions(regions.clone().into());
            }
            Error::StaleCommand => {
                pb.mut_stale_command();
            }
            Error::StoreNotMatch {
                to_store_id,
                my_store_id,
            } => {
                let s = pb.mut_store_not_match();
                s.request_store_id = *to_store_id;
                s.actual_store_id = *my_store_id;
            }
            Error::Engine(_)
            | Error::Raft(_)
            | Error::Corrupt(_)
            | Error::StoreNotEmpty(_)
            | Error::InvalidRequest(_)
            | Error::Other(_) => {}
        }
        pb
    }
}

impl From<Error> for errorpb::Error {
    fn from(e: Error) -> errorpb::Error {
        errorpb::Error::from(&e)
    }
}

impl From<Error> for raft::Error {
    /// What raft sees when a [`raft::Storage`] call on a peer storage fails: raft's own errors
    /// pass through, anything else is a storage failure described by its message.
    fn from(e: Error) -> raft::Error {
        match e {
            Error::Raft(e) => e,
            other => raft::Error::Store(raft::StorageError::Other(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(id: u64, start: &[u8], end: &[u8]) -> metapb::Region {
        metapb::Region {
            id,
            start_key: start.to_vec(),
            end_key: end.to_vec(),
            ..Default::default()
        }
    }

    // The original's TestRaftstoreErrToPbError, plus the message and the non-region errors.
    #[test]
    fn region_errors_map_onto_their_errorpb_fields() {
        let pb = errorpb::Error::from(&Error::NotLeader {
            region_id: 1,
            leader: None,
        });
        assert!(pb.has_not_leader());
        assert_eq!(pb.get_not_leader().region_id, 1);
        assert!(!pb.get_not_leader().has_leader());
        assert!(!pb.message.is_empty());

        let leader = metapb::Peer {
            id: 3,
            store_id: 4,
            ..Default::default()
        };
        let pb = errorpb::Error::from(&Error::NotLeader {
            region_id: 1,
            leader: Some(leader.clone()),
        });
        assert_eq!(pb.get_not_leader().get_leader(), &leader);

        let pb = errorpb::Error::from(&Error::RegionNotFound(1));
        assert_eq!(pb.get_region_not_found().region_id, 1);

        let r = region(1, &[0], &[1]);
        let pb = errorpb::Error::from(&Error::KeyNotInRegion {
            key: vec![2],
            region: Box::new(r.clone()),
        });
        let k = pb.get_key_not_in_region();
        assert_eq!(
            (
                k.key.as_slice(),
                k.region_id,
                k.start_key.as_slice(),
                k.end_key.as_slice()
            ),
            (&[2u8][..], 1, &[0u8][..], &[1u8][..])
        );

        let pb = errorpb::Error::from(&Error::EpochNotMatch {
            message: "stale".into(),
            regions: vec![r.clone()],
        });
        assert_eq!(pb.get_epoch_not_match().get_current_regions(), &[r][..]);

        let pb = errorpb::Error::from(&Error::StaleCommand);
        assert!(pb.has_stale_command());

        let pb = errorpb::Error::from(&Error::StoreNotMatch {
            to_store_id: 1,
            my_store_id: 2,
        });
        let s = pb.get_store_not_match();
        assert_eq!((s.request_store_id, s.actual_store_id), (1, 2));
    }

    #[test]
    fn other_errors_carry_only_a_message() {
        let pb = errorpb::Error::from(Error::other("boom"));
        assert_eq!(pb.message, "boom");
        assert!(
            !pb.has_not_leader()
                && !pb.has_region_not_found()
                && !pb.has_key_not_in_region()
                && !pb.has_epoch_not_match()
                && !pb.has_stale_command()
                && !pb.has_store_not_match()
        );
    }

    #[test]
    fn raft_sees_its_own_errors_unchanged() {
        let e: raft::Error = Error::Raft(raft::Error::ProposalDropped).into();
        assert_eq!(e, raft::Error::ProposalDropped);
        let e: raft::Error = Error::corrupt("hole").into();
        assert!(
            matches!(e, raft::Error::Store(raft::StorageError::Other(m)) if m.contains("hole"))
        );
    }
}

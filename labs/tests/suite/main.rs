//! The graded suites, one module a stage, each switched on by the cargo feature of its stage.
//! Test names end in their stage (`raw_get_1`, `leader_election_2aa`) so name filters work too.

#[cfg(feature = "1")]
mod stage_1;

#[cfg(feature = "3c")]
mod balance_3c;
#[cfg(feature = "3c")]
mod operator_3c;
#[cfg(feature = "3c")]
mod scheduler_3c;

#[cfg(feature = "2b")]
mod cluster_2b;
#[cfg(feature = "2c")]
mod cluster_2c;
#[cfg(feature = "3b")]
mod cluster_3b;
#[cfg(feature = "3c")]
mod cluster_3c;
#[cfg(feature = "2b")]
mod crash_points_2b;
#[cfg(feature = "2c")]
mod crash_points_2c;
#[cfg(feature = "3b")]
mod crash_points_3b;
#[cfg(feature = "2b")]
mod peer_storage_2b;
#[cfg(feature = "2c")]
mod peer_storage_2c;
#[cfg(feature = "2c")]
mod snapshot_faults_2c;
#[cfg(feature = "3b")]
mod store_3b;

#[cfg(feature = "2aa")]
mod raft_2aa;
#[cfg(feature = "2ab")]
mod raft_2ab;
#[cfg(feature = "2ac")]
mod raft_2ac;
#[cfg(feature = "2c")]
mod raft_2c;
#[cfg(feature = "3a")]
mod raft_3a;
#[cfg(any(
    feature = "2aa",
    feature = "2ab",
    feature = "2ac",
    feature = "2c",
    feature = "3a"
))]
mod raft_common;
#[cfg(any(feature = "2ab", feature = "3a"))]
mod raft_fuzz;
#[cfg(any(feature = "2ab", feature = "2c", feature = "3a"))]
mod raft_safety;

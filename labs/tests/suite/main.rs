//! The graded suites, one module a stage, each switched on by the cargo feature of its stage.
//! Test names end in their stage (`raw_get_1`, `leader_election_2aa`) so name filters work too.

#[cfg(feature = "1")]
mod stage_1;

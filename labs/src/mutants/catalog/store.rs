//! Classic bugs in the standalone server (1) and the raftstore (2b, the store half of 2c).

use crate::mutants::Mutant;

/// The store entries.
pub const ENTRIES: &[Mutant] = &[];

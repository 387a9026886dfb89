//! The scratch copy of the tree that mutants are applied to (in progress).

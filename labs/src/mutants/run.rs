//! Running the catalog (in progress).

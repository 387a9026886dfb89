//! The schedulers and checkers that produce operators.

pub mod balance_region;
pub mod replica_checker;

pub use balance_region::{BalanceRegionScheduler, BALANCE_REGION_RETRY_LIMIT};
pub use replica_checker::ReplicaChecker;

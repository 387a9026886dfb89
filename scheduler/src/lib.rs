//! The placement driver (stage 3c of the course).
//!
//! This crate will hold the scheduler's cluster view, built from region and store heartbeats
//! (`process_region_heartbeat`: reject stale epochs, replace overlapping regions, keep per-store
//! counts and sizes), the operators it sends back to region leaders (add/remove peer, transfer
//! leader), and the balance-region scheduler that moves replicas from the fullest stores to the
//! emptiest. It depends on `proto` only; stores reach it through a `SchedulerClient` trait.

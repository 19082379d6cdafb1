//! Tributary: a Kubernetes operator for a multi-tenant Kafka + Cassandra platform.

pub use tributary_api as api;
pub mod access;
pub mod config;
pub mod controller;
pub mod error;
pub mod external;
pub mod http;
pub mod login;
pub mod metrics;
pub mod operator;
pub mod resync;
pub mod sink;
pub mod status;
pub mod step;
pub mod tenancy;
pub mod tenant;
#[cfg(test)]
mod testing;
pub mod topic;
pub mod user;
pub mod watch;

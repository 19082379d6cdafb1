//! The CassandraSink controller (Kubernetes side): the table, the sink's Kafka user, its
//! rendered config and its Deployment. The data path itself is the `tributary-sink` crate.

pub mod autoscale;
pub mod build;
mod cleanup;
pub mod reconcile;
pub mod replay;
pub mod report;
pub mod table;
mod workload;

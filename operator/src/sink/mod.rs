//! The CassandraSink controller (Kubernetes side). The sink runtime and the Cassandra
//! provisioning plug in here.

pub mod build;
pub mod mapping;
pub mod reconcile;
pub mod runtime;
pub mod table;

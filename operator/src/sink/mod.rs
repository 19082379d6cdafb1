//! The CassandraSink controller (Kubernetes side). The sink runtime and the Cassandra
//! provisioning plug in here.

pub mod mapping;
pub mod reconcile;
pub mod table;

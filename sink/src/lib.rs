//! `tributary-sink`, the data path: consume one topic, map each record to a row, write it to
//! Cassandra, commit only what Cassandra acknowledged. Its own crate, so the sink does not
//! link the operator's Kubernetes client, leader election or admin clients, and the operator
//! does not link the row mapper. What it reads from the operator is
//! [`tributary_api::contract::SinkConfig`].

pub mod health;
pub mod mapping;
pub mod metrics;
pub mod runtime;
pub mod write;

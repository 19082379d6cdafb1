//! `tributary-sink`, the data path: consume one topic, map each record to a row, write it to
//! Cassandra, commit only what Cassandra acknowledged. Its own crate, so the sink does not
//! link the operator's Kubernetes client, leader election or admin clients, and the operator
//! does not link the row mapper. What it reads from the operator is
//! [`tributary_api::contract::SinkConfig`].

pub mod avro;
pub mod health;
pub mod mapping;
pub mod metrics;
pub mod offsets;
pub mod runtime;
/// The demo's seed records (also what the tests and benchmarks produce), and the
/// `tributary-seed` producer beside the sink: both speak to Kafka through librdkafka.
pub mod seed;
pub mod write;

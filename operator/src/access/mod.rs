//! The access model, apart from the adapters that carry it out: who may do what in Kafka
//! (ACLs, SCRAM credentials, client quotas) and in Cassandra (grants, replication), as plain
//! values and the pure diffs between what is wanted and what is live. `external/` depends on
//! this module, never the reverse.

pub mod cassandra;
pub mod kafka;
pub mod quotas;

//! The only code that talks to Kafka brokers: one client ([`KafkaClient`]) that speaks the
//! Kafka protocol itself ([`wire`] frames and logs in, [`calls`] builds each request and
//! reads its answer), with one classification of Kafka's errors ([`error`]).

pub mod access_calls;
pub mod batch;
mod batched;
pub mod calls;
pub mod client;
pub mod error;
mod guarded;
pub mod log_dirs;
pub mod topics;
pub mod wire;

// The access model's values, which these calls carry, for the tests and tools.
pub use crate::access::kafka::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, ConfigOp, DEFAULT_SCRAM_ITERATIONS, PatternType,
    ResourceType, ScramChange, ScramMechanism, operator_acls, user_principal,
};
pub use crate::access::quotas;
pub use client::{ClientSettings, SASL_MECHANISM};
pub use error::KafkaCallError;
pub use guarded::Guarded;
pub use topics::{KafkaAdmin, KafkaClient, KafkaPlatform, KafkaSecurity};

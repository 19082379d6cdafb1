//! The only code that talks to Kafka brokers.
//!
//! rdkafka's safe Admin API covers topics and configs; [`admin_ext`] adds the admin calls
//! librdkafka has but the crate does not wrap (SCRAM credentials, ACLs, incremental configs).

pub mod acl;
pub mod admin_ext;
pub mod batch;
mod batched;
pub mod client;
pub mod error;
mod guarded;
mod native;
pub mod quotas;
pub mod topics;

pub use acl::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, AdminExtError, ConfigOp, DEFAULT_SCRAM_ITERATIONS,
    ItemError, PatternType, ResourceType, ScramChange, ScramMechanism, operator_acls, user_principal,
};
pub use admin_ext::AdminExt;
pub use client::{ClientSettings, CreateClient, SASL_MECHANISM};
pub use error::KafkaCallError;
pub use guarded::Guarded;
pub use topics::{KafkaAdmin, KafkaPlatform, KafkaSecurity, RdKafkaAdmin};

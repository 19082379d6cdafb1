//! The Topic controller: one Kafka topic under its tenant's prefix.

pub mod build;
pub mod model;
pub mod reconcile;
pub mod validate;

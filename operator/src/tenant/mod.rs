//! The Tenant controller: namespace, credentials Secret and the status roll-up.

pub mod build;
pub mod claim;
mod cleanup;
pub mod fence;
pub mod reconcile;
mod retire;
pub mod rotation;
pub mod usage;
pub mod validate;

pub use validate::{ValidatedTenant, Validations, validate};

//! Applications and sharing: the KafkaUser controller (one application's least-privilege
//! login in its tenant) and the TopicGrant controller (a tenant sharing its topics).

pub mod grant;
pub mod reconcile;
pub mod validate;

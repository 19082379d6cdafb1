//! The middle of the test pyramid: reconcile flows run against an in-memory Kubernetes API
//! ([`api::FakeApi`]) and in-memory Kafka and Cassandra ([`fakes`]), in milliseconds and
//! without a stack, as kube-rs/controller-rs does with its `Scenario` fixtures. They check
//! what a reconcile writes where; the real-stack tests in `tests/` stay the proof that the
//! adapters and the real systems behave as these fakes assume.

pub mod api;
pub mod fakes;
mod scenarios;

use std::sync::Arc;

use serde_json::{Value, json};

use crate::config::Config;
use crate::controller::Context;
use crate::metrics::Metrics;
use crate::tenancy::TenancyCache;

/// A context wired to the fakes, and the fakes themselves.
pub struct Scenario {
    pub api: api::FakeApi,
    pub kafka: Arc<fakes::FakeKafka>,
    pub cassandra: Arc<fakes::FakeCassandra>,
    pub ctx: Arc<Context>,
    /// What fills the context's watched copies (see [`Scenario::sync_watches`]).
    feeders: std::sync::Mutex<crate::watch::Feeders>,
}

impl Scenario {
    pub fn new() -> Self {
        let api = api::FakeApi::default();
        let kafka = Arc::new(fakes::FakeKafka::default());
        let cassandra = Arc::new(fakes::FakeCassandra::default());
        let settings = [
            ("KAFKA_BOOTSTRAP", "kafka:9092"),
            ("KAFKA_ADMIN_USER", "admin"),
            ("KAFKA_ADMIN_PASSWORD", "admin-secret"),
            ("CASSANDRA_CONTACT", "cassandra:9042"),
            ("CASSANDRA_ADMIN_USER", "cassandra"),
            ("CASSANDRA_ADMIN_PASSWORD", "cassandra"),
            ("POD_NAME", "operator-0"),
            // As the chart sets them: the operator binds its Secrets role in each tenant namespace.
            ("TRIBUTARY_SECRETS_ROLE", "tributary-tenant-secrets"),
            ("TRIBUTARY_SERVICE_ACCOUNT", "tributary"),
        ];
        let config = Config::from_lookup(|k| settings.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
            .expect("test config");
        let client = api.client();
        let (watches, feeders) = crate::watch::Watches::fed();
        let ctx = Context::new(
            client,
            Arc::new(config),
            Arc::new(Metrics::default()),
            kafka.clone(),
            cassandra.clone(),
            // Empty copies: every lookup falls through to the fake API.
            TenancyCache::empty(),
            watches,
        );
        Scenario { api, kafka, cassandra, ctx, feeders: std::sync::Mutex::new(feeders) }
    }

    /// The watched copies of Tenants, Topics and sinks hold what the fake API holds now, as
    /// the operator's watches would by the time a change of them triggers a reconcile.
    pub fn sync_watches(&self) {
        let mut feeders = self.feeders.lock().unwrap();
        feeders.0.relist(self.api.objects_of("tenants"));
        feeders.1.relist(self.api.objects_of("topics"));
        feeders.2.relist(self.api.objects_of("cassandrasinks"));
    }

    /// Nothing written anywhere since the last `take_*`: the API (events aside), Kafka and
    /// Cassandra. Returns what was written, for the assertion's message.
    pub fn writes(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        let api = self.api.take_writes().into_iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        (api, self.kafka.take_writes(), self.cassandra.take_writes())
    }
}

pub const TENANTS: &str = "/apis/tributary.dev/v1alpha1/tenants";

pub fn tenant_path(name: &str) -> String {
    format!("{TENANTS}/{name}")
}

pub fn namespaced(ns: &str, plural: &str, name: &str) -> String {
    let group = if matches!(plural, "topics" | "cassandrasinks") { "/apis/tributary.dev/v1alpha1" } else { "/api/v1" };
    let group = if plural == "deployments" { "/apis/apps/v1" } else { group };
    format!("{group}/namespaces/{ns}/{plural}/{name}")
}

/// A Tenant named `name` with the finalizer already on (the step before is kube's own).
pub fn tenant(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "Tenant",
        "metadata": {"name": name, "finalizers": [crate::tenant::reconcile::FINALIZER]},
        "spec": spec,
    })
}

/// A Topic with the finalizer already on.
pub fn topic(ns: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "Topic",
        "metadata": {"name": name, "namespace": ns, "finalizers": [crate::topic::reconcile::FINALIZER]},
        "spec": spec,
    })
}

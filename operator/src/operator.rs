//! The operator process: CRD check, probes and metrics, leader election, controllers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, CustomResourceExt};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

use crate::api::signal::shutdown_signal;
use crate::api::{CassandraSink, KafkaUser, Tenant, Topic, TopicGrant};
use crate::config::Config;
use crate::controller::Context;
use crate::external::cassandra::ScyllaAdmin;
use crate::external::kafka::{Guarded, KafkaClient};
use crate::external::{BREAKER_COOL_DOWN, Breaker};
use crate::http::{self, Health};
use crate::metrics::Metrics;
use crate::tenancy::TenancyCache;
use crate::watch::Watches;

pub const LEASE_NAME: &str = "tributary-operator";
/// Bound on every Kafka admin call.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(15);
const CASSANDRA_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot reach the Kubernetes API: {0}. Check KUBECONFIG (locally: eval \"$(make -s stack-env)\")")]
    Kube(#[source] kube::Error),
    #[error(
        "CRD {0} is not installed or not established: install the CRDs first (make install-crds, or the Helm chart)"
    )]
    MissingCrd(String),
    #[error("namespace {0} for the leader-election Lease does not exist: create it or set TRIBUTARY_NAMESPACE")]
    MissingNamespace(String),
    #[error("leader election failed: {0}")]
    Lease(String),
    #[error("cannot create the Kafka admin client: {0}")]
    Kafka(String),
    #[error("{0}")]
    Tls(String),
    #[error("the metrics/health server failed: {0}")]
    Http(#[from] std::io::Error),
}

/// The certificates of the brokers and of Cassandra, checked once at start-up against the
/// configured CAs: a wrong CA or name stops the operator with a message that says so (calls
/// would only time out). Servers that do not answer yet are left to the reconciles.
async fn check_tls(config: &Config) -> Result<(), StartError> {
    use crate::api::tls::check_certificates;
    if config.kafka.tls() {
        let (ca, bootstrap) = (config.kafka.ca_pem.as_deref(), &config.kafka.bootstrap_servers);
        check_certificates("Kafka (KAFKA_CA_FILE)", ca, bootstrap).await.map_err(StartError::Tls)?;
    }
    if let Some(ca) = &config.cassandra.ca_pem {
        let contact_points = config.cassandra.contact_points.join(",");
        check_certificates("Cassandra (CASSANDRA_CA_FILE)", Some(ca), &contact_points)
            .await
            .map_err(StartError::Tls)?;
    }
    Ok(())
}

pub async fn run() -> Result<(), StartError> {
    let config = Arc::new(Config::from_env()?);
    let client = Client::try_default().await.map_err(StartError::Kube)?;
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::default());
    let http = tokio::spawn(http::serve(config.http_addr, metrics.clone(), health.clone()));

    check_crds(&client).await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(&config.lease_namespace).await.map_err(StartError::Kube)?.is_none() {
        return Err(StartError::MissingNamespace(config.lease_namespace.clone()));
    }
    check_tls(&config).await?;
    let kafka = KafkaClient::new(&config.kafka, KAFKA_TIMEOUT, metrics.clone());
    let cassandra = ScyllaAdmin::new(config.cassandra.clone(), CASSANDRA_TIMEOUT, metrics.clone());
    let kafka = Guarded::new(
        kafka,
        Breaker::new(BREAKER_COOL_DOWN, KAFKA_TIMEOUT).reporting(metrics.unreachable("kafka")),
        metrics.clone(),
    );
    let watches = Watches::start(&client);
    let tenancy = TenancyCache::start(&client, watches.tenants.watched.store.clone());
    let (kafka, cassandra) = (Arc::new(kafka), Arc::new(cassandra));
    let ctx = Context::new(client.clone(), config.clone(), metrics.clone(), kafka, cassandra, tenancy, watches);

    let lease = LeaseManagerBuilder::new(client.clone(), LEASE_NAME)
        .with_namespace(&config.lease_namespace)
        .with_identity(&config.identity)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await
        .map_err(|e| StartError::Lease(e.to_string()))?;
    let (mut leader, lease_task) = lease.watch().await;
    health.ready.store(true, Ordering::Relaxed);
    tracing::info!(identity = %config.identity, lease = LEASE_NAME, namespace = %config.lease_namespace, "waiting to become the leader");

    let terminate = shutdown_signal().shared();
    tokio::select! {
        _ = terminate.clone() => { tracing::info!("terminating before becoming the leader"); return Ok(()); }
        result = leader.wait_for(|is_leader| *is_leader) => { result.map_err(|e| StartError::Lease(e.to_string()))?; }
    }
    metrics.leader.set(1);
    tracing::info!(identity = %config.identity, "became the leader; starting controllers");

    let lost_leadership = run_controllers(&ctx, &mut leader, terminate).await;
    metrics.leader.set(0);
    // Dropping the receiver makes the lease task release the Lease, so a standby takes over at once.
    drop(leader);
    let _ = tokio::time::timeout(Duration::from_secs(5), lease_task).await;
    http.abort();
    if lost_leadership { Err(StartError::Lease("lost the leader Lease".into())) } else { Ok(()) }
}

/// The three controllers, each on a task of its own, until SIGTERM or the loss of the Lease
/// (another replica may act now). Returns whether the Lease was lost.
async fn run_controllers(
    ctx: &Arc<Context>,
    leader: &mut watch::Receiver<bool>,
    terminate: impl std::future::Future<Output = ()>,
) -> bool {
    // Controllers stop on SIGTERM, or when the Lease is lost (another replica may act now).
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let stop = async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }
    .shared();
    // Each controller on a task of its own: kube polls reconciles inside the controller's
    // stream, so a controller awaited here would run every reconcile on the main thread (the
    // one `block_on` drives), one at a time, woken from the worker threads after each reply.
    let controllers = futures::future::join_all([
        tokio::spawn(crate::tenant::reconcile::run(ctx.clone(), stop.clone())),
        tokio::spawn(crate::topic::reconcile::run(ctx.clone(), stop.clone())),
        tokio::spawn(crate::sink::reconcile::run(ctx.clone(), stop.clone())),
        tokio::spawn(crate::user::reconcile::run(ctx.clone(), stop.clone())),
        tokio::spawn(crate::user::grant::run(ctx.clone(), stop.clone())),
    ])
    .map(|ended| {
        for result in ended {
            // A controller that panicked takes the process with it, as when it ran inline.
            if let Err(e) = result
                && e.is_panic()
            {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    });
    tokio::pin!(controllers);
    tokio::select! {
        _ = &mut controllers => false,
        _ = terminate => {
            tracing::info!("SIGTERM: stopping controllers");
            let _ = stop_tx.send(true);
            controllers.await;
            false
        }
        _ = leader.wait_for(|is_leader| !*is_leader) => {
            tracing::error!("lost the leader Lease; stopping controllers");
            let _ = stop_tx.send(true);
            controllers.await;
            true
        }
    }
}

async fn check_crds(client: &Client) -> Result<(), StartError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let names = [Tenant::crd_name(), Topic::crd_name(), CassandraSink::crd_name()];
    for name in names.into_iter().chain([KafkaUser::crd_name(), TopicGrant::crd_name()]) {
        let established = await_condition(crds.clone(), name, conditions::is_crd_established());
        match tokio::time::timeout(Duration::from_secs(10), established).await {
            Ok(Ok(Some(_))) => {}
            _ => return Err(StartError::MissingCrd(name.to_string())),
        }
    }
    Ok(())
}

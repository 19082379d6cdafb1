//! CassandraSink reconcile: resolve the tenant and the Topic, report status.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use super::table::{check_mapping, create_table_cql};
use crate::api::conditions::{self, ConditionStatus, DesiredCondition, READY};
use crate::api::{CassandraSink, CassandraSinkStatus, Topic};
use crate::controller::{Context, Error, Result, error_policy, object_key, patch_status};
use crate::external::cassandra::CassandraCallError;
use crate::tenancy::{Tenancy, resolve};

const KIND: &str = "CassandraSink";
const RETRY: Duration = Duration::from_secs(15);
/// Condition: the table exists and matches the sink's columns and keys.
pub const MAPPING_VALID: &str = "MappingValid";

pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let controller = Controller::new(Api::<CassandraSink>::all(client.clone()), watcher::Config::default());
    // A sink is re-checked when its Topic changes (readiness, Kafka name).
    let sinks = controller.store();
    let sinks_of_topic = move |topic: Topic| {
        let (ns, name) = (topic.namespace(), topic.name_any());
        sinks
            .state()
            .into_iter()
            .filter(|s| s.namespace() == ns && s.spec.topic == name)
            .map(|s| ObjectRef::from_obj(s.as_ref()))
            .collect::<Vec<_>>()
    };
    controller
        .watches(Api::<Topic>::all(client), watcher::Config::default(), sinks_of_topic)
        .with_config(ControllerConfig::default().concurrency(ctx.config.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, |obj, err, ctx| error_policy(KIND, obj.as_ref(), err, &ctx), ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

async fn reconcile(sink: Arc<CassandraSink>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(KIND);
    let namespace = sink.namespace().ok_or(Error::Missing("metadata.namespace"))?;
    let api: Api<CassandraSink> = Api::namespaced(ctx.client.clone(), &namespace);
    let old = sink.status.as_ref();
    let mut status =
        CassandraSinkStatus { observed_generation: sink.metadata.generation, ..old.cloned().unwrap_or_default() };

    let mut mapping: Option<DesiredCondition> = None;
    let mut failure = None;
    let (ready, action) = match resolve(&ctx.client, &namespace).await? {
        Tenancy::None(message) => {
            status.tenant = None;
            (DesiredCondition::not_ready("NoTenant", message), Action::requeue(RETRY))
        }
        Tenancy::Tenant(tenant_object, _)
            if tenant_object.status.as_ref().and_then(|s| conditions::status_of(&s.conditions, READY))
                != Some("True") =>
        {
            status.tenant = Some(tenant_object.name_any());
            let message = format!("Tenant {} is not ready yet (its keyspace may not exist)", tenant_object.name_any());
            (DesiredCondition::not_ready("TenantNotReady", message), Action::requeue(RETRY))
        }
        Tenancy::Tenant(_, tenant) => {
            let table = format!("{}.{}", tenant.keyspace, sink.spec.table);
            status.tenant = Some(tenant.name.clone());
            status.table = Some(table.clone());
            status.consumer_group = Some(format!("{}sink.{}", tenant.group_prefix, sink.name_any()));
            let topic = Api::<Topic>::namespaced(ctx.client.clone(), &namespace).get_opt(&sink.spec.topic).await?;
            match topic {
                None => (
                    DesiredCondition::not_ready(
                        "TopicNotFound",
                        format!(
                            "Topic {} does not exist in namespace {namespace}: create it or fix spec.topic",
                            sink.spec.topic
                        ),
                    ),
                    Action::requeue(RETRY),
                ),
                Some(t)
                    if t.status.as_ref().and_then(|s| conditions::status_of(&s.conditions, READY)) != Some("True") =>
                {
                    (
                        DesiredCondition::not_ready(
                            "TopicNotReady",
                            format!("Topic {} is not ready yet", sink.spec.topic),
                        ),
                        Action::requeue(RETRY),
                    )
                }
                Some(_) => match ensure_table(&ctx, &sink, &tenant.keyspace).await {
                    Ok(Ok(())) => {
                        mapping = Some(DesiredCondition::new(
                            MAPPING_VALID,
                            ConditionStatus::True,
                            "TableMatches",
                            format!("table {table} has the sink's columns and keys"),
                        ));
                        let message =
                            format!("table {table} is ready; this operator build does not yet run sink Deployments");
                        (DesiredCondition::not_ready("SinkNotDeployed", message), ctx.resync())
                    }
                    Ok(Err(mismatch)) => {
                        mapping = Some(DesiredCondition::new(
                            MAPPING_VALID,
                            ConditionStatus::False,
                            "ColumnMismatch",
                            mismatch.clone(),
                        ));
                        let message = format!("{mismatch}. No sink pod starts until the mapping matches the table");
                        // The table can be altered outside Kubernetes: look again on resync.
                        (DesiredCondition::not_ready("MappingInvalid", message), ctx.resync())
                    }
                    Err(e) if e.transient => {
                        failure = Some(Error::Cassandra(e.to_string()));
                        let message = format!("{e}; retrying. Check that Cassandra is up");
                        (DesiredCondition::not_ready("CassandraUnavailable", message), Action::await_change())
                    }
                    Err(e) => {
                        let message = format!("{e}; change the CassandraSink's spec");
                        (DesiredCondition::not_ready("CassandraRejected", message), Action::await_change())
                    }
                },
            }
        }
    };
    status.conditions = conditions::merge(
        old.map(|s| s.conditions.as_slice()).unwrap_or_default(),
        &[Some(ready.clone()), mapping].into_iter().flatten().collect::<Vec<_>>(),
        sink.metadata.generation,
        Timestamp::now(),
    );
    ctx.report_ready_change(
        sink.as_ref(),
        old.map(|s| s.conditions.as_slice()).unwrap_or_default(),
        &status.conditions,
    )
    .await;
    patch_status(&api, &sink, old, &status).await?;
    if let Some(e) = failure {
        return Err(e);
    }
    ctx.succeeded(&object_key(sink.as_ref()));
    Ok(action)
}

/// Creates the sink's table when it is absent; otherwise checks it against the spec.
/// `Ok(Err(message))`: the table exists and differs (the message names the column).
async fn ensure_table(
    ctx: &Context,
    sink: &CassandraSink,
    keyspace: &str,
) -> Result<Result<(), String>, CassandraCallError> {
    let live = ctx.cassandra.table_columns(keyspace, &sink.spec.table).await?;
    if live.is_empty() {
        ctx.cassandra.create_table(create_table_cql(keyspace, &sink.spec)).await?;
        let note = format!("created table {keyspace}.{}", sink.spec.table);
        ctx.event(sink, false, "TableCreated", note).await;
        return Ok(Ok(()));
    }
    Ok(check_mapping(&sink.spec, &live))
}

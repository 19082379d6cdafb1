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

use crate::api::conditions::{self, DesiredCondition, READY};
use crate::api::{CassandraSink, CassandraSinkStatus, Topic};
use crate::controller::{Context, Error, Result, error_policy, object_key, patch_status};
use crate::tenancy::{Tenancy, resolve};

const KIND: &str = "CassandraSink";
const RETRY: Duration = Duration::from_secs(15);

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

    let (ready, action) = match resolve(&ctx.client, &namespace).await? {
        Tenancy::None(message) => {
            status.tenant = None;
            (DesiredCondition::not_ready("NoTenant", message), Action::requeue(RETRY))
        }
        Tenancy::Tenant(_, tenant) => {
            status.tenant = Some(tenant.name.clone());
            status.table = Some(format!("{}.{}", tenant.keyspace, sink.spec.table));
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
                Some(_) => (
                    DesiredCondition::not_ready(
                        "SinkNotDeployed",
                        "the tenant and the Topic are ready; this operator build does not yet create the \
                         table or run sink Deployments",
                    ),
                    ctx.resync(),
                ),
            }
        }
    };
    status.conditions = conditions::merge(
        old.map(|s| s.conditions.as_slice()).unwrap_or_default(),
        std::slice::from_ref(&ready),
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
    ctx.succeeded(&object_key(sink.as_ref()));
    Ok(action)
}

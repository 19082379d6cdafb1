//! What the sink runs as, after its login: the dead-letter topic, the progress read from
//! Kafka (lag, dead letters, the write-time base), a replay's offset move, the replicas, and
//! the ConfigMap and Deployment; then the Ready condition from the Deployment.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::autoscale;
use super::build::{self, SinkNames, Source, TemplateStamp};
use super::replay;
use crate::api::conditions::DesiredCondition;
use crate::api::contract::SinkConfig;
use crate::api::sink::RecordFormat;
use crate::api::{CassandraSink, CassandraSinkSpec, CassandraSinkStatus, Reason, ReplayPhase, ReplayStatus, WriteTime};
use crate::controller::{Context, Error, apply_unless_current, credential_fingerprint};
use crate::external::kafka::KafkaCallError;
use crate::login::{self, Login, LoginOf, secret_text};
use crate::step::{Halt, Step};
use crate::tenant::ValidatedTenant;
use crate::topic::build::config_changes;

/// Everything the sink runs as, in order: login, Kafka user, dead-letter topic, Secret,
/// progress, offsets, replicas, ConfigMap and Deployment, a rotation's old credential.
/// Returns the Ready condition from the Deployment's replicas.
pub(super) async fn deploy(
    ctx: &Context,
    sink: &CassandraSink,
    tenant: &ValidatedTenant,
    source: &Source,
    status: &mut CassandraSinkStatus,
) -> Step<DesiredCondition> {
    let namespace = sink.namespace().ok_or(Error::Missing("metadata.namespace"))?;
    let owner = sink.controller_owner_ref(&()).ok_or(Error::Missing("metadata.uid"))?;
    let names = build::names(&sink.name_any(), tenant);
    let kafka_topic = source.kafka_topic.clone();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);

    // A sink reconciled before its status recorded the login (an older operator) trusts the
    // Secret it controls.
    let legacy = sink.status.as_ref().is_some_and(|s| s.observed_generation.is_some());
    let of = LoginOf {
        obj: sink,
        user: &names.kafka_user,
        secret: &names.object,
        recorded: sink.status.as_ref().and_then(|s| s.kafka_credential.clone()),
        legacy,
    };
    let login = login::settle(ctx, &of, tenant, &secrets).await?;
    status.kafka_credential = Some(login.fingerprint.clone());
    let acls = build::desired_acls(&names, &kafka_topic);
    // Each sink user carries its share of the tenant's quotas (see `QuotaSplit`).
    let quotas = tenant.quota_split(&ctx.config.default_quotas).each_sink;
    let wrote = login::apply_user(ctx, &names.kafka_user, &login, &acls, &quotas).await?;
    ensure_dead_letter_topic(ctx, sink, &names, source).await?;
    let secret = build::credentials_secret(&names, sink, &tenant.name, &owner, &login.login);
    login::write_secret(&secrets, &secret, &login, wrote).await?;

    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    let live_config = config_maps.get_opt(&names.object).await?;
    let progress = progress(ctx, &names, &kafka_topic, live_config.as_ref(), status.write_time.as_ref()).await?;
    status.lag = Some(progress.lag);
    status.dead_letter_count = Some(progress.dead_letters);
    status.write_time = Some(progress.write_time.clone());

    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &namespace);
    let live = deployments.get_opt(&names.object).await?;
    // The last replay as the Deployment (read fresh) records it: the sink object may come
    // from a watch cache that has not seen the status written by the previous reconcile.
    if let Some(recorded) = live.as_ref().and_then(replay::recorded) {
        status.replay = Some(recorded);
    }
    let (replay, stopping) =
        move_offsets(ctx, sink, live.as_ref(), &names, &kafka_topic, status.replay.clone()).await?;
    status.replay = replay;
    let partitions = source.partitions;
    let (replicas, autoscaled) =
        replicas(ctx, sink, partitions, progress.lag, live.as_ref(), status, stopping.is_some()).await;
    status.autoscale = autoscaled;

    let config = sink_config(ctx, sink, tenant, &names, kafka_topic, &login, progress.write_time);
    let (yaml, hash) = build::render_config(&config);
    let config_map = build::config_map(&names, sink, &tenant.name, &owner, &yaml);
    apply_unless_current(&config_maps, &names.object, live_config, config_map).await?;
    let stamp = template_stamp(&hash, &login);
    let mut deployment =
        build::deployment(&names, sink, &tenant.name, &owner, &ctx.config.sink_image, replicas, &stamp);
    if let Some(done) = &status.replay {
        replay::record(&mut deployment, done);
    }
    let live = apply_unless_current(&deployments, &names.object, live, deployment).await?;
    // A rotation's previous credential goes once every pod runs the new one.
    let rolled_out = build::rolled_out(&live, build::CONFIG_HASH, &stamp.restart_hash);
    login::retire_previous(ctx, sink, &names.kafka_user, &login, rolled_out).await?;
    if let Some(why) = stopping {
        status.replicas = Some("0/0".into());
        return Ok(DesiredCondition::not_ready(Reason::Replaying, why));
    }
    if sink.spec.suspend {
        let running = live.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        status.ready_replicas = Some(0);
        status.replicas = Some("0/0".into());
        let message = if running > 0 {
            format!("suspending (spec.suspend): {running} pod(s) stopping, each commits what Cassandra acknowledged")
        } else {
            format!(
                "suspended (spec.suspend): no pod runs; consumer group {} keeps its offsets, so the sink resumes \
                 where it stopped when spec.suspend is false",
                names.group
            )
        };
        return Ok(DesiredCondition::not_ready(Reason::Suspended, message));
    }
    let ready = live.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
    status.ready_replicas = Some(ready);
    status.replicas = Some(format!("{ready}/{replicas}"));
    status.consumer_group = Some(names.group.clone());
    Ok(readiness(sink, ready, replicas, partitions, &config.keyspace))
}

/// The dead-letter topic, created or its config brought in line; it takes any record the
/// source topic takes.
async fn ensure_dead_letter_topic(ctx: &Context, sink: &CassandraSink, names: &SinkNames, source: &Source) -> Step<()> {
    let live = ctx.kafka.describe_topic(&source.kafka_topic).await?.topic;
    let source_max = live.as_ref().and_then(|t| t.config.get(build::MAX_MESSAGE_BYTES)?.value.as_deref()?.parse().ok());
    let (partitions, rf) = (source.partitions, source.replication_factor);
    let dlq = build::dead_letter_topic(names, &sink.spec, partitions, rf, source_max);
    match ctx.kafka.describe_topic(&names.dead_letter_topic).await?.topic {
        None => {
            ctx.kafka.create_topic(&dlq).await?;
            ctx.event(sink, false, "DeadLetterTopicCreated", format!("created Kafka topic {}", dlq.name)).await;
        }
        Some(live) => {
            let changes = config_changes(&dlq, &live.config);
            if !changes.is_empty() {
                let described = changes.iter().map(|c| c.description.as_str()).collect::<Vec<_>>().join(", ");
                ctx.kafka.alter_topic_config(&dlq.name, changes.into_iter().map(|c| (c.key, c.op)).collect()).await?;
                let note = format!("dead-letter topic {}: {described}", dlq.name);
                ctx.event(sink, false, "DeadLetterTopicChanged", note).await;
            }
        }
    }
    Ok(())
}

/// What Kafka says of the sink's progress.
struct Progress {
    lag: i64,
    dead_letters: i64,
    write_time: WriteTime,
}

/// Lag from the group's committed offsets, the dead-letter count, and the write-time base
/// from where the topic ends and which incarnation of it this is. The base the pods run with
/// comes first: the ConfigMap keeps it even where an older CRD (Helm does not upgrade CRDs)
/// prunes `status.writeTime`.
async fn progress(
    ctx: &Context,
    names: &SinkNames,
    kafka_topic: &str,
    live_config: Option<&ConfigMap>,
    recorded: Option<&WriteTime>,
) -> Step<Progress> {
    let (source, dead, topic_id) = futures::try_join!(
        ctx.kafka.topic_progress(kafka_topic, Some(&names.group)),
        ctx.kafka.topic_progress(&names.dead_letter_topic, None),
        ctx.kafka.topic_id(kafka_topic),
    )?;
    let Some(topic_id) = topic_id else {
        let message = format!("topic {kafka_topic} is not in Kafka (yet)");
        return Err(KafkaCallError { call: "Metadata", message, transient: true, answered: false }.into());
    };
    let running = live_config.and_then(build::parse_config);
    let previous = running.and_then(|c| c.write_time).or(recorded.cloned());
    let write_time = WriteTime::choose(previous.as_ref(), &topic_id, Timestamp::now().as_microsecond(), source.end);
    Ok(Progress { lag: source.lag, dead_letters: dead.records, write_time })
}

/// Carries out [`replay::step`]: the replay status to record, and `Some(why)` while the pods
/// must stay stopped (a replay waiting for its group to empty). Tells a move in an event.
async fn move_offsets(
    ctx: &Context,
    sink: &CassandraSink,
    live: Option<&Deployment>,
    names: &SinkNames,
    kafka_topic: &str,
    last: Option<ReplayStatus>,
) -> Step<(Option<ReplayStatus>, Option<String>)> {
    let pods = live.and_then(|d| d.status.as_ref()?.replicas).unwrap_or(0);
    let step = replay::step(&sink.spec, last.as_ref(), live.is_some(), pods).map_err(|problem| {
        Halt::Wait(DesiredCondition::not_ready(Reason::InvalidSpec, problem), Action::await_change())
    })?;
    let (id, from, to, unless_committed) = match step {
        replay::Step::Run => return Ok((last, None)),
        replay::Step::Stop(stopping) => {
            let why = format!(
                "replay {}: stopping the sink's {pods} pod(s) before consumer group {} moves to {}",
                stopping.id, names.group, stopping.from
            );
            return Ok((Some(stopping), Some(why)));
        }
        replay::Step::Move { id, from, to, unless_committed } => (id, from, to, unless_committed),
    };
    let group = names.group.as_str();
    let record = |offsets: String| ReplayStatus {
        id: id.clone(),
        from: from.clone(),
        phase: ReplayPhase::Done,
        offsets: Some(offsets),
        time: Some(Timestamp::now().to_string()),
    };
    if unless_committed {
        let committed = ctx.kafka.committed_offsets(group, kafka_topic).await?;
        if !committed.is_empty() {
            // A sink re-created under an old name: its group goes on where it was.
            return Ok((Some(record(format!("kept: {}", replay::describe(&committed)))), None));
        }
    }
    match ctx.kafka.reset_offsets(group, kafka_topic, to).await {
        Ok(offsets) => {
            let moved = replay::describe(&offsets);
            let note = format!("consumer group {group} set to {from} ({moved}) for {id}");
            ctx.event(sink, false, "OffsetsMoved", note).await;
            Ok((Some(record(moved)), None))
        }
        // The group still has a member (a pod draining): wait with the pods stopped.
        Err(e) if e.transient && e.answered && id != replay::START => {
            let stopping =
                ReplayStatus { phase: ReplayPhase::Stopping, offsets: None, time: None, ..record(String::new()) };
            Ok((Some(stopping), Some(format!("replay {id}: {e}"))))
        }
        Err(e) => Err(e.into()),
    }
}

/// How many pods run: none while a replay stops them; otherwise the spec's replicas, never
/// more than the topic's partitions (the extra ones would sit idle), or the autoscaler's
/// decision from the lag. Returns them with the autoscale status to record.
async fn replicas(
    ctx: &Context,
    sink: &CassandraSink,
    partitions: i32,
    lag: i64,
    live: Option<&Deployment>,
    status: &CassandraSinkStatus,
    stopped: bool,
) -> (i32, Option<crate::api::AutoscaleStatus>) {
    let min = sink.spec.replicas.min(partitions);
    match (&sink.spec.autoscale, stopped || sink.spec.suspend) {
        (_, true) => (0, status.autoscale.clone()),
        (Some(auto), false) => {
            // The replicas running now come from the Deployment itself, not a cached status.
            let running = live.map(|d| d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1));
            let decision =
                autoscale::decide(auto, min, partitions, lag, status.autoscale.as_ref(), running, Timestamp::now());
            if let Some((reason, note)) = decision.event {
                ctx.event(sink, false, reason, note).await;
            }
            (decision.replicas, Some(decision.status))
        }
        (None, false) => (min, None),
    }
}

/// The config the sink's pods read (`sink.yaml`). Where to start, replays and scaling are
/// the operator's business: they roll no pod.
fn sink_config(
    ctx: &Context,
    sink: &CassandraSink,
    tenant: &ValidatedTenant,
    names: &SinkNames,
    kafka_topic: String,
    login: &Login,
    write_time: WriteTime,
) -> SinkConfig {
    SinkConfig {
        sink: format!("{}/{}", sink.namespace().unwrap_or_default(), sink.name_any()),
        topic: kafka_topic,
        group: names.group.clone(),
        dead_letter_topic: names.dead_letter_topic.clone(),
        bootstrap_servers: ctx.config.kafka_client_bootstrap.clone(),
        security_protocol: ctx.config.kafka.security_protocol.clone(),
        sasl_mechanism: login.login.mechanism.clone(),
        // CAs are public: they travel in the ConfigMap, and a new CA rolls the pods.
        kafka_ca_pem: ctx.config.kafka.ca_pem.clone(),
        contact_points: ctx.config.cassandra.contact_points.clone(),
        cassandra_ca_pem: ctx.config.cassandra.ca_pem.clone(),
        keyspace: tenant.keyspace.clone(),
        // Suspending and scaling are the operator's business: they roll no pod.
        spec: CassandraSinkSpec {
            start_from: None,
            replay: None,
            autoscale: None,
            suspend: false,
            local_datacenter: None,
            ..sink.spec.clone()
        },
        max_in_flight: 256,
        commit_interval_ms: 1000,
        write_time: Some(write_time),
        local_datacenter: local_datacenter(ctx, sink),
        schema_registry_url: schema_registry_url(&sink.spec, ctx.config.schema_registry_url.as_deref()).ok().flatten(),
    }
}

/// The registry of a `format: Avro` sink: its spec's, else the operator's `default`; `None`
/// for other formats; an Avro sink with neither is a spec problem (the message says so).
pub(super) fn schema_registry_url(spec: &CassandraSinkSpec, default: Option<&str>) -> Result<Option<String>, String> {
    if spec.format != RecordFormat::Avro {
        return Ok(None);
    }
    match spec.avro.as_ref().and_then(|a| a.registry_url.clone()).or_else(|| default.map(str::to_string)) {
        Some(url) => Ok(Some(url)),
        None => Err("format Avro needs a schema registry: set spec.avro.registryUrl, or the operator's \
            TRIBUTARY_SCHEMA_REGISTRY_URL (chart value schemaRegistry.url). No sink pod starts until one is set"
            .into()),
    }
}

/// The datacenter the sink writes to: its spec's, else the operator's default.
pub(super) fn local_datacenter(ctx: &Context, sink: &CassandraSink) -> Option<String> {
    sink.spec.local_datacenter.clone().or_else(|| ctx.config.cassandra.local_datacenter.clone())
}

/// The pod template's stamp: a changed config or credential rolls the pods. The tenant's
/// Cassandra login comes from the tenant's Secret, which the pods read.
fn template_stamp(config_hash: &str, login: &Login) -> TemplateStamp {
    let tenant_text = |key| secret_text(login.tenant_secret.as_ref(), key).unwrap_or_default();
    let cassandra_user = tenant_text(build::CASSANDRA_USERNAME_KEY);
    let cassandra_password = tenant_text(build::CASSANDRA_PASSWORD_KEY);
    let credentials =
        [&login.login.password, &login.login.mechanism, &cassandra_user, &cassandra_password].map(|c| c.as_bytes());
    TemplateStamp {
        restart_hash: build::restart_hash(config_hash, &credentials),
        cassandra_login: credential_fingerprint(&cassandra_user, &cassandra_password),
    }
}

/// Running once the fewest replicas the spec asks for are ready (autoscaling adds more).
fn readiness(sink: &CassandraSink, ready: i32, replicas: i32, partitions: i32, keyspace: &str) -> DesiredCondition {
    let min = sink.spec.replicas.min(partitions);
    if ready >= min {
        let message = format!("{ready}/{replicas} sink replicas ready, writing to {keyspace}.{}", sink.spec.table);
        return DesiredCondition::ready(Reason::Running, message);
    }
    let capped = if replicas < sink.spec.replicas {
        format!(" (capped from {} at the topic's {partitions} partitions)", sink.spec.replicas)
    } else {
        String::new()
    };
    let message = format!(
        "{ready}/{replicas} sink replicas ready{capped}; see kubectl get pods -l {}={}",
        build::SINK_LABEL,
        sink.name_any()
    );
    DesiredCondition::not_ready(Reason::ReplicasNotReady, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_avro_sink_takes_its_specs_registry_else_the_operators_and_needs_one() {
        let spec = |format: &str, avro: serde_json::Value| -> CassandraSinkSpec {
            serde_json::from_value(serde_json::json!({
                "topic": "data", "table": "readings", "columns": [{"name": "station", "type": "text"}],
                "partitionKey": ["station"], "format": format, "avro": avro,
            }))
            .unwrap()
        };
        let own = spec("Avro", serde_json::json!({"registryUrl": "http://own:8081"}));
        assert_eq!(schema_registry_url(&own, Some("http://default")), Ok(Some("http://own:8081".into())));
        let none = spec("Avro", serde_json::json!({}));
        assert_eq!(schema_registry_url(&none, Some("http://default")), Ok(Some("http://default".into())));
        let problem = schema_registry_url(&none, None).unwrap_err();
        assert!(problem.contains("spec.avro.registryUrl") && problem.contains("TRIBUTARY_SCHEMA_REGISTRY_URL"));
        assert_eq!(schema_registry_url(&spec("Json", serde_json::Value::Null), None), Ok(None));
    }
}

//! The operator's comparisons: Topics against raw CreateTopics, and Tenants applied at once
//! with the steady state over them.

use super::*;
use crate::sink::water_spec;
use kube::api::{Patch, PatchParams};

pub(crate) async fn topics_bench(args: &Args) {
    let mut running = Some(operator().await);
    let admin = kafka_admin();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(120)));
    let limits =
        format!("  kafka:\n    limits:\n      maxTopics: {}\n      maxPartitions: {}\n", args.count, args.count * 3);
    for rep in 0..args.reps {
        let order =
            if rep % 2 == 0 { ["operator", "raw", "api", "writes"] } else { ["writes", "api", "raw", "operator"] };
        for side in order {
            let prefix = unique("bt");
            let names: Vec<String> = (0..args.count).map(|i| format!("t{i}")).collect();
            let mut applied = 0.0;
            let seconds = if side == "api" || side == "writes" {
                // The API server's part alone: the same Topic objects created the same way,
                // with no operator running (none reacts). `writes` adds to each the two writes
                // any operator must make that guards deletion with a finalizer and reports
                // Ready: a metadata patch and a status patch.
                if let Some(op) = running.take() {
                    op.terminate();
                    wait_until("the operator to stop", Duration::from_secs(60), || async {
                        if op.alive() { Err("running".to_string()) } else { Ok(()) }
                    })
                    .await;
                }
                ensure_namespace(&prefix).await;
                let api: Api<Topic> = Api::namespaced(client().await, &prefix);
                quiet().await;
                let start = Instant::now();
                if side == "api" {
                    create_topic_objects(&api, &prefix, &names).await;
                } else {
                    create_topic_objects_with_writes(&api, &prefix, &names).await;
                }
                let seconds = start.elapsed().as_secs_f64();
                let _ = api.delete_collection(&DeleteParams::default(), &ListParams::default()).await;
                let _ = Api::<k8s_openapi::api::core::v1::Namespace>::all(client().await)
                    .delete(&prefix, &DeleteParams::default())
                    .await;
                seconds
            } else if side == "raw" {
                let full: Vec<String> = names.iter().map(|n| format!("{prefix}.{n}")).collect();
                quiet().await;
                let start = Instant::now();
                let new: Vec<NewTopic> = full.iter().map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(3))).collect();
                for batch in new.chunks(100) {
                    for r in admin.create_topics(batch, &opts).await.unwrap() {
                        r.unwrap();
                    }
                }
                let seconds = start.elapsed().as_secs_f64();
                for batch in full.chunks(100) {
                    let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
                    let _ = admin.delete_topics(&refs, &opts).await;
                }
                seconds
            } else {
                if running.is_none() {
                    running = Some(operator().await);
                }
                let _prefix_cleanup = ready_tenant(&prefix, &limits).await;
                let api: Api<Topic> = Api::namespaced(client().await, &prefix);
                quiet().await;
                let start = Instant::now();
                create_topic_objects(&api, &prefix, &names).await;
                applied = start.elapsed().as_secs_f64();
                wait_until("every Topic Ready", Duration::from_secs(1800), || async {
                    let list = api.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
                    let ready =
                        list.items.iter().filter(|t| ready_true(t.status.as_ref().map(|s| &s.conditions))).count();
                    if ready == args.count { Ok(()) } else { Err(format!("{ready}/{} ready", args.count)) }
                })
                .await;
                let seconds = start.elapsed().as_secs_f64();
                // Deletion (Delete policy) removes them from Kafka again; not timed.
                let _ = api.delete_collection(&DeleteParams::default(), &ListParams::default()).await;
                wait_until("every Topic deleted", Duration::from_secs(1800), || async {
                    let n = api.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len();
                    if n == 0 { Ok(()) } else { Err(format!("{n} left")) }
                })
                .await;
                seconds
            };
            emit(
                &args.out,
                &Sample {
                    bench: "topics",
                    side: match side {
                        "raw" => "raw-batched-createtopics",
                        "api" => "api-creates-alone",
                        "writes" => "api-creates-and-required-writes",
                        _ => "operator-topic-objects",
                    },
                    rep,
                    records: args.count as u64,
                    seconds,
                    note: match side {
                        "raw" => "1 partition, RF 3 each; CreateTopics in batches of 100".into(),
                        "api" => "the Topic objects alone, 16 creates at a time, no operator running".into(),
                        "writes" => "each Topic object created, then a metadata patch and a status patch, 16 at a time, no operator running".into(),
                        _ => format!("1 partition, RF 3 each; the {} creates took {applied:.2} s of it", args.count),
                    },
                    ..Default::default()
                },
            );
        }
    }
}

/// Waits (a minute at most) until the machine is quiet: three quarters of its CPU time idle
/// over a second. Kafka goes on deleting a side's thousand topics for seconds after
/// DeleteTopics answered, and the side after it paid for that: the API creates alone took
/// 0.9-1.1 s after a quiet side and 2.3-3.7 s right after the raw side's deletions.
async fn quiet() {
    fn cpu() -> (u64, u64) {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fields: Vec<u64> =
            stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal ...: idle and iowait are idle.
        let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
        (idle, fields.iter().take(8).sum())
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (idle0, total0) = cpu();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (idle1, total1) = cpu();
        let idle = (idle1 - idle0) as f64 / (total1 - total0).max(1) as f64;
        if idle >= 0.75 {
            return;
        }
        if Instant::now() > deadline {
            eprintln!(
                "[bench] the machine is still busy ({:.0} % idle) after a minute; measuring anyway",
                idle * 100.0
            );
            return;
        }
    }
}

/// Creates the Topic objects `names` in `namespace`, 16 at a time (1 partition, RF 3, Delete).
async fn create_topic_objects(api: &Api<Topic>, namespace: &str, names: &[String]) {
    for_each_topic_object(api, namespace, names, |_, _| async { Ok(()) }).await;
}

/// As [`create_topic_objects`], each object then given the two writes an operator with a
/// finalizer and a Ready condition cannot avoid: a patch of its metadata (an annotation
/// standing in for the finalizer: the same kind of write, and nothing to remove afterwards)
/// and a server-side-apply patch of its status. The floor under the operator's own writes.
async fn create_topic_objects_with_writes(api: &Api<Topic>, namespace: &str, names: &[String]) {
    for_each_topic_object(api, namespace, names, |api, name| async move {
        let mark = json!({"metadata": {"annotations": {"bench.tributary.dev/floor": "1"}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&mark)).await?;
        let status = json!({
            "apiVersion": "tributary.dev/v1alpha1", "kind": "Topic",
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Provisioned",
                "message": "the bench's floor", "observedGeneration": 1,
                "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string()}]}});
        api.patch_status(&name, &PatchParams::apply("tributary-bench").force(), &Patch::Apply(&status)).await?;
        Ok(())
    })
    .await;
}

/// Creates each Topic object of `names` (1 partition, RF 3, Delete) and then runs `then` on
/// it, 16 objects at a time (the operator's reconciles per kind).
async fn for_each_topic_object<F, Fut>(api: &Api<Topic>, namespace: &str, names: &[String], then: F)
where
    F: Fn(Api<Topic>, String) -> Fut,
    Fut: std::future::Future<Output = Result<(), kube::Error>>,
{
    futures::stream::iter(names.iter())
        .map(|n| {
            let topic: Topic = serde_json::from_value(json!({
                "apiVersion": "tributary.dev/v1alpha1", "kind": "Topic",
                "metadata": {"name": n, "namespace": namespace},
                "spec": {"partitions": 1, "replicationFactor": 3, "deletionPolicy": "Delete"}}))
            .unwrap();
            let api = api.clone();
            let then = &then;
            async move {
                api.create(&PostParams::default(), &topic).await?;
                then(api, n.clone()).await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
}

fn ready_true(conditions: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>) -> bool {
    conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

// ------------------------------------------------------------------------------ tenants

/// Topics per tenant in the steady-state measurement (100 tenants: 1,000 topics).
const TOPICS_PER_TENANT: usize = 10;

/// The floor under onboarding: the writes a Tenant's provisioning makes in Kafka and
/// Cassandra (SCRAM user, ACLs, quota; keyspace, role, grants), made for `count` tenants
/// directly through the operator's own adapters, 16 at a time as the operator runs them,
/// without Kubernetes. Each sample is one tenant's seconds from the common start.
async fn raw_onboarding(args: &Args) {
    use std::sync::Arc;
    use tributary::access::cassandra::DATA_PERMISSIONS;
    use tributary::external::cassandra::{CassandraAdmin, ScyllaAdmin};
    use tributary::external::kafka::{KafkaClient, KafkaSecurity, ScramMechanism};
    use tributary::tenant::build::desired_acls;

    let config = tributary::config::Config::from_env().expect("the operator's settings from the stack's env");
    let metrics = Arc::new(tributary::metrics::Metrics::default());
    let timeout = Duration::from_secs(30);
    let kafka = KafkaClient::new(&config.kafka, timeout, metrics.clone());
    let cassandra = ScyllaAdmin::new(config.cassandra.clone(), timeout, metrics);
    let tenants: Vec<tributary::tenant::ValidatedTenant> = (0..args.count)
        .map(|_| {
            let tenant: Tenant = serde_json::from_value(json!({
                "apiVersion": "tributary.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": unique("br")},
                "spec": {"kafka": {"quotas": {"producerByteRate": 1048576}}}}))
            .unwrap();
            tributary::tenant::validate(&tenant).unwrap()
        })
        .collect();
    let password = "bench-raw-onboarding";
    let start = Instant::now();
    let seconds: Vec<f64> = futures::stream::iter(&tenants)
        .map(|v| async {
            let kafka_side = async {
                kafka.upsert_scram_user(&v.kafka_user, ScramMechanism::Sha512, password).await?;
                kafka.create_acls(desired_acls(v).into_iter().collect()).await?;
                kafka.alter_user_quotas(&v.kafka_user, &v.quota_split(&Default::default()).tenant, &[]).await
            };
            let cassandra_side = async {
                cassandra.put_keyspace(&v.keyspace, &v.replication, false).await?;
                cassandra.put_role(&v.cassandra_role, password, false).await?;
                for permission in DATA_PERMISSIONS {
                    cassandra.grant(&v.cassandra_role, permission, &v.keyspace).await?;
                }
                Ok::<_, tributary::external::cassandra::CassandraCallError>(())
            };
            let (k, c) = tokio::join!(kafka_side, cassandra_side);
            k.unwrap_or_else(|e| panic!("Kafka writes of {}: {e}", v.name));
            c.unwrap_or_else(|e| panic!("Cassandra writes of {}: {e}", v.name));
            start.elapsed().as_secs_f64()
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for s in &seconds {
        emit(
            &args.out,
            &Sample {
                bench: "onboarding-raw",
                side: "tenant-writes-direct",
                records: 1,
                seconds: *s,
                note: "SCRAM user, ACLs, quota, keyspace, role, grants through the operator's adapters, 16 at a time"
                    .into(),
                ..Default::default()
            },
        );
    }
    for v in &tenants {
        let _ = kafka.delete_acls(desired_acls(v).into_iter().collect()).await;
        let _ = kafka.delete_scram_user(&v.kafka_user).await;
        let _ = cassandra.drop_keyspace(&v.keyspace).await;
        let _ = cassandra.drop_role(&v.cassandra_role).await;
    }
}

pub(crate) async fn tenants_bench(args: &Args) {
    raw_onboarding(args).await;
    let operator = operator().await;
    let api: Api<Tenant> = Api::all(client().await);
    let names: Vec<String> = (0..args.count).map(|_| unique("bo")).collect();
    let start = Instant::now();
    let mut created = std::collections::HashMap::new();
    for n in &names {
        let tenant: Tenant = serde_json::from_value(json!({
            "apiVersion": "tributary.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": n},
            "spec": {"deletionPolicy": "Delete", "kafka": {"quotas": {"producerByteRate": 1048576}}}}))
        .unwrap();
        api.create(&PostParams::default(), &tenant).await.unwrap();
        created.insert(n.clone(), start.elapsed());
    }
    let mut latency = std::collections::HashMap::new();
    while latency.len() < names.len() {
        assert!(start.elapsed() < Duration::from_secs(1800), "tenants not Ready: {}/{}", latency.len(), names.len());
        for t in api.list(&ListParams::default()).await.unwrap().items {
            let name = t.name_any();
            if created.contains_key(&name)
                && !latency.contains_key(&name)
                && ready_true(t.status.as_ref().map(|s| &s.conditions))
            {
                latency.insert(name.clone(), (start.elapsed() - created[&name]).as_secs_f64());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (name, seconds) in &latency {
        emit(
            &args.out,
            &Sample {
                bench: "onboarding",
                side: "tenant-apply-to-ready",
                records: 1,
                seconds: *seconds,
                note: name.clone(),
                ..Default::default()
            },
        );
    }
    // Scale for the steady state: TOPICS_PER_TENANT Topics and one CassandraSink per tenant
    // (100 tenants: 1,000 topics, 100 sinks), all converged before the measurement.
    let setup = Instant::now();
    for n in &names {
        for i in 0..TOPICS_PER_TENANT {
            let name = if i == 0 { "data".to_string() } else { format!("t{i}") };
            let topic: Topic = serde_json::from_value(json!({
                "apiVersion": "tributary.dev/v1alpha1", "kind": "Topic", "metadata": {"name": name, "namespace": n},
                "spec": {"partitions": 1, "replicationFactor": 3, "deletionPolicy": "Delete"}}))
            .unwrap();
            Api::<Topic>::namespaced(client().await, n).create(&PostParams::default(), &topic).await.unwrap();
        }
        let sink: CassandraSink = serde_json::from_value(json!({
            "apiVersion": "tributary.dev/v1alpha1", "kind": "CassandraSink",
            "metadata": {"name": "readings", "namespace": n}, "spec": water_spec("readings")}))
        .unwrap();
        Api::<CassandraSink>::namespaced(client().await, n).create(&PostParams::default(), &sink).await.unwrap();
    }
    converge_and_measure(args, &operator, &names, setup).await;
}

/// `tributary-bench steady`: a new operator over the benchmark's Tenants that a previous run
/// left in the cluster (those named `bo-…`, with their Topics and sinks): how long it takes to
/// converge from scratch, then the same steady-state measurement; then they are deleted.
pub(crate) async fn steady_bench(args: &Args) {
    let api: Api<Tenant> = Api::all(client().await);
    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|t| t.name_any())
        .filter(|n| n.starts_with("bo-"))
        .collect();
    assert!(!names.is_empty(), "no benchmark Tenants (bo-…) in the cluster: run tributary-bench tenants first");
    println!("[bench] a new operator over {} benchmark Tenants", names.len());
    let setup = Instant::now();
    let operator = operator().await;
    converge_and_measure(args, &operator, &names, setup).await;
}

/// Waits until every Topic of the Tenants `names` is Ready and every sink's mapping valid,
/// then measures two resyncs of the steady state and a sink's status freshness, and deletes
/// the Tenants.
async fn converge_and_measure(args: &Args, operator: &OperatorProcess, names: &[String], setup: Instant) {
    let api: Api<Tenant> = Api::all(client().await);
    let topics_api: Api<Topic> = Api::all(client().await);
    let sinks_api: Api<CassandraSink> = Api::all(client().await);
    let created: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
    let ours = |ns: Option<String>| ns.is_some_and(|ns| created.contains(ns.as_str()));
    wait_until("every Topic Ready and every sink's mapping valid", Duration::from_secs(1800), || async {
        let topics = topics_api.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let ready = topics
            .iter()
            .filter(|t| ours(t.namespace()) && ready_true(t.status.as_ref().map(|s| &s.conditions)))
            .count();
        let sinks = sinks_api.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let valid = sinks
            .iter()
            .filter(|s| ours(s.namespace()))
            .filter(|s| {
                s.status
                    .as_ref()
                    .is_some_and(|st| st.conditions.iter().any(|c| c.type_ == "MappingValid" && c.status == "True"))
            })
            .count();
        let want = (names.len() * TOPICS_PER_TENANT, names.len());
        if (ready, valid) == want {
            Ok(())
        } else {
            Err(format!("{ready}/{} topics Ready, {valid}/{} sinks with a valid mapping", want.0, want.1))
        }
    })
    .await;
    let converged = setup.elapsed().as_secs_f64();
    println!(
        "[bench] {} topics and {} sinks converged in {converged:.1} s",
        names.len() * TOPICS_PER_TENANT,
        names.len()
    );

    // Steady state: everything converged; two full resyncs with nothing to change. The window
    // ends when the operator has handed every Topic to its controller twice more
    // (`tributary_resyncs_total`): at least two 30 s intervals, longer if the resyncs run late.
    let writes = || async { operator.metric("tributary_external_writes_total").await.unwrap_or(0.0) };
    // Reconciles per kind in the window: one per object per resync when nothing changes.
    let reconciles = || async {
        let mut counts = Vec::new();
        for kind in ["Tenant", "Topic", "CassandraSink"] {
            let name = format!("tributary_reconciles_total{{kind=\"{kind}\"}}");
            counts.push(operator.metric(&name).await.unwrap_or(0.0));
        }
        counts
    };
    let topic_resyncs = || async { operator.metric("tributary_resyncs_total{kind=\"Topic\"}").await.unwrap_or(0.0) };
    let all_topics = topics_api.list(&ListParams::default()).await.unwrap().items.len() as f64;
    let (w0, r0, s0, (c0, _)) = (writes().await, reconciles().await, topic_resyncs().await, proc_usage(operator.pid));
    let window = Instant::now();
    wait_until("two full resyncs of every Topic", Duration::from_secs(1200), || async {
        let done = topic_resyncs().await - s0;
        if done >= 2.0 * all_topics { Ok(()) } else { Err(format!("{done} of {} Topic resyncs", 2.0 * all_topics)) }
    })
    .await;
    let window = window.elapsed().as_secs_f64();
    let (w1, r1, (c1, rss)) = (writes().await, reconciles().await, proc_usage(operator.pid));
    let ran: Vec<f64> = r1.iter().zip(&r0).map(|(a, b)| a - b).collect();
    let now_rss = status_kib(operator.pid, "VmRSS").unwrap_or(0);
    let objects = api.list(&ListParams::default()).await.unwrap().items.len();
    let topic_count = topics_api.list(&ListParams::default()).await.unwrap().items.len();
    let sink_count = sinks_api.list(&ListParams::default()).await.unwrap().items.len();
    emit(
        &args.out,
        &Sample {
            bench: "steady",
            side: "operator-per-resync",
            records: objects as u64,
            seconds: window / 2.0,
            cpu_seconds: c1.zip(c0).map(|(a, b)| (a - b) / 2.0),
            peak_rss_kib: rss,
            note: format!(
                "{} Kafka/Cassandra write calls in 2 resyncs of {objects} tenants, {topic_count} topics, {sink_count} sinks \
                 ({} Tenant, {} Topic, {} CassandraSink reconciles) in {window:.0} s; RSS at the end {} MiB",
                w1 - w0,
                ran[0],
                ran[1],
                ran[2],
                now_rss / 1024
            ),
            ..Default::default()
        },
    );
    emit(
        &args.out,
        &Sample {
            bench: "steady",
            side: "converged",
            records: (names.len() * (TOPICS_PER_TENANT + 1)) as u64,
            seconds: converged,
            note: format!("{} Tenants' Topics Ready and sinks' mappings valid", names.len()),
            ..Default::default()
        },
    );
    status_freshness(args, &created, &sinks_api).await;
    // The Tenants go with their topics and keyspaces (deletionPolicy Delete); this operator
    // finishes that before it stops, so no later measurement inherits the work.
    for n in names {
        let _ = api.delete(n, &DeleteParams::default()).await;
    }
    // Their namespaces too: the Topics and sinks in them carry this operator's finalizers,
    // and a namespace left terminating would hand its deletions to the next measurement.
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client().await);
    wait_until("the benchmark's Tenants and namespaces deleted", Duration::from_secs(900), || async {
        let tenants = api.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let spaces = namespaces.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let ours = |name: String| created.contains(name.as_str());
        let left = (
            tenants.into_iter().filter(|t| ours(t.name_any())).count(),
            spaces.into_iter().filter(|n| ours(n.name_any())).count(),
        );
        if left == (0, 0) { Ok(()) } else { Err(format!("{} Tenants, {} namespaces left", left.0, left.1)) }
    })
    .await;
}

/// Whether a sink's status keeps up at this scale: records produced to a tenant whose sink
/// pod runs, and the time from the last of them acknowledged by Kafka to the sink's
/// `status.recordsWritten` counting them all (the pods' reports are read every
/// `TRIBUTARY_SINK_REPORT_SECONDS`: 5 s for the benchmark's operator).
async fn status_freshness(args: &Args, ours: &std::collections::HashSet<&str>, sinks_api: &Api<CassandraSink>) {
    const RECORDS: u64 = 1000;
    let mut running: Vec<CassandraSink> = sinks_api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|s| s.namespace().is_some_and(|ns| ours.contains(ns.as_str())))
        .filter(|s| s.status.as_ref().and_then(|st| st.ready_replicas).unwrap_or(0) >= 1)
        .collect();
    running.sort_by_key(|s| s.namespace());
    let Some(sink) = running.first() else {
        println!("[bench] sink status freshness: no sink of the benchmark has a ready pod; not measured");
        return;
    };
    let (ns, name) = (sink.namespace().unwrap(), sink.name_any());
    let api: Api<CassandraSink> = Api::namespaced(client().await, &ns);
    let written = |s: &CassandraSink| s.status.as_ref().and_then(|st| st.records_written).unwrap_or(0) as u64;
    let before = written(&api.get(&name).await.unwrap());
    produce_paced(&ns, "water", &unique("fresh"), RECORDS, 0, 0).await;
    let produced = Instant::now();
    wait_until(
        &format!("CassandraSink {ns}/{name} to report {RECORDS} more records"),
        Duration::from_secs(300),
        || async {
            let now = written(&api.get(&name).await.map_err(|e| e.to_string())?);
            if now >= before + RECORDS { Ok(()) } else { Err(format!("{} of {RECORDS}", now.saturating_sub(before))) }
        },
    )
    .await;
    emit(
        &args.out,
        &Sample {
            bench: "steady",
            side: "sink-status-freshness",
            records: RECORDS,
            seconds: produced.elapsed().as_secs_f64(),
            note: format!(
                "{ns}/{name}: {RECORDS} records produced; seconds until status.recordsWritten counted them, \
                 with {} sinks in the cluster (the benchmark's operator reads the pods' reports every 5 s)",
                sinks_api.list(&ListParams::default()).await.map(|l| l.items.len()).unwrap_or(0)
            ),
            ..Default::default()
        },
    );
}

//! The operator as users run it, on the local stack's real node: `helm install` of
//! charts/tributary with values-local.yaml (two replicas, the chart's ServiceAccount and
//! RBAC, in-cluster configuration, the Lease), the sinks as the pods of the Deployments it
//! writes, and what only a real cluster shows: READY True in `kubectl get`, records flowing
//! through the sink pods, the sink's replicas following a partition increase, a config
//! change and a new credential rolling the pods, the leader pod deleted and the standby
//! carrying on, `helm upgrade`, deleting a Tenant's objects and the Tenant (finalizers,
//! garbage collection, namespace deletion) with its data kept per `deletionPolicy: Retain`,
//! and `helm uninstall` leaving the CRDs. (A test binary of its own: while it runs, the
//! installed operator reconciles every object of the cluster.)

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams};
use tributary_sink::seed::Dataset;
use tributary_tests::pipeline::{apply_water_example_ready, cassandra, expected, produce, rows, water_example};
use tributary_tests::release::Release;
use tributary_tests::sink::SinkPods;
use tributary_tests::{helm, install_crds, kafka_admin, kubectl, kubectl_apply, run, unique, wait_until};

const WAIT: Duration = Duration::from_secs(180);

async fn client() -> kube::Client {
    kube::Client::try_default().await.unwrap()
}

/// `kubectl get KIND -n NS NAME`'s READY column, as a person reads it.
fn ready_column(args: &[&str]) -> String {
    let mut all = vec!["get"];
    all.extend(args);
    all.extend(["-o", "custom-columns=READY:.status.conditions[?(@.type==\"Ready\")].status", "--no-headers"]);
    kubectl(&all).trim().to_string()
}

/// Produces `count` water records with the tenant's own credentials and waits until every
/// well-formed one is a row in the tenant's table.
/// Produces `count` water records of a new run and waits for their rows; returns how many
/// rows they make (the generator's malformed records are dead-lettered).
async fn stream_through(tenant: &str, count: u64) -> usize {
    let run = unique("ic");
    produce(tenant, "water", &run, count).await;
    let session = cassandra().await;
    let want = expected(Dataset::Water, &run, count);
    let keyspace = tenant.replace('-', "_");
    wait_until(&format!("{} rows of run {run} in {keyspace}.readings", want.len()), WAIT, || async {
        let got = rows(&session, Dataset::Water, &keyspace, &run).await;
        if got == want { Ok(()) } else { Err(format!("{} of {} rows", got.len(), want.len())) }
    })
    .await;
    want.len()
}

fn uids(pods: &[Pod]) -> Vec<String> {
    pods.iter().filter_map(|p| p.metadata.uid.clone()).collect()
}

/// `kubectl patch -n NAMESPACE OBJECT --type merge -p PATCH`, as a user would.
fn merge_patch(namespace: &str, object: &str, patch: &str) {
    kubectl(&["patch", "-n", namespace, object, "--type", "merge", "-p", patch]);
}

/// Waits until the sink runs four pods and none of them is one of `before`.
async fn wait_replaced(sinks: &SinkPods, before: &[String], after: &str) {
    wait_until(&format!("every sink pod replaced after {after}"), WAIT, || async {
        let now = uids(&sinks.pods().await);
        if now.len() == 4 && now.iter().all(|u| !before.contains(u)) { Ok(()) } else { Err(sinks.pod_summary().await) }
    })
    .await;
}

#[tokio::test]
async fn the_chart_runs_the_operator_and_the_sinks_as_pods_on_the_node() {
    install_crds().await;
    let release = Release::install(&[]);
    let (leader, replicas) = release.wait_leader().await;
    assert_eq!(replicas.len(), 2, "values-local.yaml runs two replicas");
    // The chart's ServiceAccount is restricted: what follows proves its rules suffice.
    let account = format!("system:serviceaccount:{}:{}-tributary", release.namespace, release.name);
    let can_in = |verb: &str, what: &str, namespace: &str| {
        let out = std::process::Command::new("kubectl")
            .args(["auth", "can-i", verb, what, "--as", &account, "-n", namespace])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let can = |verb: &str, what: &str| can_in(verb, what, "default");
    assert_eq!(can("patch", "tenants.tributary.dev"), "yes");
    assert_eq!(can("create", "pods"), "no");
    assert_eq!(can("delete", "namespaces"), "no");
    assert_eq!(can("get", "secrets"), "no", "no Secret outside the namespaces it manages");
    assert_eq!(can_in("get", "secrets", "kube-system"), "no");
    assert_eq!(can_in("get", "secrets", &release.namespace), "yes", "its own namespace's");
    assert_eq!(can("list", "pods"), "yes", "the sink pods, to read their reports");
    assert_eq!(can("bind", "clusterroles/cluster-admin"), "no", "it may bind the Secrets role only");

    // The water example under a fresh tenant name: everything READY True in `kubectl get`.
    let tenant = unique("ic-water");
    apply_water_example_ready(&tenant);
    // Its Secret rights in the tenant namespace come from the RoleBinding it wrote there.
    assert_eq!(can_in("get", "secrets", &tenant), "yes");
    assert_eq!(can_in("list", "secrets", &tenant), "no", "only Secrets it names, never a listing of all");
    // The Tenant rolls its children up: Ready again once it has seen them ready.
    kubectl(&["wait", "--for=condition=Ready", "--timeout=180s", &format!("tenant/{tenant}")]);
    assert_eq!(ready_column(&["tenant", &tenant]), "True");
    assert_eq!(ready_column(&["topic", "-n", &tenant, "data"]), "True");
    assert_eq!(ready_column(&["cassandrasink", "-n", &tenant, "readings"]), "True");

    // The example's two sink replicas run as pods and stream records into the table.
    let sinks = SinkPods::running(&tenant, "tributary-sink-readings", 2).await;
    let rows = stream_through(&tenant, 2_000).await as i64;
    // The operator pod reads the sink pods' reports over the pod network into the status
    // (a record read again after a rebalance is written, and counted, again).
    wait_until(&format!("status.recordsWritten to count the {rows} rows"), WAIT, || async {
        let written =
            kubectl(&["get", "cassandrasink", "readings", "-n", &tenant, "-o", "jsonpath={.status.recordsWritten}"]);
        match written.trim().parse::<i64>() {
            Ok(n) if n >= rows => Ok(()),
            _ => Err(written),
        }
    })
    .await;

    // Replicas follow the partitions: four asked, three partitions → three pods; the topic
    // grows to four partitions → four pods.
    merge_patch(&tenant, "cassandrasink/readings", r#"{"spec":{"replicas":4}}"#);
    sinks.wait_rolled_out(3).await;
    merge_patch(&tenant, "topic/data", r#"{"spec":{"partitions":4}}"#);
    sinks.wait_rolled_out(4).await;

    // A config change rolls every pod onto the new config.
    let before = uids(&sinks.pods().await);
    merge_patch(&tenant, "cassandrasink/readings", r#"{"spec":{"consistency":"One"}}"#);
    wait_replaced(&sinks, &before, "the config change").await;
    sinks.wait_rolled_out(4).await;

    // A new credential (the sink's Secret deleted: the operator makes a new password and
    // sets it in Kafka) rolls the pods onto it, and records keep flowing.
    let before = uids(&sinks.pods().await);
    kubectl(&["delete", "secret", "tributary-sink-readings", "-n", &tenant]);
    wait_replaced(&sinks, &before, "the credential change").await;
    sinks.wait_rolled_out(4).await;
    stream_through(&tenant, 1_000).await;
    assert_eq!(sinks.restarts().await, 0, "no sink container crashed: {}", sinks.logs().await);

    // The leader pod deleted: the standby takes the Lease and reconciling goes on.
    let pods: Api<Pod> = Api::namespaced(client().await, &release.namespace);
    pods.delete(&leader, &DeleteParams::default()).await.unwrap();
    let (new_leader, _) = release.wait_leader().await;
    assert_ne!(new_leader, leader, "another pod leads");
    kubectl_apply(&water_example("topic.yaml", &tenant).replace("name: data", "name: extra"));
    kubectl(&["wait", "--for=condition=Ready", "--timeout=180s", "-n", &tenant, "topic/extra"]);

    // helm upgrade: new pods with the new setting, and they lead and reconcile too.
    let before = uids(&release.operator_pods().await);
    run(
        helm(),
        &["upgrade", &release.name, "charts/tributary", "-n", &release.namespace, "--reuse-values"]
            .into_iter()
            .chain(["--set", "operator.logLevel=info", "--wait", "--timeout", "5m"])
            .collect::<Vec<_>>(),
        None,
    );
    release.wait_leader().await;
    assert!(uids(&release.operator_pods().await).iter().all(|u| !before.contains(u)), "helm upgrade replaced the pods");
    merge_patch(&tenant, "topic/extra", r#"{"spec":{"partitions":4}}"#);
    wait_until("the upgraded operator to grow topic extra", WAIT, || async {
        let status = kubectl(&["get", "topic", "extra", "-n", &tenant, "-o", "jsonpath={.status.partitions}"]);
        if status.trim() == "4" { Ok(()) } else { Err(status) }
    })
    .await;

    // Deleting the tenant's objects and the Tenant completes: finalizers released, the
    // namespace (which the Tenant owns) deleted by garbage collection; Retain keeps the topics.
    kubectl(&["delete", "-n", &tenant, "cassandrasink/readings", "topic/data", "topic/extra", "--timeout=120s"]);
    kubectl(&["delete", &format!("tenant/{tenant}"), "--timeout=120s"]);
    let namespaces: Api<Namespace> = Api::all(client().await);
    wait_until(&format!("namespace {tenant} to be deleted"), WAIT, || async {
        match namespaces.get_opt(&tenant).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(ns) => Err(format!("{:?}", ns.status.and_then(|s| s.phase))),
        }
    })
    .await;
    let admin = kafka_admin();
    for topic in [format!("{tenant}.data"), format!("{tenant}.extra")] {
        let layout = tributary_tests::kafka::topic_layout(&admin, &topic).unwrap_or_default();
        assert!(!layout.is_empty(), "deletionPolicy Retain keeps Kafka topic {topic}");
    }

    let log = release.logs();
    assert!(!log.contains("forbidden"), "the operator was refused something by its RBAC: {log}");

    // helm uninstall: the operator goes, the CRDs (and with them every object) stay.
    let namespace = release.namespace.clone();
    drop(release);
    wait_until("the operator pods to be gone after helm uninstall", WAIT, || async {
        let left = kubectl(&["get", "pods", "-n", &namespace, "-o", "name"]);
        if left.trim().is_empty() { Ok(()) } else { Err(left) }
    })
    .await;
    for crd in ["tenants.tributary.dev", "topics.tributary.dev", "cassandrasinks.tributary.dev"] {
        kubectl(&["get", "crd", crd]);
    }
}

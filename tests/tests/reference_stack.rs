//! k3d/stack, the reference Kafka + Cassandra stack of the k3d and GKE paths, run on the local
//! stack's real node: applied by `make kafka-create cassandra-create` as on a laptop (three
//! KRaft brokers with SASL/SCRAM and ACLs, Cassandra with password authentication, found by
//! their cluster DNS names), the operator installed by Helm with values-k3d.yaml (the chart's
//! defaults for that stack), and the water example flowing through it: its Tenant, Topic and
//! CassandraSink Ready, records produced by a tributary-seed Job with the tenant's own
//! Secret, and every well-formed record a row in the reference Cassandra.
//!
//! The public images cannot be pulled here: `stack.sh reference-images` builds stand-ins under
//! the same names from the same releases (stack/images/), and the claims get static hostPath
//! volumes where k3d has its local-path provisioner. (A test binary of its own: the operator
//! it installs reconciles every object of the cluster.)

use std::path::PathBuf;
use std::time::Duration;

use tributary_sink::seed::Dataset;
use tributary_tests::pipeline::{apply_water_example_ready, expected, rows, secret};
use tributary_tests::release::Release;
use tributary_tests::{
    TenantCleanup, install_crds, kafka_admin, kubectl, kubectl_apply, run, try_run, unique, wait_until,
};

const STACK_NAMESPACE: &str = "tributary-stack";
/// The claims of k3d/stack's StatefulSets (volumeClaimTemplate `data`) and their sizes.
const CLAIMS: [(&str, &str); 4] =
    [("data-kafka-0", "2Gi"), ("data-kafka-1", "2Gi"), ("data-kafka-2", "2Gi"), ("data-cassandra-0", "4Gi")];
const RECORDS: u64 = 2_000;

/// k3d/stack on the node; when dropped, its namespace, volumes and their folders are gone.
struct ReferenceStack {
    volumes: PathBuf,
}

impl ReferenceStack {
    /// One static volume per claim, bound to it in advance (what k3d's local-path provisioner
    /// makes on demand: a folder anyone may write), then the Makefile's targets.
    fn apply() -> ReferenceStack {
        let present = kubectl(&["get", "namespace", STACK_NAMESPACE, "--ignore-not-found", "-o", "name"]);
        assert!(
            present.trim().is_empty(),
            "namespace {STACK_NAMESPACE} exists already: delete it (and its volumes) first"
        );
        let volumes = std::env::temp_dir().join(unique("reference-stack"));
        let stack = ReferenceStack { volumes };
        let mut manifest = String::new();
        for (claim, size) in CLAIMS {
            let dir = stack.volumes.join(claim);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
            manifest.push_str(&format!(
                "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {STACK_NAMESPACE}-{claim}\n  \
                 labels: {{tributary.dev/test: reference-stack}}\nspec:\n  capacity: {{storage: {size}}}\n  \
                 accessModes: [ReadWriteOnce]\n  persistentVolumeReclaimPolicy: Retain\n  \
                 hostPath: {{path: {}, type: Directory}}\n  claimRef: {{namespace: {STACK_NAMESPACE}, name: {claim}}}\n---\n",
                dir.display()
            ));
        }
        kubectl_apply(&manifest);
        run("make", &["--no-print-directory", "kafka-create", "cassandra-create"], None);
        stack
    }
}

impl Drop for ReferenceStack {
    fn drop(&mut self) {
        let _ =
            try_run("kubectl", &["delete", "namespace", STACK_NAMESPACE, "--ignore-not-found", "--timeout=180s"], None);
        let _ =
            try_run("kubectl", &["delete", "pv", "-l", "tributary.dev/test=reference-stack", "--timeout=60s"], None);
        let _ = std::fs::remove_dir_all(&self.volumes);
    }
}

/// A tributary-seed Job in the tenant's namespace with the tenant's own Secret, as the demo
/// and a tenant team run it; waits until it completed.
fn seed_job(tenant: &str, run_id: &str, count: u64) {
    let image = std::env::var("TRIBUTARY_IMAGE").expect("TRIBUTARY_IMAGE (make stack-env)");
    let key = |env: &str, key: &str| {
        format!("        - {{name: {env}, valueFrom: {{secretKeyRef: {{name: tributary-credentials, key: {key}}}}}}}\n")
    };
    let mut job = format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: seed, namespace: {tenant}}}\nspec:\n  backoffLimit: 2\n  \
         template:\n    spec:\n      restartPolicy: Never\n      securityContext: {{runAsNonRoot: true, runAsUser: 65532, seccompProfile: {{type: RuntimeDefault}}}}\n      \
         automountServiceAccountToken: false\n      \
         containers:\n      - name: seed\n        image: {image}\n        imagePullPolicy: Never\n        \
         securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}\n        \
         command: [tributary-seed, --dataset, water, --topic, {tenant}.data, --count, \"{count}\", \
         --malformed-every, \"1000\", --run, {run_id}]\n        env:\n"
    );
    for (env, k) in [
        ("KAFKA_BOOTSTRAP", "kafka.bootstrap.servers"),
        ("KAFKA_USERNAME", "kafka.username"),
        ("KAFKA_PASSWORD", "kafka.password"),
        ("KAFKA_SECURITY_PROTOCOL", "kafka.security.protocol"),
        ("KAFKA_SASL_MECHANISM", "kafka.sasl.mechanism"),
    ] {
        job.push_str(&key(env, k));
    }
    kubectl_apply(&job);
    kubectl(&["wait", "--for=condition=Complete", "--timeout=300s", "-n", tenant, "job/seed"]);
}

#[tokio::test]
async fn the_water_example_flows_through_the_reference_stack_on_the_node() {
    install_crds().await;
    let _stack = ReferenceStack::apply();
    // Both StatefulSets rolled out (make waited): every broker and Cassandra ready.
    for sts in ["kafka", "cassandra"] {
        let ready =
            kubectl(&["get", "statefulset", sts, "-n", STACK_NAMESPACE, "-o", "jsonpath={.status.readyReplicas}"]);
        let want = if sts == "kafka" { "3" } else { "1" };
        assert_eq!(ready.trim(), want, "statefulset/{sts} ready replicas");
    }

    // The operator as the k3d path installs it, against the reference stack's Services.
    let release = Release::install_with("charts/tributary/values-k3d.yaml", &[]);
    let tenant = unique("refwater");
    let _tenant = TenantCleanup::new(&tenant);
    apply_water_example_ready(&tenant);
    let credentials = secret(&tenant, "tributary-credentials").await;
    assert_eq!(
        credentials["kafka.bootstrap.servers"], "kafka.tributary-stack.svc.cluster.local:9092",
        "the tenant's Secret names the reference stack's brokers"
    );

    // Records in with the tenant's credentials (a Job, inside the cluster: the brokers
    // advertise their cluster DNS names), rows out in the reference Cassandra.
    let run_id = unique("ref");
    seed_job(&tenant, &run_id, RECORDS);
    let pod_ip = kubectl(&["get", "pod", "cassandra-0", "-n", STACK_NAMESPACE, "-o", "jsonpath={.status.podIP}"]);
    let admin = secret(STACK_NAMESPACE, "cassandra-admin").await;
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_node(format!("{}:9042", pod_ip.trim()))
        .user(&admin["username"], &admin["password"])
        .build()
        .await
        .unwrap();
    let want = expected(Dataset::Water, &run_id, RECORDS);
    let keyspace = tenant.replace('-', "_");
    wait_until(
        &format!("{} rows of run {run_id} in {keyspace}.readings", want.len()),
        Duration::from_secs(180),
        || async {
            let got = rows(&session, Dataset::Water, &keyspace, &run_id).await;
            if got == want { Ok(()) } else { Err(format!("{} of {} rows", got.len(), want.len())) }
        },
    )
    .await;

    // It went through the reference stack, not the local stack's own Kafka.
    match tributary_tests::kafka::topic_layout(&kafka_admin(), &format!("{tenant}.data")) {
        Err(e) => assert!(e.contains("UNKNOWN_TOPIC"), "the local stack's Kafka, asked for {tenant}.data: {e}"),
        Ok(layout) => panic!("the local stack's Kafka has topic {tenant}.data: {layout:?}"),
    }
    let log = release.logs();
    assert!(!log.contains("forbidden"), "the operator was refused something by its RBAC: {log}");
}

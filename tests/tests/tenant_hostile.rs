//! A hostile team cannot hurt the platform (issue 34): each attack is tried with the team's
//! own rights (the chart's tenant-team role, through `kubectl --as`), and checked with
//! independent clients. What a team makes is never the operator's truth, and everything it
//! asks for is bounded by Kubernetes itself or refused before it reaches Kafka.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams};
use tributary::api::{CassandraSink, Tenant, Topic};
use tributary::external::kafka::{AclBinding, AclBindingFilter, AclOperation, PatternType, ResourceType};
use tributary_tests::kafka::wait_config;
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::{apply_water_example_ready, produce, water_example};
use tributary_tests::team::Team;
use tributary_tests::{
    TenantCleanup, cassandra_admin, cassandra_session, http_get, kafka_admin, kafka_admin_ext, kubectl, kubectl_apply,
    kubectl_wait_ready, ready_tenant, unique, wait_ready, wait_until,
};

const WAIT: Duration = Duration::from_secs(90);

async fn client() -> kube::Client {
    kube::Client::try_default().await.unwrap()
}

fn image() -> String {
    std::env::var("TRIBUTARY_IMAGE").expect("TRIBUTARY_IMAGE (make stack-env)")
}

/// A pod that passes Pod Security `restricted`, running `command` in the tributary image.
fn restricted_pod(name: &str, labels: &str, command: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  \
         automountServiceAccountToken: false\n  securityContext: {{runAsNonRoot: true, runAsUser: 65532, seccompProfile: {{type: RuntimeDefault}}}}\n  \
         containers:\n  - name: main\n    image: {}\n    imagePullPolicy: Never\n    command: {command}\n    \
         securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}\n",
        image()
    )
}

/// A report server in Perl (the image's base has it): answers every request with `body`.
fn report_server(body: &str) -> String {
    let script = format!(
        "use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalPort => 8080, Listen => 5, ReuseAddr => 1) or die; \
         my $b = q({body}); while (my $c = $s->accept) {{ my $l = <$c>; print $c \"HTTP/1.1 200 OK\\r\\nContent-Type: \
         application/json\\r\\nContent-Length: \" . length($b) . \"\\r\\nConnection: close\\r\\n\\r\\n$b\"; close $c }}"
    );
    serde_json::to_string(&["perl", "-e", &script]).unwrap()
}

const FORGED: &str = r#"{"recordsWritten":987654321,"deadLettered":0,"lastError":{"message":"forged by a pod of the team","time":"2030-01-01T00:00:00Z"}}"#;

#[tokio::test]
async fn a_pod_posing_as_a_sink_is_refused_or_never_read_and_the_sink_pods_carry_no_token() {
    OperatorProcess::shared().await;
    let tenant = unique("hp");
    let _cleanup = TenantCleanup::new(&tenant);
    apply_water_example_ready(&tenant);
    let team = Team::of(&tenant);
    let sink_labels = format!("tributary.dev/sink: readings, tributary.dev/tenant: {tenant}");

    // The team's pod labelled as the sink (which the sink's ReplicaSet would adopt): refused
    // by the API server, once the chart's admission policy is in force.
    let posing = restricted_pod("posing", &sink_labels, &report_server(FORGED));
    wait_until("the admission policy for sink pods to be in force", WAIT, || async {
        match team.kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &posing) {
            Err(e) if e.contains("tributary.dev/sink marks the pods") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let refused = team.apply(&posing).expect_err("a team pod labelled as a sink is refused");
    assert!(refused.contains("which only their ReplicaSets create"), "{refused}");

    // A pod labelled as the sink but of no Deployment of the operator's (made by an admin, past
    // the policy, with another tenant label so no ReplicaSet adopts it): it answers a forged
    // report, and is never asked.
    let impostor_labels = format!("tributary.dev/sink: readings, tributary.dev/tenant: {tenant}-impostor");
    tributary_tests::run(
        "kubectl",
        &["apply", "-n", &tenant, "-f", "-"],
        Some(&restricted_pod("impostor", &impostor_labels, &report_server(FORGED))),
    );
    let pods: Api<Pod> = Api::namespaced(client().await, &tenant);
    let ip = wait_until("the impostor to run", WAIT, || async {
        let pod = pods.get("impostor").await.map_err(|e| e.to_string())?;
        let status = pod.status.unwrap_or_default();
        match (status.phase.as_deref(), status.pod_ip) {
            (Some("Running"), Some(ip)) => Ok(ip),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let answer = wait_until("the impostor to answer", WAIT, || http_get(&ip, 8080, "/report")).await;
    assert!(answer.contains("987654321"), "the impostor would lie if asked: {answer}");

    // Records produced after the impostor runs: the next reports count them, from the sink's
    // own pods only.
    produce(&tenant, "water", &unique("hp"), 20).await;
    let sinks: Api<CassandraSink> = Api::namespaced(client().await, &tenant);
    let status = wait_until("the sink's own pods to report the 20 records", WAIT, || async {
        let status = sinks.get("readings").await.map_err(|e| e.to_string())?.status.unwrap_or_default();
        match status.records_written {
            Some(n) if n >= 20 => Ok(status),
            other => Err(format!("recordsWritten {other:?}")),
        }
    })
    .await;
    assert!(status.records_written.unwrap() < 1000, "no forged count: {:?}", status.records_written);
    assert_ne!(status.last_error.as_deref(), Some("forged by a pod of the team"));
    let partitions: Vec<i32> = status.partitions_counted.iter().map(|c| c.partition).collect();
    assert!(partitions.iter().all(|p| (0..3).contains(p)), "only the topic's partitions are counted: {partitions:?}");

    // The sink's own pods pass Pod Security `restricted` and hold no API token.
    let deployment: Deployment = Api::namespaced(client().await, &tenant).get("tributary-sink-readings").await.unwrap();
    let spec = deployment.spec.unwrap().template.spec.unwrap();
    assert_eq!(spec.automount_service_account_token, Some(false));
    let seccomp = spec.security_context.and_then(|s| s.seccomp_profile).map(|p| p.type_);
    assert_eq!(seccomp.as_deref(), Some("RuntimeDefault"));
    let sink_pods = pods.list(&ListParams::default().labels(&format!("tributary.dev/tenant={tenant}"))).await.unwrap();
    assert!(!sink_pods.items.is_empty());
    for pod in sink_pods.items.iter().filter(|p| p.metadata.name.as_deref() != Some("impostor")) {
        let volumes = pod.spec.as_ref().and_then(|s| s.volumes.clone()).unwrap_or_default();
        assert!(
            volumes.iter().all(|v| v.projected.is_none()),
            "no service-account token is mounted: {:?}",
            volumes.iter().map(|v| &v.name).collect::<Vec<_>>()
        );
    }
    pods.delete("impostor", &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn the_namespace_fence_holds_against_the_teams_own_rights() {
    OperatorProcess::shared().await;
    let tenant = unique("hf");
    let limits = "  kafka:\n    limits:\n      maxTopicObjects: 2\n      maxSinks: 1\n      maxPods: 2\n";
    let _cleanup = ready_tenant(&tenant, limits).await;
    let team = Team::of(&tenant);
    let topic = |name: &str, config: &str| {
        format!(
            "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: {name}\nspec:\n  partitions: 1\n{config}"
        )
    };

    // A config value past the schema's bound is refused by the API server: never stored.
    let huge = format!("  config:\n    retention.ms: \"{}\"\n", "9".repeat(900 * 1024));
    let refused = team.apply(&topic("huge", &huge)).expect_err("a 900 KiB config value is refused");
    assert!(refused.contains("Too long"), "{refused}");

    // Objects are counted by Kubernetes: the third Topic is refused at apply time.
    team.apply(&topic("a", "")).unwrap();
    team.apply(&topic("b", "")).unwrap();
    let refused = team.apply(&topic("c", "")).expect_err("a third Topic is over the quota");
    assert!(refused.contains("exceeded quota") && refused.contains("count/topics.tributary.dev"), "{refused}");

    // Pods: Pod Security `restricted` is enforced, and at most maxPods run whatever asks.
    let privileged = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: root\nspec:\n  containers:\n  - name: main\n    image: {}\n    \
         command: [sleep, \"600\"]\n    securityContext: {{privileged: true}}\n",
        image()
    );
    let refused = team.apply(&privileged).expect_err("a privileged pod is refused");
    assert!(refused.contains("violates PodSecurity \"restricted:latest\""), "{refused}");
    let many = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: many\nspec:\n  replicas: 5\n  selector:\n    \
         matchLabels: {{app: many}}\n  template:\n    metadata:\n      labels: {{app: many}}\n    spec:\n      \
         automountServiceAccountToken: false\n      securityContext: {{runAsNonRoot: true, runAsUser: 65532, seccompProfile: {{type: RuntimeDefault}}}}\n      \
         containers:\n      - name: main\n        image: {}\n        imagePullPolicy: Never\n        command: [sleep, \"600\"]\n        \
         securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}\n",
        image()
    );
    team.apply(&many).unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client().await, &tenant);
    wait_until("the quota to stop the Deployment at 2 pods", WAIT, || async {
        let status = deployments.get("many").await.map_err(|e| e.to_string())?.status.unwrap_or_default();
        let failure = status.conditions.iter().flatten().find(|c| c.type_ == "ReplicaFailure");
        match (status.replicas, failure) {
            (Some(2), Some(c)) if c.message.as_deref().is_some_and(|m| m.contains("exceeded quota")) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client().await, &tenant);
    assert_eq!(pods.list(&ListParams::default().labels("app=many")).await.unwrap().items.len(), 2);

    // The fence is the operator's: the team may read the quota, change none of it.
    let quota = kubectl(&["get", "resourcequota", "tributary-quota", "-n", &tenant, "-o", "jsonpath={.spec.hard}"]);
    assert!(quota.contains(r#""count/topics.tributary.dev":"2""#) && quota.contains(r#""pods":"2""#), "{quota}");
    let policy = kubectl(&["get", "networkpolicy", "tributary-default-deny", "-n", &tenant, "-o", "json"]);
    let policy: serde_json::Value = serde_json::from_str(&policy).unwrap();
    assert_eq!(policy["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
    assert_eq!(policy["spec"]["podSelector"], serde_json::json!({}), "every pod of the namespace");
    let labels = Api::<Namespace>::all(client().await).get(&tenant).await.unwrap().metadata.labels.unwrap();
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
    for args in [
        &["delete", "resourcequota/tributary-quota"][..],
        &["delete", "networkpolicy/tributary-default-deny"],
        &["patch", "limitrange/tributary-limits"],
        &["patch", &format!("namespace/{tenant}")],
        &["create", "rolebindings"],
        &["create", "replicasets.apps"],
        &["patch", "topics.tributary.dev", "--subresource=status"],
    ] {
        assert!(!team.can_i(args), "the team may not {args:?}");
    }
    let refused = team.kubectl(&["delete", "networkpolicy", "tributary-default-deny"]).expect_err("forbidden");
    assert!(refused.contains("Forbidden"), "{refused}");
    for args in [&["create", "pods"][..], &["create", "secrets"], &["create", "topics.tributary.dev"]] {
        assert!(team.can_i(args), "the team runs its own applications: {args:?}");
    }
}

#[tokio::test]
async fn topic_configs_that_load_the_shared_brokers_are_refused_before_kafka() {
    OperatorProcess::shared().await;
    let tenant = unique("hc");
    let _cleanup = ready_tenant(&tenant, "").await;
    let team = Team::of(&tenant);
    let topics: Api<Topic> = Api::namespaced(client().await, &tenant);
    let admin = kafka_admin();
    for (name, config, says) in [
        ("tiny-segments", "segment.ms: \"1\"", "segment.ms 1 is below"),
        ("small-segments", "segment.bytes: \"1024\"", "segment.bytes 1024 is below"),
        ("for-ever", "cleanup.policy: compact", "keeps the newest record of every key for ever"),
        (
            "never-compacted",
            "min.compaction.lag.ms: \"9223372036854775807\"",
            "min.compaction.lag.ms 9223372036854775807 is beyond",
        ),
    ] {
        team.apply(&format!(
            "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: {name}\nspec:\n  partitions: 1\n  \
             config:\n    {config}\n"
        ))
        .unwrap();
        let message = wait_ready(&topics, name, "False", "GuardrailViolated").await;
        assert!(message.contains(says), "{name}: {message}");
        let metadata = admin.inner().fetch_metadata(Some(&format!("{tenant}.{name}")), Duration::from_secs(10));
        let exists = metadata.is_ok_and(|m| m.topics().iter().any(|t| t.error().is_none()));
        assert!(!exists, "{tenant}.{name} was never created in Kafka");
    }
    // Within the bounds: applied.
    team.apply(
        "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: hourly\nspec:\n  partitions: 1\n  \
         config:\n    segment.ms: \"3600000\"\n    cleanup.policy: \"compact,delete\"\n",
    )
    .unwrap();
    wait_ready(&topics, "hourly", "True", "Provisioned").await;
    wait_config(&format!("{tenant}.hourly"), "segment.ms", Some("3600000")).await;
}

#[tokio::test]
async fn a_secret_planted_under_a_sinks_secret_name_is_never_adopted() {
    OperatorProcess::shared().await;
    let tenant = unique("hs");
    let _cleanup = TenantCleanup::new(&tenant);
    kubectl_apply(&water_example("tenant.yaml", &tenant));
    kubectl_wait_ready(&[&format!("tenant/{tenant}")]);
    let team = Team::of(&tenant);
    team.apply(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: tributary-sink-readings\nstringData:\n  \
         kafka.username: planted\n  kafka.password: planted-password\n",
    )
    .unwrap();
    kubectl_apply(&water_example("topic.yaml", &tenant));
    kubectl_apply(&water_example("sink.yaml", &tenant));
    let sinks: Api<CassandraSink> = Api::namespaced(client().await, &tenant);
    let message = wait_ready(&sinks, "readings", "False", "OwnershipConflict").await;
    assert!(
        message.contains("tributary-sink-readings") && message.contains("not written by the operator"),
        "{message}"
    );
    let sink_user = format!("{tenant}.sink.readings");
    let login = tributary_tests::kafka_user_settings(&sink_user, "planted-password");
    let refused = tokio::task::spawn_blocking(move || {
        use tributary_tests::{ClientConfigOf, CreateClient};
        let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
            login.client_config().create_client().unwrap();
        admin.inner().fetch_metadata(None, Duration::from_secs(5)).map(|_| ())
    })
    .await
    .unwrap();
    assert!(refused.is_err(), "the planted password never logs in as the sink user");
    let planted = tributary_tests::pipeline::secret(&tenant, "tributary-sink-readings").await;
    assert_eq!(planted["kafka.password"], "planted-password", "nothing was written over it");
    let deployments: Api<Deployment> = Api::namespaced(client().await, &tenant);
    assert!(deployments.get_opt("tributary-sink-readings").await.unwrap().is_none(), "no pod runs with it");

    // The team removes its Secret: the sink gets its own credentials and runs.
    team.kubectl(&["delete", "secret", "tributary-sink-readings"]).unwrap();
    kubectl_wait_ready(&["-n", &tenant, "cassandrasink/readings"]);
    let own = tributary_tests::pipeline::secret(&tenant, "tributary-sink-readings").await;
    assert_ne!(own["kafka.password"], "planted-password");
}

#[tokio::test]
async fn a_principal_known_only_by_its_acls_and_a_second_login_role_are_not_taken_over() {
    OperatorProcess::shared().await;
    let tenants: Api<Tenant> = Api::all(client().await);
    // A principal of another login mechanism (a SASL/PLAIN user of the brokers, a certificate):
    // Kafka knows it only by its ACLs.
    let name = unique("plain");
    let principal = format!("User:{name}");
    let ext = kafka_admin_ext(&kafka_admin());
    let own: BTreeSet<AclBinding> = [AclOperation::Read, AclOperation::Describe]
        .into_iter()
        .map(|op| AclBinding::allow(&principal, ResourceType::Topic, PatternType::Literal, "billing.events", op))
        .collect();
    for result in ext.create_acls(own.iter().cloned().collect()).await.unwrap() {
        result.unwrap();
    }
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {name}\nspec:\n  deletionPolicy: Delete\n"
    ));
    let cleanup = TenantCleanup::new(&name);
    let message = wait_ready(&tenants, &name, "False", "OwnershipConflict").await;
    assert!(message.contains(&format!("Kafka principal {principal} exists with 2 ACLs")), "{message}");
    drop(cleanup);
    let after: BTreeSet<AclBinding> =
        ext.describe_acls(AclBindingFilter::for_principal(&principal)).await.unwrap().into_iter().collect();
    assert_eq!(after, own, "the principal's own ACLs are all there, after the refused Tenant was deleted too");
    ext.delete_acls(vec![AclBindingFilter::for_principal(&principal)]).await.unwrap();

    // The second login a rotation would use (`<role>.2`) exists already: the same rule.
    let role = unique("second").replace('-', "_");
    let (user, password) = cassandra_admin();
    let admin = cassandra_session(&user, &password).await.unwrap();
    admin
        .query_unpaged(format!("CREATE ROLE \"{role}.2\" WITH PASSWORD = 'its-own' AND LOGIN = true"), &[])
        .await
        .unwrap();
    let tenant = unique("second");
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {tenant}\nspec:\n  deletionPolicy: Delete\n  \
         cassandra:\n    keyspace: {role}\n"
    ));
    let cleanup = TenantCleanup::new(&tenant);
    let message = wait_ready(&tenants, &tenant, "False", "OwnershipConflict").await;
    assert!(message.contains(&format!("Cassandra role {role}.2 exists")), "{message}");
    drop(cleanup);
    cassandra_session(&format!("{role}.2"), "its-own").await.expect("the role is kept, its password unchanged");
    admin.query_unpaged(format!("DROP ROLE \"{role}.2\""), &[]).await.unwrap();
}

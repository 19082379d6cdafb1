//! The local stack's Prometheus (stack/config/prometheus, PROMETHEUS_URL): it has loaded the
//! chart's alerts; it finds sink pods and the operator's metrics Service the way the chart's
//! PodMonitor and ServiceMonitor make the Prometheus Operator find them, labelled alike; it
//! scrapes an operator run as a host process once a targets file names it; and it scrapes
//! the brokers and Cassandra through the JMX exporter's agent.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tributary_tests::prometheus::{TargetsFile, api, query};
use tributary_tests::{NamespaceCleanup, kubectl, kubectl_apply, repo_root, unique, wait_until};

const WAIT: Duration = Duration::from_secs(90);

/// The active target of scrape job `job` whose labels include `labels`.
async fn target(job: &str, labels: &[(&str, &str)]) -> Result<Value, String> {
    let data = api("/api/v1/targets?state=active").await?;
    let targets = data["activeTargets"].as_array().cloned().unwrap_or_default();
    targets
        .into_iter()
        .find(|t| t["labels"]["job"] == job && labels.iter().all(|(k, v)| t["labels"][*k] == *v))
        .ok_or_else(|| format!("no {job} target with {labels:?} yet"))
}

#[tokio::test]
async fn prometheus_has_loaded_the_charts_alerts() {
    let text = std::fs::read_to_string(repo_root().join("charts/tributary/alerts/tributary.rules.yaml")).unwrap();
    let file: Value = serde_saphyr::from_str(&text).unwrap();
    let want: BTreeSet<String> = file["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter().filter_map(|r| r["alert"].as_str().map(String::from)))
        .collect();
    let data = api("/api/v1/rules?type=alert").await.unwrap_or_else(|e| panic!("{e}"));
    let loaded: BTreeSet<String> = data["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(loaded, want, "the stack's Prometheus must load charts/tributary/alerts/tributary.rules.yaml");
}

/// A pod running the node's pause image, which Kubernetes discovery sees like any other.
fn idle_pod(name: &str, namespace: &str, labels: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {namespace}
  labels:
    {labels}
spec:
  containers:
    - name: main
      image: tributary.local/pause:3.10
      imagePullPolicy: Never
      ports:
        - name: http
          containerPort: 8080
"#
    )
}

#[tokio::test]
async fn prometheus_finds_sink_pods_and_the_operator_service_as_the_charts_monitors_do() {
    let namespace = unique("prom");
    kubectl(&["create", "namespace", &namespace]);
    let _cleanup = NamespaceCleanup(namespace.clone());
    kubectl(&["label", "namespace", &namespace, "tributary.dev/test-scratch=true"]);
    // Labelled as the operator labels a sink's pods, and as the chart labels its metrics Service.
    kubectl_apply(&idle_pod(
        "orders-sink",
        &namespace,
        "{app.kubernetes.io/name: tributary-sink, app.kubernetes.io/managed-by: tributary, tributary.dev/sink: orders, tributary.dev/tenant: water}",
    ));
    kubectl_apply(&idle_pod("operator", &namespace, "{app: prom-check-operator}"));
    kubectl_apply(&format!(
        r#"apiVersion: v1
kind: Service
metadata:
  name: tributary-metrics
  namespace: {namespace}
  labels: {{app.kubernetes.io/name: tributary, app.kubernetes.io/component: operator}}
spec:
  selector: {{app: prom-check-operator}}
  ports:
    - {{name: http, port: 8080, targetPort: http}}
"#
    ));
    kubectl(&["-n", &namespace, "wait", "--for=condition=Ready", "--timeout=120s", "pod/orders-sink", "pod/operator"]);
    let ip = |pod: &str| kubectl(&["-n", &namespace, "get", "pod", pod, "-o", "jsonpath={.status.podIP}"]);
    let (sink_ip, operator_ip) = (ip("orders-sink"), ip("operator"));

    let sink_labels = [("namespace", namespace.as_str()), ("pod", "orders-sink")];
    let sink =
        wait_until("the sink pod as a tributary-sinks target", WAIT, || target("tributary-sinks", &sink_labels)).await;
    assert_eq!(sink["scrapeUrl"], format!("http://{sink_ip}:8080/metrics"));
    assert_eq!(sink["labels"]["sink"], "orders", "{sink}");
    assert_eq!(sink["labels"]["tenant"], "water", "{sink}");

    let operator_labels = [("namespace", namespace.as_str()), ("service", "tributary-metrics")];
    let operator = wait_until("the metrics Service as a tributary-operator target", WAIT, || {
        target("tributary-operator", &operator_labels)
    })
    .await;
    assert_eq!(operator["scrapeUrl"], format!("http://{operator_ip}:8080/metrics"));
    assert_eq!(operator["labels"]["pod"], "operator", "{operator}");
    assert_eq!(operator["labels"]["endpoint"], "http", "{operator}");
}

#[tokio::test]
async fn an_operator_run_on_the_host_is_scraped_once_a_targets_file_names_it() {
    // The operator's own /metrics server and metrics, as `make run` serves them.
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
    let metrics = Arc::new(tributary::metrics::Metrics::default());
    metrics.leader.set(1);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    tokio::spawn(tributary::http::serve(addr, metrics, Arc::new(tributary::http::Health::default())));

    let _file = TargetsFile::write(&unique("test-operator"), &addr.to_string(), &[])
        .expect("TRIBUTARY_PROMETHEUS_TARGETS (make stack-env)");

    let leader = format!(r#"tributary_leader{{job="tributary-operator-host",instance="127.0.0.1:{port}"}}"#);
    wait_until("the host-run operator's tributary_leader in Prometheus", WAIT, || async {
        let result = query(&leader).await?;
        match result.first() {
            Some(sample) if sample["value"][1] == "1" => Ok(()),
            _ => Err(format!("{leader}: {result:?}")),
        }
    })
    .await;
}

#[tokio::test]
async fn prometheus_scrapes_the_brokers_and_cassandra_through_the_jmx_exporter() {
    let hint = "the brokers and Cassandra serve metrics through the JMX exporter only when started with it \
        (stack/scripts/lib/prometheus.sh); a stack started before it was added needs them restarted: \
        `stack.sh stop kafka cassandra && stack.sh start kafka cassandra`, or `make stack-down stack-up`";
    wait_until("every broker and Cassandra scraped (up == 1)", WAIT, || async {
        let up = query(r#"up{job=~"kafka|cassandra"} == 1"#).await?;
        if up.len() == 4 { Ok(()) } else { Err(format!("{hint}; up: {up:?}")) }
    })
    .await;
    // And what they export is the brokers' and Cassandra's own metrics, named by the rules
    // of stack/config/jmx-exporter.
    let partitions = query("kafka_server_replicamanager_partitioncount").await.unwrap();
    assert_eq!(partitions.len(), 3, "one per broker: {partitions:?}");
    let controllers = query("sum(kafka_controller_kafkacontroller_activecontrollercount)").await.unwrap();
    assert_eq!(controllers[0]["value"][1], "1", "one active KRaft controller: {controllers:?}");
    let writes = query(r#"cassandra_client_requests_total{operation="Write"}"#).await.unwrap();
    assert_eq!(writes.len(), 1, "{writes:?}");
}

//! The packaging, checked on the real API server of the stack: the Helm chart lints and every
//! values file renders to objects the API server accepts (server-side dry run), the reference
//! Kafka + Cassandra stack for clusters (k3d/stack) is accepted too and carries the local
//! stack's broker config, the Makefile's cluster targets parse, and values.schema.json refuses
//! a mistyped value by its name. (The chart installed for real on the node: `in_cluster`.)

use std::path::PathBuf;
use std::process::Command;

use tributary_tests::operator::ensure_namespace;
use tributary_tests::{NamespaceCleanup, helm, install_crds, kubectl, repo_root, run, unique};

/// `helm template RELEASE charts/tributary -n NAMESPACE EXTRA..` for the stack's Kubernetes version.
fn template(release: &str, namespace: &str, extra: &[&str]) -> String {
    let version: serde_json::Value = serde_json::from_str(&kubectl(&["version", "-o", "json"])).unwrap();
    let version = version["serverVersion"]["gitVersion"].as_str().expect("the API server's version");
    let mut args = vec!["template", release, "charts/tributary", "-n", namespace, "--kube-version", version];
    args.extend(extra);
    run(helm(), &args, None)
}

fn values_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("charts/tributary"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("values") && name.ends_with(".yaml")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 4, "values.yaml, values-k3d.yaml, values-gke.yaml and values-local.yaml: {files:?}");
    files
}

/// `kubectl apply --dry-run=server` of `manifests`; returns the kinds the API server accepted.
fn server_dry_run(manifests: &str) -> String {
    run("kubectl", &["apply", "--dry-run=server", "-f", "-"], Some(manifests))
}

#[tokio::test]
async fn every_values_file_renders_objects_the_api_server_accepts() {
    install_crds().await;
    for values in values_files() {
        let values = values.to_str().unwrap();
        // values-local.yaml has the chart make the CA Secret from the stack's CA.
        let ca = format!(
            "kafka.tls.caSecret.ca={}",
            std::env::var("KAFKA_CA_FILE").expect("KAFKA_CA_FILE (make stack-env)")
        );
        run(helm(), &["lint", "--strict", "charts/tributary", "-f", values, "--set-file", &ca], None);
        let namespace = unique("chart");
        ensure_namespace(&namespace).await;
        let rendered = template("tributary", &namespace, &["-f", values, "--set-file", &ca, "--include-crds"]);
        let accepted = server_dry_run(&rendered);
        if values.ends_with("values-local.yaml") {
            // TLS to both: the CA Secret, mounted, and named to the operator.
            assert!(accepted.contains("secret/tributary-data-ca"), "{accepted}");
            for env in [
                "KAFKA_SECURITY_PROTOCOL",
                "KAFKA_CA_FILE",
                "CASSANDRA_CA_FILE",
                "TRIBUTARY_DEFAULT_QUOTAS",
                "TRIBUTARY_SECRETS_ROLE",
            ] {
                assert!(rendered.contains(&format!("name: {env}")), "values-local.yaml: {env} not set");
            }
        }
        for object in [
            "customresourcedefinition.apiextensions.k8s.io/tenants.tributary.dev",
            "clusterrole.rbac.authorization.k8s.io/tributary",
            "role.rbac.authorization.k8s.io/tributary-leader-election",
            "clusterrole.rbac.authorization.k8s.io/tributary-tenant-secrets",
            "rolebinding.rbac.authorization.k8s.io/tributary-secrets",
            "validatingadmissionpolicy.admissionregistration.k8s.io/tributary-sink-pods",
            "validatingadmissionpolicybinding.admissionregistration.k8s.io/tributary-sink-pods",
            "serviceaccount/tributary",
            "deployment.apps/tributary",
            "service/tributary-metrics",
            "configmap/tributary-dashboard",
        ] {
            assert!(accepted.contains(object), "{values}: {object} not in the dry run:\n{accepted}");
        }
    }
    // A bad value is refused with a message that names it.
    let out = Command::new(helm())
        .args(["template", "t", "charts/tributary", "--kube-version", "v1.35.4", "--set", "kafka.bootstrapServers="])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(!out.status.success());
    // values.schema.json refuses it before the template's `required` would.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/kafka/bootstrapServers"), "{stderr}");
}

#[tokio::test]
async fn the_cluster_stack_is_accepted_and_uses_the_local_stacks_broker_config() {
    let rendered = run("kubectl", &["kustomize", "--load-restrictor", "LoadRestrictionsNone", "k3d/stack"], None);
    // One source of truth: the broker template the local stack runs is what the brokers mount.
    let template = std::fs::read_to_string(repo_root().join("stack/config/kafka/server.properties")).unwrap();
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&rendered).unwrap_or_else(|e| panic!("k3d/stack renders invalid YAML: {e}"));
    let mounted = docs
        .iter()
        .filter(|d| d["kind"] == "ConfigMap")
        .find_map(|d| d["data"]["server.properties"].as_str())
        .expect("a ConfigMap with server.properties");
    assert_eq!(mounted, template, "k3d/stack must mount stack/config/kafka/server.properties unchanged");
    let kinds: Vec<String> = docs
        .iter()
        .map(|d| format!("{}/{}", d["kind"].as_str().unwrap(), d["metadata"]["name"].as_str().unwrap()))
        .collect();
    for want in
        ["StatefulSet/kafka", "StatefulSet/cassandra", "Service/kafka", "Service/cassandra", "Deployment/kafka-ui"]
    {
        assert!(kinds.iter().any(|k| k == want), "{want} missing from k3d/stack: {kinds:?}");
    }
    let kafka = docs.iter().find(|d| d["kind"] == "StatefulSet" && d["metadata"]["name"] == "kafka").unwrap();
    assert_eq!(kafka["spec"]["replicas"], 3, "three brokers");

    // The API server validates every object (the namespace must exist for a dry run).
    let namespace = docs.iter().find(|d| d["kind"] == "Namespace").expect("a Namespace")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    // Made here only for the dry run, and deleted after it, unless it was there before (the
    // reference_stack test applies the stack for real and wants the namespace to itself).
    let made = kubectl(&["get", "namespace", &namespace, "--ignore-not-found", "-o", "name"]).trim().is_empty();
    ensure_namespace(&namespace).await;
    let _made = made.then(|| NamespaceCleanup(namespace.clone()));
    let accepted = server_dry_run(&rendered);
    assert!(accepted.contains("statefulset.apps/kafka"), "{accepted}");
    assert!(accepted.contains("statefulset.apps/cassandra"), "{accepted}");

    // The k3d config parses and names the cluster the Makefile uses.
    let k3d: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(repo_root().join("k3d/cluster.yaml")).unwrap()).unwrap();
    assert_eq!(k3d["kind"], "Simple");
    assert_eq!(k3d["metadata"]["name"], "tributary");

    // The Makefile's cluster targets parse and expand (make -n runs nothing).
    let targets = [
        "k3d-create",
        "kafka-create",
        "cassandra-create",
        "operator-install",
        "kafka-port-forward",
        "kafka-ui-port-forward",
        "cassandra-port-forward",
        "cassandra-cqlsh",
        "k3d-delete",
        "image",
        "demo",
        "help",
    ];
    let mut args = vec!["-n"];
    args.extend(targets);
    let plan = run("make", &args, None);
    assert!(plan.contains("k3d/cluster.yaml") && plan.contains("values-k3d.yaml"), "{plan}");
}

#[test]
fn a_mistyped_value_is_refused_with_its_name() {
    for (set, name) in
        [("replicaz=2", "replicaz"), ("kafka.bootstrapServer=x:9092", "bootstrapServer"), ("replicas=two", "replicas")]
    {
        let out = Command::new(helm())
            .args(["template", "t", "charts/tributary", "--kube-version", "v1.35.4", "--set", set])
            .current_dir(repo_root())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--set {set} was accepted");
        assert!(
            stderr.contains("values don't meet the specifications of the schema") && stderr.contains(name),
            "--set {set}: {stderr}"
        );
    }
}

/// A kubeconfig that authenticates as the chart's ServiceAccount with a token from the API
/// server's TokenRequest API, as a pod of the Deployment would.
fn service_account_kubeconfig(namespace: &str, account: &str) -> PathBuf {
    let token = run("kubectl", &["create", "token", account, "-n", namespace, "--duration", "2h"], None);
    let server = run("kubectl", &["config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"], None);
    let ca = run(
        "kubectl",
        &["config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.certificate-authority}"],
        None,
    );
    let path = std::env::temp_dir().join(format!("{}.kubeconfig", unique("sa")));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: '{server}', certificate-authority: '{ca}'}}\n\
             users:\n- name: u\n  user: {{token: '{}'}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n",
            token.trim()
        ),
    )
    .unwrap();
    path
}

/// A fresh release name with its namespace, and the chart rendered for it.
async fn render_release(prefix: &str) -> (String, String) {
    install_crds().await;
    let release = unique(prefix);
    ensure_namespace(&release).await;
    let rendered = template(&release, &release, &[]);
    (release, rendered)
}

#[tokio::test]
async fn the_tenant_team_role_allows_topics_sinks_and_the_teams_applications_and_nothing_of_the_fence() {
    let (release, rendered) = render_release("team").await;
    let team_role: Vec<&str> = rendered
        .split("\n---\n")
        .filter(|doc| doc.contains(&format!("name: {release}-tributary-tenant-team\n")))
        .collect();
    assert_eq!(team_role.len(), 1, "the chart ships the tenant-team ClusterRole");
    run("kubectl", &["apply", "-f", "-"], Some(team_role[0]));
    // A team's ServiceAccount, bound in its namespace as the role's comment says.
    let tenant_ns = unique("team-ns");
    ensure_namespace(&tenant_ns).await;
    kubectl(&["create", "serviceaccount", "member", "-n", &tenant_ns]);
    let role = format!("--clusterrole={release}-tributary-tenant-team");
    let member = format!("--serviceaccount={tenant_ns}:member");
    kubectl(&["create", "rolebinding", "team", "-n", &tenant_ns, &role, &member]);
    let kubeconfig = service_account_kubeconfig(&tenant_ns, "member");
    let can = |args: &[&str]| {
        let mut all = vec!["--kubeconfig", kubeconfig.to_str().unwrap(), "auth", "can-i"];
        all.extend(args);
        let out = Command::new("kubectl").args(&all).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    for (args, expected) in [
        (vec!["create", "topics.tributary.dev", "-n", &tenant_ns], "yes"),
        (vec!["delete", "cassandrasinks.tributary.dev", "-n", &tenant_ns], "yes"),
        (vec!["create", "kafkausers.tributary.dev", "-n", &tenant_ns], "yes"),
        (vec!["create", "topicgrants.tributary.dev", "-n", &tenant_ns], "yes"),
        (vec!["patch", "kafkausers.tributary.dev", "--subresource=status", "-n", &tenant_ns], "no"),
        (vec!["get", "secret/tributary-credentials", "-n", &tenant_ns], "yes"),
        (vec!["patch", "topics.tributary.dev", "--subresource=status", "-n", &tenant_ns], "no"),
        // The team's own applications (what they make is never the operator's truth).
        (vec!["create", "pods", "-n", &tenant_ns], "yes"),
        (vec!["create", "deployments.apps", "-n", &tenant_ns], "yes"),
        (vec!["create", "secrets", "-n", &tenant_ns], "yes"),
        (vec!["get", "resourcequotas", "-n", &tenant_ns], "yes"),
        // Nothing of the namespace's fence, and nothing beyond the namespace.
        (vec!["patch", "resourcequotas", "-n", &tenant_ns], "no"),
        (vec!["delete", "limitranges", "-n", &tenant_ns], "no"),
        (vec!["delete", "networkpolicies.networking.k8s.io", "-n", &tenant_ns], "no"),
        (vec!["create", "rolebindings.rbac.authorization.k8s.io", "-n", &tenant_ns], "no"),
        (vec!["create", "replicasets.apps", "-n", &tenant_ns], "no"),
        (vec!["patch", &format!("namespace/{tenant_ns}")], "no"),
        (vec!["create", "pods", "-n", "default"], "no"),
        (vec!["create", "topics.tributary.dev", "-n", "default"], "no"),
        (vec!["patch", "tenants.tributary.dev"], "no"),
    ] {
        assert_eq!(can(&args), expected, "can-i {args:?}");
    }
}

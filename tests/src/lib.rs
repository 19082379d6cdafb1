//! Helpers shared by the integration tests. Every test runs against the real local stack
//! (`make stack-up`) and reads how to reach it from the variables `make stack-env` exports.

use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use tributary::external::kafka::ClientSettings;

pub mod librdkafka;
pub use librdkafka::{AdminExt, ClientConfigOf, CreateClient};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the stack with `make stack-up`, then `eval \"$(make -s stack-env)\"` (or run `make test`)")
    })
}

/// The Kafka admin principal of the stack.
pub fn kafka_admin_settings() -> ClientSettings {
    ClientSettings::admin_from_env().unwrap_or_else(|e| panic!("{e}"))
}

/// A long-lived admin client for the stack's Kafka cluster.
pub fn kafka_admin() -> Arc<AdminClient<DefaultClientContext>> {
    let admin = kafka_admin_settings().client_config().create_client().expect("create Kafka admin client");
    Arc::new(admin)
}

/// The SCRAM/ACL admin calls on top of an admin client.
pub fn kafka_admin_ext(admin: &Arc<AdminClient<DefaultClientContext>>) -> AdminExt {
    AdminExt::new(admin.clone(), Duration::from_secs(15))
}

pub fn kafka_bootstrap() -> String {
    env("KAFKA_BOOTSTRAP")
}

/// Settings for `user` on the stack's Kafka, with the stack's TLS (as the admin's).
pub fn kafka_user_settings(user: &str, password: &str) -> ClientSettings {
    let admin = kafka_admin_settings();
    ClientSettings { username: user.into(), password: password.into(), ..admin }
}

/// `host:port` of the stack's Cassandra node.
pub fn cassandra_contact() -> String {
    env("CASSANDRA_CONTACT")
}

pub fn cassandra_admin() -> (String, String) {
    (env("CASSANDRA_ADMIN_USER"), env("CASSANDRA_ADMIN_PASSWORD"))
}

/// Runs `stack.sh ARGS` (e.g. `stop kafka-2`) and fails the test if it fails.
pub fn stack_ctl(args: &[&str]) {
    let script = PathBuf::from(env("TRIBUTARY_STACK"));
    let status = Command::new(&script).args(args).status().unwrap_or_else(|e| panic!("run {script:?}: {e}"));
    assert!(status.success(), "`{} {}` failed with {status}", script.display(), args.join(" "));
}

/// A name no other test run has used: `prefix-<time><counter>` in lowercase base 36, so it is
/// valid as a Kafka topic, a Kubernetes name and (with `_` separators) a CQL identifier.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let n = (nanos ^ (u128::from(std::process::id()) << 64)) % 36u128.pow(8);
    format!("{prefix}-{}{}", base36(n), COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn base36(mut n: u128) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

/// Polls `check` until it returns `Ok`, and returns that value. Fails the test with the last
/// error once `timeout` has passed. This is how tests wait: on a condition, never on a sleep.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last observation: {last}")
            }
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
        }
    }
}
pub mod kafka;

/// The repository root (for the CRDs, `examples/`).
/// The last `n` lines of a log file (empty when it cannot be read), for failure messages.
pub fn tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Runs the stack's real `kubectl` (on PATH via `make stack-env`) and returns stdout, failing
/// the test with stderr if it fails.
pub fn kubectl(args: &[&str]) -> String {
    run("kubectl", args, None)
}

/// Runs `program ARGS` in the repository root (with `stdin` piped in when given) and returns
/// stdout; fails the test with the command's output when it fails.
pub fn run(program: &str, args: &[&str], stdin: Option<&str>) -> String {
    try_run(program, args, stdin).unwrap_or_else(|e| panic!("{e}"))
}

/// [`run`], with the failure (the command and its output) as the error instead of a panic.
pub fn try_run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(program)
        .args(args)
        .current_dir(repo_root())
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run {program}: {e}"))?;
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).map_err(|e| format!("{program} stdin: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("wait for {program}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{program} {} failed: {stdout}{}", args.join(" "), String::from_utf8_lossy(&out.stderr)))
    }
}

/// `GET path` over HTTP/1.0 (the operator's and the sinks' `/metrics`, `/healthz`,
/// `/readyz`): the body of a 200 answer, else the status line or why there was none. Each
/// step waits at most 5 s, so a frozen peer fails the check instead of hanging it.
pub async fn http_get(host: &str, port: u16, path: &str) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let step = Duration::from_secs(5);
    let mut stream = tokio::time::timeout(step, tokio::net::TcpStream::connect((host, port)))
        .await
        .map_err(|_| format!("{host}:{port}: connect timed out"))?
        .map_err(|e| format!("{host}:{port}: {e}"))?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    tokio::time::timeout(step, stream.read_to_string(&mut response))
        .await
        .map_err(|_| format!("{host}:{port}: read timed out"))?
        .map_err(|e| e.to_string())?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no HTTP body")?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") { Ok(body.to_string()) } else { Err(status.to_string()) }
}

/// The pinned helm, built into the cache by the stack script on first use (asked once).
pub fn helm() -> &'static str {
    static HELM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HELM.get_or_init(|| run(&env("TRIBUTARY_STACK"), &["tool", "helm"], None).trim().to_string())
}

/// Installs the generated CRDs (`kubectl apply --server-side -f crds/`) and waits until the
/// API server has established them. Idempotent, so every test binary may call it.
pub async fn install_crds() {
    let crds_dir = repo_root().join("crds");
    kubectl(&["apply", "--server-side", "--force-conflicts", "-f", crds_dir.to_str().unwrap()]);
    kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/tenants.tributary.dev",
        "crd/topics.tributary.dev",
        "crd/cassandrasinks.tributary.dev",
        "crd/kafkausers.tributary.dev",
        "crd/topicgrants.tributary.dev",
    ]);
}
pub mod operator;
pub mod pipeline;
pub mod prometheus;
pub mod registry;
pub mod release;
pub mod sink;
pub mod team;

/// `kubectl wait --for=condition=Ready` (3 min) on `objects` (kubectl arguments); failing,
/// says why with each object's Ready message.
pub fn kubectl_wait_ready(objects: &[&str]) {
    let mut args = vec!["wait", "--for=condition=Ready", "--timeout=180s"];
    args.extend(objects);
    if let Err(e) = try_run("kubectl", &args, None) {
        let mut get = vec!["get"];
        get.extend(objects);
        get.extend([
            "-o",
            r#"custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].message"#,
        ]);
        panic!("{e}\n{}", try_run("kubectl", &get, None).unwrap_or_else(|e| e));
    }
}

/// Writes `yaml` to a temporary file and `kubectl apply`s it, as a user would.
pub fn kubectl_apply(yaml: &str) {
    let path = std::env::temp_dir().join(format!("{}.yaml", unique("manifest")));
    std::fs::write(&path, yaml).unwrap();
    kubectl(&["apply", "-f", path.to_str().unwrap()]);
}

/// The Kafka client settings in a tenant's `tributary-credentials` Secret, read the way an
/// application would read them.
pub async fn tenant_kafka_settings(namespace: &str) -> ClientSettings {
    use k8s_openapi::api::core::v1::Secret;
    let secrets: kube::Api<Secret> = kube::Api::namespaced(kube::Client::try_default().await.unwrap(), namespace);
    let secret = secrets.get("tributary-credentials").await.expect("tenant credentials Secret");
    let data = secret.data.unwrap_or_default();
    let properties = String::from_utf8(data["librdkafka.properties"].0.clone()).unwrap();
    let get = |key: &str| {
        properties
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing from librdkafka.properties"))
            .to_string()
    };
    let mut settings = ClientSettings::new(get("bootstrap.servers"), get("sasl.username"), get("sasl.password"));
    settings.security_protocol = get("security.protocol");
    // The tenants these tests read have operator-made (SCRAM) users.
    assert_eq!(get("sasl.mechanism"), "SCRAM-SHA-512");
    settings.sasl_mechanism = get("sasl.mechanism");
    // With a CA the properties name it where the Secret is mounted; here, the Secret's copy.
    if properties.lines().any(|l| l.starts_with("ssl.ca.location=")) {
        assert_eq!(get("ssl.ca.location"), "/etc/tributary/credentials/kafka.ca.crt");
        settings.ca_pem = Some(String::from_utf8(data["kafka.ca.crt"].0.clone()).unwrap());
    }
    settings
}

/// A Cassandra session as `user`, over TLS when the stack's environment names a CA
/// (`CASSANDRA_CA_FILE`), as every client of the local stack connects.
pub async fn cassandra_session(user: &str, password: &str) -> Result<scylla::client::session::Session, String> {
    let mut builder =
        scylla::client::session_builder::SessionBuilder::new().known_node(cassandra_contact()).user(user, password);
    if let Ok(path) = std::env::var("CASSANDRA_CA_FILE") {
        let ca = std::fs::read_to_string(&path).map_err(|e| format!("CASSANDRA_CA_FILE {path}: {e}"))?;
        builder = builder.tls_context(Some(tributary_api::tls::connector("CASSANDRA_CA_FILE", Some(&ca))?));
    }
    builder.build().await.map_err(|e| e.to_string())
}

/// The operator's resources, seen through their status conditions.
pub trait Conditioned:
    kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug
{
    fn conditions(&self) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>;
}

impl Conditioned for tributary::api::Tenant {
    fn conditions(&self) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
        self.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default()
    }
}
impl Conditioned for tributary::api::Topic {
    fn conditions(&self) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
        self.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default()
    }
}
impl Conditioned for tributary::api::KafkaUser {
    fn conditions(&self) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
        self.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default()
    }
}
impl Conditioned for tributary::api::TopicGrant {
    fn conditions(&self) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
        self.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default()
    }
}
impl Conditioned for tributary::api::CassandraSink {
    fn conditions(&self) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
        self.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default()
    }
}

/// Waits until object `name` has `Ready` = `status` with `reason`, and returns the message.
pub async fn wait_ready<K: Conditioned>(api: &kube::Api<K>, name: &str, status: &str, reason: &str) -> String {
    let what = format!("{} {name} to be Ready={status} ({reason})", K::kind(&()));
    wait_until(&what, Duration::from_secs(90), || async {
        let obj = api.get_opt(name).await.map_err(|e| e.to_string())?.ok_or("not found")?;
        match obj.conditions().into_iter().find(|c| c.type_ == "Ready") {
            Some(c) if c.status == status && c.reason == reason => Ok(c.message),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// Applies a Tenant (extra spec lines indented by two spaces) and waits until it is Ready.
/// The Tenant, with what it provisioned, is deleted when the returned guard drops.
pub async fn ready_tenant(name: &str, extra_spec: &str) -> TenantCleanup {
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {name}\nspec:\n  deletionPolicy: Retain\n{extra_spec}"
    ));
    let cleanup = TenantCleanup::new(name);
    let tenants: kube::Api<tributary::api::Tenant> = kube::Api::all(kube::Client::try_default().await.unwrap());
    wait_ready(&tenants, name, "True", "Provisioned").await;
    cleanup
}

/// Deletes a test's Tenant when dropped, whether the test passed or failed: its
/// `deletionPolicy` is set to `Delete` first, so its topics, keyspace, users and (where the
/// operator created it) namespace go too, and the drop waits until the Tenant and that
/// namespace are gone, while the test's operator still runs. Bind it to a named variable
/// (`let _tenant = ...`): `let _ = ...` drops it at once. Declared after the operator it
/// needs, so it drops before it.
#[must_use = "the Tenant is deleted when this guard drops"]
pub struct TenantCleanup {
    name: String,
}

impl TenantCleanup {
    pub fn new(name: &str) -> Self {
        TenantCleanup { name: name.to_string() }
    }

    /// A guard only for a Tenant that does not exist yet (call it before applying): a test
    /// that applies the examples' fixed names must not delete the demo's Tenants.
    pub fn unless_present(name: &str) -> Option<Self> {
        let found = kubectl(&["get", &format!("tenant/{name}"), "--ignore-not-found", "-o", "name"]);
        found.trim().is_empty().then(|| TenantCleanup::new(name))
    }

    fn delete(&self) -> Result<(), String> {
        const TIMEOUT: &str = "--timeout=180s";
        let name = self.name.as_str();
        let tenant = format!("tenant/{name}");
        // uid and namespace, read before the Tenant goes; nothing to do when it is gone.
        let kubectl = |args: &[&str]| try_run("kubectl", args, None);
        let found =
            kubectl(&["get", &tenant, "--ignore-not-found", "-o", "jsonpath={.metadata.uid} {.spec.namespace}"])?;
        let mut fields = found.split_whitespace();
        let Some(uid) = fields.next() else { return Ok(()) };
        let namespace = fields.next().unwrap_or(name).to_string();
        kubectl(&["patch", &tenant, "--type=merge", "-p", r#"{"spec":{"deletionPolicy":"Delete"}}"#])?;
        kubectl(&["delete", &tenant, "--ignore-not-found", "--wait=true", TIMEOUT])?;
        // Only a namespace this Tenant owns (the operator created it) is waited for: a
        // refused Tenant may have named another's.
        let owners = kubectl(&[
            "get",
            &format!("namespace/{namespace}"),
            "--ignore-not-found",
            "-o",
            "jsonpath={.metadata.ownerReferences[*].uid}",
        ])?;
        if owners.split_whitespace().any(|o| o == uid) {
            match kubectl(&["wait", "--for=delete", &format!("namespace/{namespace}"), TIMEOUT]) {
                // Gone between the read and the wait.
                Err(e) if e.contains("NotFound") => {}
                other => drop(other?),
            }
        }
        Ok(())
    }
}

impl Drop for TenantCleanup {
    fn drop(&mut self) {
        cleaned_up(&format!("Tenant {}", self.name), self.delete());
    }
}

/// Deletes a namespace a test made when dropped, and waits until it is gone (the objects in
/// it may carry the operator's finalizers: it drops while the test's operator runs).
#[must_use = "the namespace is deleted when this guard drops"]
pub struct NamespaceCleanup(pub String);

impl Drop for NamespaceCleanup {
    fn drop(&mut self) {
        let deleted =
            try_run("kubectl", &["delete", "namespace", &self.0, "--ignore-not-found", "--timeout=180s"], None);
        cleaned_up(&format!("namespace {}", self.0), deleted.map(drop));
    }
}

/// A failed cleanup fails the test, unless the test is failing already: a second panic
/// while it unwinds would abort and hide the first.
fn cleaned_up(what: &str, result: Result<(), String>) {
    if let Err(e) = result {
        if std::thread::panicking() {
            eprintln!("cleanup of {what} failed too: {e}");
        } else {
            panic!("cleanup of {what} failed: {e}");
        }
    }
}

/// The operator's own protocol client, for what librdkafka cannot ask (client quotas,
/// SCRAM credentials) and for logging in without a librdkafka client.
pub struct KafkaWire(tributary::external::kafka::wire::Wire);

impl KafkaWire {
    pub fn new(settings: ClientSettings) -> Self {
        KafkaWire(tributary::external::kafka::wire::Wire::new(settings, Duration::from_secs(10)))
    }

    pub async fn login(&self) -> Result<(), tributary::external::kafka::KafkaCallError> {
        self.0.login().await
    }

    /// The client quotas set on exactly this user.
    pub async fn describe_user(
        &self,
        user: &str,
    ) -> Result<tributary::external::kafka::quotas::Quotas, tributary::external::kafka::KafkaCallError> {
        tributary::external::kafka::access_calls::describe_user_quotas(&self.0, user).await
    }

    /// Sets quotas on the user by hand (as an admin would).
    pub async fn alter_user(
        &self,
        user: &str,
        set: &tributary::external::kafka::quotas::Quotas,
        remove: &[String],
    ) -> Result<(), tributary::external::kafka::KafkaCallError> {
        tributary::external::kafka::access_calls::alter_user_quotas(&self.0, user, set, remove).await
    }

    /// Every user with a SCRAM credential.
    pub async fn scram_users(
        &self,
    ) -> Result<std::collections::BTreeSet<String>, tributary::external::kafka::KafkaCallError> {
        Ok(tributary::external::kafka::access_calls::describe_scram(&self.0, None).await?.into_keys().collect())
    }

    /// The SCRAM mechanisms `user` holds a credential for.
    pub async fn scram_mechanisms(
        &self,
        user: &str,
    ) -> Result<
        std::collections::BTreeSet<tributary::external::kafka::ScramMechanism>,
        tributary::external::kafka::KafkaCallError,
    > {
        Ok(tributary::external::kafka::access_calls::describe_scram(&self.0, Some(&[user]))
            .await?
            .remove(user)
            .unwrap_or_default())
    }
}

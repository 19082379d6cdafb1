//! Runs the real operator binary as a child process of the test binary.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};

use crate::prometheus::TargetsFile;
use crate::{repo_root, unique, wait_until};

pub struct OperatorProcess {
    pub pid: u32,
    exited: Arc<AtomicBool>,
    pub http: SocketAddr,
    pub identity: String,
    /// The operator's own namespace (`TRIBUTARY_NAMESPACE`, where its Lease lives).
    pub namespace: String,
    pub log: PathBuf,
    /// Names it to the stack's Prometheus while it runs (when the stack's environment is set).
    targets: Option<TargetsFile>,
}

/// A binary of this workspace, built by `cargo build --workspace`.
pub fn workspace_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
    // `TRIBUTARY_BIN_PROFILE=release`: the benchmarks run the release binaries.
    let profile = std::env::var("TRIBUTARY_BIN_PROFILE").unwrap_or_else(|_| "debug".into());
    let path = target.join(profile).join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build --workspace`; `make test` does)",
        path.display()
    );
    path
}

pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// The label of the namespaces tests make for themselves (Leases, chart releases):
/// `make test` deletes them all once the tests end.
pub const SCRATCH_LABEL: &str = "tributary.dev/test-scratch";

/// Creates a namespace a test needs (a leader-election Lease's, a chart release's), if missing.
pub async fn ensure_namespace(name: &str) {
    let api: Api<Namespace> = Api::all(kube::Client::try_default().await.unwrap());
    if api.get_opt(name).await.unwrap().is_none() {
        // Labelled as the tests' scratch: `make test` deletes these when it ends.
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {SCRATCH_LABEL: "true"}}
        }))
        .unwrap();
        api.create(&PostParams::default(), &ns).await.unwrap();
    }
}

/// Spawns `command` so that it gets SIGTERM when the test binary exits (PR_SET_PDEATHSIG,
/// armed from a thread that lives as long as the binary). Returns its pid and a flag that
/// turns true once it exited.
pub fn spawn_tied(mut command: Command) -> (u32, Arc<AtomicBool>) {
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    let exited = Arc::new(AtomicBool::new(false));
    let flag = exited.clone();
    // The death signal follows the thread that forked, so that thread waits for the
    // child (reaping it, and recording that it exited) instead of ending with a test.
    std::thread::spawn(move || match command.spawn() {
        Ok(mut child) => {
            tx.send(Ok(child.id())).unwrap();
            let _ = child.wait();
            flag.store(true, Ordering::SeqCst);
        }
        Err(e) => tx.send(Err(e.to_string())).unwrap(),
    });
    let pid = rx.recv().unwrap().unwrap_or_else(|e| panic!("start {command:?}: {e}", command = "child"));
    (pid, exited)
}

impl OperatorProcess {
    /// Starts the operator with the stack's settings. The process gets SIGTERM when the test
    /// binary exits (PR_SET_PDEATHSIG, armed from a thread that lives as long as the binary).
    pub fn spawn(identity: &str, lease_namespace: &str) -> OperatorProcess {
        Self::spawn_with(identity, lease_namespace, &[])
    }

    /// Like `spawn`, with extra environment (e.g. `KUBECONFIG` of another identity).
    pub fn spawn_with(identity: &str, lease_namespace: &str, env: &[(&str, &str)]) -> OperatorProcess {
        let http = free_port();
        let log = std::env::temp_dir().join(format!("{identity}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(workspace_binary("tributary-operator"));
        // The sinks it writes run on the stack's node, from the image `make test` loaded there.
        if let Ok(image) = std::env::var("TRIBUTARY_IMAGE") {
            command.env("TRIBUTARY_SINK_IMAGE", image);
        }
        command
            .env("TRIBUTARY_NAMESPACE", lease_namespace)
            .env("POD_NAME", identity)
            .env("TRIBUTARY_HTTP_ADDR", http.to_string())
            .env("TRIBUTARY_RESYNC_SECONDS", "10")
            .env("TRIBUTARY_SINK_REPORT_SECONDS", "5")
            .env("TRIBUTARY_USAGE_SECONDS", "5")
            .env("RUST_LOG", "info,kube=warn")
            .envs(env.iter().copied())
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out));
        let (pid, exited) = spawn_tied(command);
        // Scraped as a Service's replica is (job tributary-operator-host), labelled with its
        // pod name and namespace: the dashboard's Leader panel shows the pod.
        let targets =
            TargetsFile::write(identity, &http.to_string(), &[("pod", identity), ("namespace", lease_namespace)]);
        OperatorProcess {
            pid,
            exited,
            http,
            identity: identity.to_string(),
            namespace: lease_namespace.to_string(),
            log,
            targets,
        }
    }

    /// One operator per test binary, with its own Lease so it leads at once.
    pub async fn shared() -> &'static OperatorProcess {
        static SHARED: OnceLock<OperatorProcess> = OnceLock::new();
        if let Some(op) = SHARED.get() {
            return op;
        }
        crate::install_crds().await;
        let lease_ns = unique("tributary-tests");
        ensure_namespace(&lease_ns).await;
        let op = SHARED.get_or_init(|| OperatorProcess::spawn(&unique("operator"), &lease_ns));
        op.wait_leader().await;
        op
    }

    pub async fn get(&self, path: &str) -> Result<String, String> {
        crate::http_get(&self.http.ip().to_string(), self.http.port(), path).await
    }

    /// The value of an unlabelled metric (e.g. `tributary_leader`), 0 when absent.
    pub async fn metric(&self, name: &str) -> Result<f64, String> {
        let text = self.get("/metrics").await?;
        Ok(text.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum())
    }

    pub async fn wait_leader(&self) {
        wait_until(
            &format!("operator {} to lead (log: {})", self.identity, self.log.display()),
            Duration::from_secs(60),
            || async {
                if !self.alive() {
                    return Err(format!("the operator exited: {}", self.log_tail()));
                }
                match self.metric("tributary_leader").await {
                    Ok(1.0) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await
    }

    pub fn alive(&self) -> bool {
        !self.exited.load(Ordering::SeqCst)
    }

    pub fn terminate(&self) {
        if let Some(targets) = &self.targets {
            targets.remove();
        }
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
    }

    pub fn log_tail(&self) -> String {
        crate::tail(&self.log, 15)
    }
}

//! Runs sinks the way Kubernetes would, but as local processes: the command, environment
//! and config file come from the Deployment, ConfigMap and Secrets the operator wrote.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;

use crate::operator::{free_port, spawn_tied, workspace_binary};
use crate::{unique, wait_until};

pub struct SinkProcess {
    pub pid: u32,
    exited: Arc<AtomicBool>,
    pub http: SocketAddr,
    pub log: PathBuf,
}

/// Waits until the operator wrote the Deployment, and returns it.
pub async fn wait_deployment(namespace: &str, name: &str) -> Deployment {
    let api: Api<Deployment> = Api::namespaced(kube::Client::try_default().await.unwrap(), namespace);
    wait_until(&format!("Deployment {namespace}/{name}"), Duration::from_secs(120), || async {
        api.get_opt(name).await.map_err(|e| e.to_string())?.ok_or_else(|| "not written yet".to_string())
    })
    .await
}

impl SinkProcess {
    /// Starts one replica of the Deployment: its container's command and environment, with
    /// `secretKeyRef`s resolved from the Secrets, the ConfigMap volume written to a local
    /// directory (the config path points there) and a free port for `/metrics`.
    pub async fn start(namespace: &str, deployment: &str) -> SinkProcess {
        let client = kube::Client::try_default().await.unwrap();
        let d = wait_deployment(namespace, deployment).await;
        let pod = d.spec.unwrap().template.spec.unwrap();
        let container = &pod.containers[0];
        let command = container.command.clone().expect("the sink container has a command");

        // The config volume → a local directory with the ConfigMap's files.
        let dir = std::env::temp_dir().join(unique("sink-config"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut mount_paths = BTreeMap::new();
        for mount in container.volume_mounts.clone().unwrap_or_default() {
            let volume = pod.volumes.clone().unwrap_or_default().into_iter().find(|v| v.name == mount.name).unwrap();
            let name = volume.config_map.expect("config volumes are ConfigMaps").name;
            let cm = Api::<ConfigMap>::namespaced(client.clone(), namespace).get(&name).await.unwrap();
            for (file, content) in cm.data.unwrap_or_default() {
                std::fs::write(dir.join(&file), content).unwrap();
            }
            mount_paths.insert(mount.mount_path.clone(), dir.clone());
        }

        let http = free_port();
        let log = std::env::temp_dir().join(format!("{}.log", unique(deployment)));
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(workspace_binary(&command[0]));
        cmd.args(&command[1..]).env_clear().stdout(Stdio::from(out.try_clone().unwrap())).stderr(Stdio::from(out));
        for var in container.env.clone().unwrap_or_default() {
            let value = match (var.value, var.value_from) {
                (Some(v), _) => v,
                (None, Some(from)) => {
                    let r = from.secret_key_ref.expect("only secretKeyRef is used");
                    let secret = Api::<Secret>::namespaced(client.clone(), namespace).get(&r.name).await.unwrap();
                    String::from_utf8(secret.data.unwrap()[&r.key].0.clone()).unwrap()
                }
                (None, None) => String::new(),
            };
            // Paths inside a mounted volume → the local copy; the port → a free one.
            let value = mount_paths
                .iter()
                .find_map(|(mount, local)| {
                    value.strip_prefix(mount.as_str()).map(|rest| format!("{}{rest}", local.display()))
                })
                .unwrap_or(value);
            let value = if var.name == "TRIBUTARY_HTTP_ADDR" { http.to_string() } else { value };
            cmd.env(&var.name, value);
        }
        let (pid, exited) = spawn_tied(cmd);
        let sink = SinkProcess { pid, exited, http, log };
        wait_until(
            &format!("sink {deployment} /healthz (log {})", sink.log.display()),
            Duration::from_secs(60),
            || async {
                if sink.exited.load(Ordering::SeqCst) {
                    return Err(format!("the sink exited: {}", sink.log_tail()));
                }
                sink.get("/healthz").await
            },
        )
        .await;
        sink
    }

    pub fn alive(&self) -> bool {
        !self.exited.load(Ordering::SeqCst)
    }

    /// `kill -9`: no chance to commit or drain.
    pub fn kill9(&self) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
    }

    /// SIGTERM, then waits until it exited (a graceful stop drains and commits).
    pub async fn stop(&self) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        wait_until("the sink to stop after SIGTERM", Duration::from_secs(60), || async {
            if self.alive() { Err("still running".to_string()) } else { Ok(()) }
        })
        .await;
    }

    pub async fn get(&self, path: &str) -> Result<String, String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.http).await.map_err(|e| e.to_string())?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.map_err(|e| e.to_string())?;
        let (head, body) = response.split_once("\r\n\r\n").ok_or("no HTTP body")?;
        if head.contains(" 200 ") { Ok(body.to_string()) } else { Err(head.to_string()) }
    }

    /// The value of one metric of the sink (summed over labels), 0 when absent.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics").await.unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn log_tail(&self) -> String {
        crate::tail(&self.log, 15)
    }
}

impl Drop for SinkProcess {
    fn drop(&mut self) {
        if self.alive() {
            // SAFETY: plain kill(2) on our own child.
            unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        }
    }
}

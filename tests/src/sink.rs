//! The sinks as Kubernetes runs them: the pods of the Deployment the operator wrote, on the
//! local stack's node. Tests read each pod's metrics over the pod network, kill a container
//! with SIGKILL through containerd (the kubelet restarts it) or force-delete a pod (its
//! ReplicaSet replaces it).

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, LogParams};

use crate::wait_until;

/// The sink's HTTP port (`/metrics`, `/healthz`), as the operator's Deployment sets it.
const HTTP_PORT: u16 = 8080;

/// Waits until the operator wrote the Deployment, and returns it. While it is missing, the
/// observation is the CassandraSink's Ready condition, which says why.
pub async fn wait_deployment(namespace: &str, name: &str) -> Deployment {
    let client = kube::Client::try_default().await.unwrap();
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let sinks: Api<tributary::api::CassandraSink> = Api::namespaced(client, namespace);
    let sink = name.strip_prefix("tributary-sink-").unwrap_or(name);
    wait_until(&format!("Deployment {namespace}/{name}"), Duration::from_secs(120), || async {
        match api.get_opt(name).await.map_err(|e| e.to_string())? {
            Some(deployment) => Ok(deployment),
            None => {
                let status = sinks.get_opt(sink).await.ok().flatten().and_then(|s| s.status).unwrap_or_default();
                let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
                Err(format!("not written yet; sink {sink} Ready: {:?}", ready.map(|c| (&c.reason, &c.message))))
            }
        }
    })
    .await
}

/// Waits until the CassandraSink's `status.recordsWritten` is exactly `want`, and returns the
/// status; fails at once should it count more (a record counted twice).
pub async fn wait_counted(namespace: &str, name: &str, want: i64) -> tributary::api::CassandraSinkStatus {
    let sinks: Api<tributary::api::CassandraSink> =
        Api::namespaced(kube::Client::try_default().await.unwrap(), namespace);
    wait_until(
        &format!("{namespace}/{name}'s status.recordsWritten to be {want}"),
        Duration::from_secs(180),
        || async {
            let status = sinks.get(name).await.map_err(|e| e.to_string())?.status.unwrap_or_default();
            match status.records_written {
                Some(n) if n > want => {
                    panic!("{namespace}/{name}: {n} counted, more than the {want} written: {status:?}")
                }
                Some(n) if n == want => Ok(status),
                other => Err(format!("recordsWritten {other:?}, partitionsCounted {:?}", status.partitions_counted)),
            }
        },
    )
    .await
}

pub struct SinkPods {
    pub namespace: String,
    pub deployment: String,
    pods: Api<Pod>,
    deployments: Api<Deployment>,
}

impl SinkPods {
    /// Waits until the Deployment runs `replicas` ready pods of its current template.
    pub async fn running(namespace: &str, deployment: &str, replicas: i32) -> SinkPods {
        let client = kube::Client::try_default().await.unwrap();
        wait_deployment(namespace, deployment).await;
        let sink = SinkPods {
            namespace: namespace.to_string(),
            deployment: deployment.to_string(),
            pods: Api::namespaced(client.clone(), namespace),
            deployments: Api::namespaced(client, namespace),
        };
        sink.wait_rolled_out(replicas).await;
        sink
    }

    /// Every replica ready, and every one of them from the Deployment's newest template.
    pub async fn wait_rolled_out(&self, replicas: i32) {
        wait_until(
            &format!("Deployment {}/{} to run {replicas} ready pods", self.namespace, self.deployment),
            Duration::from_secs(180),
            || async {
                let d = self.deployments.get(&self.deployment).await.map_err(|e| e.to_string())?;
                let generation = d.metadata.generation.unwrap_or_default();
                let status = d.status.unwrap_or_default();
                let counts = (
                    status.observed_generation.unwrap_or_default() >= generation,
                    status.replicas.unwrap_or_default(),
                    status.updated_replicas.unwrap_or_default(),
                    status.ready_replicas.unwrap_or_default(),
                );
                if counts == (true, replicas, replicas, replicas) {
                    Ok(())
                } else {
                    Err(format!("observed, replicas, updated, ready: {counts:?}; {}", self.pod_summary().await))
                }
            },
        )
        .await
    }

    /// The Deployment's pods that are not being deleted.
    pub async fn pods(&self) -> Vec<Pod> {
        let d = self.deployments.get(&self.deployment).await.unwrap();
        let labels = d.spec.unwrap().selector.match_labels.unwrap_or_default();
        let selector = labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        let list = self.pods.list(&ListParams::default().labels(&selector)).await.unwrap();
        list.items.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect()
    }

    /// One line per pod: name, phase, ready, restarts (for failure messages).
    pub async fn pod_summary(&self) -> String {
        let list = match self.pods.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(e) => return e.to_string(),
        };
        let lines: Vec<String> = list
            .iter()
            .filter(|p| p.metadata.name.as_deref().unwrap_or_default().starts_with(&self.deployment))
            .map(|p| {
                let status = p.status.clone().unwrap_or_default();
                let containers = status.container_statuses.unwrap_or_default();
                let waiting: Vec<String> =
                    containers.iter().filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone()).collect();
                format!(
                    "{} {} ready={} restarts={} {}",
                    p.metadata.name.clone().unwrap_or_default(),
                    status.phase.unwrap_or_default(),
                    containers.iter().all(|c| c.ready),
                    containers.iter().map(|c| c.restart_count).sum::<i32>(),
                    waiting.join(",")
                )
            })
            .collect();
        format!("pods: [{}]", lines.join("; "))
    }

    /// A metric summed over labels and over every running pod (0 for a pod that does not answer).
    pub async fn metric(&self, name: &str) -> f64 {
        let mut total = 0.0;
        for pod in self.pods().await {
            total += pod_metric(&pod, name).await.unwrap_or(0.0);
        }
        total
    }

    /// Restarts of the sink containers, over every pod.
    pub async fn restarts(&self) -> i32 {
        self.pods()
            .await
            .iter()
            .flat_map(|p| p.status.clone().unwrap_or_default().container_statuses.unwrap_or_default())
            .map(|c| c.restart_count)
            .sum()
    }

    /// The host's pid of the sink process in `pod` (for /proc figures), from containerd.
    pub async fn host_pid(&self, pod: &Pod) -> u32 {
        let id = container_id(pod).unwrap_or_else(|| panic!("{} has no running container", pod_name(pod)));
        let tasks =
            crate::run("ctr", &["--address", &containerd_socket(), "--namespace", "k8s.io", "tasks", "ls"], None);
        tasks
            .lines()
            .find_map(|l| {
                let mut cols = l.split_whitespace();
                (cols.next()? == id).then(|| cols.next()?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("containerd has no task {id}: {tasks}"))
    }

    /// SIGKILL to the sink process of `pod`, through containerd: no chance to drain or
    /// commit. The kubelet then restarts the container in the same pod.
    pub async fn kill_container(&self, pod: &Pod) {
        let id = container_id(pod).unwrap_or_else(|| panic!("{} has no running container", pod_name(pod)));
        crate::run(
            "ctr",
            &["--address", &containerd_socket(), "--namespace", "k8s.io", "tasks", "kill", "--signal", "SIGKILL", &id],
            None,
        );
    }

    /// `kubectl delete pod --grace-period=0 --force`: the pod object is gone at once and the
    /// ReplicaSet starts a replacement.
    pub async fn force_delete(&self, pod: &Pod) {
        let params = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() };
        self.pods.delete(&pod_name(pod), &params).await.unwrap();
    }

    /// The last lines each pod logged (for failure messages).
    pub async fn logs(&self) -> String {
        let mut out = String::new();
        for pod in self.pods().await {
            let params = LogParams { tail_lines: Some(15), ..LogParams::default() };
            let text = self.pods.logs(&pod_name(&pod), &params).await.unwrap_or_else(|e| e.to_string());
            out.push_str(&format!("--- {}\n{text}", pod_name(&pod)));
        }
        out
    }
}

fn containerd_socket() -> String {
    std::env::var("TRIBUTARY_CONTAINERD_SOCK")
        .expect("TRIBUTARY_CONTAINERD_SOCK is not set: eval \"$(make -s stack-env)\"")
}

pub fn pod_name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// The containerd id of the pod's (first) running container.
pub fn container_id(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?.container_statuses.as_ref()?.first()?.clone();
    status.state?.running?;
    Some(status.container_id?.trim_start_matches("containerd://").to_string())
}

/// `GET path` on the pod's HTTP port over the pod network.
pub async fn pod_get(pod: &Pod, path: &str) -> Result<String, String> {
    let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone()).ok_or("the pod has no IP yet")?;
    crate::http_get(&ip, HTTP_PORT, path).await
}

/// One metric of one pod, summed over its labels; 0 when absent.
pub async fn pod_metric(pod: &Pod, name: &str) -> Result<f64, String> {
    Ok(metric_in(&pod_get(pod, "/metrics").await?, name).unwrap_or(0.0))
}

/// One metric in a `/metrics` text, summed over its labels; `None` when the text has none.
pub fn metric_in(text: &str, name: &str) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

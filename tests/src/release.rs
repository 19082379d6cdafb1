//! The operator installed as users install it: `helm install` of charts/tributary in a
//! namespace of its own, uninstalled when dropped, so a failed run leaves no operator
//! behind to reconcile the next test binary's objects.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use crate::sink::pod_name;
use crate::{helm, run, unique, wait_until};

pub struct Release {
    pub name: String,
    pub namespace: String,
}

impl Release {
    /// The chart with values-local.yaml: the operator against the local stack's Kafka and
    /// Cassandra (TLS, with the stack's CA), the image of this build.
    pub fn install(extra: &[&str]) -> Release {
        // The stack's CA, as values-local.yaml asks (TLS to Kafka and Cassandra).
        let ca = format!(
            "kafka.tls.caSecret.ca={}",
            std::env::var("KAFKA_CA_FILE").expect("KAFKA_CA_FILE (make stack-env)")
        );
        let mut args = vec!["--set-file", &ca];
        args.extend(extra);
        Release::install_with("charts/tributary/values-local.yaml", &args)
    }

    /// The chart with `values` (a file of charts/tributary), the image of this build
    /// (`TRIBUTARY_IMAGE`, loaded into the node), waiting until its pods are ready.
    pub fn install_with(values: &str, extra: &[&str]) -> Release {
        let name = unique("op");
        let namespace = name.clone();
        let image = std::env::var("TRIBUTARY_IMAGE").expect("TRIBUTARY_IMAGE (make stack-env, after `stack.sh image`)");
        let (repository, tag) = image.rsplit_once(':').expect("REPO:TAG");
        let (repository, tag) = (format!("image.repository={repository}"), format!("image.tag={tag}"));
        let mut args = vec!["install", &name, "charts/tributary", "-n", &namespace, "--create-namespace"];
        args.extend(["-f", values, "--set", &repository, "--set", &tag, "--set", "image.pullPolicy=Never"]);
        args.extend(["--wait", "--timeout", "5m"]);
        args.extend(extra);
        run(helm(), &args, None);
        Release { name, namespace }
    }

    pub async fn operator_pods(&self) -> Vec<Pod> {
        let pods: Api<Pod> = Api::namespaced(client().await, &self.namespace);
        let selector = format!("app.kubernetes.io/instance={},app.kubernetes.io/component=operator", self.name);
        let list = pods.list(&ListParams::default().labels(&selector)).await.unwrap().items;
        list.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect()
    }

    /// The two replicas running and ready, and the one that holds the Lease.
    pub async fn wait_leader(&self) -> (String, Vec<String>) {
        wait_until("two ready operator pods, one holding the Lease", Duration::from_secs(180), || async {
            let pods = self.operator_pods().await;
            let ready: Vec<String> = pods
                .iter()
                .filter(|p| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.container_statuses.as_ref())
                        .is_some_and(|c| c.iter().all(|c| c.ready))
                })
                .map(pod_name)
                .collect();
            let leases: Api<Lease> = Api::namespaced(client().await, &self.namespace);
            let lease = leases.get_opt("tributary-operator").await.map_err(|e| e.to_string())?;
            let holder = lease.and_then(|l| l.spec?.holder_identity).unwrap_or_default();
            if ready.len() == 2 && ready.contains(&holder) {
                Ok((holder, ready))
            } else {
                Err(format!("ready {ready:?}, Lease holder {holder:?}"))
            }
        })
        .await
    }

    /// Every log line of the release's pods.
    pub fn logs(&self) -> String {
        let selector = format!("app.kubernetes.io/instance={}", self.name);
        run("kubectl", &["logs", "-n", &self.namespace, "-l", &selector, "--tail", "-1", "--prefix"], None)
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = std::process::Command::new(helm())
            .args(["uninstall", &self.name, "-n", &self.namespace, "--wait", "--ignore-not-found"])
            .status();
        // The namespace `--create-namespace` made for the release goes with it.
        let _ = std::process::Command::new("kubectl")
            .args(["delete", "namespace", &self.namespace, "--ignore-not-found", "--wait=false"])
            .status();
    }
}

async fn client() -> kube::Client {
    kube::Client::try_default().await.unwrap()
}

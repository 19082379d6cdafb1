//! The objects a CassandraSink runs as, as plain values (pure): its Kafka principal and
//! ACLs, the rendered config, the ConfigMap, the credentials Secret and the Deployment.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, Secret, SecretKeySelector, SecurityContext, Volume, VolumeMount,
    WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::access::kafka::{AclBinding, AclOperation, PatternType, ResourceType};
use crate::api::Reason;
use crate::api::contract::SinkConfig;
use crate::api::{CassandraSink, CassandraSinkSpec};
use crate::api::{MANAGED_BY, TENANT_LABEL};
use crate::tenant::ValidatedTenant;
use crate::tenant::rotation::ROTATED_AT_ANNOTATION;
use crate::tenant::validate::CREDENTIALS_SECRET;
use crate::topic::model::DesiredTopic;
use crate::topic::validate::{DEFAULT_MAX_RETENTION_MS, Refusal};

pub const SINK_LABEL: &str = "tributary.dev/sink";
pub const CONFIG_HASH: &str = "tributary.dev/config-hash";
pub const CONFIG_KEY: &str = "sink.yaml";
pub const CONFIG_DIR: &str = "/etc/tributary";
// A sink's Secret names its keys as the tenant's bundle does.
pub use crate::tenant::build::{
    CASSANDRA_PASSWORD_KEY, CASSANDRA_USERNAME_KEY, KAFKA_MECHANISM_KEY, KAFKA_PASSWORD_KEY, KAFKA_USERNAME_KEY,
};
pub const HTTP_PORT: i32 = 8080;

/// The topic a sink reads, as the steps after it need it. The Kafka name and the shape come
/// from the Topic's spec and the tenant (a local topic) or from Kafka (a shared one), never
/// from a status field (whoever may write status could point them elsewhere).
pub struct Source {
    pub kafka_topic: String,
    pub partitions: i32,
    pub replication_factor: i32,
}

/// When a sink waiting on something outside it (its tenant, its Topic, a conflict) looks again.
pub const RETRY: std::time::Duration = std::time::Duration::from_secs(15);

/// Names derived from the sink and its tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkNames {
    /// Deployment, ConfigMap and Secret name.
    pub object: String,
    pub kafka_user: String,
    pub group: String,
    pub dead_letter_topic: String,
}

/// The sink's dead-letter topic: the source topic's partitions and replication, the
/// retention the spec asks for, and room for the source topic's largest record
/// (`source_max_bytes`, Kafka's default when unknown) with the dead-letter headers.
pub fn dead_letter_topic(
    names: &SinkNames,
    spec: &CassandraSinkSpec,
    partitions: i32,
    rf: i32,
    source_max_bytes: Option<i64>,
) -> DesiredTopic {
    let retention_ms = i64::from(spec.dead_letter_retention_hours) * 3_600_000;
    let max_bytes = source_max_bytes.unwrap_or(KAFKA_DEFAULT_MAX_MESSAGE_BYTES).max(0) + DLQ_HEADROOM_BYTES;
    DesiredTopic {
        name: names.dead_letter_topic.clone(),
        partitions,
        replication_factor: rf,
        config: BTreeMap::from([
            (RETENTION_MS.to_string(), retention_ms.to_string()),
            (MAX_MESSAGE_BYTES.to_string(), max_bytes.to_string()),
        ]),
        owned_keys: BTreeSet::from([RETENTION_MS.to_string(), MAX_MESSAGE_BYTES.to_string()]),
    }
}

const RETENTION_MS: &str = "retention.ms";
pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";
/// Kafka's default `max.message.bytes`.
const KAFKA_DEFAULT_MAX_MESSAGE_BYTES: i64 = 1_048_588;
/// Room for the dead-letter headers (error text, original topic, partition, offset).
const DLQ_HEADROOM_BYTES: i64 = 64 * 1024;

/// The dead-letter retention the spec asks for, when it is beyond the Tenant's
/// `maxRetentionMs` (the bound every Topic of the tenant has).
pub fn dead_letter_retention_beyond(tenant: &ValidatedTenant, spec: &CassandraSinkSpec) -> Option<Refusal> {
    let max = tenant.limits.max_retention_ms.unwrap_or(DEFAULT_MAX_RETENTION_MS);
    let hours = spec.dead_letter_retention_hours;
    let asked = i64::from(hours) * 3_600_000;
    (max != -1 && asked > max).then(|| Refusal {
        reason: Reason::GuardrailViolated,
        message: format!(
            "spec.deadLetterRetentionHours {hours} ({asked} ms) is beyond Tenant {}'s bound of {max} ms: lower it or \
             raise the Tenant's spec.kafka.limits.maxRetentionMs",
            tenant.name
        ),
    })
}

pub fn names(sink_name: &str, tenant: &ValidatedTenant) -> SinkNames {
    SinkNames {
        object: format!("tributary-sink-{sink_name}"),
        // An external principal is the only one there is: the sinks run as the tenant's.
        kafka_user: match tenant.external_user {
            Some(_) => tenant.kafka_user.clone(),
            None => format!("{}.sink.{sink_name}", tenant.kafka_user),
        },
        group: format!("{}sink.{sink_name}", tenant.group_prefix),
        dead_letter_topic: format!("{}dlq.{sink_name}", tenant.topic_prefix),
    }
}

/// Least privilege for the sink's own Kafka user: read its topic and its group, write its
/// dead-letter topic — all literal names, nothing else of the tenant.
pub fn desired_acls(names: &SinkNames, topic: &str) -> BTreeSet<AclBinding> {
    let principal = crate::access::kafka::user_principal(&names.kafka_user);
    let acl = |r, name: &str, op| AclBinding::allow(&principal, r, PatternType::Literal, name, op);
    BTreeSet::from([
        acl(ResourceType::Topic, topic, AclOperation::Read),
        acl(ResourceType::Topic, topic, AclOperation::Describe),
        acl(ResourceType::Group, &names.group, AclOperation::Read),
        acl(ResourceType::Topic, &names.dead_letter_topic, AclOperation::Write),
        acl(ResourceType::Topic, &names.dead_letter_topic, AclOperation::Describe),
    ])
}

fn labels(tenant: &str, sink: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TENANT_LABEL.to_string(), tenant.to_string()),
        (SINK_LABEL.to_string(), sink.to_string()),
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        ("app.kubernetes.io/name".to_string(), "tributary-sink".to_string()),
    ])
}

fn meta(name: &str, namespace: &str, tenant: &str, sink: &str, owner: &OwnerReference) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        labels: Some(labels(tenant, sink)),
        owner_references: Some(vec![owner.clone()]),
        ..Default::default()
    }
}

/// The config a sink's ConfigMap holds (None when it holds none, or one this version
/// cannot read).
pub fn parse_config(config_map: &ConfigMap) -> Option<SinkConfig> {
    let yaml = config_map.data.as_ref()?.get(CONFIG_KEY)?;
    serde_saphyr::from_str(yaml).ok()
}

/// The rendered config as YAML, and its hash (the pod template annotation that restarts
/// the sink when the config changes).
pub fn render_config(config: &SinkConfig) -> (String, String) {
    let yaml = serde_saphyr::to_string(config).expect("a sink config always serializes");
    let mut h = std::collections::hash_map::DefaultHasher::new();
    yaml.hash(&mut h);
    (yaml, format!("{:016x}", h.finish()))
}

/// The pod template's restart hash: the config's hash folded with the credentials the pods
/// read from Secrets at start (environment from a Secret is not refreshed in a running pod),
/// so a new password rolls the sink onto it.
pub fn restart_hash(config_hash: &str, credentials: &[&[u8]]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    config_hash.hash(&mut h);
    credentials.hash(&mut h);
    format!("{:016x}", h.finish())
}

pub fn config_map(
    names: &SinkNames,
    sink: &CassandraSink,
    tenant: &str,
    owner: &OwnerReference,
    yaml: &str,
) -> ConfigMap {
    let ns = sink.metadata.namespace.clone().unwrap_or_default();
    let name = sink.metadata.name.clone().unwrap_or_default();
    ConfigMap {
        metadata: meta(&names.object, &ns, tenant, &name, owner),
        data: Some(BTreeMap::from([(CONFIG_KEY.to_string(), yaml.to_string())])),
        ..Default::default()
    }
}

/// The sink's Kafka login: its user (or the tenant's external principal), password and
/// mechanism, which the pods read together at start, and when the password was made
/// ([`ROTATED_AT_ANNOTATION`]).
pub fn credentials_secret(
    names: &SinkNames,
    sink: &CassandraSink,
    tenant: &str,
    owner: &OwnerReference,
    login: &SinkLogin,
) -> Secret {
    let ns = sink.metadata.namespace.clone().unwrap_or_default();
    let name = sink.metadata.name.clone().unwrap_or_default();
    let mut metadata = meta(&names.object, &ns, tenant, &name, owner);
    if let Some(at) = &login.rotated_at {
        metadata.annotations = Some(BTreeMap::from([(ROTATED_AT_ANNOTATION.to_string(), at.clone())]));
    }
    Secret {
        metadata,
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            (KAFKA_USERNAME_KEY.to_string(), ByteString(names.kafka_user.clone().into_bytes())),
            (KAFKA_PASSWORD_KEY.to_string(), ByteString(login.password.as_bytes().to_vec())),
            (KAFKA_MECHANISM_KEY.to_string(), ByteString(login.mechanism.as_bytes().to_vec())),
        ])),
        ..Default::default()
    }
}

/// What a sink logs in to Kafka with.
pub struct SinkLogin {
    pub password: String,
    /// `sasl.mechanism`.
    pub mechanism: String,
    /// When the password was made ([`ROTATED_AT_ANNOTATION`]).
    pub rotated_at: Option<String>,
}

/// What the pod template carries so that a change rolls the pods and a finished rollout can
/// be told: [`CONFIG_HASH`] and [`CASSANDRA_LOGIN`].
pub struct TemplateStamp {
    /// [`restart_hash`]: the config and the credentials the pods read at start.
    pub restart_hash: String,
    /// The fingerprint of the tenant's Cassandra login the pods read.
    pub cassandra_login: String,
}

/// On a sink's pod template: the fingerprint of the Cassandra login its pods read, so the
/// tenant's rotation can tell when every pod runs the new one.
pub const CASSANDRA_LOGIN: &str = "tributary.dev/cassandra-login";

/// Whether every pod of `d` runs the template whose `annotation` is `value`: the template
/// carries it, and the rollout is over (the controller saw this generation, every replica
/// is updated, no older pod is left).
pub fn rolled_out(d: &Deployment, annotation: &str, value: &str) -> bool {
    let template = d.spec.as_ref().and_then(|s| s.template.metadata.as_ref()?.annotations.as_ref());
    let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(status) = &d.status else { return false };
    template.and_then(|a| a.get(annotation)).is_some_and(|f| f == value)
        && status.observed_generation >= d.metadata.generation
        && status.updated_replicas.unwrap_or(0) >= wanted
        && status.replicas.unwrap_or(0) == status.updated_replicas.unwrap_or(0)
}

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector { name: secret.into(), key: key.into(), optional: Some(false) }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The sink's Deployment: `replicas` (already capped at the topic's partitions), the
/// operator's own image running `tributary-sink`, credentials from Secrets, the config
/// mounted from the ConfigMap, probes, resources, spread over nodes, and the config hash
/// on the pod template.
pub fn deployment(
    names: &SinkNames,
    sink: &CassandraSink,
    tenant: &str,
    owner: &OwnerReference,
    image: &str,
    replicas: i32,
    stamp: &TemplateStamp,
) -> Deployment {
    let ns = sink.metadata.namespace.clone().unwrap_or_default();
    let sink_name = sink.metadata.name.clone().unwrap_or_default();
    let selector =
        BTreeMap::from([(SINK_LABEL.to_string(), sink_name.clone()), (TENANT_LABEL.to_string(), tenant.to_string())]);
    let mut container = sink_container(names, image);
    if let Some(secret) = sink.spec.avro.as_ref().and_then(|a| a.credentials_secret.as_deref()) {
        // The team's Secret is read by the kubelet only: the operator names it, never reads it.
        let env = container.env.get_or_insert_with(Vec::new);
        env.push(secret_env("SCHEMA_REGISTRY_USERNAME", secret, "username"));
        env.push(secret_env("SCHEMA_REGISTRY_PASSWORD", secret, "password"));
    }
    let mut template_labels = labels(tenant, &sink_name);
    template_labels.extend(selector.clone());
    Deployment {
        metadata: meta(&names.object, &ns, tenant, &sink_name, owner),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector { match_labels: Some(selector.clone()), ..Default::default() },
            // One consumer leaves before its replacement joins: no overlap in the group.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(0)),
                    max_unavailable: Some(IntOrString::Int(1)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(template_labels),
                    annotations: Some(BTreeMap::from([
                        (CONFIG_HASH.to_string(), stamp.restart_hash.clone()),
                        (CASSANDRA_LOGIN.to_string(), stamp.cassandra_login.clone()),
                    ])),
                    ..Default::default()
                }),
                spec: Some(pod_spec(names, container, selector)),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The sink's container: `tributary-sink` from the operator's image, its credentials from
/// the Secrets, its config mounted read-only, probes, resources, no privilege.
fn sink_container(names: &SinkNames, image: &str) -> Container {
    let probe = |path: &str, initial: i32, period: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(HTTP_PORT),
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial),
        period_seconds: Some(period),
        failure_threshold: Some(3),
        ..Default::default()
    };
    let quantity = |s: &str| Quantity(s.to_string());
    Container {
        name: "sink".into(),
        image: Some(image.to_string()),
        command: Some(vec!["tributary-sink".into()]),
        env: Some(vec![
            EnvVar {
                name: "TRIBUTARY_SINK_CONFIG".into(),
                value: Some(format!("{CONFIG_DIR}/{CONFIG_KEY}")),
                ..Default::default()
            },
            EnvVar {
                name: "TRIBUTARY_HTTP_ADDR".into(),
                value: Some(format!("0.0.0.0:{HTTP_PORT}")),
                ..Default::default()
            },
            EnvVar { name: "RUST_LOG".into(), value: Some("info".into()), ..Default::default() },
            secret_env("KAFKA_USERNAME", &names.object, KAFKA_USERNAME_KEY),
            secret_env("KAFKA_PASSWORD", &names.object, KAFKA_PASSWORD_KEY),
            secret_env("KAFKA_SASL_MECHANISM", &names.object, KAFKA_MECHANISM_KEY),
            secret_env("CASSANDRA_USERNAME", CREDENTIALS_SECRET, CASSANDRA_USERNAME_KEY),
            secret_env("CASSANDRA_PASSWORD", CREDENTIALS_SECRET, CASSANDRA_PASSWORD_KEY),
        ]),
        ports: Some(vec![ContainerPort { name: Some("http".into()), container_port: HTTP_PORT, ..Default::default() }]),
        // Liveness fails only when the sink is stuck (work and no activity for 2 minutes);
        // readiness until it consumes.
        liveness_probe: Some(probe("/healthz", 10, 10)),
        readiness_probe: Some(probe("/readyz", 1, 5)),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([("cpu".into(), quantity("100m")), ("memory".into(), quantity("64Mi"))])),
            limits: Some(BTreeMap::from([("memory".into(), quantity("256Mi"))])),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
            ..Default::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "config".into(),
            mount_path: CONFIG_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

/// The pod: the container, Pod Security `restricted` (which tenant namespaces enforce), no
/// service-account token (the sink never calls the Kubernetes API), replicas spread over
/// nodes, the config volume.
fn pod_spec(names: &SinkNames, container: Container, selector: BTreeMap<String, String>) -> PodSpec {
    PodSpec {
        containers: vec![container],
        termination_grace_period_seconds: Some(45),
        // The sink never calls the Kubernetes API: no token in its pods.
        automount_service_account_token: Some(false),
        // Pod Security `restricted`, which tenant namespaces enforce.
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(65532),
            run_as_group: Some(65532),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
            ..Default::default()
        }),
        affinity: Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(LabelSelector { match_labels: Some(selector), ..Default::default() }),
                        topology_key: "kubernetes.io/hostname".into(),
                        ..Default::default()
                    },
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volumes: Some(vec![Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource { name: names.object.clone(), ..Default::default() }),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Tenant, TenantSpec};

    fn water() -> ValidatedTenant {
        crate::tenant::validate(&Tenant::new("water", TenantSpec::default())).unwrap()
    }

    #[test]
    fn an_avro_sink_reads_the_registry_login_from_the_teams_secret_by_reference() {
        let sink: CassandraSink = serde_json::from_value(serde_json::json!({
            "apiVersion": "tributary.dev/v1alpha1", "kind": "CassandraSink",
            "metadata": {"name": "readings", "namespace": "water", "uid": "u"},
            "spec": {"topic": "data", "table": "readings", "columns": [{"name": "station", "type": "text"}],
                     "partitionKey": ["station"], "format": "Avro",
                     "avro": {"registryUrl": "http://registry:8081", "credentialsSecret": "registry-login"}},
        }))
        .unwrap();
        let stamp = TemplateStamp { restart_hash: "h1".into(), cassandra_login: "c".into() };
        let d = deployment(&names("readings", &water()), &sink, "water", &Default::default(), "img", 1, &stamp);
        let env = d.spec.unwrap().template.spec.unwrap().containers[0].env.clone().unwrap();
        for (name, key) in [("SCHEMA_REGISTRY_USERNAME", "username"), ("SCHEMA_REGISTRY_PASSWORD", "password")] {
            let var = env.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("{name} in {env:?}"));
            let secret = var.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()).expect("a secretKeyRef");
            assert_eq!((secret.name.as_str(), secret.key.as_str()), ("registry-login", key));
            assert!(var.value.is_none(), "never the value itself");
        }
    }

    #[test]
    fn a_deployment_runs_a_login_once_every_pod_is_of_the_template_that_carries_it() {
        use k8s_openapi::api::apps::v1::DeploymentStatus;
        let sink: CassandraSink = serde_json::from_value(serde_json::json!({
            "apiVersion": "tributary.dev/v1alpha1", "kind": "CassandraSink",
            "metadata": {"name": "readings", "namespace": "water", "uid": "u"},
            "spec": {"topic": "data", "table": "readings", "columns": [{"name": "station", "type": "text"}],
                     "partitionKey": ["station"]},
        }))
        .unwrap();
        let stamp = TemplateStamp { restart_hash: "h1".into(), cassandra_login: "new".into() };
        let mut d = deployment(&names("readings", &water()), &sink, "water", &Default::default(), "img", 2, &stamp);
        d.metadata.generation = Some(3);
        let status = |observed, updated, replicas| DeploymentStatus {
            observed_generation: Some(observed),
            updated_replicas: Some(updated),
            replicas: Some(replicas),
            ..Default::default()
        };
        d.status = Some(status(2, 2, 2));
        assert!(!rolled_out(&d, CASSANDRA_LOGIN, "new"), "the controller has not seen the new template yet");
        d.status = Some(status(3, 1, 2));
        assert!(!rolled_out(&d, CASSANDRA_LOGIN, "new"), "one pod of the old template is left");
        d.status = Some(status(3, 2, 3));
        assert!(!rolled_out(&d, CASSANDRA_LOGIN, "new"), "an old pod is still there besides the new ones");
        d.status = Some(status(3, 2, 2));
        assert!(rolled_out(&d, CASSANDRA_LOGIN, "new") && !rolled_out(&d, CASSANDRA_LOGIN, "old"));
        assert!(rolled_out(&d, CONFIG_HASH, "h1"));
    }

    #[test]
    fn the_sink_user_may_read_its_topic_and_group_and_write_its_dead_letter_topic_only() {
        let names = names("readings", &water());
        assert_eq!(names.kafka_user, "water.sink.readings");
        assert_eq!(names.group, "water.sink.readings");
        assert_eq!(names.dead_letter_topic, "water.dlq.readings");
        let acls = desired_acls(&names, "water.data");
        assert_eq!(acls.len(), 5);
        assert!(
            acls.iter().all(|a| a.pattern_type == PatternType::Literal && a.principal == "User:water.sink.readings")
        );
        let writes: Vec<&str> =
            acls.iter().filter(|a| a.operation == AclOperation::Write).map(|a| a.resource_name.as_str()).collect();
        assert_eq!(writes, ["water.dlq.readings"], "the sink writes nowhere but its dead-letter topic");
    }

    #[test]
    fn the_dead_letter_topic_keeps_records_as_long_as_the_spec_asks_within_the_tenant_bound() {
        let tenant = water();
        let mut spec: crate::api::CassandraSinkSpec = serde_saphyr::from_str(
            "topic: data\ntable: readings\ncolumns:\n- {name: station, type: text}\npartitionKey: [station]\n",
        )
        .unwrap();
        assert_eq!(spec.dead_letter_retention_hours, 168, "a week unless set");
        let dlq = dead_letter_topic(&names("readings", &tenant), &spec, 3, 3, Some(4_194_304));
        assert_eq!((dlq.name.as_str(), dlq.partitions), ("water.dlq.readings", 3));
        assert_eq!(dlq.config.get("retention.ms").map(String::as_str), Some("604800000"));
        assert_eq!(dlq.config.get("max.message.bytes").map(String::as_str), Some("4259840"), "4 MiB + 64 KiB");
        assert!(dead_letter_retention_beyond(&tenant, &spec).is_none());
        // 31 days is beyond the default bound of 30 days.
        spec.dead_letter_retention_hours = 31 * 24;
        let refusal = dead_letter_retention_beyond(&tenant, &spec).unwrap();
        assert!(
            refusal.message.contains("spec.deadLetterRetentionHours 744") && refusal.message.contains("maxRetentionMs")
        );
    }

    #[test]
    fn the_config_map_gives_back_the_config_and_its_write_time() {
        let spec: crate::api::CassandraSinkSpec = serde_saphyr::from_str(
            "topic: data\ntable: readings\ncolumns:\n- {name: station, type: text}\npartitionKey: [station]\n",
        )
        .unwrap();
        let config = SinkConfig {
            sink: "water/readings".into(),
            topic: "water.data".into(),
            group: "water.sink.readings".into(),
            dead_letter_topic: "water.dlq.readings".into(),
            bootstrap_servers: "kafka:9092".into(),
            security_protocol: "SASL_SSL".into(),
            sasl_mechanism: "SCRAM-SHA-512".into(),
            kafka_ca_pem: Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into()),
            contact_points: vec!["cassandra:9042".into()],
            cassandra_ca_pem: None,
            keyspace: "water".into(),
            spec,
            max_in_flight: 256,
            commit_interval_ms: 1000,
            write_time: Some(crate::api::WriteTime {
                topic_id: "kxk1AqT4QZ2bYl0fP0Xj2w".into(),
                base: 1_767_225_600_000_000,
            }),
            local_datacenter: Some("datacenter1".into()),
            schema_registry_url: None,
        };
        let (yaml, _) = render_config(&config);
        let config_map = ConfigMap { data: Some([(CONFIG_KEY.to_string(), yaml)].into()), ..Default::default() };
        assert_eq!(parse_config(&config_map), Some(config));
        assert_eq!(parse_config(&ConfigMap::default()), None);
    }
}

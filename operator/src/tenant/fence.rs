//! The fence around a tenant namespace (pure): what Kubernetes itself enforces there, so that
//! no team can exhaust what every tenant shares, whatever it creates directly or makes the
//! operator create for it (a sink's pods).
//!
//! - Pod Security `restricted` is enforced on the namespace (labels in [`super::build::namespace`]).
//! - A ResourceQuota bounds the objects the team writes (Topics, CassandraSinks, Secrets,
//!   ConfigMaps), its pods, and the CPU and memory they may take, from the Tenant's limits.
//! - A LimitRange gives every container a default request and limit (the quota needs both) and a
//!   ceiling.
//! - A default-deny NetworkPolicy lets the namespace's pods reach only Kafka, Cassandra, DNS and
//!   each other, and be reached only from the namespace and the operator's. It is enforced where
//!   the cluster's network plugin enforces NetworkPolicy (GKE Dataplane V2, Calico, Cilium); the
//!   local stack's bridge plugin does not.
//!
//! The team's role grants none of these kinds: only the operator writes them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LimitRange, LimitRangeItem, LimitRangeSpec, ResourceQuota, ResourceQuotaSpec};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::build::labels;
use super::validate::{DEFAULT_KAFKA_USERS, DEFAULT_SINKS, TOPIC_GRANTS, ValidatedTenant};

/// Names of the three objects in every tenant namespace.
pub const QUOTA: &str = "tributary-quota";
pub const LIMIT_RANGE: &str = "tributary-limits";
pub const NETWORK_POLICY: &str = "tributary-default-deny";

/// Defaults of the quota when the Tenant's limits leave a figure unset.
pub const DEFAULT_TOPIC_OBJECTS: i32 = 500;
pub const DEFAULT_PODS: i32 = 50;
pub const DEFAULT_CPU: &str = "8";
pub const DEFAULT_MEMORY: &str = "16Gi";
/// Secrets and ConfigMaps a namespace may hold (each sink has one of each).
pub const SECRETS_AND_CONFIG_MAPS: i32 = 500;

fn meta(name: &str, v: &ValidatedTenant, owner: &OwnerReference) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(v.namespace.clone()),
        labels: Some(labels(&v.name)),
        owner_references: Some(vec![owner.clone()]),
        ..Default::default()
    }
}

fn quantity(s: &str) -> Quantity {
    Quantity(s.to_string())
}

/// The namespace's ResourceQuota from the Tenant's limits.
pub fn resource_quota(v: &ValidatedTenant, owner: &OwnerReference) -> ResourceQuota {
    let limits = &v.limits;
    let count = |n: i32| quantity(&n.to_string());
    let cpu = limits.cpu.clone().unwrap_or_else(|| DEFAULT_CPU.into());
    let memory = limits.memory.clone().unwrap_or_else(|| DEFAULT_MEMORY.into());
    let hard = BTreeMap::from([
        ("count/topics.tributary.dev".to_string(), count(limits.max_topic_objects.unwrap_or(DEFAULT_TOPIC_OBJECTS))),
        ("count/cassandrasinks.tributary.dev".to_string(), count(limits.max_sinks.unwrap_or(DEFAULT_SINKS))),
        ("count/kafkausers.tributary.dev".to_string(), count(limits.max_kafka_users.unwrap_or(DEFAULT_KAFKA_USERS))),
        ("count/topicgrants.tributary.dev".to_string(), count(TOPIC_GRANTS)),
        ("count/secrets".to_string(), count(SECRETS_AND_CONFIG_MAPS)),
        ("count/configmaps".to_string(), count(SECRETS_AND_CONFIG_MAPS)),
        ("pods".to_string(), count(limits.max_pods.unwrap_or(DEFAULT_PODS))),
        ("requests.cpu".to_string(), quantity(&cpu)),
        ("requests.memory".to_string(), quantity(&memory)),
        ("limits.memory".to_string(), quantity(&memory)),
    ]);
    ResourceQuota {
        metadata: meta(QUOTA, v, owner),
        spec: Some(ResourceQuotaSpec { hard: Some(hard), ..Default::default() }),
        ..Default::default()
    }
}

/// Every container's default request and limit (which the quota requires), and a ceiling.
pub fn limit_range(v: &ValidatedTenant, owner: &OwnerReference) -> LimitRange {
    let q = |pairs: &[(&str, &str)]| Some(pairs.iter().map(|(k, v)| (k.to_string(), quantity(v))).collect());
    LimitRange {
        metadata: meta(LIMIT_RANGE, v, owner),
        spec: Some(LimitRangeSpec {
            limits: vec![LimitRangeItem {
                type_: "Container".into(),
                default_request: q(&[("cpu", "50m"), ("memory", "64Mi")]),
                default: q(&[("memory", "256Mi")]),
                max: q(&[("cpu", "4"), ("memory", "4Gi")]),
                ..Default::default()
            }],
        }),
    }
}

/// Name of the RoleBinding that gives the operator the Secrets of a tenant namespace.
pub const SECRETS_BINDING: &str = "tributary-operator-secrets";

/// The operator's Secret rights in the tenant namespace: its ServiceAccount bound to the
/// ClusterRole that names only Secrets.
pub fn secrets_role_binding(
    v: &ValidatedTenant,
    owner: &OwnerReference,
    binding: &crate::config::SecretsBinding,
    operator_namespace: &str,
) -> RoleBinding {
    RoleBinding {
        metadata: meta(SECRETS_BINDING, v, owner),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: binding.cluster_role.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: binding.service_account.clone(),
            namespace: Some(operator_namespace.to_string()),
            ..Default::default()
        }]),
    }
}

/// The ports of `host:port` entries (a bootstrap list, contact points).
fn ports<'a>(addresses: impl IntoIterator<Item = &'a str>) -> Vec<i32> {
    let mut ports: Vec<i32> = addresses.into_iter().filter_map(|a| a.trim().rsplit_once(':')?.1.parse().ok()).collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Default deny, except: DNS, the Kafka and Cassandra ports (`kafka` and `cassandra` are the
/// addresses the tenants' clients use), traffic within the namespace, and the operator's
/// namespace reaching in (it reads the sink pods' reports).
pub fn network_policy<'a>(
    v: &ValidatedTenant,
    owner: &OwnerReference,
    kafka: impl IntoIterator<Item = &'a str>,
    cassandra: impl IntoIterator<Item = &'a str>,
    operator_namespace: &str,
) -> NetworkPolicy {
    let port = |protocol: &str, port: i32| NetworkPolicyPort {
        protocol: Some(protocol.into()),
        port: Some(IntOrString::Int(port)),
        ..Default::default()
    };
    let mut data_ports: Vec<NetworkPolicyPort> =
        ports(kafka).into_iter().chain(ports(cassandra)).map(|p| port("TCP", p)).collect();
    data_ports.dedup_by_key(|p| p.port.clone());
    let same_namespace = NetworkPolicyPeer { pod_selector: Some(LabelSelector::default()), ..Default::default() };
    let namespace_named = |name: &str| NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([("kubernetes.io/metadata.name".to_string(), name.to_string())])),
            ..Default::default()
        }),
        ..Default::default()
    };
    NetworkPolicy {
        metadata: meta(NETWORK_POLICY, v, owner),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![same_namespace.clone(), namespace_named(operator_namespace)]),
                ..Default::default()
            }]),
            egress: Some(vec![
                NetworkPolicyEgressRule { ports: Some(vec![port("UDP", 53), port("TCP", 53)]), ..Default::default() },
                NetworkPolicyEgressRule { ports: Some(data_ports), ..Default::default() },
                NetworkPolicyEgressRule { to: Some(vec![same_namespace]), ..Default::default() },
            ]),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Tenant, TenantSpec};

    fn water(f: impl FnOnce(&mut TenantSpec)) -> ValidatedTenant {
        let mut spec = TenantSpec::default();
        f(&mut spec);
        super::super::validate::validate(&Tenant::new("water", spec)).unwrap()
    }

    fn owner() -> OwnerReference {
        OwnerReference { uid: "u".into(), name: "water".into(), ..Default::default() }
    }

    #[test]
    fn the_quota_bounds_objects_pods_cpu_and_memory_from_the_tenant_limits_or_the_defaults() {
        let hard = |v: &ValidatedTenant| resource_quota(v, &owner()).spec.unwrap().hard.unwrap();
        let defaults = hard(&water(|_| {}));
        assert_eq!(defaults["count/topics.tributary.dev"], quantity("500"));
        assert_eq!(defaults["count/cassandrasinks.tributary.dev"], quantity("20"));
        assert_eq!(defaults["count/kafkausers.tributary.dev"], quantity("20"));
        assert_eq!(defaults["count/topicgrants.tributary.dev"], quantity("50"));
        assert_eq!(defaults["pods"], quantity("50"));
        assert_eq!(defaults["requests.cpu"], quantity("8"));
        assert_eq!(defaults["limits.memory"], quantity("16Gi"));
        let own = hard(&water(|s| {
            s.kafka.limits.max_sinks = Some(2);
            s.kafka.limits.max_pods = Some(4);
            s.kafka.limits.memory = Some("1Gi".into());
        }));
        assert_eq!(
            (&own["count/cassandrasinks.tributary.dev"], &own["pods"], &own["limits.memory"]),
            (&quantity("2"), &quantity("4"), &quantity("1Gi"))
        );
    }

    #[test]
    fn the_network_policy_denies_all_but_dns_kafka_cassandra_the_namespace_and_the_operator() {
        let policy = network_policy(
            &water(|_| {}),
            &owner(),
            ["kafka-0:9092", "kafka-1:9092", "kafka-2:9192"],
            ["cassandra:9042"],
            "tributary-system",
        );
        let spec = policy.spec.unwrap();
        assert_eq!(spec.policy_types.unwrap(), ["Ingress", "Egress"]);
        let egress = spec.egress.unwrap();
        let data: Vec<_> = egress[1].ports.iter().flatten().map(|p| p.port.clone().unwrap()).collect();
        assert_eq!(data, [IntOrString::Int(9092), IntOrString::Int(9192), IntOrString::Int(9042)]);
        assert!(egress[1].to.is_none(), "the brokers may be anywhere: bounded by port");
        let from = spec.ingress.unwrap()[0].from.clone().unwrap();
        assert_eq!(from.len(), 2, "the namespace itself and the operator's");
    }
}

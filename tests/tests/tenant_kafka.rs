//! The seeds' two tenants on the shared cluster, through the operator: each tenant's own
//! credentials (read from its Secret) work on its topics and are refused on the other's.

use std::collections::BTreeSet;
use std::time::Duration;
use tributary_tests::{ClientConfigOf, CreateClient};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use tributary::api::Topic;
use tributary::external::kafka::{AclBinding, AclBindingFilter, AclOperation, PatternType, ResourceType};
use tributary_tests::kafka::{consume, consumer, error_code, produce, producer};
use tributary_tests::operator::OperatorProcess;
use tributary_tests::{
    TenantCleanup, kafka_admin, kafka_admin_ext, kubectl_apply, tenant_kafka_settings, unique, wait_ready, wait_until,
};

const WAIT: Duration = Duration::from_secs(60);

/// The admin applies the Tenant; once its namespace exists, the team applies its Topic.
/// The Tenant goes when the returned guard drops.
async fn seed_tenant(name: &str) -> TenantCleanup {
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {name}\nspec: {{}}\n"
    ));
    let cleanup = TenantCleanup::new(name);
    let namespaces: Api<Namespace> = Api::all(kube::Client::try_default().await.unwrap());
    wait_until(&format!("namespace {name}"), WAIT, || async {
        namespaces.get_opt(name).await.map_err(|e| e.to_string())?.map(|_| ()).ok_or_else(|| "not yet".to_string())
    })
    .await;
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: data\n  namespace: {name}\n\
         spec:\n  partitions: 3\n  replicationFactor: 3\n"
    ));
    cleanup
}

async fn wait_topic_ready(ns: &str) {
    let topics: Api<Topic> = Api::namespaced(kube::Client::try_default().await.unwrap(), ns);
    wait_ready(&topics, "data", "True", "Provisioned").await;
}

#[tokio::test]
async fn water_and_bts_are_isolated_from_each_other() {
    OperatorProcess::shared().await;
    let (water, bts) = (unique("water"), unique("bts"));
    let _water_cleanup = seed_tenant(&water).await;
    let _bts_cleanup = seed_tenant(&bts).await;
    wait_topic_ready(&water).await;
    wait_topic_ready(&bts).await;
    let (water_topic, bts_topic) = (format!("{water}.data"), format!("{bts}.data"));

    for (me, other, my_topic, other_topic) in
        [(&water, &bts, &water_topic, &bts_topic), (&bts, &water, &bts_topic, &water_topic)]
    {
        let settings = tenant_kafka_settings(me).await;
        assert_eq!(settings.username, *me);
        let p = producer(&settings);
        wait_until(&format!("{me} to produce to its own topic with its Secret's credentials"), WAIT, || async {
            produce(&p, my_topic, "station-01", "{\"ph\": 7.1}").await.map_err(|e| e.to_string())
        })
        .await;
        // The group ACL may reach the group coordinator's broker a moment after the topic ACLs.
        let read = wait_until(&format!("{me} to read its own topic in its own group"), WAIT, || async {
            consume(&consumer(&settings, &format!("{me}.reader")), my_topic, 1, WAIT).await.map_err(|e| e.to_string())
        })
        .await;
        assert_eq!(read[0].0, "station-01");

        let refused = produce(&p, other_topic, "k", "v").await.expect_err("writing to the other tenant's topic");
        assert_eq!(error_code(&refused), Some(RDKafkaErrorCode::TopicAuthorizationFailed), "{me} → {other}: {refused}");
        let refused = consume(&consumer(&settings, &format!("{me}.spy")), other_topic, 1, WAIT)
            .await
            .expect_err("reading the other tenant's topic");
        assert_eq!(error_code(&refused), Some(RDKafkaErrorCode::TopicAuthorizationFailed), "{me} ← {other}: {refused}");
        let refused = consume(&consumer(&settings, &format!("{other}.reader")), my_topic, 1, WAIT)
            .await
            .expect_err("using the other tenant's consumer group");
        assert_eq!(
            error_code(&refused),
            Some(RDKafkaErrorCode::GroupAuthorizationFailed),
            "{me} in {other}'s group: {refused}"
        );

        // Topics are created through Topic objects (and their guardrails), never directly.
        let own_admin: AdminClient<DefaultClientContext> = settings.client_config().create_client().unwrap();
        let results = own_admin
            .create_topics(
                &[NewTopic::new(&format!("{me}.sneaky"), 1, TopicReplication::Fixed(3))],
                &AdminOptions::new(),
            )
            .await
            .expect("CreateTopics answered");
        assert_eq!(results[0].clone().unwrap_err().1, RDKafkaErrorCode::TopicAuthorizationFailed);
    }
}

#[tokio::test]
async fn a_stray_acl_on_a_tenant_user_is_removed_and_a_missing_one_restored() {
    OperatorProcess::shared().await;
    let tenant = unique("drift");
    let _tenant_cleanup = seed_tenant(&tenant).await;
    wait_topic_ready(&tenant).await;
    let ext = kafka_admin_ext(&kafka_admin());
    let principal = format!("User:{tenant}");
    let acls =
        || async { ext.describe_acls(AclBindingFilter::for_principal(&principal)).await.map_err(|e| e.to_string()) };
    let desired: BTreeSet<AclBinding> = wait_until("the tenant's ACLs", WAIT, || async {
        let set: BTreeSet<AclBinding> = acls().await?.into_iter().collect();
        if set.len() == 8 { Ok(set) } else { Err(format!("{set:?}")) }
    })
    .await;
    assert!(desired.iter().all(|a| a.pattern_type == PatternType::Prefixed && a.resource_name == format!("{tenant}.")));

    // Someone grants the tenant more by hand and removes one of its entries.
    let stray = AclBinding::allow(
        &principal,
        ResourceType::Topic,
        PatternType::Literal,
        "somebody-elses-topic",
        AclOperation::Read,
    );
    ext.create_acls(vec![stray.clone()]).await.unwrap()[0].clone().unwrap();
    let removed = desired.iter().next().unwrap().clone();
    ext.delete_acls(vec![AclBindingFilter::exact(&removed)]).await.unwrap();

    wait_until("the operator to converge the ACLs back (next resync)", Duration::from_secs(90), || async {
        let set: BTreeSet<AclBinding> = acls().await?.into_iter().collect();
        if set == desired {
            Ok(())
        } else {
            Err(format!("stray present: {}, removed restored: {}", set.contains(&stray), set.contains(&removed)))
        }
    })
    .await;
}

#[tokio::test]
async fn quotas_from_the_tenant_spec_are_set_changed_and_kept_on_its_user() {
    use tributary::external::kafka::quotas::Quotas;
    use tributary_tests::KafkaWire;
    OperatorProcess::shared().await;
    let tenant = unique("quota");
    let apply = |quotas: &str| {
        kubectl_apply(&format!(
            "apiVersion: tributary.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {tenant}\nspec:\n  kafka:\n    quotas:\n{quotas}"
        ))
    };
    apply("      producerByteRate: 1048576\n      requestPercentage: 50\n");
    let _tenant_cleanup = TenantCleanup::new(&tenant);
    // Read back through Kafka's DescribeClientQuotas, as the admin.
    let quotas = KafkaWire::new(tributary_tests::kafka_admin_settings());
    let expect = |pairs: &[(&str, f64)]| pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect::<Quotas>();
    let wait_quotas = |want: Quotas| {
        let (quotas, tenant) = (&quotas, &tenant);
        async move {
            wait_until(&format!("quotas of user {tenant} to be {want:?}"), WAIT, || async {
                let live = quotas.describe_user(tenant).await.map_err(|e| e.to_string())?;
                if live == want { Ok(()) } else { Err(format!("{live:?}")) }
            })
            .await
        }
    };
    // The tenant's own user holds a quarter of the tenant's quota (its sink users and
    // applications share the rest).
    wait_quotas(expect(&[("producer_byte_rate", 262_144.0), ("request_percentage", 12.0)])).await;

    // A spec change sets the new value and removes the quota no longer asked for.
    apply("      producerByteRate: 2097152\n      consumerByteRate: 4194304\n");
    wait_quotas(expect(&[("producer_byte_rate", 524_288.0), ("consumer_byte_rate", 1_048_576.0)])).await;

    // A quota changed by hand is set back on the next resync.
    let hand = expect(&[("producer_byte_rate", 1024.0)]);
    quotas.alter_user(&tenant, &hand, &[]).await.unwrap();
    wait_quotas(expect(&[("producer_byte_rate", 524_288.0), ("consumer_byte_rate", 1_048_576.0)])).await;
}

/// The consumer groups under `prefix`, as Kafka lists them.
fn groups_under(prefix: &str) -> Vec<String> {
    let list = kafka_admin().inner().fetch_group_list(None, Duration::from_secs(15)).expect("ListGroups");
    list.groups().iter().map(|g| g.name().to_string()).filter(|g| g.starts_with(prefix)).collect()
}

/// A Tenant deleted with `Delete` takes its consumer groups with it (its sinks are stopped
/// first, so their groups are empty and can go), and its name can be used again: a new
/// Tenant of that name is not refused for groups the deleted one left. (`make demo` after
/// the tests met exactly that: the water and bts groups of the end-to-end test.)
#[tokio::test]
async fn a_tenant_deleted_with_its_data_takes_its_consumer_groups_and_its_name_can_be_used_again() {
    OperatorProcess::shared().await;
    let tenant = unique("again");
    let cleanup = tributary_tests::ready_tenant(&tenant, "").await;
    tributary_tests::pipeline::apply_water_example(&tenant, 1);
    tributary_tests::sink::SinkPods::running(&tenant, "tributary-sink-readings", 1).await;
    tributary_tests::pipeline::produce(&tenant, "water", &unique("again"), 50).await;
    let group = format!("{tenant}.sink.readings");
    tributary_tests::pipeline::wait_drained(&format!("{tenant}.data"), &group, 50).await;
    assert_eq!(groups_under(&format!("{tenant}.")), std::slice::from_ref(&group), "the running sink's group");

    // Deleted with `Delete` while its sink runs; the guard waits for the Tenant and its namespace.
    drop(cleanup);
    assert_eq!(groups_under(&format!("{tenant}.")), Vec::<String>::new(), "no consumer group of {tenant} left");

    // The same name again: Ready, not refused for anything the first one left.
    let _again = tributary_tests::ready_tenant(&tenant, "").await;
}

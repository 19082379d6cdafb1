//! The stack's Kafka is three real brokers with SASL/SCRAM and the standard ACL authorizer:
//! topics spread over all three, and a SCRAM user can do exactly what its ACLs allow.

use std::collections::BTreeSet;
use std::time::Duration;
use tributary_tests::{ClientConfigOf, CreateClient};

use rdkafka::types::RDKafkaErrorCode;
use tributary::external::kafka::{
    AclBinding, AclBindingFilter, AclOperation, DEFAULT_SCRAM_ITERATIONS, PatternType, ResourceType, ScramChange,
    ScramMechanism,
};
use tributary_tests::kafka::{
    consume, consumer, create_topic, delete_topic, error_code, produce, producer, topic_layout,
};
use tributary_tests::{kafka_admin, kafka_admin_ext, kafka_admin_settings, unique, wait_until};

#[tokio::test]
async fn a_topic_with_three_partitions_and_rf3_spans_all_three_brokers() {
    let admin = kafka_admin();
    let topic = unique("smoke-layout");
    create_topic(&admin, &topic, 3, 3).await;

    let layout = topic_layout(&admin, &topic).expect("metadata");
    assert_eq!(layout.len(), 3, "{layout:?}");
    let all_brokers: BTreeSet<i32> = [1, 2, 3].into();
    for p in &layout {
        assert_eq!(p.replicas, all_brokers, "partition {} is not on all three brokers", p.id);
        assert_eq!(p.isr, all_brokers, "partition {} is not fully in sync", p.id);
    }
    let leaders: BTreeSet<i32> = layout.iter().map(|p| p.leader).collect();
    assert!(leaders.is_subset(&all_brokers), "{leaders:?}");

    // The cluster refuses what the seeds' setup forbids: a produce does not auto-create a topic.
    let impatient: rdkafka::producer::FutureProducer =
        kafka_admin_settings().client_config().set("message.timeout.ms", "3000").create_client().expect("producer");
    let missing = unique("smoke-never-created");
    produce(&impatient, &missing, "k", "v").await.expect_err("no such topic");
    let err = topic_layout(&admin, &missing).expect_err("auto.create.topics.enable=false");
    assert!(err.contains("UNKNOWN_TOPIC_OR_PART"), "{err}");

    delete_topic(&admin, &topic).await;
}

#[tokio::test]
async fn a_scram_user_can_do_exactly_what_its_acls_allow() {
    let admin = kafka_admin();
    let ext = kafka_admin_ext(&admin);
    let user = unique("smoke-user");
    let principal = format!("User:{user}");
    let password = format!("pw-{}", unique("x"));
    let allowed = format!("{user}.allowed");
    let denied = format!("{user}.denied");
    let group = format!("{user}.group");
    create_topic(&admin, &allowed, 3, 3).await;
    create_topic(&admin, &denied, 3, 3).await;

    let results = ext
        .alter_scram_credentials(vec![ScramChange::Upsert {
            user: user.clone(),
            mechanism: ScramMechanism::Sha512,
            iterations: DEFAULT_SCRAM_ITERATIONS,
            password: password.clone(),
        }])
        .await
        .expect("AlterUserScramCredentials");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].0, user);
    results[0].1.clone().expect("credential stored");

    let acls = vec![
        AclBinding::allow(&principal, ResourceType::Topic, PatternType::Literal, &allowed, AclOperation::Write),
        AclBinding::allow(&principal, ResourceType::Topic, PatternType::Literal, &allowed, AclOperation::Read),
        AclBinding::allow(&principal, ResourceType::Group, PatternType::Prefixed, &group, AclOperation::Read),
    ];
    for r in ext.create_acls(acls.clone()).await.expect("CreateAcls") {
        r.expect("ACL created");
    }
    // ACLs reach every broker through the metadata log, so the answering broker may lag.
    let expected: BTreeSet<AclBinding> = acls.iter().cloned().collect();
    let describe = || async {
        let found: BTreeSet<AclBinding> = ext
            .describe_acls(AclBindingFilter::for_principal(&principal))
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        Ok::<_, String>(found)
    };
    wait_until("DescribeAcls to return exactly what was created", Duration::from_secs(30), || async {
        let found = describe().await?;
        if found == expected { Ok(()) } else { Err(format!("{found:?}")) }
    })
    .await;

    let settings = tributary_tests::kafka_user_settings(&user, &password);
    let user_producer = producer(&settings);
    // A new SCRAM credential reaches every broker through the metadata log; wait for it.
    let (partition, _) =
        wait_until("the new user to produce to its allowed topic", Duration::from_secs(30), || async {
            produce(&user_producer, &allowed, "k1", "hello").await.map_err(|e| e.to_string())
        })
        .await;
    assert!((0..3).contains(&partition));

    let refused = produce(&user_producer, &denied, "k1", "nope").await.expect_err("no WRITE ACL on the denied topic");
    assert_eq!(error_code(&refused), Some(RDKafkaErrorCode::TopicAuthorizationFailed), "{refused}");

    let records = consume(&consumer(&settings, &group), &allowed, 1, Duration::from_secs(30))
        .await
        .expect("READ on the allowed topic and its group");
    assert_eq!(records, vec![("k1".to_string(), "hello".to_string())]);

    let refused = consume(&consumer(&settings, &format!("{group}-denied")), &denied, 1, Duration::from_secs(30))
        .await
        .expect_err("no READ ACL on the denied topic");
    assert_eq!(error_code(&refused), Some(RDKafkaErrorCode::TopicAuthorizationFailed), "{refused}");

    // Clean up, checking that the deletes really deleted.
    let deleted = ext.delete_acls(vec![AclBindingFilter::for_principal(&principal)]).await.expect("DeleteAcls");
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].clone().expect("filter applied").len(), 3);
    wait_until("the deleted ACLs to be gone", Duration::from_secs(30), || async {
        let found = describe().await?;
        if found.is_empty() { Ok(()) } else { Err(format!("{found:?}")) }
    })
    .await;
    let removed = ext
        .alter_scram_credentials(vec![ScramChange::Delete { user: user.clone(), mechanism: ScramMechanism::Sha512 }])
        .await
        .expect("delete credential");
    removed[0].1.clone().expect("credential deleted");
    delete_topic(&admin, &allowed).await;
    delete_topic(&admin, &denied).await;
}

/// The operator's Kafka adapter on the real brokers. Reconciles that describe the same topic
/// at the same moment share DescribeConfigs requests and each gets its own answer: a request
/// that named a topic twice failed as a whole (librdkafka: "returned ConfigResource ...
/// multiple times", BadMessage), every other topic of the batch with it. And a group's
/// committed offsets, read by OffsetFetch at its coordinator, are what the group committed;
/// partitions without a commit, and a group that never committed, have none.
#[tokio::test]
async fn the_adapter_answers_concurrent_describes_of_one_topic_and_reads_committed_offsets() {
    use rdkafka::consumer::{CommitMode, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    use tributary::external::kafka::{KafkaAdmin, KafkaClient};

    let admin = kafka_admin();
    let (a, b) = (unique("adapter-a"), unique("adapter-b"));
    create_topic(&admin, &a, 3, 3).await;
    create_topic(&admin, &b, 1, 3).await;
    let metrics = std::sync::Arc::new(tributary::metrics::Metrics::default());
    let kafka = KafkaClient::new(&kafka_admin_settings(), Duration::from_secs(30), metrics);

    let names: Vec<&str> = (0..40).map(|i| if i % 3 == 0 { b.as_str() } else { a.as_str() }).collect();
    let views = futures::future::join_all(names.iter().map(|n| kafka.describe_topic(n))).await;
    for (name, view) in names.iter().zip(views) {
        let view = view.unwrap_or_else(|e| panic!("describe {name}: {e}"));
        let topic = view.topic.unwrap_or_else(|| panic!("{name} exists"));
        assert_eq!(topic.partitions, if *name == a { 3 } else { 1 }, "{name}");
        assert!(topic.config.contains_key("retention.ms"), "{name}: every config entry: {:?}", topic.config.keys());
    }

    let group = unique("adapter-group");
    let member = consumer(&kafka_admin_settings(), &group);
    let mut commit = TopicPartitionList::new();
    commit.add_partition_offset(&a, 1, Offset::Offset(7)).unwrap();
    member.commit(&commit, CommitMode::Sync).unwrap();
    let committed = kafka.committed_offsets(&group, &a).await.unwrap();
    assert_eq!(committed, [(1, 7)].into(), "only partition 1 has a commit");
    let never = kafka.committed_offsets(&unique("adapter-idle"), &a).await.unwrap();
    assert!(never.is_empty(), "{never:?}");
    // Lag from the same read: partition 1's commit is ahead of its empty log, so no lag.
    let progress = kafka.topic_progress(&a, Some(&group)).await.unwrap();
    assert_eq!((progress.records, progress.lag), (0, 0), "{progress:?}");

    // Records on two of a's partitions, and a commit on one of them: the watermarks of
    // every partition (ListOffsets, asked together with b's) give records, end and lag.
    let producer = producer(&kafka_admin_settings());
    for (partition, count) in [(0, 10), (2, 5)] {
        for i in 0..count {
            let record = rdkafka::producer::FutureRecord::to(&a).partition(partition).key("k").payload("v");
            producer.send(record, Duration::from_secs(30)).await.unwrap_or_else(|(e, _)| panic!("record {i}: {e}"));
        }
    }
    let mut commit = TopicPartitionList::new();
    commit.add_partition_offset(&a, 0, Offset::Offset(4)).unwrap();
    member.commit(&commit, CommitMode::Sync).unwrap();
    let (progress, other) = tokio::join!(kafka.topic_progress(&a, Some(&group)), kafka.topic_progress(&b, None));
    let (progress, other) = (progress.unwrap(), other.unwrap());
    // Partition 0: 10 records, 6 after the commit; 1: none; 2: 5, never committed.
    assert_eq!((progress.records, progress.end, progress.lag), (15, 10, 11), "{progress:?}");
    assert_eq!((other.records, other.lag), (0, 0), "{other:?}");
    let missing = kafka.topic_progress(&unique("adapter-missing"), None).await.unwrap();
    assert_eq!((missing.records, missing.lag), (0, 0), "a topic Kafka does not know has no progress");
    drop(member);
    delete_topic(&admin, &a).await;
    delete_topic(&admin, &b).await;
}

/// Everything the operator's own Kafka client writes, read back by another implementation
/// (librdkafka, through rdkafka and the tests' own C-API calls): a SCRAM credential it
/// salted logs a librdkafka client in, its ACLs, configs, partitions, offset resets and
/// group deletions are what librdkafka sees, and a topic's id is spelled as librdkafka
/// spells it (ids recorded in sink statuses before keep matching).
#[tokio::test]
async fn what_the_operators_client_writes_another_kafka_client_reads() {
    use rdkafka::consumer::Consumer;
    use tributary::api::Position;
    use tributary::external::kafka::{AclOperation, ConfigOp, KafkaAdmin, KafkaClient, KafkaSecurity};
    use tributary::topic::model::DesiredTopic;

    let admin = kafka_admin();
    let ext = kafka_admin_ext(&admin);
    let metrics = std::sync::Arc::new(tributary::metrics::Metrics::default());
    let kafka = KafkaClient::new(&kafka_admin_settings(), Duration::from_secs(30), metrics);
    let topic = unique("client-topic");

    // A topic with a config, created by the operator's client, as librdkafka sees it.
    let desired = DesiredTopic {
        name: topic.clone(),
        partitions: 2,
        replication_factor: 3,
        config: [("retention.ms".to_string(), "3600000".to_string())].into(),
        owned_keys: Default::default(),
    };
    kafka.create_topic(&desired).await.unwrap();
    kafka.create_topic(&desired).await.expect("creating an existing topic counts as created");
    let layout = topic_layout(&admin, &topic).unwrap();
    assert_eq!(layout.len(), 2, "{layout:?}");
    assert!(layout.iter().all(|p| p.replicas.len() == 3), "{layout:?}");
    let config = tributary_tests::kafka::topic_config(&admin, &topic).await.unwrap();
    assert_eq!(config["retention.ms"], ("3600000".to_string(), true));

    // The same id as librdkafka's DescribeTopics.
    let theirs = ext.describe_topics(vec![topic.clone()]).await.unwrap();
    let their_id = theirs[0].1.clone().unwrap().unwrap().id;
    assert_eq!(kafka.topic_id(&topic).await.unwrap(), their_id);
    assert!(their_id.is_some());

    // Incremental config changes and a partition increase.
    let changes = vec![
        ("retention.ms".to_string(), ConfigOp::Delete),
        ("cleanup.policy".to_string(), ConfigOp::Set("compact".into())),
    ];
    kafka.alter_topic_config(&topic, changes).await.unwrap();
    tributary_tests::kafka::wait_config(&topic, "retention.ms", None).await;
    tributary_tests::kafka::wait_config(&topic, "cleanup.policy", Some("compact")).await;
    kafka.create_partitions(&topic, 4).await.unwrap();
    wait_until("4 partitions in librdkafka's metadata", Duration::from_secs(30), || async {
        let n = topic_layout(&admin, &topic)?.len();
        if n == 4 { Ok(()) } else { Err(format!("{n}")) }
    })
    .await;

    // A SCRAM user the operator's client salted logs a librdkafka client in; its ACLs are
    // what librdkafka describes, and gone after the delete.
    let user = unique("client-user");
    let password = format!("pw-{}", unique("x"));
    kafka.upsert_scram_user(&user, ScramMechanism::Sha512, &password).await.unwrap();
    let principal = format!("User:{user}");
    let acls = vec![
        AclBinding::allow(&principal, ResourceType::Topic, PatternType::Literal, &topic, AclOperation::Read),
        AclBinding::allow(&principal, ResourceType::Topic, PatternType::Literal, &topic, AclOperation::Describe),
        AclBinding::allow(&principal, ResourceType::Group, PatternType::Prefixed, &user, AclOperation::Read),
    ];
    kafka.create_acls(acls.clone()).await.unwrap();
    let sorted = |mut v: Vec<AclBinding>| {
        v.sort();
        v
    };
    // Every broker learns the ACLs from the controller's metadata, a moment after the write.
    wait_until("librdkafka and the operator's client to describe the ACLs", Duration::from_secs(30), || async {
        let theirs =
            sorted(ext.describe_acls(AclBindingFilter::for_principal(&principal)).await.map_err(|e| e.to_string())?);
        let ours = sorted(kafka.describe_acls(&principal).await.map_err(|e| e.to_string())?);
        if theirs == sorted(acls.clone()) && ours == theirs { Ok(()) } else { Err(format!("{theirs:?} / {ours:?}")) }
    })
    .await;
    let settings = tributary_tests::kafka_user_settings(&user, &password);
    wait_until("the new user to log in through librdkafka", Duration::from_secs(30), || async {
        let client: rdkafka::consumer::BaseConsumer = settings.client_config().create_client().unwrap();
        client.fetch_metadata(Some(&topic), Duration::from_secs(5)).map(drop).map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(kafka.scram_mechanisms(&user).await.unwrap(), [ScramMechanism::Sha512].into());
    assert!(kafka.scram_users().await.unwrap().contains(&user));

    // Offsets: a reset to the end of a topic with records, as librdkafka reads the group's
    // commits; the group is listed, and gone after its deletion.
    let producer = producer(&kafka_admin_settings());
    for i in 0..6 {
        produce(&producer, &topic, &format!("k{i}"), "v").await.unwrap();
    }
    let group = format!("{user}.readers");
    let targets = kafka.reset_offsets(&group, &topic, Position::Latest).await.unwrap();
    assert_eq!(targets.values().sum::<i64>(), 6, "{targets:?}");
    let member = consumer(&kafka_admin_settings(), &group);
    let mut wanted = rdkafka::TopicPartitionList::new();
    for p in 0..4 {
        wanted.add_partition(&topic, p);
    }
    let committed = member.committed_offsets(wanted, Duration::from_secs(10)).unwrap();
    let theirs: std::collections::BTreeMap<i32, i64> =
        committed.elements().iter().filter_map(|e| Some((e.partition(), e.offset().to_raw()?))).collect();
    assert_eq!(theirs, targets);
    drop(member);
    assert_eq!(kafka.groups_with_prefix(&group).await.unwrap(), vec![group.clone()]);
    wait_until("the group to be deleted", Duration::from_secs(60), || async {
        kafka.delete_groups(std::slice::from_ref(&group)).await.map_err(|e| e.to_string())?;
        let left = kafka.groups_with_prefix(&group).await.map_err(|e| e.to_string())?;
        if left.is_empty() { Ok(()) } else { Err(format!("{left:?}")) }
    })
    .await;

    // Removal: ACLs, the credential (the login refused), the topic.
    kafka.delete_acls(acls).await.unwrap();
    wait_until("the ACLs to be gone", Duration::from_secs(30), || async {
        let left = ext.describe_acls(AclBindingFilter::for_principal(&principal)).await.map_err(|e| e.to_string())?;
        if left.is_empty() { Ok(()) } else { Err(format!("{left:?}")) }
    })
    .await;
    kafka.delete_scram_user(&user).await.unwrap();
    kafka.delete_scram_user(&user).await.expect("deleting a user that is gone is not an error");
    wait_until("the credential to be gone", Duration::from_secs(30), || async {
        let held = kafka.scram_mechanisms(&user).await.map_err(|e| e.to_string())?;
        if held.is_empty() { Ok(()) } else { Err(format!("{held:?}")) }
    })
    .await;
    kafka.delete_topic(&topic).await.unwrap();
    kafka.delete_topic(&topic).await.expect("deleting a topic that is gone is not an error");
    wait_until("the topic to be gone", Duration::from_secs(30), || async {
        match topic_layout(&admin, &topic) {
            Err(_) => Ok(()),
            Ok(layout) => Err(format!("{} partitions left", layout.len())),
        }
    })
    .await;
}

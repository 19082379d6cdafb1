//! In-memory Kafka and Cassandra behind the adapters' traits, for reconcile tests. Each
//! records the calls that change something (`writes`), and can be taken down, after which
//! every call fails as an unreachable cluster does (transient).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::access::kafka::{AclBinding, ConfigOp, ScramMechanism};
use crate::access::quotas::Quotas;
use crate::api::Position;
use crate::api::tenant::CassandraReplication;
use crate::external::cassandra::{CassandraAdmin, CassandraCallError, LiveColumn, ObservedRole};
use crate::external::kafka::log_dirs::{LogDirs, TopicOnDisk};
use crate::external::kafka::{KafkaAdmin, KafkaCallError, KafkaSecurity};
use crate::topic::model::{DesiredTopic, LiveConfig, ObservedTopic, TopicProgress, TopicView};

#[derive(Default)]
pub struct KafkaState {
    pub topics: BTreeMap<String, ObservedTopic>,
    /// SCRAM credentials: user → mechanism → password.
    pub users: BTreeMap<String, BTreeMap<ScramMechanism, String>>,
    pub acls: BTreeSet<AclBinding>,
    pub quotas: BTreeMap<String, Quotas>,
    /// What every group has not consumed yet (the lag `topic_progress` reports).
    pub lag: i64,
    /// Committed offsets by group (the groups Kafka knows).
    pub offsets: BTreeMap<String, BTreeMap<i32, i64>>,
    /// Groups with members: Kafka refuses to delete them.
    pub groups_in_use: BTreeSet<String>,
    /// The calls that changed something, as `Call(argument)`.
    pub writes: Vec<String>,
    pub down: bool,
}

#[derive(Default)]
pub struct FakeKafka {
    pub state: Mutex<KafkaState>,
}

impl FakeKafka {
    pub fn take_writes(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap().writes)
    }

    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Runs `f` on the state, or fails like a cluster that does not answer.
    fn with<T: Send + 'static>(
        &self,
        call: &'static str,
        f: impl FnOnce(&mut KafkaState) -> T,
    ) -> BoxFuture<'static, Result<T, KafkaCallError>> {
        let mut state = self.state.lock().unwrap();
        let result = if state.down {
            Err(KafkaCallError {
                call,
                message: "no broker answered (fake Kafka is down)".into(),
                transient: true,
                answered: false,
            })
        } else {
            Ok(f(&mut state))
        };
        Box::pin(futures::future::ready(result))
    }
}

impl KafkaAdmin for FakeKafka {
    fn describe_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<TopicView, KafkaCallError>> {
        self.with("DescribeTopics", |s| TopicView { topic: s.topics.get(name).cloned(), brokers: Some(3) })
    }
    fn live_brokers(&self) -> BoxFuture<'_, Result<i32, KafkaCallError>> {
        self.with("DescribeCluster", |_| 3)
    }
    fn log_dirs(&self) -> BoxFuture<'_, Result<LogDirs, KafkaCallError>> {
        // Each partition of each replica holds a KiB.
        self.with("DescribeLogDirs", |s| {
            let topics = s
                .topics
                .iter()
                .map(|(n, t)| {
                    let bytes = i64::from(t.partitions * t.replication_factor) * 1024;
                    (n.clone(), TopicOnDisk { bytes, partitions: t.partitions })
                })
                .collect();
            LogDirs { brokers: 3, topics }
        })
    }
    fn create_topic<'a>(&'a self, topic: &'a DesiredTopic) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        self.with("CreateTopics", |s| {
            s.writes.push(format!("CreateTopics({})", topic.name));
            let config = topic
                .config
                .iter()
                .map(|(k, v)| (k.clone(), LiveConfig { value: Some(v.clone()), dynamic: true }))
                .collect();
            let observed = ObservedTopic {
                partitions: topic.partitions,
                replication_factor: topic.replication_factor,
                under_replicated: 0,
                config,
            };
            s.topics.insert(topic.name.clone(), observed);
        })
    }
    fn create_partitions<'a>(&'a self, name: &'a str, total: i32) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        self.with("CreatePartitions", |s| {
            s.writes.push(format!("CreatePartitions({name}, {total})"));
            if let Some(t) = s.topics.get_mut(name) {
                t.partitions = total;
            }
        })
    }
    fn alter_topic_config<'a>(
        &'a self,
        name: &'a str,
        changes: Vec<(String, ConfigOp)>,
    ) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        self.with("IncrementalAlterConfigs", |s| {
            s.writes.push(format!("IncrementalAlterConfigs({name})"));
            if let Some(t) = s.topics.get_mut(name) {
                for (key, op) in changes {
                    match op {
                        ConfigOp::Set(value) => {
                            t.config.insert(key, LiveConfig { value: Some(value), dynamic: true });
                        }
                        ConfigOp::Delete => {
                            t.config.remove(&key);
                        }
                    }
                }
            }
        })
    }
    fn delete_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        self.with("DeleteTopics", |s| {
            s.writes.push(format!("DeleteTopics({name})"));
            s.topics.remove(name);
        })
    }
    fn topics_with_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, KafkaCallError>> {
        self.with("Metadata", |s| s.topics.keys().filter(|t| t.starts_with(prefix)).cloned().collect())
    }
    fn groups_with_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, KafkaCallError>> {
        self.with("ListGroups", |s| s.offsets.keys().filter(|g| g.starts_with(prefix)).cloned().collect())
    }
    fn delete_groups<'a>(&'a self, names: &'a [String]) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        self.with("DeleteGroups", |s| {
            if let Some(group) = names.iter().find(|g| s.groups_in_use.contains(*g)) {
                return Err(KafkaCallError {
                    call: "DeleteGroups",
                    message: format!("consumer group {group}: NonEmptyGroup"),
                    transient: true,
                    answered: true,
                });
            }
            for group in names {
                if s.offsets.remove(group).is_some() {
                    s.writes.push(format!("DeleteGroups({group})"));
                }
            }
            Ok(())
        })
        .map(Result::flatten)
        .boxed()
    }
    fn topic_progress<'a>(
        &'a self,
        _topic: &'a str,
        _group: Option<&'a str>,
    ) -> BoxFuture<'a, Result<TopicProgress, KafkaCallError>> {
        self.with("ListOffsets", |s| TopicProgress { lag: s.lag, ..Default::default() })
    }
    fn topic_id<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<String>, KafkaCallError>> {
        self.with("Metadata", |s| s.topics.contains_key(name).then(|| format!("id-{name}")))
    }
    fn committed_offsets<'a>(
        &'a self,
        group: &'a str,
        _topic: &'a str,
    ) -> BoxFuture<'a, Result<BTreeMap<i32, i64>, KafkaCallError>> {
        self.with("OffsetFetch", |s| s.offsets.get(group).cloned().unwrap_or_default())
    }
    fn reset_offsets<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        to: Position,
    ) -> BoxFuture<'a, Result<BTreeMap<i32, i64>, KafkaCallError>> {
        self.with("OffsetCommit", |s| {
            s.writes.push(format!("OffsetCommit({group}, {to:?})"));
            // Every partition at offset 0 (the fake topics hold no records).
            let partitions = s.topics.get(topic).map_or(0, |t| t.partitions);
            let offsets: BTreeMap<i32, i64> = (0..partitions).map(|p| (p, 0)).collect();
            s.offsets.insert(group.to_string(), offsets.clone());
            offsets
        })
    }
}

impl KafkaSecurity for FakeKafka {
    fn upsert_scram_user<'a>(
        &'a self,
        user: &'a str,
        mechanism: ScramMechanism,
        password: &'a str,
    ) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        self.with("AlterUserScramCredentials", move |s| {
            let suffix = if mechanism == ScramMechanism::Sha512 { String::new() } else { format!(" {mechanism:?}") };
            s.writes.push(format!("AlterUserScramCredentials({user}{suffix})"));
            s.users.entry(user.to_string()).or_default().insert(mechanism, password.to_string());
        })
    }
    fn delete_scram_credential<'a>(
        &'a self,
        user: &'a str,
        mechanism: ScramMechanism,
    ) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        self.with("AlterUserScramCredentials", move |s| {
            s.writes.push(format!("DeleteUserScramCredentials({user} {mechanism:?})"));
            if let Some(held) = s.users.get_mut(user) {
                held.remove(&mechanism);
                if held.is_empty() {
                    s.users.remove(user);
                }
            }
        })
    }
    fn describe_acls<'a>(&'a self, principal: &'a str) -> BoxFuture<'a, Result<Vec<AclBinding>, KafkaCallError>> {
        self.with("DescribeAcls", |s| s.acls.iter().filter(|a| a.principal == principal).cloned().collect())
    }
    fn create_acls(&self, acls: Vec<AclBinding>) -> BoxFuture<'_, Result<(), KafkaCallError>> {
        self.with("CreateAcls", |s| {
            // An empty change is no call, as in the adapter.
            if acls.is_empty() {
                return;
            }
            s.writes.push(format!("CreateAcls({})", acls.len()));
            s.acls.extend(acls);
        })
    }
    fn delete_acls(&self, acls: Vec<AclBinding>) -> BoxFuture<'_, Result<(), KafkaCallError>> {
        self.with("DeleteAcls", |s| {
            if acls.is_empty() {
                return;
            }
            s.writes.push(format!("DeleteAcls({})", acls.len()));
            for acl in &acls {
                s.acls.remove(acl);
            }
        })
    }
    fn scram_users(&self) -> BoxFuture<'_, Result<BTreeSet<String>, KafkaCallError>> {
        self.with("DescribeUserScramCredentials", |s| s.users.keys().cloned().collect())
    }
    fn scram_mechanisms<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, Result<BTreeSet<ScramMechanism>, KafkaCallError>> {
        self.with("DescribeUserScramCredentials", |s| {
            s.users.get(user).map(|m| m.keys().copied().collect()).unwrap_or_default()
        })
    }
    fn describe_user_quotas<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<Quotas, KafkaCallError>> {
        self.with("DescribeClientQuotas", |s| s.quotas.get(user).cloned().unwrap_or_default())
    }
    fn alter_user_quotas<'a>(
        &'a self,
        user: &'a str,
        set: &'a Quotas,
        remove: &'a [String],
    ) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        self.with("AlterClientQuotas", |s| {
            if set.is_empty() && remove.is_empty() {
                return;
            }
            s.writes.push(format!("AlterClientQuotas({user})"));
            let quotas = s.quotas.entry(user.to_string()).or_default();
            quotas.extend(set.iter().map(|(k, v)| (k.clone(), *v)));
            for key in remove {
                quotas.remove(key);
            }
        })
    }
}

#[derive(Default)]
pub struct CassandraState {
    pub keyspaces: BTreeMap<String, BTreeMap<String, String>>,
    pub roles: BTreeMap<String, String>,
    /// Roles whose login was taken away.
    pub no_login: BTreeSet<String>,
    /// Role → the roles granted to it.
    pub members: BTreeMap<String, BTreeSet<String>>,
    pub permissions: BTreeMap<String, BTreeSet<(String, String)>>,
    /// Tables by `keyspace.table`.
    pub tables: BTreeMap<String, Vec<LiveColumn>>,
    /// The statements that changed something, as `Statement(argument)`.
    pub writes: Vec<String>,
    pub down: bool,
}

#[derive(Default)]
pub struct FakeCassandra {
    pub state: Mutex<CassandraState>,
}

impl FakeCassandra {
    pub fn take_writes(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap().writes)
    }

    fn with<T: Send + 'static>(
        &self,
        call: &'static str,
        f: impl FnOnce(&mut CassandraState) -> T,
    ) -> BoxFuture<'static, Result<T, CassandraCallError>> {
        let mut state = self.state.lock().unwrap();
        let result = if state.down {
            Err(CassandraCallError {
                call,
                message: "no host answered (fake Cassandra is down)".into(),
                transient: true,
            })
        } else {
            Ok(f(&mut state))
        };
        Box::pin(futures::future::ready(result))
    }
}

impl CassandraAdmin for FakeCassandra {
    fn keyspace_replication<'a>(
        &'a self,
        keyspace: &'a str,
    ) -> BoxFuture<'a, Result<Option<BTreeMap<String, String>>, CassandraCallError>> {
        self.with("select keyspace", |s| s.keyspaces.get(keyspace).cloned())
    }
    fn put_keyspace<'a>(
        &'a self,
        keyspace: &'a str,
        replication: &'a CassandraReplication,
        _exists: bool,
    ) -> BoxFuture<'a, Result<(), CassandraCallError>> {
        let map = crate::access::cassandra::replication_map(replication);
        self.with("put keyspace", |s| {
            s.writes.push(format!("PutKeyspace({keyspace})"));
            s.keyspaces.insert(keyspace.to_string(), map);
        })
    }
    fn drop_keyspace<'a>(&'a self, keyspace: &'a str) -> BoxFuture<'a, Result<(), CassandraCallError>> {
        self.with("drop keyspace", |s| {
            s.writes.push(format!("DropKeyspace({keyspace})"));
            s.keyspaces.remove(keyspace);
        })
    }
    fn role<'a>(&'a self, role: &'a str) -> BoxFuture<'a, Result<Option<ObservedRole>, CassandraCallError>> {
        self.with("select role", |s| {
            s.roles.get(role).map(|_| ObservedRole {
                superuser: false,
                login: !s.no_login.contains(role),
                member_of: s.members.get(role).cloned().unwrap_or_default(),
            })
        })
    }
    fn put_role<'a>(
        &'a self,
        role: &'a str,
        password: &'a str,
        _exists: bool,
    ) -> BoxFuture<'a, Result<(), CassandraCallError>> {
        self.with("put role", |s| {
            s.writes.push(format!("PutRole({role})"));
            s.roles.insert(role.to_string(), password.to_string());
            s.no_login.remove(role);
        })
    }
    fn drop_role<'a>(&'a self, role: &'a str) -> BoxFuture<'a, Result<(), CassandraCallError>> {
        self.with("drop role", |s| {
            s.writes.push(format!("DropRole({role})"));
            s.roles.remove(role);
            s.members.remove(role);
        })
    }
    fn disable_login<'a>(&'a self, role: &'a str) -> BoxFuture<'a, Result<(), CassandraCallError>> {
        self.with("alter role", |s| {
            s.writes.push(format!("DisableLogin({role})"));
            s.no_login.insert(role.to_string());
        })
    }
    fn grant_role<'a>(&'a self, role: &'a str, member: &'a str) -> BoxFuture<'a, Result<(), CassandraCallError>> {
        self.with("grant role", |s| {
            s.writes.push(format!("GrantRole({role} to {member})"));
            s.members.entry(member.to_string()).or_default().insert(role.to_string());
        })
    }
    fn table_columns<'a>(
        &'a self,
        keyspace: &'a str,
        table: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LiveColumn>, CassandraCallError>> {
        self.with("select columns", |s| s.tables.get(&format!("{keyspace}.{table}")).cloned().unwrap_or_default())
    }
    fn datacenters(&self) -> BoxFuture<'_, Result<BTreeSet<String>, CassandraCallError>> {
        self.with("datacenters", |_| BTreeSet::from(["datacenter1".to_string()]))
    }
    fn keyspace_sizes(&self) -> BoxFuture<'_, Result<BTreeMap<String, i64>, CassandraCallError>> {
        // Each keyspace holds a MiB.
        self.with("disk usage", |s| s.keyspaces.keys().map(|k| (k.clone(), 1 << 20)).collect())
    }
    fn create_table(&self, cql: String) -> BoxFuture<'_, Result<(), CassandraCallError>> {
        self.with("create table", |s| s.writes.push(format!("CreateTable({cql})")))
    }
    fn alter_table(&self, cql: String) -> BoxFuture<'_, Result<(), CassandraCallError>> {
        self.with("alter table", |s| s.writes.push(format!("AlterTable({cql})")))
    }
    fn permissions<'a>(
        &'a self,
        role: &'a str,
    ) -> BoxFuture<'a, Result<BTreeSet<(String, String)>, CassandraCallError>> {
        self.with("list permissions", |s| s.permissions.get(role).cloned().unwrap_or_default())
    }
    fn grant<'a>(
        &'a self,
        role: &'a str,
        permission: &'a str,
        keyspace: &'a str,
    ) -> BoxFuture<'a, Result<(), CassandraCallError>> {
        self.with("grant", |s| {
            s.writes.push(format!("Grant({permission} on {keyspace} to {role})"));
            let resource = format!("<keyspace {keyspace}>");
            s.permissions.entry(role.to_string()).or_default().insert((resource, permission.to_string()));
        })
    }
    fn revoke<'a>(
        &'a self,
        role: &'a str,
        permission: &'a str,
        resource: &'a str,
    ) -> BoxFuture<'a, Result<(), CassandraCallError>> {
        self.with("revoke", |s| {
            s.writes.push(format!("Revoke({permission} on {resource} from {role})"));
            if let Some(held) = s.permissions.get_mut(role) {
                held.remove(&(resource.to_string(), permission.to_string()));
            }
        })
    }
}

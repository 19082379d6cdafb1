//! The only code that talks to Cassandra for the operator: tenant keyspaces, roles and
//! their grants, through one lazily opened, shared driver session (scylla crate).
//!
//! Reads come from `system_schema` / `system_auth` and `LIST PERMISSIONS`, so a resync of a
//! steady tenant writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use tokio::sync::Mutex;

use crate::access::cassandra::replication_map;
use crate::api::tenant::CassandraReplication;
use crate::config::CassandraSettings;
use crate::external::Breaker;
use crate::metrics::Metrics;

/// A failed Cassandra call; `transient` ones (unreachable, timeouts) are retried.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Cassandra {call} failed: {message}")]
pub struct CassandraCallError {
    pub call: &'static str,
    pub message: String,
    pub transient: bool,
}

impl CassandraCallError {
    pub fn is_transient(&self) -> bool {
        self.transient
    }
}

/// A role as Cassandra has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedRole {
    pub superuser: bool,
    pub login: bool,
    /// The roles granted to it.
    pub member_of: BTreeSet<String>,
}

/// One column of a live table, from `system_schema.columns`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveColumn {
    pub name: String,
    /// `partition_key`, `clustering`, `regular` or `static`.
    pub kind: String,
    pub cql_type: String,
    /// Position within the partition or clustering key (-1 for other columns).
    pub position: i32,
    /// `asc`, `desc` or `none`.
    pub clustering_order: String,
}

pub trait CassandraAdmin: Send + Sync {
    /// The keyspace's replication map (`class` plus per-datacenter or `replication_factor`),
    /// `None` when it does not exist.
    fn keyspace_replication<'a>(
        &'a self,
        keyspace: &'a str,
    ) -> BoxFuture<'a, Result<Option<BTreeMap<String, String>>, CassandraCallError>>;
    /// CREATE KEYSPACE IF NOT EXISTS, or ALTER KEYSPACE when it exists.
    fn put_keyspace<'a>(
        &'a self,
        keyspace: &'a str,
        replication: &'a CassandraReplication,
        exists: bool,
    ) -> BoxFuture<'a, Result<(), CassandraCallError>>;
    fn drop_keyspace<'a>(&'a self, keyspace: &'a str) -> BoxFuture<'a, Result<(), CassandraCallError>>;
    fn role<'a>(&'a self, role: &'a str) -> BoxFuture<'a, Result<Option<ObservedRole>, CassandraCallError>>;
    /// Creates the login role, or sets its password when it exists.
    fn put_role<'a>(
        &'a self,
        role: &'a str,
        password: &'a str,
        exists: bool,
    ) -> BoxFuture<'a, Result<(), CassandraCallError>>;
    fn drop_role<'a>(&'a self, role: &'a str) -> BoxFuture<'a, Result<(), CassandraCallError>>;
    /// Takes the role's login away (its password stops working; its grants stay).
    fn disable_login<'a>(&'a self, role: &'a str) -> BoxFuture<'a, Result<(), CassandraCallError>>;
    /// GRANT `role` TO `member`: the member has every permission of the role.
    fn grant_role<'a>(&'a self, role: &'a str, member: &'a str) -> BoxFuture<'a, Result<(), CassandraCallError>>;
    /// The table's columns; empty when the table does not exist.
    fn table_columns<'a>(
        &'a self,
        keyspace: &'a str,
        table: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LiveColumn>, CassandraCallError>>;
    /// Runs a `CREATE TABLE IF NOT EXISTS` statement.
    fn create_table(&self, cql: String) -> BoxFuture<'_, Result<(), CassandraCallError>>;
    /// Bytes on disk by keyspace, as the node this session asks reports them (its SSTables;
    /// not what is still in memtables).
    fn keyspace_sizes(&self) -> BoxFuture<'_, Result<BTreeMap<String, i64>, CassandraCallError>>;
    /// The cluster's datacenters, as the driver knows its nodes.
    fn datacenters(&self) -> BoxFuture<'_, Result<BTreeSet<String>, CassandraCallError>>;
    /// Runs an `ALTER TABLE ... ADD` statement.
    fn alter_table(&self, cql: String) -> BoxFuture<'_, Result<(), CassandraCallError>>;
    /// The role's own permissions: (resource, permission), e.g. (`<keyspace water>`, `SELECT`).
    fn permissions<'a>(
        &'a self,
        role: &'a str,
    ) -> BoxFuture<'a, Result<BTreeSet<(String, String)>, CassandraCallError>>;
    fn grant<'a>(
        &'a self,
        role: &'a str,
        permission: &'a str,
        keyspace: &'a str,
    ) -> BoxFuture<'a, Result<(), CassandraCallError>>;
    /// Revokes `permission` on `resource` as LIST PERMISSIONS names it (`<keyspace x>`, ...).
    fn revoke<'a>(
        &'a self,
        role: &'a str,
        permission: &'a str,
        resource: &'a str,
    ) -> BoxFuture<'a, Result<(), CassandraCallError>>;
}

/// [`CassandraAdmin`] on one scylla session, opened on first use and reopened after the
/// cluster was unreachable (so the operator starts even while Cassandra is down).
pub struct ScyllaAdmin {
    settings: CassandraSettings,
    timeout: Duration,
    session: Mutex<Option<Arc<Session>>>,
    metrics: Arc<Metrics>,
    breaker: Breaker,
    /// Schema changes in flight at once (see [`SCHEMA_CHANGES_AT_ONCE`]).
    schema: tokio::sync::Semaphore,
}

/// Cassandra applies schema changes one after another, and a DROP KEYSPACE snapshots the
/// keyspace first. A hundred of them sent at once (a hundred Tenants applied or deleted
/// together) queue inside Cassandra, where the last ones outlast the call timeout, which
/// then counts as Cassandra unreachable and shuts every tenant out for the breaker's
/// cool-down. Queued here instead, each one's timeout covers only its own execution.
const SCHEMA_CHANGES_AT_ONCE: usize = 2;

impl ScyllaAdmin {
    pub fn new(settings: CassandraSettings, timeout: Duration, metrics: Arc<Metrics>) -> Self {
        let breaker =
            Breaker::new(crate::external::BREAKER_COOL_DOWN, timeout).reporting(metrics.unreachable("cassandra"));
        let schema = tokio::sync::Semaphore::new(SCHEMA_CHANGES_AT_ONCE);
        ScyllaAdmin { settings, timeout, session: Mutex::new(None), metrics, breaker, schema }
    }

    /// A schema change (keyspace or table DDL), queued behind the ones in flight.
    async fn run_schema(&self, call: &'static str, statement: String) -> Result<(), CassandraCallError> {
        let queued = std::time::Instant::now();
        let _permit = self.schema.acquire().await.map_err(|e| error(call, e.to_string(), true))?;
        self.metrics.schema_queued(queued.elapsed().as_secs_f64());
        self.run(call, statement, (), true).await.map(|_| ())
    }

    async fn session(&self, call: &'static str) -> Result<Arc<Session>, CassandraCallError> {
        let mut guard = self.session.lock().await;
        if let Some(session) = guard.as_ref() {
            return Ok(session.clone());
        }
        // No schema metadata in the driver: the reads below ask `system_schema` for the one
        // table or keyspace they need. By default the driver copies the whole cluster's schema
        // (every tenant's keyspaces, tables and columns) at start, every 60 s and after each
        // schema change: with hundreds of tenants that refetch, repeated for every keyspace and
        // table created, cost more than the reconciles themselves.
        let mut builder = SessionBuilder::new()
            .known_nodes(&self.settings.contact_points)
            .user(&self.settings.username, &self.settings.password)
            .fetch_schema_metadata(false)
            .fetch_full_schema_metadata(false);
        if let Some(ca) = &self.settings.ca_pem {
            let tls = crate::api::tls::connector("CASSANDRA_CA_FILE", Some(ca)).map_err(|e| error(call, e, false))?;
            builder = builder.tls_context(Some(tls));
        }
        builder = builder.connection_timeout(self.timeout);
        let session = match tokio::time::timeout(self.timeout, builder.build()).await {
            Ok(Ok(session)) => Arc::new(session),
            Ok(Err(e)) => {
                let message = e.to_string();
                let hint = crate::api::tls::hint(&message);
                return Err(error(call, format!("{message}{hint}"), true));
            }
            Err(_) => return Err(error(call, format!("no answer within {:?}", self.timeout), true)),
        };
        *guard = Some(session.clone());
        Ok(session)
    }

    /// Runs one statement; `write` statements are counted in the external-writes metric.
    async fn run(
        &self,
        call: &'static str,
        statement: String,
        values: impl scylla::serialize::row::SerializeRow,
        write: bool,
    ) -> Result<scylla::response::query_result::QueryResult, CassandraCallError> {
        let admission = match self.breaker.admit() {
            Ok(admission) => admission,
            Err(last) => return Err(error(call, format!("Cassandra is unreachable (last error: {last})"), true)),
        };
        let result = async {
            let session = self.session(call).await?;
            if write {
                self.metrics.external_write("cassandra", call);
            }
            let started = std::time::Instant::now();
            let answer = tokio::time::timeout(self.timeout, session.query_unpaged(statement, values)).await;
            self.metrics.external_call("cassandra", call, started.elapsed().as_secs_f64());
            match answer {
                Ok(Ok(result)) => Ok(result),
                Ok(Err(e)) => Err(classify(call, &e)),
                Err(_) => Err(error(call, format!("no answer within {:?}", self.timeout), true)),
            }
        }
        .await;
        admission.record(match &result {
            Err(e) if e.transient => Some(e.to_string()),
            _ => None,
        });
        result
    }
}

fn error(call: &'static str, message: String, transient: bool) -> CassandraCallError {
    CassandraCallError { call, message, transient }
}

/// Classified by the one rule the sink's writes use too ([`crate::api::cql::transient`]).
fn classify(call: &'static str, e: &scylla::errors::ExecutionError) -> CassandraCallError {
    error(call, e.to_string(), crate::api::cql::transient(e))
}

pub use crate::api::cql::ident;

/// A CQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn replication_cql(replication: &CassandraReplication) -> String {
    let entries: Vec<String> = replication_map(replication)
        .into_iter()
        .map(|(k, v)| {
            let v = v.strip_prefix("org.apache.cassandra.locator.").map(str::to_string).unwrap_or(v);
            format!("{}: {}", literal(&k), literal(&v))
        })
        .collect();
    format!("{{{}}}", entries.join(", "))
}

impl CassandraAdmin for ScyllaAdmin {
    fn keyspace_replication<'a>(
        &'a self,
        keyspace: &'a str,
    ) -> BoxFuture<'a, Result<Option<BTreeMap<String, String>>, CassandraCallError>> {
        Box::pin(async move {
            const CALL: &str = "SELECT system_schema.keyspaces";
            let result = self
                .run(
                    CALL,
                    "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?".into(),
                    (keyspace,),
                    false,
                )
                .await?;
            let rows = result.into_rows_result().map_err(|e| error(CALL, e.to_string(), false))?;
            let row =
                rows.maybe_first_row::<(BTreeMap<String, String>,)>().map_err(|e| error(CALL, e.to_string(), false))?;
            Ok(row.map(|(m,)| m))
        })
    }

    fn put_keyspace<'a>(
        &'a self,
        keyspace: &'a str,
        replication: &'a CassandraReplication,
        exists: bool,
    ) -> BoxFuture<'a, Result<(), CassandraCallError>> {
        Box::pin(async move {
            let replication = replication_cql(replication);
            if exists {
                let cql = format!("ALTER KEYSPACE {} WITH replication = {replication}", ident(keyspace));
                self.run_schema("ALTER KEYSPACE", cql).await?;
            } else {
                let cql = format!("CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {replication}", ident(keyspace));
                self.run_schema("CREATE KEYSPACE", cql).await?;
            }
            Ok(())
        })
    }

    fn drop_keyspace<'a>(&'a self, keyspace: &'a str) -> BoxFuture<'a, Result<(), CassandraCallError>> {
        Box::pin(async move {
            self.run_schema("DROP KEYSPACE", format!("DROP KEYSPACE IF EXISTS {}", ident(keyspace))).await
        })
    }

    fn role<'a>(&'a self, role: &'a str) -> BoxFuture<'a, Result<Option<ObservedRole>, CassandraCallError>> {
        Box::pin(async move {
            const CALL: &str = "SELECT system_auth.roles";
            let cql = "SELECT is_superuser, can_login, member_of FROM system_auth.roles WHERE role = ?".to_string();
            let result = self.run(CALL, cql, (role,), false).await?;
            let rows = result.into_rows_result().map_err(|e| error(CALL, e.to_string(), false))?;
            let row = rows
                .maybe_first_row::<(Option<bool>, Option<bool>, Option<BTreeSet<String>>)>()
                .map_err(|e| error(CALL, e.to_string(), false))?;
            Ok(row.map(|(superuser, login, member_of)| ObservedRole {
                superuser: superuser.unwrap_or(false),
                login: login.unwrap_or(false),
                member_of: member_of.unwrap_or_default(),
            }))
        })
    }

    fn put_role<'a>(
        &'a self,
        role: &'a str,
        password: &'a str,
        exists: bool,
    ) -> BoxFuture<'a, Result<(), CassandraCallError>> {
        Box::pin(async move {
            // Role statements take no bind markers: the password goes in as an escaped literal
            // (and is never logged: CassandraCallError carries the driver's message only).
            let password = literal(password);
            if exists {
                let cql = format!("ALTER ROLE {} WITH PASSWORD = {password} AND LOGIN = true", ident(role));
                self.run("ALTER ROLE", cql, (), true).await?;
            } else {
                let cql = format!(
                    "CREATE ROLE IF NOT EXISTS {} WITH PASSWORD = {password} AND LOGIN = true AND SUPERUSER = false",
                    ident(role)
                );
                self.run("CREATE ROLE", cql, (), true).await?;
            }
            Ok(())
        })
    }

    fn drop_role<'a>(&'a self, role: &'a str) -> BoxFuture<'a, Result<(), CassandraCallError>> {
        Box::pin(async move {
            self.run("DROP ROLE", format!("DROP ROLE IF EXISTS {}", ident(role)), (), true).await.map(|_| ())
        })
    }

    fn disable_login<'a>(&'a self, role: &'a str) -> BoxFuture<'a, Result<(), CassandraCallError>> {
        Box::pin(async move {
            self.run("ALTER ROLE", format!("ALTER ROLE {} WITH LOGIN = false", ident(role)), (), true).await.map(|_| ())
        })
    }

    fn grant_role<'a>(&'a self, role: &'a str, member: &'a str) -> BoxFuture<'a, Result<(), CassandraCallError>> {
        Box::pin(async move {
            let cql = format!("GRANT {} TO {}", ident(role), ident(member));
            self.run("GRANT ROLE", cql, (), true).await.map(|_| ())
        })
    }

    fn table_columns<'a>(
        &'a self,
        keyspace: &'a str,
        table: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LiveColumn>, CassandraCallError>> {
        Box::pin(async move {
            const CALL: &str = "SELECT system_schema.columns";
            let cql = "SELECT column_name, kind, position, type, clustering_order FROM system_schema.columns \
                       WHERE keyspace_name = ? AND table_name = ?";
            let result = self.run(CALL, cql.to_string(), (keyspace, table), false).await?;
            let rows = result.into_rows_result().map_err(|e| error(CALL, e.to_string(), false))?;
            let mut columns = Vec::new();
            for row in
                rows.rows::<(String, String, i32, String, String)>().map_err(|e| error(CALL, e.to_string(), false))?
            {
                let (name, kind, position, cql_type, clustering_order) =
                    row.map_err(|e| error(CALL, e.to_string(), false))?;
                columns.push(LiveColumn { name, kind, cql_type, position, clustering_order });
            }
            Ok(columns)
        })
    }

    fn datacenters(&self) -> BoxFuture<'_, Result<BTreeSet<String>, CassandraCallError>> {
        Box::pin(async move {
            // The driver keeps the cluster's nodes (system.local and system.peers) up to date
            // for routing: no query per reconcile.
            let session = self.session("cluster nodes").await?;
            let nodes = session.get_cluster_state();
            Ok(nodes.get_nodes_info().iter().filter_map(|n| n.datacenter.clone()).collect())
        })
    }

    fn keyspace_sizes(&self) -> BoxFuture<'_, Result<BTreeMap<String, i64>, CassandraCallError>> {
        Box::pin(async move {
            // A virtual table (Cassandra 4.1+): the node's live SSTables, in MiB.
            const CALL: &str = "SELECT system_views.disk_usage";
            let cql = "SELECT keyspace_name, mebibytes FROM system_views.disk_usage";
            let result = self.run(CALL, cql.to_string(), (), false).await?;
            let rows = result.into_rows_result().map_err(|e| error(CALL, e.to_string(), false))?;
            let mut sizes = BTreeMap::new();
            for row in rows.rows::<(String, Option<i64>)>().map_err(|e| error(CALL, e.to_string(), false))? {
                let (keyspace, mebibytes) = row.map_err(|e| error(CALL, e.to_string(), false))?;
                *sizes.entry(keyspace).or_insert(0) += mebibytes.unwrap_or(0).max(0) << 20;
            }
            Ok(sizes)
        })
    }

    fn create_table(&self, cql: String) -> BoxFuture<'_, Result<(), CassandraCallError>> {
        Box::pin(async move { self.run_schema("CREATE TABLE", cql).await })
    }

    fn alter_table(&self, cql: String) -> BoxFuture<'_, Result<(), CassandraCallError>> {
        Box::pin(async move { self.run_schema("ALTER TABLE", cql).await })
    }

    fn permissions<'a>(
        &'a self,
        role: &'a str,
    ) -> BoxFuture<'a, Result<BTreeSet<(String, String)>, CassandraCallError>> {
        Box::pin(async move {
            const CALL: &str = "LIST PERMISSIONS";
            let result =
                self.run(CALL, format!("LIST ALL PERMISSIONS OF {} NORECURSIVE", ident(role)), (), false).await?;
            if !result.is_rows() {
                // Cassandra answers an empty list with a Void result, not with zero rows.
                return Ok(BTreeSet::new());
            }
            let rows = result.into_rows_result().map_err(|e| error(CALL, e.to_string(), false))?;
            let mut set = BTreeSet::new();
            // Columns: role, username, resource, permission.
            for row in rows.rows::<(String, String, String, String)>().map_err(|e| error(CALL, e.to_string(), false))? {
                let (_, _, resource, permission) = row.map_err(|e| error(CALL, e.to_string(), false))?;
                set.insert((resource, permission));
            }
            Ok(set)
        })
    }

    fn grant<'a>(
        &'a self,
        role: &'a str,
        permission: &'a str,
        keyspace: &'a str,
    ) -> BoxFuture<'a, Result<(), CassandraCallError>> {
        Box::pin(async move {
            let cql = format!("GRANT {permission} ON KEYSPACE {} TO {}", ident(keyspace), ident(role));
            self.run("GRANT", cql, (), true).await.map(|_| ())
        })
    }

    fn revoke<'a>(
        &'a self,
        role: &'a str,
        permission: &'a str,
        resource: &'a str,
    ) -> BoxFuture<'a, Result<(), CassandraCallError>> {
        Box::pin(async move {
            let Some(on) = resource_cql(resource) else {
                return Err(error("REVOKE", format!("cannot name resource {resource} in CQL"), false));
            };
            let cql = format!("REVOKE {permission} ON {on} FROM {}", ident(role));
            self.run("REVOKE", cql, (), true).await.map(|_| ())
        })
    }
}

/// `<keyspace x>` → `KEYSPACE "x"`, `<table x.Y>` → `TABLE "x"."Y"` (names quoted, so a
/// table created as `"Foo"` is revoked on as itself), `<all keyspaces>` → `ALL KEYSPACES`,
/// `<role r>` → `ROLE "r"`, `<all roles>` → `ALL ROLES`, ...
fn resource_cql(resource: &str) -> Option<String> {
    let inner = resource.strip_prefix('<')?.strip_suffix('>')?;
    let (kind, name) = inner.split_once(' ')?;
    Some(match kind {
        "keyspace" => format!("KEYSPACE {}", ident(name)),
        "table" => {
            // Keyspace and table names are word characters only, so the first '.' splits them.
            let (keyspace, table) = name.split_once('.')?;
            format!("TABLE {}.{}", ident(keyspace), ident(table))
        }
        "role" => format!("ROLE {}", ident(name)),
        "function" => format!("FUNCTION {name}"),
        "all" => format!("ALL {}", name.to_uppercase()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tenant::ReplicationClass;

    #[test]
    fn replication_is_rendered_as_cql_and_as_cassandra_stores_it() {
        let simple = CassandraReplication::default();
        assert_eq!(replication_cql(&simple), "{'class': 'SimpleStrategy', 'replication_factor': '1'}");
        assert_eq!(replication_map(&simple)["class"], "org.apache.cassandra.locator.SimpleStrategy");
        let nts = CassandraReplication {
            class: ReplicationClass::NetworkTopologyStrategy,
            replication_factor: 1,
            datacenters: [("dc1".to_string(), 3)].into(),
        };
        assert_eq!(replication_cql(&nts), "{'class': 'NetworkTopologyStrategy', 'dc1': '3'}");
    }

    #[test]
    fn resources_from_list_permissions_become_cql() {
        assert_eq!(resource_cql("<keyspace bts>").as_deref(), Some("KEYSPACE \"bts\""));
        assert_eq!(resource_cql("<table bts.alarms>").as_deref(), Some("TABLE \"bts\".\"alarms\""));
        assert_eq!(resource_cql("<table water.Foo>").as_deref(), Some("TABLE \"water\".\"Foo\""));
        assert_eq!(resource_cql("<role water>").as_deref(), Some("ROLE \"water\""));
        assert_eq!(resource_cql("<all keyspaces>").as_deref(), Some("ALL KEYSPACES"));
        assert_eq!(resource_cql("data"), None);
    }

    #[test]
    fn literals_escape_quotes() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(ident("Foo"), "\"Foo\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }
}

//! Cassandra's access model as the operator writes it: the permissions a tenant role holds
//! on its keyspace and the grants that converge it, and a keyspace's replication map as
//! Cassandra stores it. Plain values: the adapter (`external::cassandra`) sends them.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::tenant::{CassandraReplication, ReplicationClass};

/// The permissions a tenant role holds on its keyspace: reading and writing rows, what
/// applications and sinks need. Nothing to grant rights to others (no AUTHORIZE) and nothing
/// outside the keyspace.
pub const DATA_PERMISSIONS: [&str; 2] = ["MODIFY", "SELECT"];
/// Added with `spec.cassandra.schemaChanges`: changing the keyspace's schema.
pub const SCHEMA_PERMISSIONS: [&str; 3] = ["ALTER", "CREATE", "DROP"];

/// The permissions of a tenant role on its keyspace.
pub fn tenant_permissions(schema_changes: bool) -> Vec<&'static str> {
    let mut all: Vec<&str> = DATA_PERMISSIONS.to_vec();
    if schema_changes {
        all.extend(SCHEMA_PERMISSIONS);
    }
    all.sort_unstable();
    all
}

/// The replication map of a keyspace as `system_schema.keyspaces` stores it.
pub fn replication_map(replication: &CassandraReplication) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    match replication.class {
        ReplicationClass::SimpleStrategy => {
            map.insert("class".into(), "org.apache.cassandra.locator.SimpleStrategy".into());
            map.insert("replication_factor".into(), replication.replication_factor.to_string());
        }
        ReplicationClass::NetworkTopologyStrategy => {
            map.insert("class".into(), "org.apache.cassandra.locator.NetworkTopologyStrategy".into());
            for (dc, rf) in &replication.datacenters {
                map.insert(dc.clone(), rf.to_string());
            }
        }
    }
    map
}

/// Grants to add (`permission`) and to revoke (`resource`, `permission`) so that the role
/// holds exactly [`tenant_permissions`] on its keyspace.
pub fn grant_changes(
    keyspace: &str,
    schema_changes: bool,
    live: &BTreeSet<(String, String)>,
) -> (Vec<&'static str>, Vec<(String, String)>) {
    let resource = format!("<keyspace {keyspace}>");
    let wanted = tenant_permissions(schema_changes);
    let add = wanted.iter().copied().filter(|p| !live.contains(&(resource.clone(), p.to_string()))).collect();
    let remove = live.iter().filter(|(r, p)| !(r == &resource && wanted.contains(&p.as_str()))).cloned().collect();
    (add, remove)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_converge_to_exactly_the_tenant_set() {
        let own = |p: &str| ("<keyspace water>".to_string(), p.to_string());
        let live: BTreeSet<_> =
            [own("SELECT"), own("MODIFY"), own("AUTHORIZE"), ("<keyspace bts>".into(), "SELECT".into())].into();
        let (add, remove) = grant_changes("water", true, &live);
        assert_eq!(add, ["ALTER", "CREATE", "DROP"]);
        assert_eq!(remove, [("<keyspace bts>".to_string(), "SELECT".to_string()), own("AUTHORIZE")]);
        let full: BTreeSet<_> = tenant_permissions(true).iter().map(|p| own(p)).collect();
        assert_eq!(grant_changes("water", true, &full), (vec![], vec![]));
        // Rows only by default: the schema rights go.
        let (add, remove) = grant_changes("water", false, &full);
        assert!(add.is_empty());
        assert_eq!(remove, [own("ALTER"), own("CREATE"), own("DROP")]);
    }
}

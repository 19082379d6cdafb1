//! A principal's own Kafka login, for each object that has one (a CassandraSink's sink user,
//! a KafkaUser), as steps: its Secret trusted only if the operator wrote it, the login chosen
//! (kept, new, or a rotation's new slot), a new principal checked to be nobody else's, the
//! login's fingerprint recorded in the object's status before it is written anywhere, then
//! Kafka (the user, exactly its ACLs, its quota share), then the Secret.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::access::kafka::{AclBinding, ScramMechanism, acl_changes};
use crate::access::quotas::{Quotas, quota_changes};
use crate::api::Reason;
use crate::api::conditions::DesiredCondition;
use crate::controller::{APPLIED_KAFKA, Context, FIELD_MANAGER, credential_fingerprint, record_applied, recorded};
use crate::sink::build::{self, RETRY, SinkLogin};
use crate::step::{Halt, Step};
use crate::tenant::ValidatedTenant;
use crate::tenant::rotation;

/// The sink's Kafka login as this reconcile settled it.
pub(crate) struct Login {
    pub login: SinkLogin,
    /// The SCRAM slot the login is in.
    pub slot: ScramMechanism,
    /// The SCRAM credentials the sink's user held before this reconcile.
    pub held: BTreeSet<ScramMechanism>,
    /// The login's fingerprint, recorded in the sink's status.
    pub fingerprint: String,
    /// The sink's own Secret (`None`: absent, or not the operator's to read).
    pub existing: Option<Secret>,
    /// The tenant's Secret: its Cassandra login (and an external Kafka login) for the pods.
    pub tenant_secret: Option<Secret>,
    /// The sink runs as the tenant's external principal: no user of its own.
    pub external: bool,
}

fn conflict(message: String) -> Halt {
    // A Secret or principal in the way may be a deleted sink's, which the garbage
    // collector is about to remove: look again soon.
    Halt::Wait(DesiredCondition::not_ready(Reason::OwnershipConflict, message), Action::requeue(RETRY))
}

pub(crate) fn secret_text(secret: Option<&Secret>, key: &str) -> Option<String> {
    secret.and_then(|s| String::from_utf8(s.data.as_ref()?.get(key)?.0.clone()).ok()).filter(|p| !p.is_empty())
}

/// Whose login it is: the object (its events, its status), its user, its Secret, and whether
/// a Secret without a recorded login is still trusted (an object an older operator
/// provisioned, see [`own_secret`]).
pub(crate) struct LoginOf<'a, K> {
    pub obj: &'a K,
    pub user: &'a str,
    pub secret: &'a str,
    /// The fingerprint the object's status records (`status.kafkaCredential`).
    pub recorded: Option<String>,
    /// Trust a Secret without a recorded login when it records this login as applied.
    pub legacy: bool,
}

/// Reads the Secrets and Kafka's credentials, chooses the login, checks a new principal and
/// records the login's fingerprint in the object's status: everything before the first write
/// of the login.
pub(crate) async fn settle<K>(
    ctx: &Context,
    of: &LoginOf<'_, K>,
    tenant: &ValidatedTenant,
    secrets: &Api<Secret>,
) -> Step<Login>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let namespace = of.obj.namespace().unwrap_or_default();
    let kind = K::kind(&());
    // Only the Secret the operator wrote for this object is read back (see `own_secret`); one
    // it did not write is never adopted, and nothing is written over it.
    let existing = own_secret(of, secrets.get_opt(of.secret).await?).map_err(|holder| {
        conflict(format!(
            "Secret {namespace}/{} exists and was not written by the operator for this {kind} ({holder}): nothing \
             was written. Delete that Secret, or rename the {kind}",
            of.secret
        ))
    })?;
    let tenant_secret = secrets.get_opt(crate::tenant::validate::CREDENTIALS_SECRET).await?;
    let external = tenant.external_user.is_some();
    // The SCRAM credentials the user holds (an external principal has none of ours).
    let held = if external { BTreeSet::new() } else { ctx.kafka.scram_mechanisms(of.user).await? };
    let found = Found { own: existing.as_ref(), tenant: tenant_secret.as_ref(), external, held: &held };
    let (login, slot, rotated) =
        choose(&found, tenant, crate::tenant::build::generate_password).map_err(|message| {
            Halt::Wait(DesiredCondition::not_ready(Reason::TenantNotReady, message), Action::requeue(RETRY))
        })?;
    if rotated {
        let note = format!(
            "new {} credential for Kafka user {} (the tenant's credentials were rotated); the previous one goes once \
             nothing uses it any more",
            slot.as_str(),
            of.user
        );
        ctx.event(of.obj, false, "CredentialsRotated", note).await;
    }
    // A new user is a new principal: a credential, ACL or quota already held under its name
    // is someone else's (a PLAIN user of the brokers, a leftover), never taken over.
    let new_principal = of.recorded.is_none() && existing.is_none() && !external;
    if new_principal && let Some(what) = principal_held(ctx, of.user, !held.is_empty()).await? {
        return Err(conflict(format!(
            "Kafka principal User:{} exists with {what}, not created for this {kind}: nothing was written. Rename \
             the {kind}, or remove that principal",
            of.user
        )));
    }
    // The fingerprint is recorded in the object's status first: what makes the Secret the
    // operator's when it is read back.
    let fingerprint = credential_fingerprint(of.user, &login.password);
    if of.recorded.as_deref() != Some(fingerprint.as_str()) {
        let patch = serde_json::json!({"status": {"kafkaCredential": fingerprint}});
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
        api.patch_status(&of.obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    }
    Ok(Login { login, slot, held, fingerprint, existing, tenant_secret, external })
}

/// What [`choose`] decides from.
struct Found<'a> {
    own: Option<&'a Secret>,
    tenant: Option<&'a Secret>,
    external: bool,
    held: &'a BTreeSet<ScramMechanism>,
}

/// The login the sink runs with (pure): an external principal's from the tenant's Secret;
/// otherwise the one in its own Secret, a new one in the other SCRAM slot when the tenant's
/// credentials were rotated after it (never while the previous rotation's slot still exists:
/// its pods may use it), or a new one. Returns the login, its slot and whether it is a
/// rotation's; `Err` when the tenant's Secret has no external password yet.
fn choose(
    found: &Found<'_>,
    tenant: &ValidatedTenant,
    new_password: impl FnOnce() -> String,
) -> std::result::Result<(SinkLogin, ScramMechanism, bool), String> {
    let tenant_rotated_at = found.tenant.and_then(rotation::stamp);
    let mut slot = secret_text(found.own, build::KAFKA_MECHANISM_KEY)
        .and_then(|m| ScramMechanism::from_name(&m))
        .unwrap_or(ScramMechanism::Sha512);
    if found.external {
        let password = secret_text(found.tenant, build::KAFKA_PASSWORD_KEY)
            .ok_or_else(|| format!("Tenant {}'s Secret has no Kafka password yet", tenant.name))?;
        let mechanism = tenant.kafka_mechanism.as_str().into();
        return Ok((SinkLogin { password, mechanism, rotated_at: tenant_rotated_at }, slot, false));
    }
    let own_rotated_at = found.own.and_then(rotation::stamp);
    Ok(match secret_text(found.own, build::KAFKA_PASSWORD_KEY) {
        Some(_)
            if rotation::older(own_rotated_at.as_deref(), tenant_rotated_at.as_deref())
                && !found.held.contains(&slot.other()) =>
        {
            slot = slot.other();
            (
                SinkLogin { password: new_password(), mechanism: slot.as_str().into(), rotated_at: tenant_rotated_at },
                slot,
                true,
            )
        }
        Some(password) => {
            let rotated_at = own_rotated_at.or(tenant_rotated_at);
            (SinkLogin { password, mechanism: slot.as_str().into(), rotated_at }, slot, false)
        }
        None => (
            SinkLogin { password: new_password(), mechanism: slot.as_str().into(), rotated_at: tenant_rotated_at },
            slot,
            false,
        ),
    })
}

/// Kafka's side of the login: the SCRAM credential (written once, see APPLIED_KAFKA, before
/// the Secret, so clients that read the Secret can always log in), exactly `desired` ACLs,
/// and `quotas`. Returns whether the credential was written. An external principal has the
/// tenant's ACLs and quotas already.
pub(crate) async fn apply_user(
    ctx: &Context,
    user: &str,
    login: &Login,
    desired: &BTreeSet<AclBinding>,
    quotas: &Quotas,
) -> Step<bool> {
    if login.external {
        return Ok(false);
    }
    let applied = recorded(login.existing.as_ref(), APPLIED_KAFKA, &login.fingerprint);
    let write = !applied || !login.held.contains(&login.slot);
    if write {
        ctx.kafka.upsert_scram_user(user, login.slot, &login.login.password).await?;
    }
    let current = ctx.kafka.describe_acls(&crate::access::kafka::user_principal(user)).await?;
    let (add, remove) = acl_changes(desired, &current);
    ctx.kafka.create_acls(add).await?;
    ctx.kafka.delete_acls(remove).await?;
    let live = ctx.kafka.describe_user_quotas(user).await?;
    let (set, unset) = quota_changes(quotas, &live);
    ctx.kafka.alter_user_quotas(user, &set, &unset).await?;
    Ok(write)
}

/// The object's Secret with the login (applied only when it changed), and the login
/// recorded on it as applied once Kafka has it.
pub(crate) async fn write_secret(secrets: &Api<Secret>, secret: &Secret, login: &Login, wrote: bool) -> Step<()> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let current = login.existing.as_ref().map(|s| (&s.data, rotation::stamp(s)));
    if current != Some((&secret.data, login.login.rotated_at.clone())) {
        secrets.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(secret)).await?;
    }
    if wrote {
        record_applied(secrets, &name, APPLIED_KAFKA, &login.fingerprint).await?;
    }
    Ok(())
}

/// Removes the user's previous SCRAM credential (a rotation's other slot) once `done`.
pub(crate) async fn retire_previous<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    user: &str,
    login: &Login,
    done: bool,
) -> Step<()> {
    let previous = login.held.iter().copied().find(|m| *m != login.slot);
    let Some(mechanism) = previous.filter(|_| done) else {
        return Ok(());
    };
    ctx.kafka.delete_scram_credential(user, mechanism).await?;
    let note = format!("removed the previous {} credential of Kafka user {user}", mechanism.as_str());
    ctx.event(obj, false, "PreviousCredentialsRemoved", note).await;
    Ok(())
}

/// The object's Secret if the operator wrote it: it holds the login whose fingerprint the
/// object's status records. An object reconciled before the status recorded it (an older
/// operator, `of.legacy`) trusts a Secret that records the same login as applied. Otherwise,
/// a Secret the operator recorded a login for but which holds another (changed by hand) is
/// not read (`Ok(None)`: a new login is made and written over it), and one it never
/// recorded a login for is someone else's: `Err` names who wrote it.
fn own_secret<K: Resource>(
    of: &LoginOf<'_, K>,
    existing: Option<Secret>,
) -> std::result::Result<Option<Secret>, String> {
    let Some(secret) = existing else { return Ok(None) };
    let password = secret_text(Some(&secret), build::KAFKA_PASSWORD_KEY).unwrap_or_default();
    let held = credential_fingerprint(of.user, &password);
    match of.recorded.as_deref() {
        Some(login) if login == held => Ok(Some(secret)),
        Some(_) => Ok(None),
        None if of.legacy && controlled(of.obj, &secret) && recorded(Some(&secret), APPLIED_KAFKA, &held) => {
            Ok(Some(secret))
        }
        None => {
            let writers: Vec<&str> =
                secret.managed_fields().iter().filter_map(|m| m.manager.as_deref()).collect::<Vec<_>>();
            let created = secret.creation_timestamp().map(|t| t.0.to_string()).unwrap_or_default();
            Err(format!("created {created} by {}", if writers.is_empty() { "?".into() } else { writers.join(", ") }))
        }
    }
}

/// Removes a user the operator made: its ACLs, its quotas (nothing is left under its name
/// for a new object of that name to find) and its SCRAM credentials. A broker restarting
/// (or the breaker open after it) is waited out within `bound`; `Err` says why it stayed.
pub(crate) async fn remove_user(ctx: &Context, user: &str, bound: std::time::Duration) -> Result<(), String> {
    use backon::Retryable;
    let delete = || async move {
        let current = ctx.kafka.describe_acls(&crate::access::kafka::user_principal(user)).await?;
        ctx.kafka.delete_acls(current).await?;
        let quotas: Vec<String> = ctx.kafka.describe_user_quotas(user).await?.into_keys().collect();
        if !quotas.is_empty() {
            ctx.kafka.alter_user_quotas(user, &Default::default(), &quotas).await?;
        }
        ctx.kafka.delete_scram_user(user).await
    };
    let delete =
        delete.retry(crate::external::retries_within(bound)).when(crate::external::kafka::KafkaCallError::is_transient);
    match tokio::time::timeout(bound, delete).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("Kafka did not answer".into()),
    }
}

/// Whether the object is the Secret's controller (its owner reference).
fn controlled<K: Resource>(obj: &K, secret: &Secret) -> bool {
    secret.owner_references().iter().any(|o| Some(&o.uid) == obj.meta().uid.as_ref())
}

/// What Kafka holds under `user`'s name already (a SCRAM credential, ACLs, quotas), in words.
async fn principal_held(ctx: &Context, user: &str, scram: bool) -> Step<Option<String>> {
    let principal = crate::access::kafka::user_principal(user);
    let (acls, quotas) = futures::try_join!(ctx.kafka.describe_acls(&principal), ctx.kafka.describe_user_quotas(user))?;
    let held: Vec<String> = [
        scram.then(|| "a SCRAM credential".to_string()),
        (!acls.is_empty()).then(|| format!("{} ACLs", acls.len())),
        (!quotas.is_empty()).then(|| "client quotas".to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    Ok((!held.is_empty()).then(|| held.join(" and ")))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;
    use crate::api::{Tenant, TenantSpec};
    use crate::tenant::rotation::ROTATED_AT_ANNOTATION;

    fn secret(password: &str, mechanism: &str, rotated_at: &str) -> Secret {
        let mut s = Secret::default();
        s.metadata.annotations = Some(BTreeMap::from([(ROTATED_AT_ANNOTATION.to_string(), rotated_at.to_string())]));
        s.data = Some(BTreeMap::from([
            (build::KAFKA_PASSWORD_KEY.to_string(), ByteString(password.as_bytes().to_vec())),
            (build::KAFKA_MECHANISM_KEY.to_string(), ByteString(mechanism.as_bytes().to_vec())),
        ]));
        s
    }

    fn tenant() -> ValidatedTenant {
        crate::tenant::validate(&Tenant::new("water", TenantSpec::default())).unwrap()
    }

    fn choose_with(
        own: Option<&Secret>,
        tenant_secret: Option<&Secret>,
        held: &[ScramMechanism],
    ) -> (SinkLogin, ScramMechanism, bool) {
        let held: BTreeSet<ScramMechanism> = held.iter().copied().collect();
        let found = Found { own, tenant: tenant_secret, external: false, held: &held };
        choose(&found, &tenant(), || "new".to_string()).unwrap()
    }

    #[test]
    fn a_new_sink_gets_a_new_password_in_the_sha512_slot() {
        let (login, slot, rotated) = choose_with(None, None, &[]);
        assert_eq!((login.password.as_str(), slot, rotated), ("new", ScramMechanism::Sha512, false));
    }

    #[test]
    fn a_tenant_rotation_after_the_sinks_login_moves_it_to_the_other_slot_once_the_last_one_is_gone() {
        let own = secret("old", "SCRAM-SHA-512", "2026-01-01T00:00:00Z");
        let tenant_secret = secret("t", "SCRAM-SHA-512", "2026-02-01T00:00:00Z");
        let (login, slot, rotated) = choose_with(Some(&own), Some(&tenant_secret), &[ScramMechanism::Sha512]);
        assert_eq!((login.password.as_str(), slot, rotated), ("new", ScramMechanism::Sha256, true));
        assert_eq!(login.mechanism, "SCRAM-SHA-256");
        assert_eq!(login.rotated_at.as_deref(), Some("2026-02-01T00:00:00Z"));
        // The previous rotation's slot still exists (its pods may use it): no new rotation yet.
        let both = [ScramMechanism::Sha512, ScramMechanism::Sha256];
        let (login, slot, rotated) = choose_with(Some(&own), Some(&tenant_secret), &both);
        assert_eq!((login.password.as_str(), slot, rotated), ("old", ScramMechanism::Sha512, false));
        // Not rotated since: the sink keeps its login and stamp.
        let (login, _, rotated) = choose_with(Some(&own), Some(&own), &[ScramMechanism::Sha512]);
        assert_eq!((login.password.as_str(), rotated), ("old", false));
        assert_eq!(login.rotated_at.as_deref(), Some("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn an_external_principal_runs_with_the_tenants_login_or_waits_for_it() {
        let held = BTreeSet::new();
        let found = Found { own: None, tenant: None, external: true, held: &held };
        let Err(err) = choose(&found, &tenant(), || unreachable!()) else { panic!("no password to run with") };
        assert!(err.contains("Tenant water's Secret has no Kafka password yet"), "{err}");
        let tenant_secret = secret("theirs", "SCRAM-SHA-256", "2026-01-01T00:00:00Z");
        let found = Found { own: None, tenant: Some(&tenant_secret), external: true, held: &held };
        let (login, _, rotated) = choose(&found, &tenant(), || unreachable!()).unwrap();
        assert_eq!((login.password.as_str(), rotated), ("theirs", false));
    }
}

//! Credential rotation without downtime (`spec.credentials`).
//!
//! Each login has two slots, so the new credential works before the old one goes:
//! - Kafka: a SCRAM user holds one credential per mechanism, so the slots are its
//!   SCRAM-SHA-512 and SCRAM-SHA-256 credentials; a rotation writes the new password into
//!   the other mechanism and the Secret names that mechanism.
//! - Cassandra: a role has one password, so the slots are the keyspace's role itself (which
//!   holds the grants) and `<role>.2`, a login role granted it (`.` cannot occur in a
//!   keyspace name, so no other tenant's role can be called that).
//!
//! A rotation puts new passwords in the other slots and in the Secret at once; the previous
//! slots keep working until the grace period has passed and every sink pod runs with the new
//! credentials, and are then removed (the Kafka credential deleted, the Cassandra login
//! taken away). When it happened is kept on the Tenant ([`ROTATION_ANNOTATION`], written
//! only by the operator; admins alone write Tenants) and on the Secrets
//! ([`ROTATED_AT_ANNOTATION`]), where each sink compares it with its own.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use crate::api::Tenant;
use crate::api::tenant::CredentialRotation;

/// On a Tenant: the last rotation ([`Rotation`] as JSON).
pub const ROTATION_ANNOTATION: &str = "tributary.dev/credentials-rotation";
/// On the tenant's and each sink's credentials Secret: when its passwords were made.
pub const ROTATED_AT_ANNOTATION: &str = "tributary.dev/credentials-rotated-at";

/// When the Secret's passwords were made, and the request that made them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// RFC 3339.
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

impl Rotation {
    /// A rotation (or the first provisioning) now, for `spec`'s request.
    pub fn now(spec: &CredentialRotation, now: Timestamp) -> Self {
        Rotation { at: now.to_string(), request: spec.rotation_request.clone() }
    }

    /// The last rotation the Tenant records; a Tenant provisioned before rotations existed
    /// counts from its creation, with no request done.
    pub fn of(tenant: &Tenant) -> Option<Self> {
        let recorded = tenant.annotations().get(ROTATION_ANNOTATION).and_then(|a| serde_json::from_str(a).ok());
        recorded.or_else(|| {
            let created = tenant.creation_timestamp()?;
            Some(Rotation { at: created.0.to_string(), request: None })
        })
    }

    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).expect("a Rotation serializes")
    }

    fn at(&self) -> Timestamp {
        self.at.parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// Why the credentials are to be rotated now, if they are.
    pub fn due(&self, spec: &CredentialRotation, now: Timestamp) -> Option<String> {
        if let Some(request) = &spec.rotation_request
            && self.request.as_ref() != Some(request)
        {
            return Some(format!("spec.credentials.rotationRequest is {request:?}"));
        }
        let days = spec.rotate_every_days?;
        (now >= self.at() + SignedDuration::from_hours(24 * i64::from(days)))
            .then(|| format!("spec.credentials.rotateEveryDays is {days} and the last rotation was at {}", self.at))
    }

    /// When the previous credentials' grace period ends.
    pub fn grace_end(&self, spec: &CredentialRotation) -> Timestamp {
        self.at() + SignedDuration::from_secs(spec.grace_period_seconds.max(0))
    }
}

/// When the passwords in `secret` were made ([`ROTATED_AT_ANNOTATION`]).
pub fn stamp(secret: &k8s_openapi::api::core::v1::Secret) -> Option<String> {
    secret.annotations().get(ROTATED_AT_ANNOTATION).cloned()
}

/// Whether a Secret stamped `secret_at` predates the tenant's rotation at `tenant_at`
/// (both [`ROTATED_AT_ANNOTATION`] values). A Secret without a stamp (new, or made before
/// rotations existed) takes the tenant's stamp without rotating.
pub fn older(secret_at: Option<&str>, tenant_at: Option<&str>) -> bool {
    let parse = |t: Option<&str>| t.and_then(|t| t.parse::<Timestamp>().ok());
    matches!((parse(secret_at), parse(tenant_at)), (Some(mine), Some(tenant)) if mine < tenant)
}

/// The second Cassandra login of a tenant role.
pub fn second_login(role: &str) -> String {
    format!("{role}.2")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(request: Option<&str>, every: Option<i32>) -> CredentialRotation {
        CredentialRotation {
            rotation_request: request.map(String::from),
            rotate_every_days: every,
            ..Default::default()
        }
    }

    #[test]
    fn a_new_request_or_an_elapsed_schedule_rotates_once() {
        let t0: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let last = Rotation::now(&spec(Some("a"), None), t0);
        assert_eq!(last.due(&spec(Some("a"), None), t0), None, "the request was carried out");
        assert!(last.due(&spec(Some("b"), None), t0).unwrap().contains("\"b\""));
        assert_eq!(last.due(&spec(None, None), t0), None, "removing the request rotates nothing");
        let day = SignedDuration::from_hours(24);
        assert_eq!(last.due(&spec(Some("a"), Some(30)), t0 + day * 29), None);
        assert!(last.due(&spec(Some("a"), Some(30)), t0 + day * 30).unwrap().contains("rotateEveryDays is 30"));
        let rotated = Rotation::now(&spec(Some("a"), Some(30)), t0 + day * 30);
        assert_eq!(rotated.due(&spec(Some("a"), Some(30)), t0 + day * 31), None, "counted from the last rotation");
    }

    #[test]
    fn the_grace_period_counts_from_the_rotation() {
        let t0: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let last = Rotation::now(&spec(None, None), t0);
        assert_eq!(last.grace_end(&CredentialRotation::default()), t0 + SignedDuration::from_secs(3600));
        let back = Rotation { at: last.to_annotation().split('"').nth(3).unwrap().to_string(), request: None };
        assert_eq!(back, last, "the annotation keeps the time");
    }

    #[test]
    fn a_secret_is_older_than_the_tenants_rotation_only_when_stamped_before_it() {
        let (t1, t2) = ("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z");
        assert!(older(Some(t1), Some(t2)));
        assert!(!older(Some(t2), Some(t2)) && !older(Some(t2), Some(t1)));
        assert!(!older(None, Some(t2)), "a Secret without a stamp is a new one: it gets the tenant's");
        assert!(!older(Some(t1), None), "no tenant rotation yet");
    }
}

//! Client quotas of a user (KIP-546) as the operator wants them, and the changes that make
//! Kafka's match.

use std::collections::BTreeMap;

/// Quota keys as Kafka names them.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";

/// Quotas of one user: key → value (absent key: no quota).
pub type Quotas = BTreeMap<String, f64>;

/// What to change so the user's live quotas become `desired`: values to set (missing or
/// different) and keys to remove (set in Kafka, not wanted). Both empty when they match.
pub fn quota_changes(desired: &Quotas, live: &Quotas) -> (Quotas, Vec<String>) {
    let set = desired.iter().filter(|(k, v)| live.get(*k) != Some(v)).map(|(k, v)| (k.clone(), *v)).collect();
    let remove = live.keys().filter(|k| !desired.contains_key(*k)).cloned().collect();
    (set, remove)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_differences_become_changes() {
        let q = |pairs: &[(&str, f64)]| pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect::<Quotas>();
        let desired = q(&[(PRODUCER_BYTE_RATE, 1_048_576.0), (REQUEST_PERCENTAGE, 50.0)]);
        assert_eq!(quota_changes(&desired, &desired), (Quotas::new(), vec![]));
        let live = q(&[(PRODUCER_BYTE_RATE, 2048.0), (CONSUMER_BYTE_RATE, 4096.0), (REQUEST_PERCENTAGE, 50.0)]);
        let (set, remove) = quota_changes(&desired, &live);
        assert_eq!(set, q(&[(PRODUCER_BYTE_RATE, 1_048_576.0)]));
        assert_eq!(remove, vec![CONSUMER_BYTE_RATE.to_string()]);
    }
}

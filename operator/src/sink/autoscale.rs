//! Scaling a sink on its consumer group's lag (pure): ceil(lag / lagPerReplica) replicas,
//! within `replicas`..`autoscale.maxReplicas` and the topic's partitions. Up at once (a
//! backlog is waiting), down only after the lag has called for fewer replicas for
//! `scaleDownDelaySeconds` (a burst that ends does not make the sink flap).

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::{Autoscale, AutoscaleStatus};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub replicas: i32,
    pub status: AutoscaleStatus,
    /// A change of replicas to tell in an event: (reason, note).
    pub event: Option<(&'static str, String)>,
}

/// `min`: the spec's replicas (capped at the partitions); `running`: the replicas of the live
/// Deployment (`None` before it exists: a new sink starts at the minimum and scales from
/// there); `last`: the previous decision, for when the lag began to call for fewer.
pub fn decide(
    auto: &Autoscale,
    min: i32,
    partitions: i32,
    lag: i64,
    last: Option<&AutoscaleStatus>,
    running: Option<i32>,
    now: Timestamp,
) -> Decision {
    let max = auto.max_replicas.min(partitions).max(min);
    let per = auto.lag_per_replica();
    let current = running.map_or(min, |r| r.clamp(min, max));
    let wanted = i32::try_from(lag.max(0).saturating_add(per - 1) / per).unwrap_or(i32::MAX).clamp(min, max);
    let keep = |below_since: Option<String>, decision: String| Decision {
        replicas: current,
        status: AutoscaleStatus {
            replicas: current,
            decision,
            last_scale_time: last.and_then(|l| l.last_scale_time.clone()),
            below_since,
        },
        event: None,
    };
    let scale = |reason: &'static str, words: &str| {
        let note = format!("lag {lag} records ({per} per replica): {current} → {wanted} replicas");
        Decision {
            replicas: wanted,
            status: AutoscaleStatus {
                replicas: wanted,
                decision: format!("{words}: {note}"),
                last_scale_time: Some(now.to_string()),
                below_since: None,
            },
            event: Some((reason, note)),
        }
    };
    if running.is_none() || wanted == current {
        return keep(None, format!("lag {lag} records ({per} per replica): {current} replicas, within {min}..{max}"));
    }
    if wanted > current {
        return scale("ScaledUp", "scaled up");
    }
    let since = last
        .and_then(|l| l.below_since.as_deref())
        .and_then(|t| t.parse::<Timestamp>().ok())
        .filter(|t| *t <= now)
        .unwrap_or(now);
    let delay = SignedDuration::from_secs(auto.scale_down_delay_seconds().into());
    if now.duration_since(since) >= delay {
        return scale("ScaledDown", "scaled down");
    }
    keep(
        Some(since.to_string()),
        format!(
            "lag {lag} records ({per} per replica) calls for {wanted} of {current} replicas; scaling down once it has for {}s",
            auto.scale_down_delay_seconds()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto(max: i32) -> Autoscale {
        Autoscale { max_replicas: max, lag_per_replica: Some(1000), scale_down_delay_seconds: Some(60) }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn a_backlog_scales_up_at_once_within_the_range_and_the_partitions() {
        let a = auto(8);
        let start = decide(&a, 1, 6, 0, None, Some(1), at(0));
        assert_eq!((start.replicas, start.event.is_none()), (1, true));
        let up = decide(&a, 1, 6, 4_500, Some(&start.status), Some(start.replicas), at(5));
        assert_eq!(up.replicas, 5);
        assert_eq!(up.event.as_ref().map(|e| e.0), Some("ScaledUp"));
        assert!(up.event.unwrap().1.contains("lag 4500 records (1000 per replica): 1 → 5 replicas"));
        let capped = decide(&a, 1, 6, 1_000_000, Some(&up.status), Some(up.replicas), at(10));
        assert_eq!(capped.replicas, 6, "never more than the partitions");
        let new = decide(&a, 1, 6, 1_000_000, None, None, at(0));
        assert_eq!((new.replicas, new.event), (1, None), "a new sink starts at the minimum");
    }

    #[test]
    fn it_scales_down_only_after_the_lag_has_called_for_it_for_the_delay() {
        let a = auto(4);
        let up = decide(&a, 1, 4, 10_000, None, Some(1), at(0));
        assert_eq!(up.replicas, 4);
        let waiting = decide(&a, 1, 4, 0, Some(&up.status), Some(up.replicas), at(10));
        assert_eq!((waiting.replicas, waiting.event.is_none()), (4, true));
        assert_eq!(waiting.status.below_since, Some(at(10).to_string()));
        let still = decide(&a, 1, 4, 0, Some(&waiting.status), Some(waiting.replicas), at(69));
        assert_eq!(still.replicas, 4);
        assert_eq!(still.status.below_since, Some(at(10).to_string()), "the wait starts when the lag fell");
        let down = decide(&a, 1, 4, 0, Some(&still.status), Some(still.replicas), at(70));
        assert_eq!((down.replicas, down.event.map(|e| e.0)), (1, Some("ScaledDown")));
        // A new burst while waiting resets the wait.
        let burst = decide(&a, 1, 4, 3_500, Some(&waiting.status), Some(waiting.replicas), at(30));
        assert_eq!((burst.replicas, burst.status.below_since), (4, None));
    }
}

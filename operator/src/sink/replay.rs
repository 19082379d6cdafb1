//! When a sink's consumer group offsets move (pure): a declared replay (`spec.replay`), and
//! where a new sink starts (`spec.startFrom`). Offsets move only while the group is empty,
//! so a replay first stops the sink's pods; Kafka itself refuses a commit from outside a
//! group that has members, which makes the rule hold even against a pod still draining.

use crate::api::{CassandraSinkSpec, Position, ReplayPhase, ReplayStatus};

/// The `status.replay.id` recorded for where a new sink started.
pub const START: &str = "startFrom";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to move: the pods run as specified.
    Run,
    /// A replay waits for the pods to go: scale to zero, record `status`.
    Stop(ReplayStatus),
    /// Move the group's offsets to `to`, then run. `unless_committed`: only when the group
    /// has committed nothing yet (a new sink's start never rewinds an existing group).
    Move { id: String, from: String, to: Position, unless_committed: bool },
}

/// The next step, from the spec, the last replay recorded in the status, whether the sink's
/// Deployment exists and how many of its pods exist. `Err`: a position that does not parse
/// (the API server's rule refuses it first; this is for objects older than the rule).
pub fn step(spec: &CassandraSinkSpec, last: Option<&ReplayStatus>, deployed: bool, pods: i32) -> Result<Step, String> {
    if let Some(replay) = &spec.replay {
        let done = last.is_some_and(|l| l.id == replay.id && l.phase == ReplayPhase::Done);
        if done {
            return Ok(Step::Run);
        }
        let to = Position::parse(&replay.from).map_err(|e| format!("spec.replay.from: {e}"))?;
        if pods > 0 {
            return Ok(Step::Stop(ReplayStatus {
                id: replay.id.clone(),
                from: replay.from.clone(),
                phase: ReplayPhase::Stopping,
                offsets: None,
                time: None,
            }));
        }
        return Ok(Step::Move { id: replay.id.clone(), from: replay.from.clone(), to, unless_committed: false });
    }
    match &spec.start_from {
        Some(from) if !deployed && last.is_none() => {
            match Position::parse(from).map_err(|e| format!("spec.startFrom: {e}"))? {
                // Where a group without offsets starts anyway (the sink's auto.offset.reset).
                Position::Earliest => Ok(Step::Run),
                to => Ok(Step::Move { id: START.into(), from: from.clone(), to, unless_committed: true }),
            }
        }
        _ => Ok(Step::Run),
    }
}

/// Annotation on the sink's Deployment holding the last [`ReplayStatus`] as JSON: read fresh
/// on every reconcile, so a replay is neither forgotten nor run twice when the sink object
/// comes from a stale cache. On the Deployment's own metadata, so it rolls no pod.
pub const REPLAY_ANNOTATION: &str = "tributary.dev/replay";

/// The replay the Deployment records, if any.
pub fn recorded(deployment: &k8s_openapi::api::apps::v1::Deployment) -> Option<ReplayStatus> {
    let text = deployment.metadata.annotations.as_ref()?.get(REPLAY_ANNOTATION)?;
    serde_json::from_str(text).ok()
}

/// Records `replay` on the Deployment about to be applied.
pub fn record(deployment: &mut k8s_openapi::api::apps::v1::Deployment, replay: &ReplayStatus) {
    let json = serde_json::to_string(replay).expect("a replay status serializes");
    deployment.metadata.annotations.get_or_insert_with(Default::default).insert(REPLAY_ANNOTATION.into(), json);
}

/// `0=120, 1=98`: the offsets a group was set to, for the status.
pub fn describe(offsets: &std::collections::BTreeMap<i32, i64>) -> String {
    offsets.iter().map(|(p, o)| format!("{p}={o}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Replay;

    fn spec(start_from: Option<&str>, replay: Option<(&str, &str)>) -> CassandraSinkSpec {
        let mut spec: CassandraSinkSpec = serde_json::from_value(serde_json::json!({
            "topic": "t", "table": "x", "columns": [{"name": "id", "type": "text"}], "partitionKey": ["id"],
        }))
        .unwrap();
        spec.start_from = start_from.map(str::to_string);
        spec.replay = replay.map(|(id, from)| Replay { id: id.into(), from: from.into() });
        spec
    }

    fn done(id: &str) -> ReplayStatus {
        ReplayStatus { id: id.into(), from: "Earliest".into(), phase: ReplayPhase::Done, offsets: None, time: None }
    }

    #[test]
    fn a_replay_stops_the_pods_then_moves_the_offsets_once_and_then_runs() {
        let s = spec(None, Some(("r1", "Earliest")));
        let Step::Stop(stopping) = step(&s, None, true, 2).unwrap() else { panic!("pods first") };
        assert_eq!((stopping.id.as_str(), stopping.phase), ("r1", ReplayPhase::Stopping));
        assert_eq!(
            step(&s, Some(&stopping), true, 0).unwrap(),
            Step::Move { id: "r1".into(), from: "Earliest".into(), to: Position::Earliest, unless_committed: false }
        );
        assert_eq!(step(&s, Some(&done("r1")), true, 1).unwrap(), Step::Run, "done: once");
        assert!(matches!(step(&s, Some(&done("r0")), true, 1).unwrap(), Step::Stop(_)), "a new id runs again");
    }

    #[test]
    fn the_deployment_carries_the_last_replay() {
        let mut deployment = k8s_openapi::api::apps::v1::Deployment::default();
        assert_eq!(recorded(&deployment), None);
        record(&mut deployment, &done("r1"));
        assert_eq!(recorded(&deployment), Some(done("r1")));
    }

    #[test]
    fn a_new_sink_starts_where_start_from_says_and_only_before_its_first_pod() {
        let at = spec(Some("2026-12-01T00:00:00Z"), None);
        assert_eq!(
            step(&at, None, false, 0).unwrap(),
            Step::Move {
                id: START.into(),
                from: "2026-12-01T00:00:00Z".into(),
                to: Position::Time(1_796_083_200_000),
                unless_committed: true
            }
        );
        assert_eq!(step(&at, None, true, 1).unwrap(), Step::Run, "an existing sink does not move");
        assert_eq!(step(&at, Some(&done(START)), false, 0).unwrap(), Step::Run, "once");
        assert_eq!(step(&spec(Some("Earliest"), None), None, false, 0).unwrap(), Step::Run);
        assert!(matches!(
            step(&spec(Some("Latest"), None), None, false, 0).unwrap(),
            Step::Move { to: Position::Latest, .. }
        ));
        let bad = step(&spec(Some("yesterday"), None), None, false, 0).unwrap_err();
        assert!(bad.starts_with("spec.startFrom: \"yesterday\" is not Earliest, Latest or an RFC 3339 time"), "{bad}");
    }
}

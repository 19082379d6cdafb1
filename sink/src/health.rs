//! Whether a sink is alive and ready, judged from its own counters.
//!
//! - **Alive** unless it is stuck: it has work (writes in flight, or records waiting in its
//!   partitions) and has not read, written, retried or dead-lettered anything for `stall`.
//!   A Cassandra outage keeps it alive (writes are retried, and each retry counts), and so
//!   does a Kafka outage (its lag cannot be read then, and an unknown lag is no work). A
//!   stuck sink fails `/healthz`, and the kubelet restarts it; it resumes from its last
//!   committed offset.
//! - **Ready** once it is connected to Cassandra and consuming, and while it is not stuck.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A lag older than this is no longer known (Kafka did not answer since).
const LAG_FRESH: Duration = Duration::from_secs(30);

pub struct Health {
    stall: Duration,
    state: Mutex<State>,
}

struct State {
    consuming: bool,
    activity: u64,
    last_activity: Instant,
    in_flight: i64,
    lag: Option<(i64, Instant)>,
}

impl Health {
    pub fn new(stall: Duration, now: Instant) -> Self {
        let state = State { consuming: false, activity: 0, last_activity: now, in_flight: 0, lag: None };
        Health { stall, state: Mutex::new(state) }
    }

    /// Connected to Cassandra, the INSERT prepared, subscribed: the loop runs.
    pub fn consuming(&self) {
        self.state.lock().expect("health lock").consuming = true;
    }

    /// A sample of the counters: `activity` is the sum of records read, written, retried
    /// and dead-lettered so far; any change counts as activity.
    pub fn observe(&self, now: Instant, activity: u64, in_flight: i64) {
        let mut s = self.state.lock().expect("health lock");
        if activity != s.activity {
            s.activity = activity;
            s.last_activity = now;
        }
        s.in_flight = in_flight;
    }

    /// Records in the assigned partitions not yet committed, as just read from Kafka.
    pub fn lag(&self, now: Instant, lag: i64) {
        self.state.lock().expect("health lock").lag = Some((lag, now));
    }

    /// `Err(why)` when the sink is stuck.
    pub fn liveness(&self, now: Instant) -> Result<String, String> {
        let s = self.state.lock().expect("health lock");
        let idle = now.saturating_duration_since(s.last_activity);
        let waiting = s.lag.filter(|(_, at)| now.saturating_duration_since(*at) <= LAG_FRESH).map_or(0, |(l, _)| l);
        if (s.in_flight > 0 || waiting > 0) && idle > self.stall {
            return Err(format!(
                "stuck: nothing read, written or retried for {} s while {} writes are in flight and {waiting} records wait",
                idle.as_secs(),
                s.in_flight
            ));
        }
        Ok(format!(
            "ok: last activity {} s ago, {} writes in flight, {waiting} records waiting",
            idle.as_secs(),
            s.in_flight
        ))
    }

    /// `Err(why)` until the sink consumes, and while it is stuck.
    pub fn readiness(&self, now: Instant) -> Result<String, String> {
        if !self.state.lock().expect("health lock").consuming {
            return Err("starting: connecting to Cassandra and Kafka".into());
        }
        self.liveness(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(120);

    /// A consuming sink whose counters read `activity` with `in_flight` writes at `t0`.
    fn consuming(t0: Instant, activity: u64, in_flight: i64) -> Health {
        let health = Health::new(STALL, t0);
        health.consuming();
        health.observe(t0, activity, in_flight);
        health
    }

    #[test]
    fn a_sink_with_work_and_no_activity_for_the_stall_time_is_stuck() {
        let t0 = Instant::now();
        let health = consuming(t0, 10, 4);
        assert!(health.liveness(t0 + Duration::from_secs(119)).is_ok());
        let stuck = health.liveness(t0 + Duration::from_secs(121)).unwrap_err();
        assert!(stuck.contains("4 writes are in flight"), "{stuck}");
        assert!(health.readiness(t0 + Duration::from_secs(121)).is_err());
        // One retry (or record, or write) is activity again.
        health.observe(t0 + Duration::from_secs(122), 11, 4);
        assert!(health.liveness(t0 + Duration::from_secs(123)).is_ok());
    }

    #[test]
    fn an_idle_sink_without_work_is_alive_however_long_it_waits() {
        let t0 = Instant::now();
        let health = consuming(t0, 10, 0);
        health.lag(t0, 0);
        assert!(health.liveness(t0 + Duration::from_secs(3600)).is_ok());
    }

    #[test]
    fn records_waiting_count_as_work_only_while_the_lag_is_fresh() {
        let t0 = Instant::now();
        let health = consuming(t0, 10, 0);
        health.lag(t0 + Duration::from_secs(100), 500);
        assert!(health.liveness(t0 + Duration::from_secs(125)).is_err(), "500 records wait and nothing is read");
        // Kafka unreachable: the lag is not refreshed, and an unknown lag is no work.
        assert!(health.liveness(t0 + Duration::from_secs(200)).is_ok());
    }

    #[test]
    fn a_sink_is_not_ready_before_it_consumes() {
        let t0 = Instant::now();
        let health = Health::new(STALL, t0);
        assert_eq!(health.readiness(t0), Err("starting: connecting to Cassandra and Kafka".to_string()));
        health.consuming();
        assert!(health.readiness(t0).is_ok());
    }
}

//! The Grafana dashboard (charts/tributary/dashboards/tributary.json) on the stack's
//! Prometheus, while the demo's traffic flows through a water tenant of the test's own, and
//! the chart's alerts for real:
//! - every panel's query, read from the file (a new, renamed or changed panel is covered as
//!   it is), answers with at least one series carrying every label its legend names, the
//!   test's tenant, sink and operator among them; the variables' queries list the test's
//!   namespace and sink;
//! - the seeds' drill: with kafka-3 stopped the brokers panel reads 2 (and the JMX
//!   exporter's `up` 2 of 3 brokers) while the sinks keep writing, then 3 again;
//! - with Cassandra stopped, TributaryCassandraUnreachable fires (a copy with a short `for:`),
//!   and resolves once Cassandra is back.
//!
//! (A test binary of its own: it stops a broker and Cassandra.)

use std::time::{Duration, Instant};

use serde_json::Value;
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::{MALFORMED_EVERY, apply_water_example_ready, produce_paced};
use tributary_tests::prometheus::{RulesFile, api, encode, query, value};
use tributary_tests::sink::SinkPods;
use tributary_tests::{TenantCleanup, repo_root, stack_ctl, unique, wait_until};

/// What Grafana makes of `$__rate_interval` with the stack's 15 s scrape interval
/// (stack/config/prometheus/prometheus.yml): four scrapes.
const RATE_INTERVAL: &str = "1m";
/// The example's CassandraSink.
const SINK: &str = "readings";
/// Records per second the test's producer sends, for longer than the test lasts.
const RATE: u64 = 200;
/// Prometheus scrapes every 15 s and the panels' rates need two scrapes of a new target.
const PANELS_WAIT: Duration = Duration::from_secs(120);
/// The alert the test fires, and the scrape job of the brokers' JMX exporter.
const ALERT: &str = "TributaryCassandraUnreachable";
const KAFKA_JOB: &str = "kafka";

/// Panels with no data until something fails: the operator counts reconcile failures by kind
/// and category from the first one. The Cassandra outage below makes some (a Tenant's
/// reconcile fails with category `cassandra`), so these are checked after it, with that
/// label value among their series.
const AFTER_THE_OUTAGE: &[(&str, &str, &str)] =
    &[("Reconcile failures/s by kind and category", "category", "cassandra")];

/// One query of a panel, its variables filled in as for the test's namespace and sink.
struct Panel {
    title: String,
    expr: String,
    /// The labels its legend names (`{{label}}`).
    labels: Vec<String>,
}

fn dashboard() -> Value {
    let path = repo_root().join("charts/tributary/dashboards/tributary.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `$__range`: the dashboard's default time range (`"from": "now-1h"` → `1h`).
fn range(dashboard: &Value) -> String {
    let from = dashboard["time"]["from"].as_str().unwrap_or_default();
    from.strip_prefix("now-")
        .unwrap_or_else(|| panic!("the dashboard's time.from is not now-<duration>: {from}"))
        .into()
}

/// The expression as Grafana sends it for one namespace and sink.
fn substitute(expr: &str, range: &str, namespace: &str) -> String {
    let filled = expr
        .replace("$__rate_interval", RATE_INTERVAL)
        .replace("$__range", range)
        .replace("${namespace}", namespace)
        .replace("$namespace", namespace)
        .replace("${sink}", SINK)
        .replace("$sink", SINK);
    assert!(!filled.contains('$'), "a dashboard query names a variable this test does not fill in: {expr}");
    filled
}

fn legend_labels(legend: &str) -> Vec<String> {
    legend.split("{{").skip(1).filter_map(|part| part.split_once("}}")).map(|(l, _)| l.trim().to_string()).collect()
}

/// Every query of every panel, rows' nested panels included.
fn panels(dashboard: &Value, namespace: &str) -> Vec<Panel> {
    fn walk(panels: &Value, range: &str, namespace: &str, out: &mut Vec<Panel>) {
        for panel in panels.as_array().into_iter().flatten() {
            walk(&panel["panels"], range, namespace, out);
            for target in panel["targets"].as_array().into_iter().flatten() {
                let Some(expr) = target["expr"].as_str().filter(|_| target["hide"] != true) else { continue };
                out.push(Panel {
                    title: panel["title"].as_str().unwrap_or_default().to_string(),
                    expr: substitute(expr, range, namespace),
                    labels: legend_labels(target["legendFormat"].as_str().unwrap_or_default()),
                });
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &range(dashboard), namespace, &mut out);
    out
}

/// The panel that reads `metric`.
fn reading<'a>(panels: &'a [Panel], metric: &str) -> &'a Panel {
    panels.iter().find(|p| p.expr.contains(metric)).unwrap_or_else(|| panic!("no dashboard panel reads {metric}"))
}

/// The panel's series: at least one, each with every label its legend names, and, for each
/// `(label, value)` of `ours` that its legend names, one series with that value.
async fn answers(panel: &Panel, ours: &[(&str, &str)]) -> Result<usize, String> {
    let series = query(&panel.expr).await?;
    if series.is_empty() {
        return Err("no series".into());
    }
    for s in &series {
        if let Some(missing) = panel.labels.iter().find(|l| s["metric"][l.as_str()].as_str().is_none_or(str::is_empty))
        {
            return Err(format!("a series without the label `{missing}` its legend shows: {}", s["metric"]));
        }
    }
    for (label, want) in ours.iter().filter(|(l, _)| panel.labels.iter().any(|p| p == l)) {
        if !series.iter().any(|s| s["metric"][label] == *want) {
            let seen: Vec<&Value> = series.iter().map(|s| &s["metric"]).collect();
            return Err(format!("no series with {label}=\"{want}\" among {seen:?}"));
        }
    }
    Ok(series.len())
}

/// Waits until every one of `panels` answers at once; the series they returned.
async fn wait_panels(panels: &[&Panel], ours: &[(&str, &str)], what: &str) -> usize {
    wait_until(what, PANELS_WAIT, || async {
        let mut failing = Vec::new();
        let mut series = 0;
        for panel in panels {
            match answers(panel, ours).await {
                Ok(n) => series += n,
                Err(e) => failing.push(format!("panel \"{}\", query `{}`: {e}", panel.title, panel.expr)),
            }
        }
        if failing.is_empty() {
            Ok(series)
        } else {
            Err(format!("{} of {} queries lack data:\n  {}", failing.len(), panels.len(), failing.join("\n  ")))
        }
    })
    .await
}

/// The values a `label_values(SELECTOR, LABEL)` variable offers.
async fn label_values(variable: &str) -> Result<Vec<String>, String> {
    let inner = variable.trim().strip_prefix("label_values(").and_then(|r| r.strip_suffix(')'));
    let (selector, label) =
        inner.and_then(|i| i.rsplit_once(',')).ok_or(format!("not label_values(selector, label): {variable}"))?;
    let path = format!("/api/v1/label/{}/values?match%5B%5D={}", label.trim(), encode(selector.trim()));
    let data = api(&path).await?;
    Ok(data.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect())
}

/// Every query variable's values include the test's (`namespace`, `sink`; any other: one value).
async fn wait_variables(dashboard: &Value, namespace: &str) -> usize {
    let variables = dashboard["templating"]["list"].as_array().cloned().unwrap_or_default();
    let mut checked = 0;
    for variable in variables.iter().filter(|v| v["type"] == "query") {
        let name = variable["name"].as_str().unwrap_or_default();
        let raw = variable["query"]["query"].as_str().or(variable["query"].as_str()).unwrap_or_default();
        let expr = substitute(raw, "1h", namespace);
        let want = match name {
            "namespace" => Some(namespace),
            "sink" => Some(SINK),
            _ => None,
        };
        wait_until(&format!("variable ${name} (`{expr}`) to offer {want:?}"), PANELS_WAIT, || async {
            let values = label_values(&expr).await?;
            let found = match want {
                Some(w) => values.iter().any(|v| v == w),
                None => !values.is_empty(),
            };
            if found { Ok(()) } else { Err(format!("{values:?}")) }
        })
        .await;
        checked += 1;
    }
    checked
}

/// Starts a stopped stack component when the test ends, pass or fail.
struct StartOnDrop(&'static str);

impl Drop for StartOnDrop {
    fn drop(&mut self) {
        stack_ctl(&["start", self.0]);
    }
}

/// Stops the background producer when the test ends (its process goes with its task).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The brokers panel's value and, when the JMX exporter's targets were all up, the brokers
/// Prometheus scrapes: both `want`.
async fn wait_brokers(brokers: &Panel, want: f64, jmx: bool) {
    let up = format!("count(up{{job=\"{KAFKA_JOB}\"}} == 1)");
    wait_until(&format!("the brokers panel (`{}`) to read {want}", brokers.expr), Duration::from_secs(120), || async {
        let panel = value(&brokers.expr).await?;
        let scraped = if jmx { value(&up).await?.or(Some(0.0)) } else { Some(want) };
        if panel == Some(want) && scraped == Some(want) {
            Ok(())
        } else {
            Err(format!("panel {panel:?}, JMX targets up {scraped:?}"))
        }
    })
    .await
}

/// The chart's rule for ALERT, its `for:` shortened to 15 s, as a rules group of its own. The
/// real 5 minutes would make `make test` wait 5 minutes; promtool's unit tests
/// (charts/tributary/alerts/tests.yaml, run by tests/tests/alerts.rs) cover the real `for:`.
fn short_copy(group: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join("charts/tributary/alerts/tributary.rules.yaml")).unwrap();
    let rules: Value = serde_saphyr::from_str(&text).unwrap();
    let mut rule = rules["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .find(|r| r["alert"] == ALERT)
        .unwrap_or_else(|| panic!("the chart's rules have no {ALERT}"))
        .clone();
    rule["for"] = "15s".into();
    serde_json::json!([{"name": group, "rules": [rule]}])
}

/// ALERT's state in rules group `group` (`inactive`, `pending`, `firing`).
async fn rule_state(group: &str) -> Result<String, String> {
    let data = api("/api/v1/rules?type=alert").await?;
    let groups = data["groups"].as_array().cloned().unwrap_or_default();
    let rule = groups
        .iter()
        .filter(|g| g["name"] == group)
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .find(|r| r["name"] == ALERT)
        .ok_or(format!("group {group} has no {ALERT} loaded"))?;
    Ok(rule["state"].as_str().unwrap_or_default().to_string())
}

/// ALERT's active alerts in /api/v1/alerts: their states.
async fn active_alerts() -> Result<Vec<String>, String> {
    let data = api("/api/v1/alerts").await?;
    let alerts = data["alerts"].as_array().cloned().unwrap_or_default();
    Ok(alerts.iter().filter(|a| a["labels"]["alertname"] == ALERT).map(|a| a["state"].to_string()).collect())
}

#[tokio::test]
async fn the_dashboard_answers_the_brokers_drill_reads_right_and_an_alert_fires_for_real() {
    let start = Instant::now();
    let op = OperatorProcess::shared().await;
    let tenant = unique("dash");
    let _tenant = TenantCleanup::new(&tenant);
    apply_water_example_ready(&tenant);
    let sinks = SinkPods::running(&tenant, &format!("tributary-sink-{SINK}"), 2).await;
    let mut producing = {
        let (tenant, run) = (tenant.clone(), unique("dash"));
        AbortOnDrop(tokio::spawn(async move {
            produce_paced(&tenant, "water", &run, RATE * 600, RATE, MALFORMED_EVERY).await
        }))
    };
    let group = unique("dashboard-test");
    let _copy = RulesFile::load(&group, &short_copy(&group));
    let setup = start.elapsed().as_secs();

    // 1. Every panel and variable, while records flow.
    let dashboard = dashboard();
    let all = panels(&dashboard, &tenant);
    for (title, _, _) in AFTER_THE_OUTAGE {
        assert!(all.iter().any(|p| p.title == *title), "AFTER_THE_OUTAGE names a panel the dashboard lacks: {title}");
    }
    let (later, now): (Vec<&Panel>, Vec<&Panel>) =
        all.iter().partition(|p| AFTER_THE_OUTAGE.iter().any(|(t, _, _)| p.title == *t));
    let ours = [("namespace", tenant.as_str()), ("sink", SINK), ("tenant", tenant.as_str()), ("pod", &op.identity)];
    let series = wait_panels(&now, &ours, "every dashboard panel to answer with its legend's labels").await;
    let variables = wait_variables(&dashboard, &tenant).await;
    println!(
        "{} panel queries answered ({series} series) and {variables} variables, {} s after the sinks ran",
        now.len(),
        start.elapsed().as_secs() - setup
    );

    // 2. The seeds' drill: one broker stopped, the panel reads 2 of 3, the sinks keep writing.
    let brokers = reading(&all, "tributary_kafka_brokers_live");
    let written = reading(&all, "tributary_sink_records_written_total");
    let jmx = value(&format!("count(up{{job=\"{KAFKA_JOB}\"}} == 1)")).await.unwrap() == Some(3.0);
    if !jmx {
        println!("the brokers' JMX targets are not all up (started before the exporter?): only the panel is checked");
    }
    wait_brokers(brokers, 3.0, jmx).await;
    let restart = StartOnDrop("kafka-3");
    stack_ctl(&["stop", "kafka-3"]);
    let stopped = Instant::now();
    wait_brokers(brokers, 2.0, jmx).await;
    let two_after = stopped.elapsed().as_secs();
    let before = sinks.metric("tributary_sink_records_written_total").await;
    let total = format!("sum(tributary_sink_records_written_total{{namespace=\"{tenant}\"}})");
    let (more, rate) = wait_until("the sinks to write 1,000 more records with kafka-3 down", PANELS_WAIT, || async {
        let now = value(&total).await?.unwrap_or(0.0);
        let rate = value(&written.expr).await?.unwrap_or(0.0);
        if now >= before + 1000.0 && rate > 0.0 { Ok((now - before, rate)) } else { Err(format!("{now}, {rate}/s")) }
    })
    .await;
    drop(restart);
    let started = Instant::now();
    wait_brokers(brokers, 3.0, jmx).await;
    println!(
        "brokers 3 -> 2 ({two_after} s after kafka-3 stopped) -> 3 ({} s after it started); with it down the sinks \
         wrote {more} more records, the panel reading {rate:.0}/s",
        started.elapsed().as_secs()
    );

    // 3. An alert for real: Cassandra stopped, the operator's breaker opens, the alert fires.
    wait_until(&format!("{ALERT} inactive before Cassandra stops"), Duration::from_secs(90), || async {
        let (state, active) = (rule_state(&group).await?, active_alerts().await?);
        if state == "inactive" && active.is_empty() { Ok(()) } else { Err(format!("{state}; active: {active:?}")) }
    })
    .await;
    let restart = StartOnDrop("cassandra");
    stack_ctl(&["stop", "cassandra"]);
    let stopped = Instant::now();
    wait_until(&format!("{ALERT} (for: 15s) to fire"), Duration::from_secs(150), || async {
        let (state, active) = (rule_state(&group).await?, active_alerts().await?);
        if state == "firing" && active.iter().any(|s| s == "\"firing\"") {
            Ok(())
        } else {
            Err(format!("{state}; active: {active:?}"))
        }
    })
    .await;
    let fired_after = stopped.elapsed().as_secs();
    // The chart's own rule, the same expression with its real 5 minutes, is pending meanwhile.
    wait_until(&format!("the chart's {ALERT} to be pending"), Duration::from_secs(30), || async {
        let state = rule_state("tributary-operator").await?;
        if state == "pending" { Ok(()) } else { Err(state) }
    })
    .await;
    drop(restart);
    let started = Instant::now();
    wait_until(&format!("{ALERT} to resolve"), Duration::from_secs(150), || async {
        let (state, active) = (rule_state(&group).await?, active_alerts().await?);
        if state == "inactive" && active.is_empty() { Ok(()) } else { Err(format!("{state}; active: {active:?}")) }
    })
    .await;
    println!(
        "{ALERT} fired {fired_after} s after Cassandra stopped and resolved {} s after it was started again",
        started.elapsed().as_secs()
    );

    // 4. The panels that needed a failure.
    for (title, label, value) in AFTER_THE_OUTAGE {
        let panels: Vec<&Panel> = later.iter().copied().filter(|p| p.title == *title).collect();
        wait_panels(&panels, &[(label, value)], &format!("panel \"{title}\" to show {label}=\"{value}\"")).await;
    }
    println!(
        "{} panel queries answered after the outage; the whole test took {} s",
        later.len(),
        start.elapsed().as_secs()
    );
    // The producer stops before the Tenant goes.
    producing.0.abort();
    let _ = (&mut producing.0).await;
}

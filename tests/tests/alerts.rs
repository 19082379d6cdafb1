//! Tributary's alerts (charts/tributary/alerts/tributary.rules.yaml): promtool accepts the
//! rules and their unit tests (alerts/tests.yaml) pass, every alert is tested both firing
//! and held back and carries a `for:` bound or a time in its expression, a severity and
//! annotations; the metrics they read are the ones the operator and the sinks export; and
//! the chart ships the same file as a
//! PrometheusRule only when asked. promtool is the stack's pinned build (`stack.sh tool
//! promtool`); none of these needs the stack running.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tributary_tests::{helm, repo_root, try_run};

const RULES: &str = "charts/tributary/alerts/tributary.rules.yaml";
const TESTS: &str = "charts/tributary/alerts/tests.yaml";

fn promtool() -> String {
    let stack = repo_root().join("stack/scripts/stack.sh");
    try_run(stack.to_str().unwrap(), &["tool", "promtool"], None)
        .unwrap_or_else(|e| panic!("building promtool failed:\n{e}"))
        .trim()
        .to_string()
}

fn yaml_file(path: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"))
}

/// Every alerting rule of the rules file.
fn alert_rules() -> Vec<Value> {
    let rules = yaml_file(RULES);
    let groups = rules["groups"].as_array().expect("groups");
    groups
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").clone())
        .filter(|r| r["alert"].is_string())
        .collect()
}

/// The `tributary_*` metric names in a PromQL expression (the counters with their `_total`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("tributary_") {
        let word: String =
            rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect();
        rest = &rest[at + word.len()..];
        names.insert(word);
    }
    names
}

/// Every sample name the operator's and a sink's `/metrics` can carry, read from their
/// descriptors (`# TYPE name kind`): counters as `name_total`, histograms with their
/// `_bucket`, `_sum` and `_count`. A labelled family shows only once it has a series, so
/// each gets one, as a running operator's do.
fn exported_metrics() -> BTreeSet<String> {
    let operator = tributary::metrics::Metrics::default();
    drop(operator.reconcile("Tenant"));
    operator.failure("Tenant", "kafka");
    operator.resync("Tenant", 0);
    operator.external_write("kafka", "CreateTopics");
    operator.external_call("kafka", "CreateTopics", 0.1);
    operator.object_ready("Tenant", None, "water", true);
    operator.unreachable("kafka");
    operator.previous_credentials("water", Some(0));
    operator.tenant_usage("water", &Default::default());
    let text = operator.encode() + &tributary_sink::metrics::SinkMetrics::default().encode();
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(descriptor) = line.strip_prefix("# TYPE ") else { continue };
        let (name, kind) = descriptor.split_once(' ').expect("# TYPE name kind");
        match kind {
            "counter" => drop(names.insert(format!("{name}_total"))),
            "histogram" => names.extend(["_bucket", "_sum", "_count"].map(|s| format!("{name}{s}"))),
            _ => drop(names.insert(name.to_string())),
        }
    }
    assert!(names.contains("tributary_leader") && names.contains("tributary_sink_lag"), "{text}");
    names
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    let promtool = promtool();
    let checked = try_run(&promtool, &["check", "rules", RULES], None)
        .unwrap_or_else(|e| panic!("promtool check rules refused {RULES}:\n{e}"));
    let count = alert_rules().len();
    assert!(checked.contains(&format!("SUCCESS: {count} rules found")), "{checked}");
    let tested = try_run(&promtool, &["test", "rules", TESTS], None)
        .unwrap_or_else(|e| panic!("promtool test rules failed (expected against received alerts):\n{e}"));
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn every_alert_is_bounded_labelled_explained_and_tested_firing_and_not_firing() {
    let tests = yaml_file(TESTS);
    // alert name -> (a test expects it to fire, a test expects it not to)
    let mut tested: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for test in tests["tests"].as_array().expect("tests") {
        for case in test["alert_rule_test"].as_array().into_iter().flatten() {
            let name = case["alertname"].as_str().expect("alertname").to_string();
            let fires = case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
            let entry = tested.entry(name).or_default();
            if fires {
                entry.0 = true;
                for alert in case["exp_alerts"].as_array().unwrap() {
                    assert!(
                        alert["exp_annotations"]["summary"].is_string()
                            && alert["exp_annotations"]["description"].is_string(),
                        "{TESTS}: a firing case of {} must check the summary and description it renders",
                        case["alertname"]
                    );
                }
            } else {
                entry.1 = true;
            }
        }
    }
    let rules = alert_rules();
    assert!(rules.len() >= 11, "{RULES}: {rules:?}");
    for rule in &rules {
        let name = rule["alert"].as_str().unwrap();
        let expr = rule["expr"].as_str().unwrap();
        // A bound: a `for:` duration, or a condition on time itself (the credentials' expiry).
        assert!(rule["for"].is_string() || expr.contains("time()"), "{name} has no `for:` bound");
        let severity = rule["labels"]["severity"].as_str();
        assert!(matches!(severity, Some("warning" | "critical")), "{name}: severity {severity:?}");
        // What they render (the object's name, what to do) is checked by the unit tests.
        for annotation in ["summary", "description"] {
            assert!(
                rule["annotations"][annotation].as_str().is_some_and(|t| !t.is_empty()),
                "{name} has no {annotation}"
            );
        }
        assert_eq!(tested.get(name), Some(&(true, true)), "{TESTS} must test {name} both firing and not firing");
    }
    let names: BTreeSet<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
    let untested: Vec<&String> = tested.keys().filter(|t| !names.contains(t.as_str())).collect();
    assert!(untested.is_empty(), "{TESTS} tests alerts that {RULES} does not have: {untested:?}");
}

#[test]
fn the_alerts_read_the_metrics_the_operator_and_the_sinks_export() {
    let exported = exported_metrics();
    let mut read = BTreeSet::new();
    for rule in alert_rules() {
        read.extend(metric_names(rule["expr"].as_str().unwrap()));
    }
    let missing: Vec<&String> = read.iter().filter(|name| !exported.contains(*name)).collect();
    assert!(
        missing.is_empty(),
        "{RULES} reads {missing:?}, which neither the operator nor a sink exports: {exported:?}"
    );
}

/// The documents of `helm template` whose kind is PrometheusRule.
fn rendered_prometheus_rules(extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["template", "tributary", "charts/tributary", "-n", "tributary-system"];
    args.extend(extra);
    let rendered = try_run(helm(), &args, None).unwrap_or_else(|e| panic!("{e}"));
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&rendered).unwrap_or_else(|e| panic!("helm template renders invalid YAML: {e}"));
    docs.into_iter().filter(|d| d["kind"] == "PrometheusRule").collect()
}

#[test]
fn the_chart_ships_the_rules_file_as_a_prometheus_rule_only_when_enabled() {
    assert!(rendered_prometheus_rules(&[]).is_empty(), "metrics.prometheusRule.enabled defaults to false");
    let rules = rendered_prometheus_rules(&[
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--set",
        "metrics.prometheusRule.labels.release=kube-prometheus-stack",
    ]);
    assert_eq!(rules.len(), 1, "{rules:?}");
    let rule = &rules[0];
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["metadata"]["namespace"], "tributary-system");
    assert_eq!(rule["metadata"]["labels"]["release"], "kube-prometheus-stack");
    // The same rules, unchanged: what promtool tested is what the Prometheus Operator loads.
    assert_eq!(rule["spec"], yaml_file(RULES), "the PrometheusRule's spec must be {RULES} as it is");
    // The schema knows the new keys and refuses a mistyped one by name.
    let refused =
        try_run(helm(), &["template", "t", "charts/tributary", "--set", "metrics.prometheusRule.enable=true"], None)
            .expect_err("a mistyped key must be refused");
    assert!(refused.contains("/metrics/prometheusRule"), "{refused}");
}

"""Turns bench/results/samples.jsonl (one JSON line per measurement, written by
tributary-bench) into bench/results/report.{md,json} and chart.svg: per comparison the median
and min-max of each side, and the ratios the issue asks for, each against a baseline measured
in the same run."""

import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

results = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
samples = [json.loads(line) for line in (results / "samples.jsonl").read_text().splitlines() if line.strip()]


def side(bench, name, key="rate"):
    values = [s[key] for s in samples if s["bench"] == bench and s["side"] == name and s.get(key) is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def ratio(a, b, target, better, what):
    if a is None or b is None:
        return {"what": what, "value": None, "target": target, "met": None}
    value = a["median"] / b["median"]
    met = None if target is None else (value >= target if better == "higher" else value <= target)
    return {"what": what, "value": value, "target": target, "better": better, "met": met,
            "range": [a["min"] / b["max"], a["max"] / b["min"]]}


def paired(bench, a, b, target, what):
    """a ÷ b run by run: the two sides of a run ran one right after the other (the order
    alternates between runs), so each ratio compares them on an equally warm stack. Median and
    min-max of those ratios."""
    rates = lambda name: {s["rep"]: s["rate"] for s in samples if s["bench"] == bench and s["side"] == name}
    ra, rb = rates(a), rates(b)
    values = [ra[rep] / rb[rep] for rep in sorted(ra) if rep in rb]
    if not values:
        return {"what": what, "value": None, "target": target, "met": None}
    value = statistics.median(values)
    return {"what": what, "value": value, "target": target, "better": "higher", "met": value >= target,
            "range": [min(values), max(values)], "runs": [round(v, 3) for v in values]}


def inverse(s):
    """A side whose smaller value is better (peak RSS), as 1/value, so ratio() reads 'times less'."""
    return None if s is None else {"median": 1 / s["median"], "min": 1 / s["max"], "max": 1 / s["min"], "n": s["n"]}


sink = side("sink", "tributary-sink")
raw = side("sink", "raw-cassandra-loop")
consumer = side("sink", "bare-rdkafka-consumer")
python = side("sink", "python-seed-consumer")
connect = side("sink", "kafka-connect-camel-cassandra")
raw_superuser = side("sink", "raw-cassandra-loop-superuser")
for s_ in samples:  # records per CPU-second, where the side reports its CPU
    if s_.get("cpu_seconds"):
        s_["per_cpu_second"] = s_["records"] / s_["cpu_seconds"]
sink_per_cpu = side("sink", "tributary-sink", "per_cpu_second")
connect_per_cpu = side("sink", "kafka-connect-camel-cassandra", "per_cpu_second")
connect_rss = side("sink", "kafka-connect-camel-cassandra", "peak_rss_kib")
topics_op = side("topics", "operator-topic-objects", "seconds")
topics_raw = side("topics", "raw-batched-createtopics", "seconds")
topics_api = side("topics", "api-creates-alone", "seconds")
def plus(a, b):
    return None if a is None or b is None else {k: a[k] + b[k] for k in ("median", "min", "max")} | {"n": a["n"]}


# The operator's own share: its time ÷ (the API server's creates alone + raw CreateTopics).
topics_floor = plus(topics_api, topics_raw)
# The floor under any operator that guards deletion with a finalizer and reports Ready: the
# same creates, each followed by a metadata patch and a status patch, plus raw CreateTopics.
topics_writes = side("topics", "api-creates-and-required-writes", "seconds")
topics_writes_floor = plus(topics_writes, topics_raw)
onboarding = sorted(s["seconds"] for s in samples if s["bench"] == "onboarding")
onboarding_raw = sorted(s["seconds"] for s in samples if s["bench"] == "onboarding-raw")
steady = [s for s in samples if s["bench"] == "steady" and s["side"] == "operator-per-resync"]
freshness = [s for s in samples if s["bench"] == "steady" and s["side"] == "sink-status-freshness"]
faults = [s for s in samples if s["bench"] == "faults"]
sink_cpu = side("sink", "tributary-sink", "cpu_seconds")
sink_rss = side("sink", "tributary-sink", "peak_rss_kib")
python_rss = side("sink", "python-seed-consumer", "peak_rss_kib")


def pct(values, p):
    if not values:
        return None
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


ratios = [
    ratio(sink, raw, 0.85, "higher", "1. sink records/s ÷ raw Cassandra loop records/s (target ≥ 0.85)"),
    paired("sink", "tributary-sink", "raw-cassandra-loop", 0.85,
           "1b. the same, run by run (each run's sink ÷ the raw loop run next to it; target ≥ 0.85)"),
    ratio(sink, consumer, None, "higher", "2. sink records/s ÷ bare rdkafka consumer records/s (reported)"),
    ratio(sink, python, 10, "higher", "3. sink records/s ÷ seeds' Python consumer records/s (target ≥ 10)"),
    ratio(sink, connect, 2, "higher", "4a. sink records/s ÷ Kafka Connect + Camel Cassandra sink records/s (target ≥ 2)"),
    ratio(sink_per_cpu, connect_per_cpu, 5, "higher",
          "4b. sink records per CPU-second ÷ Kafka Connect's (target ≥ 5)"),
    ratio(inverse(sink_rss), inverse(connect_rss), 10, "higher",
          "4c. Kafka Connect peak RSS ÷ sink peak RSS (target ≥ 10)"),
    ratio(topics_op, topics_raw, 1.5, "lower", "5. time to {:,} Topics Ready ÷ raw batched CreateTopics (target ≤ 1.5)".format(
        next((s["records"] for s in samples if s["bench"] == "topics"), 0))),
    ratio(topics_op, topics_floor, 1.5, "lower",
          "5b. the same ÷ (the Topic objects' API creates alone + raw CreateTopics): the operator's own share (target ≤ 1.5)"),
    ratio(topics_op, topics_writes_floor, None, "lower",
          "5c. the same ÷ (the creates, each with a metadata patch and a status patch, + raw CreateTopics): the share beyond the writes a finalizer and a Ready condition require (reported)"),
]

def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip().splitlines()[0]
    except Exception:
        return "unknown"

machine = {
    "platform": platform.platform(),
    "cpus": __import__("os").cpu_count(),
    "memory_gib": round(int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))) / 1048576, 1),
    "rustc": version(["rustc", "--version"]),
    "java": version(["java", "-version"]) or "see stack.env",
    "stack": "Kafka 4.1.1 (3 brokers, KRaft, SASL/SCRAM), Cassandra 5.0.6, kube-apiserver v1.35.4",
}
report = {"machine": machine, "sides": {
    "tributary-sink": sink, "raw-cassandra-loop": raw, "raw-cassandra-loop-superuser": raw_superuser, "bare-rdkafka-consumer": consumer,
    "python-seed-consumer": python, "kafka-connect-camel-cassandra": connect,
    "sink-records-per-cpu-second": sink_per_cpu, "connect-records-per-cpu-second": connect_per_cpu,
    "connect-peak-rss-kib": connect_rss, "topics-operator-seconds": topics_op, "topics-raw-seconds": topics_raw, "topics-api-seconds": topics_api,
    "topics-api-required-writes-seconds": topics_writes,
    "sink-cpu-seconds": sink_cpu, "sink-peak-rss-kib": sink_rss, "python-peak-rss-kib": python_rss},
    "ratios": ratios,
    "onboarding": {"tenants": len(onboarding), "p50_seconds": pct(onboarding, 50), "p99_seconds": pct(onboarding, 99),
                   "raw_p50_seconds": pct(onboarding_raw, 50), "raw_p99_seconds": pct(onboarding_raw, 99)},
    "steady": steady, "freshness": freshness, "faults": faults, "samples": len(samples)}
(results / "report.json").write_text(json.dumps(report, indent=2))

fmt = lambda v, d=2: "—" if v is None else f"{v:,.{d}f}"
lines = ["# Tributary benchmark report", "",
         f"Machine: {machine['platform']}, {machine['cpus']} cores, {machine['memory_gib']} GiB; {machine['rustc']}; "
         f"{machine['stack']}. Every side ran alternately in the same run on the same stack.", "",
         "| comparison | measured (median) | range | target | met |", "|---|---|---|---|---|"]
for r in ratios:
    met = "—" if r["met"] is None else ("yes" if r["met"] else "**no**")
    rng = "—" if r.get("range") is None else f"{r['range'][0]:.2f}–{r['range'][1]:.2f}"
    lines.append(f"| {r['what']} | {fmt(r['value'])} | {rng} | {fmt(r['target'], 2) if r['target'] else 'reported'} | {met} |")
lines += ["", "| side | records/s median | min–max | runs |", "|---|---|---|---|"]
for name, s in [("tributary-sink (1 replica)", sink), ("raw Cassandra loop (tenant's login)", raw),
                ("raw Cassandra loop (superuser)", raw_superuser), ("bare rdkafka consumer", consumer),
                ("seeds' Python consumer", python), ("Kafka Connect + Camel Cassandra sink (1 task)", connect)]:
    if s:
        lines.append(f"| {name} | {s['median']:,.0f} | {s['min']:,.0f}–{s['max']:,.0f} | {s['n']} |")
if topics_op and topics_raw:
    n = next(s["records"] for s in samples if s["bench"] == "topics")
    lines += ["", f"Topic provisioning ({n} topics): operator {topics_op['median']:.1f} s "
              f"({n / topics_op['median']:.0f} topics/s), raw batched CreateTopics {topics_raw['median']:.1f} s"
              + (f", the Topic objects' API creates alone (no operator running) {topics_api['median']:.1f} s" if topics_api else "")
              + (f", the creates each with a metadata patch and a status patch {topics_writes['median']:.1f} s" if topics_writes else "")
              + ". "
              "Strimzi's published figure: 10,000 topic events in under 10 minutes (≈ 17 topics/s)."]
if sink_cpu and sink_rss:
    others = [f"{n}: {r['median'] / 1024:,.0f} MiB" for n, r in [("Python consumer", python_rss),
                                                                ("Kafka Connect", connect_rss)] if r]
    lines += ["", f"Sink resources: {sink_cpu['median']:.1f} CPU-seconds per run, peak RSS {sink_rss['median'] / 1024:.0f} MiB"
              + (f" ({', '.join(others)})" if others else "") + "."]
if sink_per_cpu and connect_per_cpu:
    lines += ["", f"Records per CPU-second (from the first row written to the last): sink {sink_per_cpu['median']:,.0f}, "
              f"Kafka Connect {connect_per_cpu['median']:,.0f}. Kafka Connect 4.1.1 standalone with the JVM options "
              "of connect-standalone.sh, camel-kafka-connector 0.11.0 (its newest release on Maven Central; the "
              "per-component connector jars are not published there, so it runs the core's CamelSinkConnector with "
              "camel-cassandraql 3.11.1; bench/connect/), Kafka's Flatten + ReplaceField SMTs, INSERT ... JSON."]
if onboarding:
    lines += ["", f"Tenant onboarding ({len(onboarding)} Tenants applied at once): p50 {pct(onboarding, 50):.1f} s, "
              f"p99 {pct(onboarding, 99):.1f} s from apply to Ready (user, ACLs, quotas, keyspace, role, Secret)"
              + (f"; the same Kafka and Cassandra writes made directly, 16 tenants at a time (the floor): "
                 f"p50 {pct(onboarding_raw, 50):.1f} s, p99 {pct(onboarding_raw, 99):.1f} s, so the operator's "
                 f"p99 is {pct(onboarding, 99) / pct(onboarding_raw, 99):.2f}× the floor's" if onboarding_raw else "")
              + " (target p99 < 5 s)."]
for s in steady:
    rss = s['peak_rss_kib'] / 1024
    lines += ["", f"Steady state: {s['note']}; operator {fmt(s['cpu_seconds'])} CPU-seconds per resync, "
              f"peak RSS {rss:.0f} MiB (target < 64 MiB: {'met' if rss < 64 else '**not met**'})."]
for s in freshness:
    lines += ["", f"A sink's status at this scale: {s['note']}: {s['seconds']:.1f} s."]
for s in faults:
    lines += ["", f"Delivery under faults ({s['note']}): {s['records']:,} rows delivered, {s['lost']} lost, "
              f"{s['duplicates']:,} duplicate writes ({s['duplicate_ratio']:.4%} of the records delivered; rows are "
              "keyed, so a duplicate overwrites the same row)."]
if topics_op:
    lines += ["", "Where the topic time goes: every Topic is an API create, a finalizer patch, one reconcile "
              "(DescribeTopics, then CreateTopics, each batched across concurrent reconciles), a status patch "
              "and an event. "
              "Comparison 5c divides by the creates each followed by a metadata patch and a status patch (the "
              "writes any operator with a finalizer and a Ready condition makes) plus raw CreateTopics: the rest is "
              "the operator's own. Most of it is Kafka's: CreateTopics in the batches 16 concurrent reconciles "
              "form (a few topics each) cost far more per topic than raw's batches of 100 (measured in "
              "bench/HISTORY.md, 2026-12-05), on the two cores the API server and the brokers share."]
(results / "report.md").write_text("\n".join(lines) + "\n")

# A bar chart of records/s into Cassandra per side (SVG, no plotting library needed); the bare
# consumer writes nothing and is orders of magnitude off the scale, so it is in the table only.
bars = [(n, s["median"]) for n, s in [("tributary-sink", sink), ("raw Cassandra loop", raw),
        ("Python consumer", python), ("Kafka Connect + Camel", connect)] if s]
if bars:
    top = max(v for _, v in bars)
    h, w = 40 * len(bars) + 40, 640
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="13">',
           f'<text x="10" y="20" font-weight="bold">records/s into one Cassandra table, median of the runs (same stack, same run)</text>']
    for i, (name, v) in enumerate(bars):
        y = 35 + 40 * i
        bw = max(2, int(380 * v / top))
        svg += [f'<text x="10" y="{y + 18}">{name}</text>',
                f'<rect x="200" y="{y + 4}" width="{bw}" height="20" fill="#3b82f6"/>',
                f'<text x="{205 + bw}" y="{y + 18}">{v:,.0f}</text>']
    svg.append("</svg>")
    (results / "chart.svg").write_text("\n".join(svg) + "\n")
print((results / "report.md").read_text())

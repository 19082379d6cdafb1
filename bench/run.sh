#!/usr/bin/env bash
# `make bench` / `make bench-quick`: every comparison of tributary-bench on the real local
# stack, release binaries, then bench/report.py → bench/results/report.{md,json}, chart.svg.
#   bench/run.sh full    200,000 records × 5 runs per side (Python 20,000, Connect 40,000),
#                        1,000 topics × 5, 100 tenants (1,000 topics, 100 sinks), faults at
#                        2 × 500,000 records
#   bench/run.sh quick   a smoke run of a few minutes: 50,000 records × 2, 100 topics × 2, 10 tenants
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
MODE=${1:-full}
KAFKA_CONNECT_VERSION=4.1.1 # the stack's Kafka version (stack/maven/kafka/pom.xml)
step() { printf '\n\033[1m[bench]\033[0m %s\n' "$*" >&2; }
case $MODE in
  full) RECORDS=200000; PY=20000; CONNECT=40000; REPS=5; TOPICS=1000; TENANTS=100; FAULT=500000 ;;
  quick) RECORDS=50000; PY=5000; CONNECT=10000; REPS=2; TOPICS=100; TENANTS=10; FAULT=50000 ;;
  *) echo "usage: bench/run.sh full|quick" >&2; exit 2 ;;
esac
# Any size can be overridden, e.g. BENCH_REPS=5 BENCH_TOPICS=200 bench/run.sh quick.
RECORDS=${BENCH_RECORDS:-$RECORDS}; PY=${BENCH_PYTHON_RECORDS:-$PY}; REPS=${BENCH_REPS:-$REPS}
CONNECT=${BENCH_CONNECT_RECORDS:-$CONNECT}; FAULT=${BENCH_FAULT_RECORDS:-$FAULT}
TOPICS=${BENCH_TOPICS:-$TOPICS}; TENANTS=${BENCH_TENANTS:-$TENANTS}
step "release build (cargo build --release --workspace --bins)"
cargo build --release --locked --workspace --bins
step "the seeds' Python consumer: a venv with bench/requirements.txt"
[ -x bench/.venv/bin/python ] || python3 -m venv bench/.venv
bench/.venv/bin/pip install -q -r bench/requirements.txt
step "Kafka Connect $KAFKA_CONNECT_VERSION + the Camel Cassandra sink, from Maven Central (first time only)"
CACHE=${TRIBUTARY_CACHE:-$ROOT/.cache}
export TRIBUTARY_CONNECT_WORKER=$CACHE/connect-worker-$KAFKA_CONNECT_VERSION
export TRIBUTARY_CONNECT_PLUGINS=$CACHE/connect-plugins
fetch_classpath() { # $1 = pom folder, $2 = destination
  [ -f "$2/.complete" ] && return 0
  rm -rf "$2"
  mvn -B -q -f "bench/connect/$1/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$2" \
    || { echo "Maven could not resolve bench/connect/$1; run it without -q to see which artifact failed" >&2; exit 1; }
  touch "$2/.complete"
}
fetch_classpath worker "$TRIBUTARY_CONNECT_WORKER"
# A plugin is a folder under plugin.path holding all its jars.
fetch_classpath camel-cassandra "$TRIBUTARY_CONNECT_PLUGINS/camel-cassandra-0.11.0"
step "the local stack"
stack/scripts/stack.sh up
eval "$(stack/scripts/stack.sh env)"
# The Lease namespaces of the benchmark's operators go when it ends (as after `make test`).
trap 'kubectl delete namespace -l tributary.dev/test-scratch=true --wait=false >/dev/null || true' EXIT
export TRIBUTARY_BIN_PROFILE=release
OUT=bench/results
mkdir -p "$OUT"
: >"$OUT/samples.jsonl"
step "1-4: sink vs raw Cassandra loop, bare consumer, Python consumer, Kafka Connect ($RECORDS records, $REPS runs each)"
target/release/tributary-bench sink --records "$RECORDS" --python-records "$PY" --connect-records "$CONNECT" --reps "$REPS" --out "$OUT/samples.jsonl"
step "5: $TOPICS Topic objects vs raw batched CreateTopics ($REPS runs each)"
target/release/tributary-bench topics --count "$TOPICS" --reps "$REPS" --out "$OUT/samples.jsonl"
step "7 and 6: $TENANTS tenants apply-to-Ready, then the operator's steady state"
target/release/tributary-bench tenants --count "$TENANTS" --out "$OUT/samples.jsonl"
step "8: delivery under faults: sink_faults at $FAULT records per run (a broker stopped, then Cassandra for 30 s)"
TRIBUTARY_FAULT_RECORDS=$FAULT TRIBUTARY_FAULT_RATE=5000 TRIBUTARY_BENCH_OUT="$ROOT/$OUT/samples.jsonl" \
  cargo test --release --locked -p tributary-tests --test sink_faults -- --nocapture
step "report"
bench/.venv/bin/python bench/report.py "$OUT"

#!/usr/bin/env bash
# `make bench` / `make bench-quick`: every comparison of tributary-bench on the real local
# stack, release binaries, then bench/report.py → bench/results/report.{md,json}, chart.svg.
#   bench/run.sh full    200,000 records × 5 runs per side, 1,000 topics × 5, 100 tenants
#   bench/run.sh quick   a smoke run of a few minutes: 50,000 records × 2, 100 topics × 2, 10 tenants
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
MODE=${1:-full}
step() { printf '\n\033[1m[bench]\033[0m %s\n' "$*" >&2; }
case $MODE in
  full) RECORDS=200000; PY=20000; REPS=5; TOPICS=1000; TENANTS=100 ;;
  quick) RECORDS=50000; PY=5000; REPS=2; TOPICS=100; TENANTS=10 ;;
  *) echo "usage: bench/run.sh full|quick" >&2; exit 2 ;;
esac
# Any size can be overridden, e.g. BENCH_REPS=5 BENCH_TOPICS=200 bench/run.sh quick.
RECORDS=${BENCH_RECORDS:-$RECORDS}; PY=${BENCH_PYTHON_RECORDS:-$PY}; REPS=${BENCH_REPS:-$REPS}
TOPICS=${BENCH_TOPICS:-$TOPICS}; TENANTS=${BENCH_TENANTS:-$TENANTS}
step "release build (cargo build --release --workspace --bins)"
cargo build --release --locked --workspace --bins
step "the seeds' Python consumer: a venv with bench/requirements.txt"
[ -x bench/.venv/bin/python ] || python3 -m venv bench/.venv
bench/.venv/bin/pip install -q -r bench/requirements.txt
step "the local stack"
stack/scripts/stack.sh up
eval "$(stack/scripts/stack.sh env)"
export TRIBUTARY_BIN_PROFILE=release
OUT=bench/results
mkdir -p "$OUT"
: >"$OUT/samples.jsonl"
step "1-3: sink vs raw Cassandra loop, bare consumer, Python consumer ($RECORDS records, $REPS runs each)"
target/release/tributary-bench sink --records "$RECORDS" --python-records "$PY" --reps "$REPS" --out "$OUT/samples.jsonl"
step "5: $TOPICS Topic objects vs raw batched CreateTopics ($REPS runs each)"
target/release/tributary-bench topics --count "$TOPICS" --reps "$REPS" --out "$OUT/samples.jsonl"
step "7 and 6: $TENANTS tenants apply-to-Ready, then the operator's steady state"
target/release/tributary-bench tenants --count "$TENANTS" --out "$OUT/samples.jsonl"
step "report"
bench/.venv/bin/python bench/report.py "$OUT"

#!/usr/bin/env bash
# `make demo`: the whole pipeline of the seeds — the two seed tenants (water, bts) with their
# topics and sinks from examples/, seed data produced with each tenant's own credentials,
# every record streamed into Cassandra.
#
#   With Docker and k3d: the k3d path (make k3d-create kafka-create cassandra-create
#   operator-install), examples applied to that cluster.
#   Without them (or DEMO_MODE=local): the same pipeline on the local real stack — the
#   operator as a process, the sinks as processes started from the Deployments it wrote.
#
# DEMO_RECORDS (default 20000) records per tenant. `make demo-down` stops what it started.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
STATE=${TRIBUTARY_STATE:-$ROOT/.stack}
RECORDS=${DEMO_RECORDS:-20000}
MODE=${DEMO_MODE:-auto}
n=0
step() { n=$((n + 1)); printf '\n\033[1m[demo %d/%d]\033[0m %s\n' "$n" "$TOTAL" "$*" >&2; }
die() { printf '\033[31m[demo] error:\033[0m %s\n' "$*" >&2; exit 1; }

if [ "$MODE" = auto ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then MODE=k3d; else MODE=local; fi
fi

wait_for() { # what timeout command...
  local what=$1 timeout=$2 t0; shift 2; t0=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) - t0 < timeout )) || die "$what did not happen within ${timeout}s; see 'kubectl describe' of the object and $STATE/logs/"
    sleep 2
  done
}

apply_examples() {
  step "applying the seed tenants, then their topics and sinks (examples/)"
  kubectl apply -f examples/water/tenant.yaml -f examples/bts/tenant.yaml
  # Provisioned once the credentials Secret exists (Ready also waits for the tenant's sinks to run).
  wait_for "Tenant water's Secret tributary-credentials" 180 kubectl get secret tributary-credentials -n water
  wait_for "Tenant bts's Secret tributary-credentials" 180 kubectl get secret tributary-credentials -n bts
  kubectl apply -f examples/water/topic.yaml -f examples/bts/topic.yaml
  kubectl apply -f examples/water/sink.yaml -f examples/bts/sink.yaml
  kubectl wait --for=condition=Ready --timeout=180s -n water topic/data
  kubectl wait --for=condition=Ready --timeout=180s -n bts topic/data
  kubectl wait --for=condition=MappingValid --timeout=180s -n water cassandrasink/readings
  kubectl wait --for=condition=MappingValid --timeout=180s -n bts cassandrasink/alarms
}

# $1 tenant, $2 dataset: tributary-seed with the tenant's own Secret, as its team would run it.
seed_env() {
  local ns=$1 key
  for key in kafka.bootstrap.servers kafka.username kafka.password; do
    kubectl get secret tributary-credentials -n "$ns" -o "jsonpath={.data.${key//./\\.}}" | base64 -d
    echo
  done
}

if [ "$MODE" = local ]; then
  TOTAL=7
  echo "[demo] no Docker daemon (or DEMO_MODE=local): running the pipeline on the local real stack" >&2
  step "starting the local stack (kube-apiserver + etcd, 3 Kafka brokers, Cassandra)"
  stack/scripts/stack.sh up
  eval "$(stack/scripts/stack.sh env)"
  step "building tributary-operator, tributary-sink, tributary-seed, tributary-local"
  cargo build --locked --workspace --bins
  step "installing the CRDs and starting the operator (log: $STATE/logs/operator.out)"
  make --no-print-directory install-crds >/dev/null
  kubectl get namespace tributary-system >/dev/null 2>&1 || kubectl create namespace tributary-system
  mkdir -p "$STATE/run" "$STATE/logs"
  if ! { [ -f "$STATE/run/operator.pid" ] && kill -0 "$(cat "$STATE/run/operator.pid")" 2>/dev/null; }; then
    TRIBUTARY_HTTP_ADDR=127.0.0.1:18080 POD_NAME=demo-operator setsid target/debug/tributary-operator \
      >>"$STATE/logs/operator.out" 2>&1 </dev/null &
    echo $! >"$STATE/run/operator.pid"
  fi
  wait_for "the operator's /readyz" 60 curl -fsS http://127.0.0.1:18080/readyz
  apply_examples
  step "starting the sinks as local processes from the Deployments the operator wrote (log: $STATE/logs/sinks.out)"
  if ! { [ -f "$STATE/run/sinks.pid" ] && kill -0 "$(cat "$STATE/run/sinks.pid")" 2>/dev/null; }; then
    : >"$STATE/logs/sinks.out"
    setsid target/debug/tributary-local sinks water bts >>"$STATE/logs/sinks.out" 2>&1 </dev/null &
    echo $! >"$STATE/run/sinks.pid"
  fi
  wait_for "the sink processes" 120 grep -q "sink processes running" "$STATE/logs/sinks.out"
  grep '^\[local\]' "$STATE/logs/sinks.out" | tail -n 4 >&2
  total_rows() { target/debug/tributary-local rows water bts | awk 'NR > 1 && $3 ~ /^[0-9]+$/ { sum += $3 } END { print sum + 0 }'; }
  before=$(total_rows)
  step "producing $RECORDS records per tenant with tributary-seed (1 in 1000 malformed: they go to the dead-letter topic)"
  for pair in water:water bts:bts; do
    ns=${pair%%:*}
    mapfile -t creds < <(seed_env "$ns")
    KAFKA_BOOTSTRAP=${creds[0]} KAFKA_USERNAME=${creds[1]} KAFKA_PASSWORD=${creds[2]} \
      target/debug/tributary-seed --dataset "${pair##*:}" --topic "$ns.data" --count "$RECORDS" \
      --malformed-every 1000 --run "demo-$(date +%s)" | tail -n 1
  done
  step "waiting until both sinks have written everything, then the result"
  want=$(( before + 2 * (RECORDS - RECORDS / 1000) ))
  drained() { [ "$(total_rows)" -ge "$want" ]; }
  wait_for "all $(( want - before )) well-formed records in Cassandra" 600 drained
  kubectl get tenants,topics,cassandrasinks -A
  echo "(no kubelet here: the sinks run as local processes, so their Deployments report 0 ready replicas)"
  echo
  target/debug/tributary-local rows water bts
  cat >&2 <<EOT

[demo] done: both tenants' records are in Cassandra. Try next:
  eval "\$(make -s stack-env)"
  kubectl get cassandrasink -n water readings -o yaml        # lag, dead letters, consumer group
  kubectl get secret tributary-credentials -n water -o jsonpath='{.data.librdkafka\.properties}' | base64 -d
  kubectl patch topic data -n water --type merge -p '{"spec":{"partitions":6}}'   # grow the topic
  tail -f $STATE/logs/operator.out                            # the operator's JSON log
  make demo-down                                              # stop the operator and the sinks
EOT
else
  TOTAL=7
  step "creating the k3d cluster"; make --no-print-directory k3d-create
  step "Kafka (3 brokers) and Kafka UI"; make --no-print-directory kafka-create
  step "Cassandra"; make --no-print-directory cassandra-create
  step "operator image and chart"; make --no-print-directory operator-install
  apply_examples
  step "producing $RECORDS records per tenant: a tributary-seed Job in each tenant namespace, with the tenant's Secret"
  for pair in water:water bts:bts; do
    ns=${pair%%:*}
    kubectl delete job -n "$ns" seed --ignore-not-found >/dev/null
    kubectl apply -f - <<EOT
apiVersion: batch/v1
kind: Job
metadata: {name: seed, namespace: $ns}
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      securityContext: {runAsNonRoot: true, runAsUser: 65532}
      containers:
      - name: seed
        image: tributary:dev
        imagePullPolicy: Never
        command: [tributary-seed, --dataset, ${pair##*:}, --topic, $ns.data, --count, "$RECORDS", --malformed-every, "1000", --run, demo]
        env:
        - {name: KAFKA_BOOTSTRAP, valueFrom: {secretKeyRef: {name: tributary-credentials, key: kafka.bootstrap.servers}}}
        - {name: KAFKA_USERNAME, valueFrom: {secretKeyRef: {name: tributary-credentials, key: kafka.username}}}
        - {name: KAFKA_PASSWORD, valueFrom: {secretKeyRef: {name: tributary-credentials, key: kafka.password}}}
EOT
  done
  kubectl wait --for=condition=Complete --timeout=600s -n water job/seed
  kubectl wait --for=condition=Complete --timeout=600s -n bts job/seed
  kubectl get tenants,topics,cassandrasinks -A
  for table in water.readings bts.alarms; do
    kubectl exec -n tributary-stack cassandra-0 -- cqlsh -u cassandra -p cassandra -e "SELECT COUNT(*) FROM $table" || true
  done
  cat >&2 <<EOT

[demo] done. Try next:
  kubectl get cassandrasink -n water readings -o yaml   # lag, dead letters, consumer group
  kubectl logs -n water deploy/tributary-sink-readings
  make kafka-ui-port-forward                             # Kafka UI on http://localhost:8080
  make cassandra-cqlsh                                   # SELECT * FROM water.readings LIMIT 10;
  make k3d-delete                                        # remove the cluster
EOT
fi

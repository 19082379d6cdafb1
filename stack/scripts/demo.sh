#!/usr/bin/env bash
# `make demo`: the whole pipeline of the seeds — the two seed tenants (water, bts) with their
# topics and sinks from examples/, seed data produced with each tenant's own credentials,
# every record streamed into Cassandra.
#
#   Where k3d can create a cluster (a Docker daemon that answers and a reachable Docker
#   Hub for the k3s and broker images): the k3d path (make k3d-create kafka-create
#   cassandra-create operator-install), examples applied to that cluster.
#   Otherwise (or DEMO_MODE=local): the same pipeline on the local stack's real node — the
#   image made here and loaded into the node, the operator installed with Helm
#   (values-local.yaml, two replicas), the sinks as the pods of the Deployments it writes.
#
# DEMO_RECORDS (default 20000) records per tenant. `make demo-down` uninstalls the operator.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
STATE=${TRIBUTARY_STATE:-$ROOT/.stack}
RECORDS=${DEMO_RECORDS:-20000}
MODE=${DEMO_MODE:-auto}
n=0
step() { n=$((n + 1)); printf '\n\033[1m[demo %d/%d]\033[0m %s\n' "$n" "$TOTAL" "$*" >&2; }
die() { printf '\033[31m[demo] error:\033[0m %s\n' "$*" >&2; exit 1; }

why="DEMO_MODE=$MODE"
if [ "$MODE" = auto ]; then
  # k3d pulls the k3s, Kafka and Cassandra images from Docker Hub: a daemon alone is not enough.
  if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
    MODE=local why="no Docker daemon answers"
  elif ! curl -s -o /dev/null -m 5 https://registry-1.docker.io/v2/; then
    MODE=local why="Docker runs, but Docker Hub cannot be reached (k3d needs its images)"
  else
    MODE=k3d why="a Docker daemon answers and Docker Hub is reachable"
  fi
fi
echo "[demo] path: $MODE ($why)" >&2
# What a failed wait prints before it stops: each Tenant's conditions and the operator's last
# warnings, so the reason is on screen (CI keeps only the end of the output).
diagnose() {
  {
    echo "[demo] the Tenants' conditions:"
    kubectl get tenants -o jsonpath='{range .items[*]}{.metadata.name}{range .status.conditions[*]}{"\n  "}{.type}={.status} {.reason}: {.message}{end}{"\n"}{end}' 2>&1 | cut -c1-300
    echo "[demo] the operator's last warnings (kubectl logs -n tributary-system -l app.kubernetes.io/component=operator):"
    kubectl logs -n tributary-system -l app.kubernetes.io/component=operator --tail=400 --prefix 2>&1 |
      grep -E 'WARN|ERROR|error|panic' | tail -n 12 | cut -c1-400
  } >&2 || true
}
# A failed kubectl wait (set -e) diagnoses too.
trap 'diagnose' ERR
wait_for() { # what timeout command...
  local what=$1 timeout=$2 t0; shift 2; t0=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) - t0 >= timeout )); then
      diagnose
      die "$what did not happen within ${timeout}s; see 'kubectl describe' of the object and $STATE/logs/"
    fi
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

# A tributary-seed Job in each tenant namespace with the tenant's own Secret, as its team
# would run it; $1 the image.
seed_jobs() {
  step "producing $RECORDS records per tenant: a tributary-seed Job in each tenant namespace, with the tenant's Secret"
  local pair ns
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
      # Tenant namespaces enforce Pod Security "restricted".
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      automountServiceAccountToken: false
      containers:
      - name: seed
        image: $1
        imagePullPolicy: IfNotPresent
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
        command: [tributary-seed, --dataset, ${pair##*:}, --topic, $ns.data, --count, "$RECORDS", --malformed-every, "1000", --run, "demo-$(date +%s)"]
        env:
        - {name: KAFKA_BOOTSTRAP, valueFrom: {secretKeyRef: {name: tributary-credentials, key: kafka.bootstrap.servers}}}
        - {name: KAFKA_USERNAME, valueFrom: {secretKeyRef: {name: tributary-credentials, key: kafka.username}}}
        - {name: KAFKA_PASSWORD, valueFrom: {secretKeyRef: {name: tributary-credentials, key: kafka.password}}}
        - {name: KAFKA_SECURITY_PROTOCOL, valueFrom: {secretKeyRef: {name: tributary-credentials, key: kafka.security.protocol}}}
        - {name: KAFKA_SASL_MECHANISM, valueFrom: {secretKeyRef: {name: tributary-credentials, key: kafka.sasl.mechanism}}}
        - {name: KAFKA_CA_PEM, valueFrom: {secretKeyRef: {name: tributary-credentials, key: kafka.ca.crt, optional: true}}}
EOT
  done
  kubectl wait --for=condition=Complete --timeout=600s -n water job/seed
  kubectl wait --for=condition=Complete --timeout=600s -n bts job/seed
}

all_ready() {
  kubectl wait --for=condition=Ready --timeout=300s tenant/water tenant/bts
  kubectl wait --for=condition=Ready --timeout=300s -n water topic/data cassandrasink/readings
  kubectl wait --for=condition=Ready --timeout=300s -n bts topic/data cassandrasink/alarms
}

if [ "$MODE" = local ]; then
  TOTAL=5
  step "starting the local stack (Kubernetes with one real node, 3 Kafka brokers, Cassandra)"
  stack/scripts/stack.sh up
  eval "$(stack/scripts/stack.sh env)"
  step "building the image (release binaries on a Debian base) and installing the operator with Helm"
  make --no-print-directory operator-install-local
  eval "$(stack/scripts/stack.sh env)"
  kubectl get pods -n tributary-system -o wide
  apply_examples
  rows() { stack/scripts/stack.sh cql "SELECT COUNT(*) FROM $1" 2>/dev/null | tail -n1; }
  total_rows() { echo $(( $(rows water.readings) + $(rows bts.alarms) )); }
  before=$(total_rows)
  seed_jobs "$TRIBUTARY_IMAGE"
  step "waiting until both sinks have written everything, then the result"
  want=$(( before + 2 * (RECORDS - RECORDS / 1000) ))
  drained() { [ "$(total_rows)" -ge "$want" ]; }
  wait_for "all $(( want - before )) well-formed records in Cassandra" 600 drained
  all_ready
  kubectl get tenants,topics,cassandrasinks -A
  kubectl get pods -n water -o wide; kubectl get pods -n bts -o wide
  echo
  for table in water.readings bts.alarms; do echo "$table: $(rows "$table") rows"; done
  cat >&2 <<EOT

[demo] done: both tenants' records are in Cassandra, and everything runs as pods on the node. Try next:
  eval "\$(make -s stack-env)"
  kubectl get cassandrasink -n water readings -o yaml        # lag, dead letters, consumer group
  kubectl get pods -A -o wide                                # the operator and the sinks on the node
  kubectl logs -n water deploy/tributary-sink-readings
  kubectl patch topic data -n water --type merge -p '{"spec":{"partitions":6}}'   # grow the topic
  make demo-down                                             # uninstall the operator (data stays)
EOT
else
  TOTAL=6
  step "creating the k3d cluster"; make --no-print-directory k3d-create
  step "Kafka (3 brokers) and Kafka UI"; make --no-print-directory kafka-create
  step "Cassandra"; make --no-print-directory cassandra-create
  step "operator image and chart"; make --no-print-directory operator-install
  apply_examples
  seed_jobs tributary:dev
  all_ready
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

#!/usr/bin/env bash
# The local stack: a real Kubernetes cluster of one node (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, and a node: containerd, kubelet, kube-proxy,
# CoreDNS),
# three Apache Kafka brokers in KRaft mode with SASL/SCRAM and ACLs, one Apache
# Cassandra node with password authentication, Prometheus scraping the operator, the sinks,
# the brokers and Cassandra (with the chart's alerts), and a schema registry (Apicurio Registry,
# Confluent's API). Everything runs as local processes on the
# node's bridge address (NODE_IP, stack.env); downloads and builds are cached, state and
# logs live in one folder. Needs root (the node's bridge, containerd, the kubelet).
#
#   stack.sh install                 build/download what is missing (idempotent)
#   stack.sh up                      install, then start every component and wait until it answers
#   stack.sh down                    stop every component; no process is left behind
#   stack.sh status                  one line per component
#   stack.sh env                     export lines for KUBECONFIG, KAFKA_*, CASSANDRA_*, PROMETHEUS_URL, SCHEMA_REGISTRY_*
#   stack.sh start|stop COMPONENT..  one component (etcd apiserver kafka-1 kafka-2 kafka-3 cassandra
#                                    containerd kubelet kube-proxy kube-scheduler kube-controller-manager
#                                    coredns prometheus registry,
#                                    or the groups kube, kafka and node); used by fault tests
#   stack.sh freeze|thaw COMPONENT.. SIGSTOP / SIGCONT: the component keeps its sockets but
#                                    never answers (a hung server), then carries on unrestarted
#   stack.sh image BIN_DIR           the tributary image (Debian base + BIN_DIR's binaries),
#                                    loaded into the node (TRIBUTARY_IMAGE in `env`)
#   stack.sh reference-images        stand-ins for k3d/stack's Kafka and Cassandra images, built
#                                    from the same releases and loaded into the node
#   stack.sh leftovers               anything a stopped node left behind (fails if any)
#   stack.sh cql 'QUERY'             run one CQL statement as the admin; prints the first column
#   stack.sh log-dirs PREFIX         bytes, partitions and topics under PREFIX on the brokers' disks,
#                                    read with Kafka's own Admin client
#   stack.sh tool helm|k3d|kubectl|prometheus|promtool
#                                    install a pinned tool into the cache if missing; print its path
#   stack.sh logs                    where the logs are
#   stack.sh clean                   down, then delete all state (data, certificates); keeps downloads
set -euo pipefail
# shellcheck source-path=SCRIPTDIR

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../stack.env
source "$ROOT/stack/stack.env"
CACHE=${TRIBUTARY_CACHE:-$ROOT/.cache}
STATE=${TRIBUTARY_STATE:-$ROOT/.stack}
# The paths and ports below are used by the sourced lib/*.sh and node.sh.
# shellcheck disable=SC2034
{
K8S_BIN=$CACHE/kubernetes-$KUBERNETES_VERSION
KAFKA_LIBS=$CACHE/kafka-$KAFKA_VERSION/libs
CASSANDRA_LIBS=$CACHE/cassandra-$CASSANDRA_VERSION/lib
PROBES=$CACHE/probes
RUN=$STATE/run
LOGS=$STATE/logs
PKI=$STATE/pki
read -r -a BROKER_PORTS <<<"$KAFKA_BROKER_PORTS"
read -r -a CONTROLLER_PORTS <<<"$KAFKA_CONTROLLER_PORTS"
}
# shellcheck source=node.sh
source "$ROOT/stack/scripts/node.sh"
ALL_COMPONENTS=(etcd apiserver kafka-1 kafka-2 kafka-3 cassandra containerd kubelet kube-proxy kube-scheduler kube-controller-manager coredns prometheus registry)

say() { printf '\033[1m[stack]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[stack] error:\033[0m %s\n' "$*" >&2; exit 1; }

# Each concern in a file of its own (stack/scripts/lib), configuration in stack/config.
# shellcheck source=lib/install.sh
source "$ROOT/stack/scripts/lib/install.sh"
# shellcheck source=lib/processes.sh
source "$ROOT/stack/scripts/lib/processes.sh"
# shellcheck source=lib/control-plane.sh
source "$ROOT/stack/scripts/lib/control-plane.sh"
# shellcheck source=lib/data-tls.sh
source "$ROOT/stack/scripts/lib/data-tls.sh"
# shellcheck source=lib/kafka.sh
source "$ROOT/stack/scripts/lib/kafka.sh"
# shellcheck source=lib/cassandra.sh
source "$ROOT/stack/scripts/lib/cassandra.sh"
# shellcheck source=lib/prometheus.sh
source "$ROOT/stack/scripts/lib/prometheus.sh"
# shellcheck source=lib/registry.sh
source "$ROOT/stack/scripts/lib/registry.sh"

# ---------------------------------------------------------------- commands

expand() {
  local c
  for c in "$@"; do
    case $c in
      kube) echo etcd apiserver ;;
      kafka) echo kafka-1 kafka-2 kafka-3 ;;
      node) echo "${NODE_COMPONENTS[@]}" ;;
      all) echo "${ALL_COMPONENTS[@]}" ;;
      etcd|apiserver|kafka-[123]|cassandra|containerd|kubelet|kube-proxy|kube-scheduler|kube-controller-manager|coredns|prometheus|registry) echo "$c" ;;
      *) die "unknown component '$c'; use one of: ${ALL_COMPONENTS[*]} kube kafka node all" ;;
    esac
  done
}

cmd_start() {
  local comps kafka_started=0 c node=0
  read -r -a comps <<<"$(expand "${@:-all}" | tr '\n' ' ')"
  mkdir -p "$RUN" "$LOGS"
  ensure_node_network
  # The JVMs are launched first and waited on afterwards, so Kafka and Cassandra start side by side.
  for c in "${comps[@]}"; do
    case $c in
      kafka-*) spawn_kafka "${c#kafka-}"; kafka_started=1 ;;
      cassandra) spawn_cassandra ;;
      registry) spawn_registry ;;
    esac
  done
  for c in "${comps[@]}"; do
    case $c in
      etcd) start_etcd ;;
      apiserver) start_apiserver ;;
    esac
  done
  if (( kafka_started )); then
    local live=0
    for c in 1 2 3; do is_running "kafka-$c" && live=$((live + 1)); done
    local -a WATCHED
    read -r -a WATCHED <<<"$(printf '%s\n' "${comps[@]}" | grep '^kafka-' | tr '\n' ' ')"
    wait_until "${WATCHED[0]}" 180 kafka_probe "$live"
    # And each started broker takes the admin's SCRAM login itself: a restarted broker reads
    # the credentials from the metadata log, and a test must not meet it before it has. A
    # broker that keeps refusing it met the Kafka 4.1-4.4 SCRAM replay bug that the metadata
    # snapshots in server.properties avoid (see there); restarting does not mend it.
    for c in "${WATCHED[@]}"; do
      poll_until "$c" 90 kafka_login "${c#kafka-}" && continue
      kafka_login_report "${c#kafka-}"
      die "$c is up but refuses the admin's SCRAM login; its log: $STATE/kafka/node-${c#kafka-}/logs/server.log. Restarting it does not help; 'make stack-clean' formats Kafka afresh"
    done
    unset WATCHED
  fi
  if printf '%s\n' "${comps[@]}" | grep -qx cassandra; then
    wait_until cassandra 240 cassandra_probe
  fi
  if printf '%s\n' "${comps[@]}" | grep -qx registry; then wait_until registry 120 registry_ready; fi
  for c in "${comps[@]}"; do
    case $c in containerd|kubelet|kube-proxy|kube-scheduler|kube-controller-manager|coredns) node=1 ;; esac
  done
  if (( node )); then start_node; fi
  # Last: its service discovery reads the API server, and its first scrapes find the rest up.
  if printf '%s\n' "${comps[@]}" | grep -qx prometheus; then start_prometheus; fi
}

# The project's CRDs, installed once, and the controller-manager restarted after them: its
# quota controller counts a custom resource (count/topics.tributary.dev, which every tenant
# namespace's ResourceQuota holds) only once it has discovered it, and on a new stack it did
# not within minutes (until then the API server refuses those objects: "status unknown for quota").
install_crds() {
  local kc=("$K8S_BIN/kubectl" --kubeconfig "$STATE/kubeconfig")
  # The newest kind: a stack made before it gets the new CRDs (and a quota controller that counts them).
  "${kc[@]}" get crd topicgrants.tributary.dev >/dev/null 2>&1 && return 0
  say "installing the CRDs (crds/), then restarting kube-controller-manager so its quota controller counts them"
  "${kc[@]}" apply --server-side --force-conflicts -f "$ROOT/crds/" >/dev/null
  "${kc[@]}" wait --for=condition=Established --timeout=60s crd/tenants.tributary.dev crd/topics.tributary.dev crd/cassandrasinks.tributary.dev \
    crd/kafkausers.tributary.dev crd/topicgrants.tributary.dev >/dev/null
  cmd_stop kube-controller-manager
  cmd_start kube-controller-manager
}

cmd_up() {
  local t0
  t0=$(date +%s)
  cmd_install
  cmd_start all
  install_crds
  say "stack is up in $(( $(date +%s) - t0 )) s. Use it with: eval \"\$(make -s stack-env)\""
}

cmd_stop() {
  local comps
  read -r -a comps <<<"$(expand "${@:-all}" | tr '\n' ' ')"
  # Stopping containerd stops the pods with it (through the CRI), as a node shutdown does.
  if printf '%s\n' "${comps[@]}" | grep -qx containerd; then stop_node; fi
  stop_components "${comps[@]}"
}

# SIGSTOP or SIGCONT to each named component's process group.
signal_components() {
  local sig=$1 c p; shift
  for c in "$@"; do
    p=$(pid_of "$c")
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null || die "$c is not running"
    kill "-$sig" -- "-$p" 2>/dev/null || kill "-$sig" "$p"
  done
}

cmd_down() {
  # Prometheus first (it only watches), the node (its pods through the CRI), then the data
  # services (brokers together), the control plane, and last the bridge everything listened on.
  stop_components prometheus
  stop_node
  stop_components cassandra kafka-1 kafka-2 kafka-3 registry
  # The API server before etcd: without etcd its graceful shutdown hangs until killed.
  stop_components apiserver
  stop_components etcd
  if ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then ip link delete "$NODE_BRIDGE"; fi
  say "stack is down"
}

cmd_status() {
  local c state rc=0
  for c in "${ALL_COMPONENTS[@]}"; do
    if is_running "$c"; then state="running (pid $(pid_of "$c"))"; else state="stopped"; rc=1; fi
    printf '%-10s %s\n' "$c" "$state"
  done
  if is_running apiserver; then apiserver_ready && echo "apiserver  /readyz ok" || echo "apiserver  not ready"; fi
  if is_running kafka-1 || is_running kafka-2 || is_running kafka-3; then echo "kafka      $(kafka_probe 3 2>&1 | tail -n1)"; fi
  if is_running cassandra; then echo "cassandra  $(cassandra_probe 2>&1 | tail -n1)"; fi
  if is_running registry; then registry_ready >/dev/null 2>&1 && echo "registry   $(registry_url) ready" || echo "registry   $(registry_url) not ready"; fi
  if is_running prometheus; then prometheus_ready >/dev/null 2>&1 && echo "prometheus $(prometheus_url) ready" || echo "prometheus $(prometheus_url) not ready"; fi
  if is_running kubelet; then
    echo "node       $NODE_NAME ($NODE_IP) Ready=$(kube get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>&1), $(kube get pods -A --no-headers 2>/dev/null | wc -l) pods"
  fi
  return $rc
}

cmd_env() {
  cat <<EOF
export KUBECONFIG='$STATE/kubeconfig'
export KAFKA_BOOTSTRAP='$(kafka_bootstrap)'
export KAFKA_ADMIN_USER='$KAFKA_ADMIN_USER'
export KAFKA_ADMIN_PASSWORD='$KAFKA_ADMIN_PASSWORD'
export KAFKA_SECURITY_PROTOCOL=SASL_SSL
export KAFKA_EXTERNAL_USER='$KAFKA_EXTERNAL_USER'
export KAFKA_EXTERNAL_PASSWORD='$KAFKA_EXTERNAL_PASSWORD'
export KAFKA_CA_FILE='$TLS_DIR/data-ca.crt'
export CASSANDRA_CA_FILE='$TLS_DIR/data-ca.crt'
export CASSANDRA_CONTACT='$NODE_IP:$CASSANDRA_NATIVE_PORT'
export CASSANDRA_ADMIN_USER='$CASSANDRA_ADMIN_USER'
export CASSANDRA_ADMIN_PASSWORD='$CASSANDRA_ADMIN_PASSWORD'
export TRIBUTARY_STACK='$ROOT/stack/scripts/stack.sh'
export TRIBUTARY_NODE_IP='$NODE_IP'
export TRIBUTARY_IMAGE='$(current_image)'
export TRIBUTARY_CONTAINERD_SOCK='$CONTAINERD_SOCK'
export PROMETHEUS_URL='$(prometheus_url)'
export SCHEMA_REGISTRY_URL='$(registry_url)'
export SCHEMA_REGISTRY_USER='$REGISTRY_USER'
export SCHEMA_REGISTRY_PASSWORD='$REGISTRY_PASSWORD'
export TRIBUTARY_PROMETHEUS_TARGETS='$PROMETHEUS_TARGETS'
export TRIBUTARY_PROMETHEUS_RULES='$PROMETHEUS_RULES'
export PATH='$K8S_BIN':"\$PATH"
EOF
}

case ${1:-} in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  tool) shift; cmd_tool "$@" ;;
  image) shift; cmd_image "$@" ;;
  reference-images) cmd_reference_images ;;
  freeze) shift; read -r -a named <<<"$(expand "$@" | tr '\n' ' ')"; signal_components STOP "${named[@]}"; say "frozen: $*" ;;
  thaw) shift; read -r -a named <<<"$(expand "$@" | tr '\n' ' ')"; signal_components CONT "${named[@]}"; say "thawed: $*" ;;
  leftovers) node_leftovers ;;
  cql) shift; cassandra_probe "$@" ;;
  log-dirs) shift; install_probes; kafka_log_dirs "${1?name a topic prefix}" ;;
  logs) echo "$LOGS"; ls -1 "$LOGS" 2>/dev/null; echo "broker logs: $STATE/kafka/node-*/logs, cassandra: $STATE/cassandra/logs" ;;
  clean) cmd_down; rm -rf "$STATE"; say "state removed (downloads kept in $CACHE)" ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

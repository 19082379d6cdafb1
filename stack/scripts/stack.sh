#!/usr/bin/env bash
# The local stack: a real Kubernetes cluster of one node (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, and a node: containerd, kubelet, kube-proxy,
# CoreDNS),
# three Apache Kafka brokers in KRaft mode with SASL/SCRAM and ACLs, and one Apache
# Cassandra node with password authentication. Everything runs as local processes on the
# node's bridge address (NODE_IP, stack.env); downloads and builds are cached, state and
# logs live in one folder. Needs root (the node's bridge, containerd, the kubelet).
#
#   stack.sh install                 build/download what is missing (idempotent)
#   stack.sh up                      install, then start every component and wait until it answers
#   stack.sh down                    stop every component; no process is left behind
#   stack.sh status                  one line per component
#   stack.sh env                     export lines for KUBECONFIG, KAFKA_*, CASSANDRA_*
#   stack.sh start|stop COMPONENT..  one component (etcd apiserver kafka-1 kafka-2 kafka-3 cassandra
#                                    containerd kubelet kube-proxy kube-scheduler kube-controller-manager
#                                    coredns,
#                                    or the groups kube, kafka and node); used by fault tests
#   stack.sh freeze|thaw COMPONENT.. SIGSTOP / SIGCONT: the component keeps its sockets but
#                                    never answers (a hung server), then carries on unrestarted
#   stack.sh image BIN_DIR           the tributary image (Debian base + BIN_DIR's binaries),
#                                    loaded into the node (TRIBUTARY_IMAGE in `env`)
#   stack.sh reference-images        stand-ins for k3d/stack's Kafka and Cassandra images, built
#                                    from the same releases and loaded into the node
#   stack.sh leftovers               anything a stopped node left behind (fails if any)
#   stack.sh cql 'QUERY'             run one CQL statement as the admin; prints the first column
#   stack.sh tool helm|k3d|kubectl   install a pinned tool into the cache if missing; print its path
#   stack.sh logs                    where the logs are
#   stack.sh clean                   down, then delete all state (data, certificates); keeps downloads
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../stack.env
source "$ROOT/stack/stack.env"
CACHE=${TRIBUTARY_CACHE:-$ROOT/.cache}
STATE=${TRIBUTARY_STATE:-$ROOT/.stack}
K8S_BIN=$CACHE/kubernetes-$KUBERNETES_VERSION
KAFKA_LIBS=$CACHE/kafka-$KAFKA_VERSION/libs
CASSANDRA_LIBS=$CACHE/cassandra-$CASSANDRA_VERSION/lib
PROBES=$CACHE/probes
RUN=$STATE/run
LOGS=$STATE/logs
PKI=$STATE/pki
read -r -a BROKER_PORTS <<<"$KAFKA_BROKER_PORTS"
read -r -a CONTROLLER_PORTS <<<"$KAFKA_CONTROLLER_PORTS"
# shellcheck source=node.sh
source "$ROOT/stack/scripts/node.sh"
ALL_COMPONENTS=(etcd apiserver kafka-1 kafka-2 kafka-3 cassandra containerd kubelet kube-proxy kube-scheduler kube-controller-manager coredns)

say() { printf '\033[1m[stack]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[stack] error:\033[0m %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- install

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed. Run 'make deps' (Debian: sudo stack/scripts/install-deps.sh) and try again."
}

# Stamps the version the binaries report (kubectl version, /version), as Kubernetes' own build does.
version_ldflags() {
  local v=${KUBERNETES_VERSION#v} pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    printf -- '-X %s.gitVersion=%s -X %s.gitMajor=%s -X %s.gitMinor=%s -X %s.gitTreeState=clean ' \
      "$pkg" "$KUBERNETES_VERSION" "$pkg" "${v%%.*}" "$pkg" "$(cut -d. -f2 <<<"$v")" "$pkg"
  done
}

install_control_plane() {
  local missing=()
  for b in etcd kube-apiserver kubectl kubelet kube-proxy kube-scheduler kube-controller-manager; do [ -x "$K8S_BIN/$b" ] || missing+=("$b"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  need go
  mkdir -p "$K8S_BIN"
  say "building ${missing[*]} from k8s.io/kubernetes $KUBERNETES_VERSION (first time only: 5-15 min on 2 cores)"
  local pkg
  for b in "${missing[@]}"; do
    case $b in
      etcd) pkg=go.etcd.io/etcd/server/v3 ;;
      *) pkg=k8s.io/kubernetes/cmd/$b ;;
    esac
    say "  go build $pkg"
    (cd "$ROOT/stack/go" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w $(version_ldflags)" -o "$K8S_BIN/$b.tmp" "$pkg") \
      || die "building $b failed; the Go output is above. Check 'go version' (needs Go >= 1.21, which fetches the toolchain go.mod asks for)."
    mv "$K8S_BIN/$b.tmp" "$K8S_BIN/$b"
  done
}

# $1 = pom folder, $2 = destination; copies the runtime classpath from Maven Central.
install_maven_classpath() {
  local pom=$1 dest=$2 what=$3
  [ -f "$dest/.complete" ] && return 0
  need mvn; need java
  say "downloading $what from Maven Central into ${dest#"$ROOT"/}"
  rm -rf "$dest"
  mvn -B -q -f "$ROOT/stack/maven/$pom/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$dest" \
    || die "Maven could not resolve $what; run the same command without -q to see which artifact failed."
  touch "$dest/.complete"
}

install_probes() {
  local stamp
  stamp=$(cat "$ROOT"/stack/probe/*.java | sha256sum | cut -c1-12)
  [ -f "$PROBES/$stamp" ] && return 0
  need javac
  rm -rf "$PROBES" && mkdir -p "$PROBES"
  javac -nowarn -d "$PROBES" -cp "$KAFKA_LIBS/*" "$ROOT/stack/probe/KafkaProbe.java"
  javac -nowarn -d "$PROBES" -cp "$CASSANDRA_LIBS/*" "$ROOT/stack/probe/CqlProbe.java"
  touch "$PROBES/$stamp"
}

cmd_install() {
  need java; need openssl; need envsubst; need curl
  install_control_plane
  install_maven_classpath kafka "$KAFKA_LIBS" "Apache Kafka $KAFKA_VERSION"
  install_maven_classpath cassandra "$CASSANDRA_LIBS" "Apache Cassandra $CASSANDRA_VERSION"
  install_probes
  cmd_install_node
}

# Pinned tools for the cluster paths; prints the path of the binary.
cmd_tool() {
  local dir bin
  case ${1:-} in
    helm)
      # Built the way Helm's own Makefile does: the Kubernetes version it assumes for
      # `helm template`/`lint` (without which it says v1.20) comes from its client-go.
      dir=$CACHE/helm-$HELM_VERSION-k8sver; bin=$dir/helm
      if [ ! -x "$bin" ]; then
        need go
        say "building helm $HELM_VERSION from helm.sh/helm/v3 (first time only: 2-5 min)"
        mkdir -p "$dir"
        local gomod minor ldflags
        gomod=$(GOFLAGS=-mod=mod go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
        minor=$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod" | head -n1)
        [ -n "$minor" ] || die "could not read helm $HELM_VERSION's client-go version from $gomod"
        ldflags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
        ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
        ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
        GOBIN=$dir GOFLAGS=-mod=mod CGO_ENABLED=0 go install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2 \
          || die "building helm failed; the Go output is above"
      fi ;;
    k3d)
      dir=$CACHE/k3d-$K3D_VERSION; bin=$dir/k3d
      if [ ! -x "$bin" ]; then
        need curl
        local os arch
        os=$(uname -s | tr '[:upper:]' '[:lower:]'); arch=$(uname -m)
        case $arch in x86_64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; esac
        say "downloading k3d $K3D_VERSION ($os-$arch) from its GitHub release"
        mkdir -p "$dir"
        curl -fsSL -o "$bin.tmp" "https://github.com/k3d-io/k3d/releases/download/$K3D_VERSION/k3d-$os-$arch" \
          || die "could not download k3d; install k3d $K3D_VERSION yourself and put it on PATH"
        chmod +x "$bin.tmp" && mv "$bin.tmp" "$bin"
      fi ;;
    kubectl)
      bin=$K8S_BIN/kubectl
      [ -x "$bin" ] || install_control_plane ;;
    *) die "unknown tool '${1:-}'; use helm, k3d or kubectl" ;;
  esac
  echo "$bin"
}

# ---------------------------------------------------------------- processes

pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }
is_running() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# Starts "$@" as component $1 in its own session (so stop can kill the whole group).
spawn() {
  local name=$1; shift
  mkdir -p "$RUN" "$LOGS"
  setsid "$@" >>"$LOGS/$name.out" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

# Sends SIGTERM to every named component at once, then waits for each (KRaft brokers must
# stop together: the last one alone cannot finish a controlled shutdown without a quorum).
stop_components() {
  local name p i
  local -a waiting=()
  for name in "$@"; do
    p=$(pid_of "$name")
    if [ -z "$p" ] || ! kill -0 "$p" 2>/dev/null; then rm -f "$RUN/$name.pid"; continue; fi
    say "stopping $name"
    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
    waiting+=("$name:$p")
  done
  for entry in "${waiting[@]}"; do
    name=${entry%%:*} p=${entry##*:}
    for i in $(seq 1 60); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$p" 2>/dev/null; then
      say "$name did not stop within 30 s; killing it"
      kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
    fi
    rm -f "$RUN/$name.pid"
  done
}

# wait_until NAME TIMEOUT_SECONDS COMMAND...: polls COMMAND until it succeeds, printing progress.
# Fails at once when NAME (or any component listed in WATCHED) has exited.
wait_until() {
  poll_until "$@" || die "$1 did not answer within $2 s; see $LOGS/$1.out (it is still running: 'make stack-down' stops it)"
}

# Like wait_until, but returns 1 when TIMEOUT passes (a process that exits still dies).
poll_until() {
  local name=$1 timeout=$2 start now; shift 2
  start=$(date +%s)
  while true; do
    if "$@" >/dev/null 2>&1; then
      say "  $name is up ($(( $(date +%s) - start )) s)"
      return 0
    fi
    now=$(date +%s)
    local c
    for c in "${WATCHED[@]:-$name}"; do
      if ! is_running "$c"; then
        die "$c exited during start-up; see $LOGS/$c.out (Kafka: $STATE/kafka/node-${c#kafka-}/logs/server.log). Last lines:
$(tail -n 15 "$LOGS/$c.out" 2>/dev/null)"
      fi
    done
    if (( now - start >= timeout )); then return 1; fi
    if (( (now - start) % 10 == 0 )); then say "  waiting for $name ... $(( now - start )) s"; fi
    sleep 1
  done
}

# ---------------------------------------------------------------- kubernetes control plane

ensure_pki() {
  # Certificates of a stack from before the node (API server on loopback) are made anew.
  if [ -f "$PKI/admin.crt" ] && [[ $(openssl x509 -in "$PKI/apiserver.crt" -noout -text 2>/dev/null) != *"IP Address:$NODE_IP"* ]]; then
    say "the API server certificate lacks the node address $NODE_IP: making new certificates"
    rm -rf "$PKI"
  fi
  [ -f "$PKI/admin.crt" ] && return 0
  mkdir -p "$PKI"
  say "creating certificates for the API server in ${PKI#"$ROOT"/}"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=tributary-local-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:%s,IP:%s,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' \
      "$NODE_IP" "$(service_ip 1)" >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    # The admin client: member of system:masters, as envtest's default user is.
    openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=tributary-admin" -keyout admin.key -out admin.csr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile admin.ext -out admin.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr ./*.ext
  )
  cat >"$STATE/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: tributary-local
  cluster:
    server: https://$NODE_IP:$APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: tributary-admin
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: tributary-local
  context: {cluster: tributary-local, user: tributary-admin}
current-context: tributary-local
EOF
}

# The Nth address of SERVICE_CIDR (1: the kubernetes Service).
service_ip() { local base=${SERVICE_CIDR%/*}; echo "${base%.*}.$(( ${base##*.} + $1 ))"; }

etcd_healthy() { curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health" | grep -q '"health":"true"'; }
apiserver_ready() { "$K8S_BIN/kubectl" --kubeconfig "$STATE/kubeconfig" get --raw /readyz --request-timeout=3s | grep -q '^ok$'; }

start_etcd() {
  is_running etcd && etcd_healthy && return 0
  stop_components etcd
  say "starting etcd on 127.0.0.1:$ETCD_CLIENT_PORT"
  mkdir -p "$STATE/etcd"
  # --unsafe-no-fsync: a throwaway test store, as envtest runs it; far faster on slow disks.
  spawn etcd "$K8S_BIN/etcd" --name tributary --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "tributary=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes 4294967296
  wait_until etcd 60 etcd_healthy
}

start_apiserver() {
  is_running apiserver && apiserver_ready && return 0
  stop_components apiserver
  ensure_pki
  node_pki
  say "starting kube-apiserver $KUBERNETES_VERSION on https://$NODE_IP:$APISERVER_PORT"
  spawn apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --service-account-issuer "https://127.0.0.1:$APISERVER_PORT" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP \
    --allow-privileged=true \
    --enable-priority-and-fairness=false \
    --storage-media-type application/json \
    --v 1
  wait_until apiserver 120 apiserver_ready
}

# ---------------------------------------------------------------- TLS for Kafka and Cassandra

# A CA of its own for the data services (not the Kubernetes one) and one server certificate
# each for the brokers and Cassandra, naming the node address (what clients and pods dial),
# 127.0.0.1 and localhost. PEM throughout: Kafka and Cassandra read PEM key stores, so no
# keytool is needed. Clients get the CA: `stack.sh env` exports KAFKA_CA_FILE and CASSANDRA_CA_FILE.
TLS_DIR=$PKI/data
ensure_data_pki() {
  if [ -f "$TLS_DIR/cassandra.pem" ] && [[ $(openssl x509 -in "$TLS_DIR/kafka.crt" -noout -text 2>/dev/null) == *"IP Address:$NODE_IP"* ]]; then
    return 0
  fi
  need openssl
  rm -rf "$TLS_DIR" && mkdir -p "$TLS_DIR"
  say "creating the Kafka and Cassandra TLS certificates in ${TLS_DIR#"$ROOT"/}"
  (
    cd "$TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=tributary-data-ca" \
      -keyout data-ca.key -out data-ca.crt 2>/dev/null
    printf 'subjectAltName=IP:%s,IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' "$NODE_IP" >server.ext
    local service
    for service in kafka cassandra; do
      openssl req -newkey rsa:2048 -nodes -subj "/CN=tributary-$service" -keyout "$service.key" -out "$service.csr" 2>/dev/null
      openssl x509 -req -in "$service.csr" -CA data-ca.crt -CAkey data-ca.key -CAcreateserial -days 3650 \
        -extfile server.ext -out "$service.crt" 2>/dev/null
      # One PEM file with the (PKCS#8, unencrypted) key and the chain: Kafka's and
      # Cassandra's PEM key stores both read this shape.
      cat "$service.key" "$service.crt" data-ca.crt >"$service.pem"
      chmod 600 "$service.key" "$service.pem"
    done
    rm -f ./*.csr server.ext
  ) || die "creating the TLS certificates in $TLS_DIR failed"
}

# ---------------------------------------------------------------- kafka

kafka_bootstrap() {
  local out="" p
  for p in "${BROKER_PORTS[@]}"; do out+="${out:+,}$NODE_IP:$p"; done
  echo "$out"
}

kafka_probe() {
  java -cp "$PROBES:$KAFKA_LIBS/*" KafkaProbe "$(kafka_bootstrap)" "$KAFKA_ADMIN_USER" "$KAFKA_ADMIN_PASSWORD" "$1" "$TLS_DIR/data-ca.crt"
}

# The admin's SCRAM login on broker N alone (bootstrap: that broker only).
kafka_login() {
  java -cp "$PROBES:$KAFKA_LIBS/*" KafkaProbe "$NODE_IP:${BROKER_PORTS[$(($1 - 1))]}" "$KAFKA_ADMIN_USER" "$KAFKA_ADMIN_PASSWORD" 1 "$TLS_DIR/data-ca.crt"
}

# Why broker N refused the probe: the probe's own answer and the broker's last
# authentication failures and errors (for CI logs, where the broker's log is out of reach).
kafka_login_report() {
  local log=$STATE/kafka/node-$1/logs/server.log
  kafka_login "$1" 2>&1 | tail -n 3 | sed 's/^/    probe: /' >&2
  grep -E 'Failed authentication|ERROR|Scram|SCRAM_SHA_512' "$log" 2>/dev/null | tail -n 12 | sed 's/^/    broker: /' >&2
}

# Writes node N's server.properties and formats its log dir once (with the admin SCRAM user).
prepare_kafka_node() {
  local n=$1 dir=$STATE/kafka/node-$1 voters="" i
  for i in 1 2 3; do voters+="${voters:+,}$i@$NODE_IP:${CONTROLLER_PORTS[$((i - 1))]}"; done
  mkdir -p "$dir/logs"
  ensure_data_pki
  NODE_ID=$n BROKER_PORT=${BROKER_PORTS[$((n - 1))]} CONTROLLER_PORT=${CONTROLLER_PORTS[$((n - 1))]} \
    CONTROLLER_QUORUM_VOTERS=$voters LOG_DIRS=$dir/data LISTEN_HOST=$NODE_IP ADVERTISED_HOST=$NODE_IP KAFKA_ADMIN_USER=$KAFKA_ADMIN_USER \
    KAFKA_ADMIN_PASSWORD=$KAFKA_ADMIN_PASSWORD BROKER_SECURITY_PROTOCOL=SASL_SSL TLS_DIR=$TLS_DIR \
    KAFKA_EXTERNAL_USER=$KAFKA_EXTERNAL_USER KAFKA_EXTERNAL_PASSWORD=$KAFKA_EXTERNAL_PASSWORD \
    envsubst < <(cat "$ROOT/stack/config/kafka/server.properties" "$ROOT/stack/config/kafka/tls.properties" \
      "$ROOT/stack/config/kafka/external-users.properties") >"$dir/server.properties"
  [ -f "$dir/data/meta.properties" ] && return 0
  if [ ! -f "$STATE/kafka/cluster-id" ]; then
    java -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid >"$STATE/kafka/cluster-id"
  fi
  java -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$ROOT/stack/config/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$dir/logs" kafka.tools.StorageTool format \
    --cluster-id "$(cat "$STATE/kafka/cluster-id")" --config "$dir/server.properties" \
    --add-scram "SCRAM-SHA-512=[name=$KAFKA_ADMIN_USER,password=$KAFKA_ADMIN_PASSWORD]" \
    >>"$LOGS/kafka-$n.out" 2>&1 || die "formatting kafka-$n failed; see $LOGS/kafka-$n.out"
}

spawn_kafka() {
  local n=$1 dir=$STATE/kafka/node-$1
  is_running "kafka-$n" && return 0
  mkdir -p "$LOGS"
  prepare_kafka_node "$n"
  say "starting kafka-$n (Apache Kafka $KAFKA_VERSION, KRaft) on $NODE_IP:${BROKER_PORTS[$((n - 1))]}"
  # shellcheck disable=SC2086
  spawn "kafka-$n" java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/stack/config/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$dir/logs" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties"
}

# ---------------------------------------------------------------- cassandra

cassandra_probe() {
  java -cp "$PROBES:$CASSANDRA_LIBS/*" CqlProbe "$NODE_IP" "$CASSANDRA_NATIVE_PORT" "$CASSANDRA_ADMIN_USER" "$CASSANDRA_ADMIN_PASSWORD" "$@"
}

spawn_cassandra() {
  is_running cassandra && return 0
  local dir=$STATE/cassandra
  mkdir -p "$dir/logs" "$dir/data" "$LOGS"
  ensure_data_pki
  # shellcheck disable=SC2097,SC2098 # the globals' own values, handed to envsubst
  CASSANDRA_DATA=$dir/data CASSANDRA_LISTEN_ADDRESS=$NODE_IP CASSANDRA_SEEDS=$NODE_IP:$CASSANDRA_STORAGE_PORT CASSANDRA_STORAGE_PORT=$CASSANDRA_STORAGE_PORT CASSANDRA_NATIVE_PORT=$CASSANDRA_NATIVE_PORT \
    TLS_DIR=$TLS_DIR envsubst < <(cat "$ROOT/stack/config/cassandra/cassandra.yaml" "$ROOT/stack/config/cassandra/tls.yaml") >"$dir/cassandra.yaml"
  say "starting cassandra (Apache Cassandra $CASSANDRA_VERSION) on $NODE_IP:$CASSANDRA_NATIVE_PORT"
  local opts
  opts=$(grep -v '^#' "$ROOT/stack/config/cassandra/jvm17.options" | tr '\n' ' ')
  # shellcheck disable=SC2086
  spawn cassandra java $CASSANDRA_HEAP_OPTS $opts \
    -Dcassandra.config="file://$dir/cassandra.yaml" \
    -Dlogback.configurationFile="$ROOT/stack/config/cassandra/logback.xml" \
    -Dcassandra.logdir="$dir/logs" -Dcassandra.storagedir="$dir/data" \
    -Dcassandra.jmx.local.port="$CASSANDRA_JMX_PORT" \
    -Dcassandra.superuser_setup_delay_ms=0 -Dcassandra.skip_wait_for_gossip_to_settle=0 \
    -Dcassandra.ring_delay_ms=1000 -Dcassandra.initial_token= \
    -Dcassandra-foreground=yes \
    -cp "$CASSANDRA_LIBS/*" org.apache.cassandra.service.CassandraDaemon
}

# ---------------------------------------------------------------- commands

expand() {
  local c
  for c in "$@"; do
    case $c in
      kube) echo etcd apiserver ;;
      kafka) echo kafka-1 kafka-2 kafka-3 ;;
      node) echo "${NODE_COMPONENTS[@]}" ;;
      all) echo "${ALL_COMPONENTS[@]}" ;;
      etcd|apiserver|kafka-[123]|cassandra|containerd|kubelet|kube-proxy|kube-scheduler|kube-controller-manager|coredns) echo "$c" ;;
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
  for c in "${comps[@]}"; do
    case $c in containerd|kubelet|kube-proxy|kube-scheduler|kube-controller-manager|coredns) node=1 ;; esac
  done
  if (( node )); then start_node; fi
}

# The project's CRDs, installed once, and the controller-manager restarted after them: its
# quota controller counts a custom resource (count/topics.tributary.dev, which every tenant
# namespace's ResourceQuota holds) only once it has discovered it, and on a new stack it did
# not within minutes (until then the API server refuses those objects: "status unknown for quota").
install_crds() {
  local kc=("$K8S_BIN/kubectl" --kubeconfig "$STATE/kubeconfig")
  "${kc[@]}" get crd topics.tributary.dev >/dev/null 2>&1 && return 0
  say "installing the CRDs (crds/), then restarting kube-controller-manager so its quota controller counts them"
  "${kc[@]}" apply --server-side --force-conflicts -f "$ROOT/crds/" >/dev/null
  "${kc[@]}" wait --for=condition=Established --timeout=60s crd/tenants.tributary.dev crd/topics.tributary.dev crd/cassandrasinks.tributary.dev >/dev/null
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
  # The node first (its pods through the CRI), then the data services (brokers together),
  # the control plane, and last the bridge everything listened on.
  stop_node
  stop_components cassandra kafka-1 kafka-2 kafka-3
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
  logs) echo "$LOGS"; ls -1 "$LOGS" 2>/dev/null; echo "broker logs: $STATE/kafka/node-*/logs, cassandra: $STATE/cassandra/logs" ;;
  clean) cmd_down; rm -rf "$STATE"; say "state removed (downloads kept in $CACHE)" ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

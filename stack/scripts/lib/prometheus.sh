# shellcheck shell=bash
# Sourced by stack/scripts/stack.sh. Metrics: Prometheus and promtool built from their Go
# module (stack/go-prometheus), Prometheus run as a component scraping the operator, the sinks,
# the brokers and Cassandra (stack/config/prometheus), and the JMX exporter's Java agent that
# the brokers and Cassandra carry (stack/config/jmx-exporter).

PROMETHEUS_BIN=$CACHE/prometheus-$PROMETHEUS_VERSION
PROMETHEUS_STATE=$STATE/prometheus
# Scrape targets that Kubernetes cannot discover (an operator run as a host process): one
# JSON file each, in Prometheus' file_sd format (stack/config/prometheus/prometheus.yml).
PROMETHEUS_TARGETS=$PROMETHEUS_STATE/targets
# Rules files loaded besides the chart's alerts (a test's short-`for:` copy of one), read again
# on POST /-/reload (--web.enable-lifecycle).
PROMETHEUS_RULES=$PROMETHEUS_STATE/rules
JMX_EXPORTER_JAR=$CACHE/jmx-exporter-$JMX_EXPORTER_VERSION/jmx_prometheus_javaagent-$JMX_EXPORTER_VERSION.jar
read -r -a KAFKA_METRICS_PORT_LIST <<<"$KAFKA_METRICS_PORTS"

# v0.316.0 -> 3.16.0: the release a v0.3xx.y module tag stands for.
prometheus_release() {
  local v=${PROMETHEUS_VERSION#v0.} minor
  minor=${v%%.*}
  echo "${minor:0:1}.$((10#${minor:1})).${v#*.}"
}

# $1 = prometheus or promtool: `go build` from stack/go-prometheus into the cache, once.
# Only the Kubernetes and file service discovery are compiled in (Prometheus' own build tags
# remove_all_sd + enable_kubernetes_sd), which halves the build; the web UI's assets are not
# embedded (no builtinassets tag): the API answers, the UI page says it is missing.
install_prometheus_tool() {
  local name=$1 bin=$PROMETHEUS_BIN/$1 ldflags pkg=github.com/prometheus/common/version
  [ -x "$bin" ] && return 0
  need go
  grep -q "^require github.com/prometheus/prometheus $PROMETHEUS_VERSION\$" "$ROOT/stack/go-prometheus/go.mod" \
    || die "stack/go-prometheus/go.mod does not require github.com/prometheus/prometheus $PROMETHEUS_VERSION (PROMETHEUS_VERSION in stack/stack.env): change both together"
  say "building $name $(prometheus_release) from github.com/prometheus/prometheus $PROMETHEUS_VERSION (first time only: 3-6 min on 2 cores)"
  mkdir -p "$PROMETHEUS_BIN"
  ldflags="-s -w -X $pkg.Version=$(prometheus_release) -X $pkg.Branch=$PROMETHEUS_VERSION -X $pkg.BuildUser=tributary-stack"
  (cd "$ROOT/stack/go-prometheus" && CGO_ENABLED=0 go build -trimpath -tags remove_all_sd,enable_kubernetes_sd \
    -ldflags "$ldflags" -o "$bin.tmp" "github.com/prometheus/prometheus/cmd/$name") \
    || die "building $name failed; the Go output is above"
  mv "$bin.tmp" "$bin"
}

install_prometheus() {
  install_prometheus_tool prometheus
  install_prometheus_tool promtool
  install_maven_classpath jmx-exporter "$(dirname "$JMX_EXPORTER_JAR")" "the Prometheus JMX exporter $JMX_EXPORTER_VERSION"
  [ -f "$JMX_EXPORTER_JAR" ] || die "$JMX_EXPORTER_JAR is missing: JMX_EXPORTER_VERSION in stack/stack.env and stack/maven/jmx-exporter/pom.xml must agree"
}

# The -javaagent option that serves a JVM's metrics on NODE_IP:$1 with the rules of
# stack/config/jmx-exporter/$2.yaml; nothing (with a warning) when the jar is not installed.
jmx_exporter_agent() {
  if [ ! -f "$JMX_EXPORTER_JAR" ]; then
    say "  no JMX exporter ($JMX_EXPORTER_JAR): $2 starts without metrics ('stack.sh install' fetches it)"
    return 0
  fi
  echo "-javaagent:$JMX_EXPORTER_JAR=$NODE_IP:$1:$ROOT/stack/config/jmx-exporter/$2.yaml"
}

prometheus_url() { echo "http://127.0.0.1:$PROMETHEUS_PORT"; }
prometheus_ready() { curl -fsS --max-time 3 "$(prometheus_url)/-/ready"; }

write_prometheus_config() {
  mkdir -p "$PROMETHEUS_STATE/data" "$PROMETHEUS_TARGETS" "$PROMETHEUS_RULES"
  # Its identity for the Kubernetes service discovery, allowed to read what it discovers.
  client_cert prometheus "/CN=tributary:prometheus"
  if is_running apiserver; then
    kube apply -f "$ROOT/stack/config/prometheus/rbac.yaml" >/dev/null \
      || die "could not apply Prometheus' RBAC (stack/config/prometheus/rbac.yaml)"
  fi
  local ALERT_RULES=$ROOT/charts/tributary/alerts/tributary.rules.yaml KAFKA_METRICS_TARGETS="" p
  for p in "${KAFKA_METRICS_PORT_LIST[@]}"; do KAFKA_METRICS_TARGETS+="${KAFKA_METRICS_TARGETS:+, }\"$NODE_IP:$p\""; done
  KAFKA_METRICS_TARGETS="[$KAFKA_METRICS_TARGETS]"
  render_file "$ROOT/stack/config/prometheus/prometheus.yml" "$PROMETHEUS_STATE/prometheus.yml"
}

start_prometheus() {
  is_running prometheus && return 0
  install_prometheus_tool prometheus
  write_prometheus_config
  say "starting prometheus $(prometheus_release) on $(prometheus_url) (data: ${PROMETHEUS_STATE#"$ROOT"/}/data, $PROMETHEUS_RETENTION kept)"
  GOMEMLIMIT=$PROMETHEUS_MEMORY_LIMIT spawn prometheus "$PROMETHEUS_BIN/prometheus" \
    --config.file="$PROMETHEUS_STATE/prometheus.yml" \
    --storage.tsdb.path="$PROMETHEUS_STATE/data" \
    --storage.tsdb.retention.time="$PROMETHEUS_RETENTION" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
    --web.enable-lifecycle \
    --log.level=warn
  # shellcheck disable=SC2034 # WATCHED is read by wait_until (bash's dynamic scope)
  local -a WATCHED=(prometheus)
  wait_until prometheus 60 prometheus_ready
}

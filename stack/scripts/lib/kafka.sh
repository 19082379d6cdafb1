# shellcheck shell=bash
# Sourced by stack/scripts/stack.sh. Kafka: three KRaft brokers with SASL/SCRAM and ACLs, their config from stack/config/kafka, each with the JMX exporter (lib/prometheus.sh).

kafka_bootstrap() {
  local out="" p
  for p in "${BROKER_PORTS[@]}"; do out+="${out:+,}$NODE_IP:$p"; done
  echo "$out"
}

# "BYTES PARTITIONS TOPICS" of the topics under prefix $1, read with Kafka's own Admin client.
kafka_log_dirs() {
  java -cp "$PROBES:$KAFKA_LIBS/*" LogDirsProbe "$(kafka_bootstrap)" "$KAFKA_ADMIN_USER" "$KAFKA_ADMIN_PASSWORD" "$TLS_DIR/data-ca.crt" "$1"
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
  local metrics
  metrics=$(jmx_exporter_agent "${KAFKA_METRICS_PORT_LIST[$((n - 1))]}" kafka)
  # shellcheck disable=SC2086
  spawn "kafka-$n" java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    ${metrics:+"$metrics"} \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/stack/config/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$dir/logs" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties"
}

# shellcheck shell=bash
# Sourced by stack/scripts/stack.sh. Cassandra: one node with password authentication, its config from stack/config/cassandra.

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
  local opts metrics
  opts=$(grep -v '^#' "$ROOT/stack/config/cassandra/jvm17.options" | tr '\n' ' ')
  metrics=$(jmx_exporter_agent "$CASSANDRA_METRICS_PORT" cassandra)
  # shellcheck disable=SC2086
  spawn cassandra java $CASSANDRA_HEAP_OPTS $opts ${metrics:+"$metrics"} \
    -Dcassandra.config="file://$dir/cassandra.yaml" \
    -Dcassandra-rackdc.properties="file://$ROOT/stack/config/cassandra/cassandra-rackdc.properties" \
    -Dlogback.configurationFile="$ROOT/stack/config/cassandra/logback.xml" \
    -Dcassandra.logdir="$dir/logs" -Dcassandra.storagedir="$dir/data" \
    -Dcassandra.jmx.local.port="$CASSANDRA_JMX_PORT" \
    -Dcassandra.superuser_setup_delay_ms=0 -Dcassandra.skip_wait_for_gossip_to_settle=0 \
    -Dcassandra.ring_delay_ms=1000 -Dcassandra.initial_token= \
    -Dcassandra-foreground=yes \
    -cp "$CASSANDRA_LIBS/*" org.apache.cassandra.service.CassandraDaemon
}

#!/bin/sh
# kafka-run-class.sh of the apache/kafka stand-in image (stack/images/README.md): runs a Kafka
# main class on the release jars from Maven Central in $KAFKA_HOME/libs, with the environment
# variables Apache's script reads (KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS, KAFKA_OPTS,
# LOG_DIR). Logs go to the console and to $LOG_DIR/server.log.
set -eu
KAFKA_HOME=${KAFKA_HOME:-/opt/kafka}
LOG_DIR=${LOG_DIR:-$KAFKA_HOME/logs}
mkdir -p "$LOG_DIR"
# shellcheck disable=SC2086 # the option variables hold several words, as in Apache's script
exec java ${KAFKA_HEAP_OPTS:--Xmx256m} \
  ${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true} \
  ${KAFKA_OPTS:-} \
  -Dlog4j2.configurationFile="${KAFKA_LOG4J_CONFIG:-$KAFKA_HOME/config/log4j2.properties}" \
  -Dkafka.logs.dir="$LOG_DIR" \
  -cp "$KAFKA_HOME/libs/*" "$@"

#!/bin/sh
# kafka-server-start.sh of the apache/kafka stand-in image: a broker (or controller) with the
# given server.properties.
[ $# -ge 1 ] || { echo "usage: kafka-server-start.sh server.properties" >&2; exit 2; }
exec "$(dirname "$0")/kafka-run-class.sh" kafka.Kafka "$@"

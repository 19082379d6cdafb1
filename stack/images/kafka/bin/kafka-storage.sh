#!/bin/sh
# kafka-storage.sh of the apache/kafka stand-in image: Kafka's StorageTool (format, random-uuid).
exec "$(dirname "$0")/kafka-run-class.sh" kafka.tools.StorageTool "$@"

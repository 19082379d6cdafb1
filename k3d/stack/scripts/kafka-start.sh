#!/bin/sh
# Entry point of each pod of StatefulSet kafka (image apache/kafka, Kafka in /opt/kafka): fills in
# the shared broker template stack/config/kafka/server.properties for this pod, formats the log
# dir once (cluster id + the admin's SCRAM credential), then execs the broker.
#
# POSIX sh on purpose: the image has sh, bash and sed, but no envsubst. Every path and port has a
# default and can be overridden from the environment, which is also how this script is tested
# outside a cluster.
#
# Node ids: pod kafka-N is node N+1. Every pod is broker+controller (process.roles in the
# template), so the voter list always names the first KAFKA_CONTROLLERS pods: scale the
# StatefulSet only together with KAFKA_CONTROLLERS.
set -eu

KAFKA_HOME=${KAFKA_HOME:-/opt/kafka}
TEMPLATE=${KAFKA_TEMPLATE:-/etc/tributary/kafka/server.properties}
CONFIG=${KAFKA_CONFIG:-/etc/tributary/conf/server.properties}
CONTROLLERS=${KAFKA_CONTROLLERS:-3}
HEADLESS=${KAFKA_HEADLESS_SERVICE:-kafka-headless}
DOMAIN=${CLUSTER_DOMAIN:-cluster.local}
BROKER_PORT=${KAFKA_BROKER_PORT:-9092}
CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
DATA=${KAFKA_LOG_DIRS:-/var/lib/kafka/data}

die() { echo "kafka-start: $*" >&2; exit 1; }
: "${POD_NAMESPACE:?set POD_NAMESPACE (downward API metadata.namespace)}"
: "${KAFKA_CLUSTER_ID:?set KAFKA_CLUSTER_ID}"
: "${KAFKA_ADMIN_USER:?set KAFKA_ADMIN_USER (Secret kafka-admin)}"
: "${KAFKA_ADMIN_PASSWORD:?set KAFKA_ADMIN_PASSWORD (Secret kafka-admin)}"

pod=${POD_NAME:-$(hostname)}
sts=${pod%-*}
ordinal=${pod##*-}
case $ordinal in '' | *[!0-9]*) die "pod name '$pod' does not end in a StatefulSet ordinal" ;; esac
node_id=$((ordinal + 1))
[ "$node_id" -le "$CONTROLLERS" ] ||
  die "pod $pod would be node $node_id, but the quorum has only $CONTROLLERS voters (KAFKA_CONTROLLERS)"

domain_suffix=$HEADLESS.$POD_NAMESPACE.svc.$DOMAIN
voters=""
i=0
while [ "$i" -lt "$CONTROLLERS" ]; do
  voters="${voters:+$voters,}$((i + 1))@$sts-$i.$domain_suffix:$CONTROLLER_PORT"
  i=$((i + 1))
done

# sed expression replacing ${NAME} by VALUE; | & and \ in VALUE are escaped for sed.
subst() {
  printf 's|[$][{]%s[}]|%s|g' "$1" "$(printf '%s' "$2" | sed -e 's/[\\|&]/\\&/g')"
}

mkdir -p "$(dirname "$CONFIG")" "$DATA"
sed -e "$(subst NODE_ID "$node_id")" \
  -e "$(subst CONTROLLER_QUORUM_VOTERS "$voters")" \
  -e "$(subst LISTEN_HOST 0.0.0.0)" \
  -e "$(subst BROKER_SECURITY_PROTOCOL SASL_PLAINTEXT)" \
  -e "$(subst BROKER_PORT "$BROKER_PORT")" \
  -e "$(subst CONTROLLER_PORT "$CONTROLLER_PORT")" \
  -e "$(subst ADVERTISED_HOST "$pod.$domain_suffix")" \
  -e "$(subst KAFKA_ADMIN_USER "$KAFKA_ADMIN_USER")" \
  -e "$(subst KAFKA_ADMIN_PASSWORD "$KAFKA_ADMIN_PASSWORD")" \
  -e "$(subst LOG_DIRS "$DATA")" \
  "$TEMPLATE" >"$CONFIG"
chmod 600 "$CONFIG"
# Comments may mention ${...}; any other ${ is a placeholder the template gained.
if grep -n '^[^#]*[$][{]' "$CONFIG" >&2; then
  die "$TEMPLATE has placeholders this script does not fill in (above)"
fi
echo "kafka-start: $pod is node $node_id of $voters" >&2

# The voters' names exist as soon as their pods have IPs (kafka-headless publishes not-ready
# addresses and the pods start in parallel); wait a little for them rather than start the
# controller with names that do not resolve yet. Not fatal: Kafka retries on its own.
if command -v getent >/dev/null 2>&1; then
  i=0
  while [ "$i" -lt "$CONTROLLERS" ]; do
    tries=0
    until getent hosts "$sts-$i.$domain_suffix" >/dev/null 2>&1 || [ "$tries" -ge 30 ]; do
      tries=$((tries + 1))
      sleep 2
    done
    i=$((i + 1))
  done
fi

# Once per volume: --ignore-formatted makes this a no-op when the log dir is already formatted,
# so the admin's SCRAM credential is the one from the Secret at first start. Changing the Secret
# later needs `kafka-configs.sh --alter --add-config SCRAM-SHA-512=...` (or fresh volumes).
"$KAFKA_HOME/bin/kafka-storage.sh" format --ignore-formatted \
  --cluster-id "$KAFKA_CLUSTER_ID" --config "$CONFIG" \
  --add-scram "SCRAM-SHA-512=[name=$KAFKA_ADMIN_USER,password=$KAFKA_ADMIN_PASSWORD]"

exec "$KAFKA_HOME/bin/kafka-server-start.sh" "$CONFIG"

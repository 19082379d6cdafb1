#!/bin/sh
# Entry point of each pod of StatefulSet cassandra (Docker official image cassandra:5.0.x): fills
# in the shared template stack/config/cassandra/cassandra.yaml for this pod and runs
# `cassandra -f` directly. The image's docker-entrypoint.sh is bypassed on purpose: it rewrites
# cassandra.yaml from CASSANDRA_* variables, and the template is the one source of truth.
#
# The image's config dir (/etc/cassandra: jvm options, logback.xml, cassandra-env.sh ...) is
# copied to $CASSANDRA_CONF (an emptyDir), so nothing in the image has to be writable; bin/cassandra
# reads everything from $CASSANDRA_CONF. Defaults can be overridden from the environment, which is
# also how this script is tested outside a cluster.
set -eu

IMAGE_CONF=${CASSANDRA_IMAGE_CONF:-/etc/cassandra}
TEMPLATE=${CASSANDRA_TEMPLATE:-/etc/tributary/cassandra/cassandra.yaml}
# The datacenter and rack the node names (the image's own file says dc1).
RACKDC=${CASSANDRA_RACKDC:-/etc/tributary/cassandra/cassandra-rackdc.properties}
HEADLESS=${CASSANDRA_HEADLESS_SERVICE:-cassandra-headless}
DOMAIN=${CLUSTER_DOMAIN:-cluster.local}
STORAGE_PORT=${CASSANDRA_STORAGE_PORT:-7000}
NATIVE_PORT=${CASSANDRA_NATIVE_PORT:-9042}
DATA=${CASSANDRA_DATA:-/var/lib/cassandra}
CASSANDRA_BIN=${CASSANDRA_BIN:-cassandra}

die() { echo "cassandra-start: $*" >&2; exit 1; }
: "${CASSANDRA_CONF:?set CASSANDRA_CONF to a writable directory (an emptyDir)}"
: "${POD_IP:?set POD_IP (downward API status.podIP)}"
: "${POD_NAMESPACE:?set POD_NAMESPACE (downward API metadata.namespace)}"
[ "$CASSANDRA_CONF" != "$IMAGE_CONF" ] || die "CASSANDRA_CONF must differ from $IMAGE_CONF"

pod=${POD_NAME:-$(hostname)}
sts=${pod%-*}
seed_host=$sts-0.$HEADLESS.$POD_NAMESPACE.svc.$DOMAIN
seeds=${CASSANDRA_SEED_LIST:-$seed_host:$STORAGE_PORT}

# sed expression replacing ${NAME} by VALUE; | & and \ in VALUE are escaped for sed.
subst() {
  printf 's|[$][{]%s[}]|%s|g' "$1" "$(printf '%s' "$2" | sed -e 's/[\\|&]/\\&/g')"
}

mkdir -p "$CASSANDRA_CONF" "$DATA"
cp -R "$IMAGE_CONF"/. "$CASSANDRA_CONF"/
if [ -f "$RACKDC" ]; then cp "$RACKDC" "$CASSANDRA_CONF/cassandra-rackdc.properties"; fi
sed -e "$(subst CASSANDRA_SEEDS "$seeds")" \
  -e "$(subst CASSANDRA_LISTEN_ADDRESS "$POD_IP")" \
  -e "$(subst CASSANDRA_STORAGE_PORT "$STORAGE_PORT")" \
  -e "$(subst CASSANDRA_NATIVE_PORT "$NATIVE_PORT")" \
  -e "$(subst CASSANDRA_DATA "$DATA")" \
  "$TEMPLATE" >"$CASSANDRA_CONF/cassandra.yaml"
# Comments may mention ${...}; any other ${ is a placeholder the template gained.
if grep -n '^[^#]*[$][{]' "$CASSANDRA_CONF/cassandra.yaml" >&2; then
  die "$TEMPLATE has placeholders this script does not fill in (above)"
fi
echo "cassandra-start: $pod listens on $POD_IP:$STORAGE_PORT (CQL $NATIVE_PORT), seeds $seeds" >&2

# An unresolvable seed is fatal to Cassandra ("The seed provider lists no seeds"), and the seed's
# name appears only once its pod has an IP (cassandra-headless publishes not-ready addresses):
# wait for it a little rather than crash-loop.
if [ -z "${CASSANDRA_SEED_LIST:-}" ] && command -v getent >/dev/null 2>&1; then
  tries=0
  until getent hosts "$seed_host" >/dev/null 2>&1 || [ "$tries" -ge 60 ]; do
    tries=$((tries + 1))
    sleep 2
  done
fi

exec "$CASSANDRA_BIN" -f

# shellcheck shell=bash
# Sourced by stack/scripts/stack.sh. The schema registry: Apicurio Registry, serving the
# Confluent Schema Registry API under /apis/ccompat/v7 on NODE_IP:REGISTRY_PORT with HTTP basic
# auth, its schemas in an H2 database file in the state folder (stack/config/registry). It runs
# the application that Apicurio's own build publishes on Maven Central (stack/maven/registry):
# nothing is compiled here.

REGISTRY_HOME=$CACHE/apicurio-registry-$APICURIO_REGISTRY_VERSION
REGISTRY_STATE=$STATE/registry

registry_url() { echo "http://$NODE_IP:$REGISTRY_PORT/apis/ccompat/v7"; }
# Answers once the storage is up: Confluent's list of subjects, as the registry's user.
registry_ready() { curl -fsS --max-time 3 -u "$REGISTRY_USER:$REGISTRY_PASSWORD" "$(registry_url)/subjects"; }

# $1 = a java binary: its major version (17, 21, 25).
java_major() {
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p'
}

# The java that runs the registry: its classes need Java 21 or later, and Debian 12's default
# JDK (the one Kafka and Cassandra run on) is 17. REGISTRY_JAVA if set, else the first of
# JAVA_HOME's, the one on PATH, and those under /usr/lib/jvm that is 21 or later.
registry_java() {
  if [ -n "${REGISTRY_JAVA:-}" ]; then echo "$REGISTRY_JAVA"; return 0; fi
  local j v
  local -a candidates=()
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME/bin/java")
  command -v java >/dev/null 2>&1 && candidates+=("$(command -v java)")
  candidates+=(/usr/lib/jvm/*/bin/java)
  for j in "${candidates[@]}"; do
    [ -x "$j" ] || continue
    v=$(java_major "$j")
    if [ -n "$v" ] && (( v >= 21 )); then echo "$j"; return 0; fi
  done
  die "Apicurio Registry $APICURIO_REGISTRY_VERSION needs Java 21 or later, and none was found (looked at JAVA_HOME, PATH and /usr/lib/jvm). Install one (e.g. a Temurin JDK) and name it in REGISTRY_JAVA"
}

# Copies the application's archive from Maven Central and unpacks it into the cache, once.
install_registry() {
  [ -f "$REGISTRY_HOME/quarkus-run.jar" ] && return 0
  grep -q "<apicurio-registry.version>$APICURIO_REGISTRY_VERSION</apicurio-registry.version>" "$ROOT/stack/maven/registry/pom.xml" \
    || die "stack/maven/registry/pom.xml does not name Apicurio Registry $APICURIO_REGISTRY_VERSION (APICURIO_REGISTRY_VERSION in stack/stack.env): change both together"
  local download=$REGISTRY_HOME.download archive
  install_maven_classpath registry "$download" "Apicurio Registry $APICURIO_REGISTRY_VERSION (its runnable application, 160 MB)"
  archive=$download/apicurio-registry-app-$APICURIO_REGISTRY_VERSION-all.tar.gz
  [ -f "$archive" ] || die "$archive is missing after the download; see stack/maven/registry/pom.xml"
  say "  unpacking it into ${REGISTRY_HOME#"$ROOT"/}"
  rm -rf "$REGISTRY_HOME.tmp" && mkdir -p "$REGISTRY_HOME.tmp"
  tar -xzf "$archive" --no-same-owner -C "$REGISTRY_HOME.tmp" || die "could not unpack $archive"
  [ -f "$REGISTRY_HOME.tmp/quarkus-run.jar" ] || die "$archive has no quarkus-run.jar: not the layout lib/registry.sh expects"
  rm -rf "$REGISTRY_HOME" && mv "$REGISTRY_HOME.tmp" "$REGISTRY_HOME"
  rm -rf "$download"
}

spawn_registry() {
  is_running registry && return 0
  install_registry
  local java
  java=$(registry_java)
  mkdir -p "$REGISTRY_STATE/db" "$REGISTRY_STATE/tmp"
  # It holds the user's password (render_file writes through mktemp: its owner reads it only).
  render_file "$ROOT/stack/config/registry/application.properties" "$REGISTRY_STATE/application.properties"
  say "starting registry (Apicurio Registry $APICURIO_REGISTRY_VERSION, Java $(java_major "$java")) on $(registry_url) (schemas: ${REGISTRY_STATE#"$ROOT"/}/db)"
  # shellcheck disable=SC2086 # the heap options are words
  spawn registry "$java" $REGISTRY_HEAP_OPTS -Djava.io.tmpdir="$REGISTRY_STATE/tmp" \
    -Dquarkus.config.locations="$REGISTRY_STATE/application.properties" \
    -jar "$REGISTRY_HOME/quarkus-run.jar"
}

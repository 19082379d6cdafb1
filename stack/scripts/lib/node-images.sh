# shellcheck shell=bash
# Sourced by stack/scripts/node.sh. Images: the reference stack's stand-ins and the tributary image, loaded into the node.

# k3d/stack names the public images apache/kafka:4.1.1 and cassandra:5.0.6, which cannot be
# pulled here. Stand-ins under the same names, from the same release: Debian's OpenJDK 17 on
# the bookworm base, the Kafka and Cassandra jars the local stack takes from Maven Central,
# and the launchers of stack/images/ in place of Apache's bin/ scripts. (Kafka UI's release
# is on GitHub and ghcr.io only, neither reachable here: it has no stand-in.)
KAFKA_REF_IMAGE=docker.io/apache/kafka:$KAFKA_VERSION
CASSANDRA_REF_IMAGE=docker.io/library/cassandra:$CASSANDRA_VERSION

install_jre_base() {
  make_rootfs "$CACHE/base-bookworm-jre" openjdk-17-jre-headless "the Java image base (OpenJDK 17)"
  [ -f "$IMAGES/jre-oci/.complete" ] && return 0
  say "packing the Java image base into an OCI layout"
  rm -rf "$IMAGES/jre-oci"
  oci_new "$IMAGES/jre-oci" base
  oci_add "$IMAGES/jre-oci" base "$CACHE/base-bookworm-jre" /
  touch "$IMAGES/jre-oci/.complete"
}

# $1 base layout (tag `base`), $2 tag, $3 folder, $4 where it goes in the image, $5 archive,
# $6 entrypoint, $7 user: the base plus one layer holding $3, written to $5.
layered_image() {
  local work; work=$(mktemp -d "${TMPDIR:-/tmp}/tributary-image.XXXXXX")
  cp -a "$1" "$work/oci"
  umoci insert --image "$work/oci:base" --tag "$2" "$3" "$4" >/dev/null
  umoci rm --image "$work/oci:base"
  oci_archive "$work/oci" "$2" "$5" "$6" "$7"
  rm -rf "$work"
}

# $1 image ref, $2 archive, $3 folder holding the image's files (laid out from /), $4 user,
# $5 entrypoint.
reference_image() { layered_image "$IMAGES/jre-oci" "${1##*:}" "$3" / "$2" "$5" "$4"; }

# stack.sh reference-images: builds the stand-ins once per version (into the cache) and loads
# them into the node.
cmd_reference_images() {
  install_images
  install_jre_base
  local kafka=$IMAGES/kafka-$KAFKA_VERSION.tar cassandra=$IMAGES/cassandra-$CASSANDRA_VERSION.tar files
  if [ ! -f "$kafka" ]; then
    say "building $KAFKA_REF_IMAGE (stand-in: OpenJDK 17 + Kafka $KAFKA_VERSION's jars from Maven Central)"
    files=$(mktemp -d "${TMPDIR:-/tmp}/tributary-files.XXXXXX")
    mkdir -p "$files/opt/kafka/libs" "$files/opt/kafka/config"
    cp "$KAFKA_LIBS"/*.jar "$files/opt/kafka/libs/"
    cp -R "$ROOT/stack/images/kafka/bin" "$files/opt/kafka/bin"
    cp "$ROOT/stack/images/kafka/config/log4j2.properties" "$files/opt/kafka/config/"
    reference_image "$KAFKA_REF_IMAGE" "$kafka" "$files" 1000 /opt/kafka/bin/kafka-server-start.sh
    rm -rf "$files"
  fi
  if [ ! -f "$cassandra" ]; then
    say "building $CASSANDRA_REF_IMAGE (stand-in: OpenJDK 17 + Cassandra $CASSANDRA_VERSION's jars from Maven Central)"
    files=$(mktemp -d "${TMPDIR:-/tmp}/tributary-files.XXXXXX")
    mkdir -p "$files/opt/cassandra/lib" "$files/etc/cassandra" "$files/usr/local/bin" "$files/var/lib/cassandra"
    cp "$CASSANDRA_LIBS"/*.jar "$files/opt/cassandra/lib/"
    cp -R "$ROOT/stack/images/cassandra/bin" "$files/opt/cassandra/bin"
    ln -s /opt/cassandra/bin/cassandra "$files/usr/local/bin/cassandra"
    cp "$ROOT/stack/images/cassandra/conf/logback.xml" "$files/etc/cassandra/"
    cp "$ROOT/stack/config/cassandra/jvm17.options" "$files/etc/cassandra/jvm17-server.options"
    cp "$ROOT/stack/config/cassandra/cassandra.yaml" "$files/etc/cassandra/cassandra.yaml"
    chown -R 999:999 "$files/var/lib/cassandra"
    reference_image "$CASSANDRA_REF_IMAGE" "$cassandra" "$files" 999 /usr/local/bin/cassandra
    rm -rf "$files"
  fi
  is_running containerd || die "the node is not running: 'make stack-up' first"
  node_load_image "$KAFKA_REF_IMAGE" "$kafka"
  node_load_image "$CASSANDRA_REF_IMAGE" "$cassandra"
  say "loaded $KAFKA_REF_IMAGE ($(du -h "$kafka" | cut -f1)) and $CASSANDRA_REF_IMAGE ($(du -h "$cassandra" | cut -f1)) into the node"
}

# The image the node runs: the last one `stack.sh image` made (REPO:dev-<hash>).
current_image() { echo "$TRIBUTARY_IMAGE_REPO:$(cat "$STATE/images/tributary.tag" 2>/dev/null || echo dev)"; }

# stack.sh image BIN_DIR: the tributary image, the Debian base plus BIN_DIR's release
# binaries in /usr/local/bin, user 65532 — what the Dockerfile makes, without a registry.
# Its tag is the hash of the binaries, so a new build rolls every pod that runs it (the
# operator's and, through TRIBUTARY_SINK_IMAGE, the sinks'). Written to
# $STATE/images/tributary.tar and loaded into the node when containerd runs.
cmd_image() {
  local bin=${1:?usage: stack.sh image BIN_DIR (e.g. target/release)} b work tag
  install_images
  work=$(mktemp -d "${TMPDIR:-/tmp}/tributary-image.XXXXXX")
  mkdir -p "$work/bin" "$STATE/images"
  for b in tributary-operator tributary-sink tributary-seed; do
    [ -x "$bin/$b" ] || die "$bin/$b is missing: build it first (cargo build --release --locked; 'make image' does)"
    install -m 0755 "$bin/$b" "$work/bin/$b"
  done
  tag=dev-$(cat "$work"/bin/* | sha256sum | cut -c1-12)
  layered_image "$IMAGES/base-oci" "$tag" "$work/bin" /usr/local/bin "$STATE/images/tributary.tar" \
    /usr/local/bin/tributary-operator 65532
  rm -rf "$work"
  echo "$tag" >"$STATE/images/tributary.tag"
  say "image $(current_image) written to $STATE/images/tributary.tar ($(du -h "$STATE/images/tributary.tar" | cut -f1))"
  if is_running containerd; then
    node_load_image "$(current_image)" "$STATE/images/tributary.tar"
    say "image $(current_image) loaded into the node"
  fi
}

cmd_install_node() {
  install_node_tools
  install_images
}

# The local stack's node: containerd (Debian's) with runc and the CNI bridge plugin, and
# kubelet, kube-proxy, kube-scheduler and kube-controller-manager built from the same
# k8s.io/kubernetes module as the API server, and CoreDNS (cluster DNS, from its Go module). Sourced by stack.sh, which defines ROOT,
# CACHE, STATE, PKI, K8S_BIN, say, die, need, spawn, is_running, pid_of, stop_components.
#
# Everything the node makes lives in $STATE/node, $NODE_RUN and one bridge interface
# ($NODE_BRIDGE, address $NODE_IP): `down` stops the pods through the CRI, then the
# processes, then unmounts what is left under those folders, removes kube-proxy's
# iptables rules and the bridge; `leftovers` lists anything that is still there.
# shellcheck shell=bash

NODE_STATE=$STATE/node
CONTAINERD_SOCK=$NODE_RUN/containerd/containerd.sock
NODE_COMPONENTS=(containerd kubelet kube-proxy kube-scheduler kube-controller-manager coredns)
NODE_TOOLS=$CACHE/node-tools
IMAGES=$CACHE/images
# The sandbox ("pause") image every pod starts with; built here from Kubernetes' pause.c.
PAUSE_IMAGE=tributary.local/pause:3.10

crictl() { "$NODE_TOOLS/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" --image-endpoint "unix://$CONTAINERD_SOCK" --timeout 20s "$@"; }
ctr_k8s() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }
kube() { "$K8S_BIN/kubectl" --kubeconfig "$STATE/kubeconfig" --request-timeout=10s "$@"; }

# ---------------------------------------------------------------- install

node_packages_present() {
  local b
  for b in containerd runc ctr iptables debootstrap umoci ip; do command -v "$b" >/dev/null 2>&1 || return 1; done
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ]
}

# $1 binary, $2 package@version, $3 a note on the wait: `go install` into $NODE_TOOLS from
# the Go module proxy, once.
go_tool() {
  [ -x "$NODE_TOOLS/$1" ] && return 0
  need go
  say "building $1 from $2 (first time only${3:-})"
  mkdir -p "$NODE_TOOLS"
  GOBIN=$NODE_TOOLS GOFLAGS=-mod=mod CGO_ENABLED=0 go install "$2" >&2 || die "building $1 failed; the Go output is above"
}

install_node_tools() {
  node_packages_present || die "the node needs containerd, runc, CNI plugins, iptables, debootstrap and umoci: run 'make deps'"
  # crictl, to stop pods through the CRI at `down` (cri-tools is not packaged in Debian 12).
  go_tool crictl "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
  # CoreDNS: the cluster DNS every Kubernetes distribution runs (Services, and the per-pod
  # names of headless Services that StatefulSets such as k3d/stack's brokers use).
  go_tool coredns "github.com/coredns/coredns@$COREDNS_VERSION" ": 2-8 min"
  # pause: Kubernetes' own pause.c from the k8s.io/kubernetes module, linked statically.
  if [ ! -x "$NODE_TOOLS/pause" ]; then
    local src
    src=$(cd "$ROOT/stack/go" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c
    [ -f "$src" ] || (cd "$ROOT/stack/go" && go mod download k8s.io/kubernetes)
    [ -f "$src" ] || die "pause.c not found in the k8s.io/kubernetes module ($src)"
    say "compiling the pause binary from $src"
    gcc -Os -static -DVERSION="v3.10-tributary" -o "$NODE_TOOLS/pause.tmp" "$src" \
      || die "compiling pause.c failed (needs gcc and libc6-dev: 'make deps')"
    strip "$NODE_TOOLS/pause.tmp" && mv "$NODE_TOOLS/pause.tmp" "$NODE_TOOLS/pause"
  fi
}

# OCI images are made with umoci (Debian's package): a layout folder, one layer per
# `umoci insert`, then the config, then a tar archive that containerd imports.
oci_new() { umoci init --layout "$1" && umoci new --image "$1:$2"; }
oci_add() { umoci insert --image "$1:$2" "$3" "$4" >/dev/null; }
# $1 layout, $2 tag, $3 archive, $4 entrypoint, $5 user.
oci_archive() {
  umoci config --image "$1:$2" --os linux --architecture amd64 \
    --config.entrypoint "$4" --config.user "$5" --config.workingdir / \
    --config.env PATH=/usr/local/bin:/usr/bin:/bin >/dev/null
  umoci gc --layout "$1"
  tar -C "$1" -cf "$3.tmp" . && mv "$3.tmp" "$3"
}

# $1 folder, $2 packages, $3 what for: a Debian bookworm (minbase) root file system made with
# debootstrap from Debian's packages, with the packages of $2 and without package caches,
# docs and man pages, plus the users the images run as (nonroot 65532; the uids of the
# public Kafka and Cassandra images, 1000 and 999). Cached as a folder; made once.
make_rootfs() {
  local dir=$1 mirror
  [ -f "$dir/.complete" ] && return 0
  mirror=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *//p; s/^deb \(http[^ ]*\) bookworm .*/\1/p' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n1 || true)}
  mirror=${mirror:-http://deb.debian.org/debian}
  say "making $3: debootstrap --variant=minbase bookworm from $mirror (first time only: 1-5 min)"
  rm -rf "$dir.tmp"
  debootstrap --variant=minbase --include="$2" bookworm "$dir.tmp" "$mirror" >"$CACHE/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $CACHE/debootstrap.log"
  rm -rf "$dir.tmp"/var/cache/apt/* "$dir.tmp"/var/lib/apt/lists/* "$dir.tmp"/usr/share/doc/* "$dir.tmp"/usr/share/man/* "$dir.tmp"/usr/share/locale/*
  local user
  for user in nonroot:65532 appuser:1000 cassandra:999; do
    echo "${user%:*}:x:${user#*:}:${user#*:}:${user%:*}:/home/${user%:*}:/usr/sbin/nologin" >>"$dir.tmp/etc/passwd"
    echo "${user%:*}:x:${user#*:}:" >>"$dir.tmp/etc/group"
    mkdir -p "$dir.tmp/home/${user%:*}" && chown "${user#*:}:${user#*:}" "$dir.tmp/home/${user%:*}"
  done
  rm -rf "$dir" && mv "$dir.tmp" "$dir" && touch "$dir/.complete"
}

# The runtime base of the tributary image: the libraries the binaries link (libssl3, zlib)
# and CA certificates.
install_base_rootfs() { make_rootfs "$CACHE/base-bookworm" libssl3,ca-certificates "the image base"; }

install_images() {
  mkdir -p "$IMAGES"
  if [ ! -f "$IMAGES/pause.tar" ]; then
    local work; work=$(mktemp -d)
    oci_new "$work/oci" "${PAUSE_IMAGE##*:}"
    oci_add "$work/oci" "${PAUSE_IMAGE##*:}" "$NODE_TOOLS/pause" /pause
    oci_archive "$work/oci" "${PAUSE_IMAGE##*:}" "$IMAGES/pause.tar" /pause 65535
    rm -rf "$work"
  fi
  install_base_rootfs
  # The base as an OCI layout with one layer, so each image build only adds its binaries.
  if [ ! -f "$IMAGES/base-oci/.complete" ]; then
    say "packing the image base into an OCI layout"
    rm -rf "$IMAGES/base-oci"
    oci_new "$IMAGES/base-oci" base
    oci_add "$IMAGES/base-oci" base "$CACHE/base-bookworm" /
    touch "$IMAGES/base-oci/.complete"
  fi
}

# ---------------------------------------------------------------- reference-stack images

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

# ---------------------------------------------------------------- certificates and configs

# $1 file stem, $2 subject: a client certificate signed by the stack's CA.
client_cert() {
  [ -f "$PKI/$1.crt" ] && return 0
  openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$PKI/$1.key" -out "$PKI/$1.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$PKI/$1.ext"
  openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 3650 \
    -extfile "$PKI/$1.ext" -out "$PKI/$1.crt" 2>/dev/null
  rm -f "$PKI/$1.csr" "$PKI/$1.ext"
}

# Client certificates of the node's components, each the identity Kubernetes' default RBAC
# (and the Node authorizer, for the kubelet) expects; the API server's for the kubelets.
node_pki() {
  client_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  client_cert kube-proxy "/CN=system:kube-proxy"
  client_cert kube-scheduler "/CN=system:kube-scheduler"
  client_cert kube-controller-manager "/CN=system:kube-controller-manager"
  client_cert coredns "/CN=system:coredns"
  client_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
}

# Writes stdin to $1 only when it differs (kube-proxy exits when its config file changes).
write_if_changed() {
  local tmp; tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

# $1 name, $2 certificate stem: a kubeconfig for one component.
component_kubeconfig() {
  write_if_changed "$NODE_STATE/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: tributary-local
  cluster: {server: "https://$NODE_IP:$APISERVER_PORT", certificate-authority: "$PKI/ca.crt"}
users:
- name: $1
  user: {client-certificate: "$PKI/$2.crt", client-key: "$PKI/$2.key"}
contexts:
- name: $1
  context: {cluster: tributary-local, user: $1}
current-context: $1
EOF
}

write_node_configs() {
  mkdir -p "$NODE_STATE"/{cni,ipam,kubelet,containerd} "$NODE_RUN"
  node_pki
  local c
  for c in kubelet kube-proxy kube-scheduler kube-controller-manager coredns; do component_kubeconfig "$c" "$c"; done

  # Cluster DNS for the pods (kubelet clusterDNS below): cluster.local from the API server,
  # everything else forwarded to the host's resolvers. On the node address only.
  write_if_changed "$NODE_STATE/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $NODE_STATE/coredns.kubeconfig coredns
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    ready 127.0.0.1:$COREDNS_READY_PORT
    forward . /etc/resolv.conf
    cache 30
    loop
}
EOF

  # containerd: its own root, state and socket, so it never meets another containerd.
  # restrict_oom_score_adj: machines without CAP_SYS_RESOURCE fail every sandbox otherwise.
  write_if_changed "$NODE_STATE/containerd.toml" <<EOF
version = 2
root = "$NODE_STATE/containerd"
state = "$NODE_RUN/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$NODE_RUN/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_STATE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_STATE/cni"
EOF

  # Pods on one bridge; the node's address is the bridge's, so pods reach the API server,
  # Kafka and Cassandra there. Routes: the pod subnet and the Service range only — pods
  # have no default route, so nothing they do leaves this machine.
  write_if_changed "$NODE_STATE/cni/10-tributary.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "tributary",
  "plugins": [{
    "type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": false, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "dataDir": "$NODE_STATE/ipam",
             "ranges": [[{"subnet": "$NODE_CIDR", "rangeStart": "$NODE_POD_RANGE_START"}]],
             "routes": [{"dst": "$SERVICE_CIDR", "gw": "$NODE_IP"}]}
  }]
}
EOF

  write_if_changed "$NODE_STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# A cgroup v1 host (kubelet >= 1.35 refuses v1 unless told otherwise), cgroupfs as containerd.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
address: "$NODE_IP"
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
containerRuntimeEndpoint: "unix://$CONTAINERD_SOCK"
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: AlwaysAllow}
clusterDomain: cluster.local
clusterDNS: ["$NODE_IP"]
# Images are built here and cannot be pulled again: never garbage-collect them, and evict
# only when the disk is really full.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "200Mi", nodefs.available: "2%", imagefs.available: "2%"}
serializeImagePulls: false
maxPods: 110
rotateCertificates: false
shutdownGracePeriod: 0s
EOF

  write_if_changed "$NODE_STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$NODE_STATE/kube-proxy.kubeconfig"}
hostnameOverride: "$NODE_NAME"
mode: iptables
clusterCIDR: "$NODE_CIDR"
bindAddress: "$NODE_IP"
healthzBindAddress: "127.0.0.1:10256"
metricsBindAddress: "127.0.0.1:10249"
# Leave the host's conntrack table size and route_localnet alone.
conntrack: {maxPerCore: 0}
iptables: {localhostNodePorts: false}
nodePortAddresses: ["$NODE_IP/32"]
EOF
}

# ---------------------------------------------------------------- network

# The bridge carries the node's address; everything of the stack listens there.
ensure_node_network() {
  if ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || die "the local stack's node needs root (it creates the bridge $NODE_BRIDGE, runs containerd and the kubelet); run it as root"
    say "creating bridge $NODE_BRIDGE with the node address $NODE_IP"
    ip link add "$NODE_BRIDGE" type bridge
  fi
  [[ $(ip -4 -o addr show dev "$NODE_BRIDGE") == *" $NODE_IP/"* ]] || ip addr add "$NODE_IP/${NODE_CIDR#*/}" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  node_sysctls
}

# Pods reach Services through the node: kube-proxy DNATs a ClusterIP to a pod on the same
# bridge, which needs the host to route (ip_forward) and to see the bridged replies
# (bridge-nf-call-iptables), as on every Kubernetes node. The values found are saved once and
# put back by `down`. (Pods have no default route, so nothing of theirs leaves the machine.)
NODE_SYSCTLS=(net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables)
node_sysctls() {
  local saved=$STATE/node/sysctls.saved k
  mkdir -p "$STATE/node"
  if [ ! -f "$saved" ]; then
    for k in "${NODE_SYSCTLS[@]}"; do
      [ -f "/proc/sys/$k" ] && echo "$k $(cat "/proc/sys/$k")"
    done >"$saved.tmp" && mv "$saved.tmp" "$saved"
  fi
  for k in "${NODE_SYSCTLS[@]}"; do
    [ -f "/proc/sys/$k" ] || { [ "$k" = net/bridge/bridge-nf-call-iptables ] && modprobe br_netfilter 2>/dev/null; }
    [ -f "/proc/sys/$k" ] || die "/proc/sys/$k is missing: pods could not reach Services (load br_netfilter: modprobe br_netfilter)"
    [ "$(cat "/proc/sys/$k")" = 1 ] || echo 1 >"/proc/sys/$k" || die "could not set $k=1 (pods need it to reach Services)"
  done
}

restore_sysctls() {
  local saved=$STATE/node/sysctls.saved k v
  [ -f "$saved" ] || return 0
  while read -r k v; do
    [ -f "/proc/sys/$k" ] && echo "$v" >"/proc/sys/$k" 2>/dev/null || true
  done <"$saved"
  rm -f "$saved"
}

# ---------------------------------------------------------------- processes

containerd_ready() { ctr --address "$CONTAINERD_SOCK" version; }
node_ready() { kube get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True; }
component_healthy() { curl -fsSk "$1" | grep -qx ok; }

# Loads an OCI archive into the node (k8s.io namespace, where the kubelet looks), unless
# an image of that name and digest is there already.
node_load_image() {
  local ref=$1 archive=$2
  ctr_k8s images import --base-name "${ref%:*}" --digests "$archive" >/dev/null \
    || die "could not load $archive into the node's containerd"
  local images; images=$(ctr_k8s images ls -q)
  grep -qx "$ref" <<<"$images" || die "$archive did not provide $ref"
}

start_node() {
  ensure_node_network
  write_node_configs
  local -a WATCHED
  if ! is_running containerd; then
    say "starting containerd $(containerd --version | awk '{print $3}') (socket $CONTAINERD_SOCK)"
    spawn containerd containerd --config "$NODE_STATE/containerd.toml" --log-level warn
    WATCHED=(containerd); wait_until containerd 60 containerd_ready
  fi
  node_load_image "$PAUSE_IMAGE" "$IMAGES/pause.tar"
  if [ -f "$STATE/images/tributary.tar" ]; then node_load_image "$(current_image)" "$STATE/images/tributary.tar"; fi
  if ! is_running kube-controller-manager; then
    say "starting kube-controller-manager"
    spawn kube-controller-manager "$K8S_BIN/kube-controller-manager" \
      --kubeconfig "$NODE_STATE/kube-controller-manager.kubeconfig" \
      --authentication-kubeconfig "$NODE_STATE/kube-controller-manager.kubeconfig" \
      --authorization-kubeconfig "$NODE_STATE/kube-controller-manager.kubeconfig" \
      --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
      --use-service-account-credentials \
      --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
      --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
      --service-cluster-ip-range "$SERVICE_CIDR" --allocate-node-cidrs=false \
      --node-monitor-grace-period 20s --v 1
  fi
  if ! is_running kube-scheduler; then
    say "starting kube-scheduler"
    spawn kube-scheduler "$K8S_BIN/kube-scheduler" \
      --kubeconfig "$NODE_STATE/kube-scheduler.kubeconfig" \
      --authentication-kubeconfig "$NODE_STATE/kube-scheduler.kubeconfig" \
      --authorization-kubeconfig "$NODE_STATE/kube-scheduler.kubeconfig" \
      --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false --v 1
  fi
  if ! is_running kube-proxy; then
    say "starting kube-proxy (iptables)"
    spawn kube-proxy "$K8S_BIN/kube-proxy" --config "$NODE_STATE/kube-proxy.yaml" --v 1
  fi
  if ! is_running coredns; then
    # What kubeadm gives CoreDNS: read Services, EndpointSlices, Pods and Namespaces.
    kube apply -f "$ROOT/stack/config/node/coredns-rbac.yaml" >/dev/null \
      || die "could not apply CoreDNS's RBAC (stack/config/node/coredns-rbac.yaml)"
    say "starting CoreDNS $COREDNS_VERSION (cluster DNS on $NODE_IP:53)"
    spawn coredns "$NODE_TOOLS/coredns" -conf "$NODE_STATE/Corefile"
  fi
  if ! is_running kubelet; then
    say "starting kubelet (node $NODE_NAME, $NODE_IP)"
    spawn kubelet "$K8S_BIN/kubelet" --config "$NODE_STATE/kubelet.yaml" \
      --kubeconfig "$NODE_STATE/kubelet.kubeconfig" --hostname-override "$NODE_NAME" \
      --node-ip "$NODE_IP" --root-dir "$NODE_STATE/kubelet" --cert-dir "$NODE_STATE/kubelet/pki" --v 1
  fi
  WATCHED=(kube-controller-manager); wait_until kube-controller-manager 60 component_healthy "https://127.0.0.1:$KCM_PORT/healthz"
  WATCHED=(kube-scheduler); wait_until kube-scheduler 60 component_healthy "https://127.0.0.1:$SCHEDULER_PORT/healthz"
  WATCHED=(kube-proxy); wait_until kube-proxy 60 curl -fsS "http://127.0.0.1:10256/healthz"
  WATCHED=(coredns); wait_until coredns 60 curl -fsS "http://127.0.0.1:$COREDNS_READY_PORT/ready"
  # shellcheck disable=SC2034 # WATCHED is read by wait_until (bash's dynamic scope)
  WATCHED=(kubelet containerd); wait_until "node $NODE_NAME" 120 node_ready
}

# Stops the node: pods first, through the CRI (so CNI releases addresses and veths), then
# the processes, then whatever they left: mounts, network namespaces, iptables rules, the
# bridge. Pods come back at the next `up` (the API server still has them), as after a reboot.
stop_node() {
  if is_running containerd && [ -x "$NODE_TOOLS/crictl" ]; then
    stop_components kubelet
    local pods
    pods=$(crictl pods -q 2>/dev/null || true)
    if [ -n "$pods" ]; then
      say "stopping $(wc -w <<<"$pods") pod sandbox(es) through the CRI"
      # shellcheck disable=SC2086
      crictl stopp $pods >/dev/null 2>&1 || true
      # shellcheck disable=SC2086
      crictl rmp -f $pods >/dev/null 2>&1 || true
    fi
  fi
  stop_components kubelet kube-proxy kube-scheduler kube-controller-manager coredns
  stop_components containerd
  # Shims and container processes that outlived containerd (e.g. after a kill -9).
  local p
  for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" || true); do
    kill -KILL "$p" 2>/dev/null || true
  done
  kill_cgroup_tree kubepods
  unmount_under "$NODE_RUN" "$NODE_STATE"
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do
    ip netns delete "$ns" 2>/dev/null || true
  done
  if [ -x "$K8S_BIN/kube-proxy" ] && [[ $(iptables-save 2>/dev/null) == *KUBE-* ]]; then
    "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
    remove_kube_chains
  fi
  ip link show "$NODE_BRIDGE" >/dev/null 2>&1 && ip link delete "$NODE_BRIDGE"
  rm -rf "$NODE_RUN"
  restore_sysctls
}

# SIGKILL to every process in the cgroup subtree $1 of every v1 hierarchy (and v2).
kill_cgroup_tree() {
  local f p
  while IFS= read -r -d '' f; do
    while read -r p; do kill -KILL "$p" 2>/dev/null || true; done <"$f"
  done < <(find /sys/fs/cgroup -path "*/$1*" -name cgroup.procs -print0 2>/dev/null)
  # Empty cgroups, deepest first.
  find /sys/fs/cgroup -depth -type d -path "*/$1*" -exec rmdir {} \; 2>/dev/null || true
}

unmount_under() {
  local dir m
  for dir in "$@"; do
    [ -e "$dir" ] || continue
    dir=$(realpath "$dir")
    # Deepest first.
    for m in $(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r); do
      umount -l "$m" 2>/dev/null || true
    done
  done
}

# kubelet and kube-proxy chains that kube-proxy --cleanup does not remove (KUBE-FIREWALL,
# KUBE-KUBELET-CANARY, ...), in every table of both iptables and ip6tables.
remove_kube_chains() {
  local cmd table chain rule saved
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null || continue
    for table in filter nat mangle raw; do
      saved=$("$cmd-save" -t "$table" 2>/dev/null || true)
      while read -r rule; do
        # shellcheck disable=SC2086
        [ -n "$rule" ] && { "$cmd" -t "$table" -D ${rule#-A } 2>/dev/null || true; }
      done < <(grep -- '^-A .*KUBE-' <<<"$saved" || true)
      for chain in $(awk '/^:KUBE-/{print substr($1, 2)}' <<<"$saved"); do
        "$cmd" -t "$table" -F "$chain" 2>/dev/null || true
        "$cmd" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

# Everything the node could leave behind; prints one line per leftover, fails if any.
node_leftovers() {
  local found=0 c
  for c in "${NODE_COMPONENTS[@]}"; do
    if is_running "$c"; then echo "process: $c (pid $(pid_of "$c"))"; found=1; fi
  done
  if pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" >/dev/null; then echo "process: containerd-shim"; found=1; fi
  local m
  for m in $(awk -v a="$(realpath -m "$NODE_RUN")" -v b="$(realpath -m "$NODE_STATE")" 'index($5, a) == 1 || index($5, b) == 1 {print $5}' /proc/self/mountinfo); do
    echo "mount: $m"; found=1
  done
  if ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then echo "interface: $NODE_BRIDGE"; found=1; fi
  # (Output captured first: `| grep -q` under pipefail can fail on SIGPIPE and hide a match.)
  local veths namespaces
  veths=$(ip -o link show type veth 2>/dev/null || true)
  if [[ $veths == *"master $NODE_BRIDGE"* ]]; then echo "interface: veth on $NODE_BRIDGE"; found=1; fi
  namespaces=$(ip netns list 2>/dev/null || true)
  if grep -q '^cni-' <<<"$namespaces"; then echo "network namespace: $(grep '^cni-' <<<"$namespaces" | head -n1)"; found=1; fi
  if [ -f "$STATE/node/sysctls.saved" ]; then echo "sysctl: not restored ($(tr '\n' ' ' <"$STATE/node/sysctls.saved"))"; found=1; fi
  if [[ $(iptables-save 2>/dev/null) == *KUBE-* ]]; then echo "iptables: $(iptables-save | grep -c 'KUBE-') KUBE- lines"; found=1; fi
  if [ -n "$(find /sys/fs/cgroup -maxdepth 2 -name kubepods 2>/dev/null)" ]; then echo "cgroup: kubepods"; found=1; fi
  return $found
}

# shellcheck shell=bash
# Sourced by stack/scripts/node.sh. Installing the node's parts: its Go-built components, tools and image bases.

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

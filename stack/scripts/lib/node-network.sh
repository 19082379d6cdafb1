# shellcheck shell=bash
# Sourced by stack/scripts/node.sh. The node's bridge and the host settings pods need.

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

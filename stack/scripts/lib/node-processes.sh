# shellcheck shell=bash
# Sourced by stack/scripts/node.sh. Starting and stopping the node's processes, and checking that nothing is left behind.

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

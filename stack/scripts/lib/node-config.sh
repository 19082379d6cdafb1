# shellcheck shell=bash
# Sourced by stack/scripts/node.sh. The node's certificates, and its components' configs rendered from stack/config/node.

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

# Renders the template stack/config/node/$1 into $2 (only when that changes), its ${NAME}s
# taken from the variables of that name.
render() { render_file "$ROOT/stack/config/node/$1" "$2"; }

# The same for the template at path $1 (e.g. stack/config/prometheus's).
render_file() {
  local template=$1 vars
  vars=$(grep -o '\${[A-Za-z_][A-Za-z_0-9]*}' "$template" | sort -u | tr '\n' ' ')
  # shellcheck disable=SC2086 # the names, one word each
  (export ${vars//[\$\{\}]/}; envsubst "$vars" <"$template") | write_if_changed "$2"
}

# $1 name, $2 certificate stem: a kubeconfig for one component.
component_kubeconfig() {
  local COMPONENT=$1 STEM=$2
  render component.kubeconfig "$NODE_STATE/$1.kubeconfig"
}

write_node_configs() {
  mkdir -p "$NODE_STATE"/{cni,ipam,kubelet,containerd} "$NODE_RUN"
  node_pki
  local c
  for c in kubelet kube-proxy kube-scheduler kube-controller-manager coredns; do component_kubeconfig "$c" "$c"; done

  # Cluster DNS for the pods (kubelet clusterDNS below): cluster.local from the API server,
  # everything else forwarded to the host's resolvers. On the node address only.
  render Corefile "$NODE_STATE/Corefile"

  # containerd: its own root, state and socket, so it never meets another containerd.
  # restrict_oom_score_adj: machines without CAP_SYS_RESOURCE fail every sandbox otherwise.
  local RUNC; RUNC=$(command -v runc)
  render containerd.toml "$NODE_STATE/containerd.toml"

  # Pods on one bridge; the node's address is the bridge's, so pods reach the API server,
  # Kafka and Cassandra there. Routes: the pod subnet and the Service range only — pods
  # have no default route, so nothing they do leaves this machine.
  render 10-tributary.conflist "$NODE_STATE/cni/10-tributary.conflist"

  render kubelet.yaml "$NODE_STATE/kubelet.yaml"

  render kube-proxy.yaml "$NODE_STATE/kube-proxy.yaml"
}

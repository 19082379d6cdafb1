# The local stack's node: containerd (Debian's) with runc and the CNI bridge plugin, and
# kubelet, kube-proxy, kube-scheduler and kube-controller-manager built from the same
# k8s.io/kubernetes module as the API server, and CoreDNS (cluster DNS, from its Go module). Sourced by stack.sh, which defines ROOT,
# CACHE, STATE, PKI, K8S_BIN, say, die, need, spawn, is_running, pid_of, stop_components.
#
# Everything the node makes lives in $STATE/node, $NODE_RUN and one bridge interface
# ($NODE_BRIDGE, address $NODE_IP): `down` stops the pods through the CRI, then the
# processes, then unmounts what is left under those folders, removes kube-proxy's
# iptables rules and the bridge; `leftovers` lists anything that is still there.
# shellcheck shell=bash source-path=SCRIPTDIR

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

# Each concern in a file of its own (stack/scripts/lib), configuration in stack/config/node.
# shellcheck source=lib/node-install.sh
source "$ROOT/stack/scripts/lib/node-install.sh"
# shellcheck source=lib/node-images.sh
source "$ROOT/stack/scripts/lib/node-images.sh"
# shellcheck source=lib/node-config.sh
source "$ROOT/stack/scripts/lib/node-config.sh"
# shellcheck source=lib/node-network.sh
source "$ROOT/stack/scripts/lib/node-network.sh"
# shellcheck source=lib/node-processes.sh
source "$ROOT/stack/scripts/lib/node-processes.sh"

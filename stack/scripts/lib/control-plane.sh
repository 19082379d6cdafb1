# shellcheck shell=bash
# Sourced by stack/scripts/stack.sh. The control plane: its PKI, etcd and kube-apiserver.

ensure_pki() {
  # Certificates of a stack from before the node (API server on loopback) are made anew.
  if [ -f "$PKI/admin.crt" ] && [[ $(openssl x509 -in "$PKI/apiserver.crt" -noout -text 2>/dev/null) != *"IP Address:$NODE_IP"* ]]; then
    say "the API server certificate lacks the node address $NODE_IP: making new certificates"
    rm -rf "$PKI"
  fi
  [ -f "$PKI/admin.crt" ] && return 0
  mkdir -p "$PKI"
  say "creating certificates for the API server in ${PKI#"$ROOT"/}"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=tributary-local-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:%s,IP:%s,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' \
      "$NODE_IP" "$(service_ip 1)" >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    # The admin client: member of system:masters, as envtest's default user is.
    openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=tributary-admin" -keyout admin.key -out admin.csr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile admin.ext -out admin.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr ./*.ext
  )
  cat >"$STATE/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: tributary-local
  cluster:
    server: https://$NODE_IP:$APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: tributary-admin
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: tributary-local
  context: {cluster: tributary-local, user: tributary-admin}
current-context: tributary-local
EOF
}

# The Nth address of SERVICE_CIDR (1: the kubernetes Service).
service_ip() { local base=${SERVICE_CIDR%/*}; echo "${base%.*}.$(( ${base##*.} + $1 ))"; }

etcd_healthy() { curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health" | grep -q '"health":"true"'; }
apiserver_ready() { "$K8S_BIN/kubectl" --kubeconfig "$STATE/kubeconfig" get --raw /readyz --request-timeout=3s | grep -q '^ok$'; }

start_etcd() {
  is_running etcd && etcd_healthy && return 0
  stop_components etcd
  say "starting etcd on 127.0.0.1:$ETCD_CLIENT_PORT"
  mkdir -p "$STATE/etcd"
  # --unsafe-no-fsync: a throwaway test store, as envtest runs it; far faster on slow disks.
  spawn etcd "$K8S_BIN/etcd" --name tributary --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "tributary=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes 4294967296
  wait_until etcd 60 etcd_healthy
}

start_apiserver() {
  is_running apiserver && apiserver_ready && return 0
  stop_components apiserver
  ensure_pki
  node_pki
  say "starting kube-apiserver $KUBERNETES_VERSION on https://$NODE_IP:$APISERVER_PORT"
  spawn apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --service-account-issuer "https://127.0.0.1:$APISERVER_PORT" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP \
    --allow-privileged=true \
    --enable-priority-and-fairness=false \
    --storage-media-type application/json \
    --v 1
  wait_until apiserver 120 apiserver_ready
}

# shellcheck shell=bash
# Sourced by stack/scripts/stack.sh. TLS for Kafka and Cassandra: the data CA and the servers' certificates.

# A CA of its own for the data services (not the Kubernetes one) and one server certificate
# each for the brokers and Cassandra, naming the node address (what clients and pods dial),
# 127.0.0.1 and localhost. PEM throughout: Kafka and Cassandra read PEM key stores, so no
# keytool is needed. Clients get the CA: `stack.sh env` exports KAFKA_CA_FILE and CASSANDRA_CA_FILE.
TLS_DIR=$PKI/data
ensure_data_pki() {
  if [ -f "$TLS_DIR/cassandra.pem" ] && [[ $(openssl x509 -in "$TLS_DIR/kafka.crt" -noout -text 2>/dev/null) == *"IP Address:$NODE_IP"* ]]; then
    return 0
  fi
  need openssl
  rm -rf "$TLS_DIR" && mkdir -p "$TLS_DIR"
  say "creating the Kafka and Cassandra TLS certificates in ${TLS_DIR#"$ROOT"/}"
  (
    cd "$TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=tributary-data-ca" \
      -keyout data-ca.key -out data-ca.crt 2>/dev/null
    printf 'subjectAltName=IP:%s,IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' "$NODE_IP" >server.ext
    local service
    for service in kafka cassandra; do
      openssl req -newkey rsa:2048 -nodes -subj "/CN=tributary-$service" -keyout "$service.key" -out "$service.csr" 2>/dev/null
      openssl x509 -req -in "$service.csr" -CA data-ca.crt -CAkey data-ca.key -CAcreateserial -days 3650 \
        -extfile server.ext -out "$service.crt" 2>/dev/null
      # One PEM file with the (PKCS#8, unencrypted) key and the chain: Kafka's and
      # Cassandra's PEM key stores both read this shape.
      cat "$service.key" "$service.crt" data-ca.crt >"$service.pem"
      chmod 600 "$service.key" "$service.pem"
    done
    rm -f ./*.csr server.ext
  ) || die "creating the TLS certificates in $TLS_DIR failed"
}

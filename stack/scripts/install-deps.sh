#!/usr/bin/env bash
# Installs, from Debian's packages, what building Tributary and running the local stack need:
# a JDK (Kafka, Cassandra and the probes), Maven (fetches Kafka and Cassandra from Maven
# Central), OpenSSL (API server certificates), and the headers rdkafka's bundled librdkafka
# builds against; for the node: containerd, runc and the CNI plugins, iptables (kube-proxy),
# iproute2 (the node's bridge), debootstrap (the image base) and umoci (OCI images without a
# registry); shellcheck (`make lint` checks the shell scripts); lua5.4 (the Argo CD health
# checks' test runs them). Go (>= 1.21) and Rust come
# from their own installers and are checked here.
set -euo pipefail
pkgs=(openjdk-17-jdk-headless maven openssl curl gettext-base cmake pkg-config build-essential
      libssl-dev zlib1g-dev libcurl4-openssl-dev libsasl2-dev procps
      containerd runc containernetworking-plugins iptables iproute2 debootstrap umoci shellcheck lua5.4)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[deps] installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "[deps] Debian packages present"
fi
command -v go >/dev/null || { echo "[deps] Go is missing: install Go >= 1.21 (it fetches the toolchain stack/go/go.mod asks for)"; exit 1; }
command -v cargo >/dev/null || { echo "[deps] Rust is missing: install it with rustup"; exit 1; }
echo "[deps] $(go version); $(cargo --version)"

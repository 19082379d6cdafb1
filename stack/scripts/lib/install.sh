# shellcheck shell=bash
# Sourced by stack/scripts/stack.sh. Installing what the stack runs: the control plane built from its Go module, Kafka and Cassandra from Maven Central, the probes, Prometheus (lib/prometheus.sh), the schema registry (lib/registry.sh), pinned tools.

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed. Run 'make deps' (Debian: sudo stack/scripts/install-deps.sh) and try again."
}

# Stamps the version the binaries report (kubectl version, /version), as Kubernetes' own build does.
version_ldflags() {
  local v=${KUBERNETES_VERSION#v} pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    printf -- '-X %s.gitVersion=%s -X %s.gitMajor=%s -X %s.gitMinor=%s -X %s.gitTreeState=clean ' \
      "$pkg" "$KUBERNETES_VERSION" "$pkg" "${v%%.*}" "$pkg" "$(cut -d. -f2 <<<"$v")" "$pkg"
  done
}

install_control_plane() {
  local missing=()
  for b in etcd kube-apiserver kubectl kubelet kube-proxy kube-scheduler kube-controller-manager; do [ -x "$K8S_BIN/$b" ] || missing+=("$b"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  need go
  mkdir -p "$K8S_BIN"
  say "building ${missing[*]} from k8s.io/kubernetes $KUBERNETES_VERSION (first time only: 5-15 min on 2 cores)"
  local pkg
  for b in "${missing[@]}"; do
    case $b in
      etcd) pkg=go.etcd.io/etcd/server/v3 ;;
      *) pkg=k8s.io/kubernetes/cmd/$b ;;
    esac
    say "  go build $pkg"
    (cd "$ROOT/stack/go" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w $(version_ldflags)" -o "$K8S_BIN/$b.tmp" "$pkg") \
      || die "building $b failed; the Go output is above. Check 'go version' (needs Go >= 1.21, which fetches the toolchain go.mod asks for)."
    mv "$K8S_BIN/$b.tmp" "$K8S_BIN/$b"
  done
}

# $1 = pom folder, $2 = destination; copies the runtime classpath from Maven Central.
install_maven_classpath() {
  local pom=$1 dest=$2 what=$3
  [ -f "$dest/.complete" ] && return 0
  need mvn; need java
  say "downloading $what from Maven Central into ${dest#"$ROOT"/}"
  rm -rf "$dest"
  mvn -B -q -f "$ROOT/stack/maven/$pom/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$dest" \
    || die "Maven could not resolve $what; run the same command without -q to see which artifact failed."
  touch "$dest/.complete"
}

install_probes() {
  local stamp
  stamp=$(cat "$ROOT"/stack/probe/*.java | sha256sum | cut -c1-12)
  [ -f "$PROBES/$stamp" ] && return 0
  need javac
  rm -rf "$PROBES" && mkdir -p "$PROBES"
  javac -nowarn -d "$PROBES" -cp "$KAFKA_LIBS/*" "$ROOT/stack/probe/KafkaProbe.java" "$ROOT/stack/probe/LogDirsProbe.java"
  javac -nowarn -d "$PROBES" -cp "$CASSANDRA_LIBS/*" "$ROOT/stack/probe/CqlProbe.java"
  touch "$PROBES/$stamp"
}

cmd_install() {
  need java; need openssl; need envsubst; need curl
  install_control_plane
  install_maven_classpath kafka "$KAFKA_LIBS" "Apache Kafka $KAFKA_VERSION"
  install_maven_classpath cassandra "$CASSANDRA_LIBS" "Apache Cassandra $CASSANDRA_VERSION"
  install_probes
  install_prometheus
  install_registry
  cmd_install_node
}

# Pinned tools for the cluster paths; prints the path of the binary.
cmd_tool() {
  local dir bin
  case ${1:-} in
    helm)
      # Built the way Helm's own Makefile does: the Kubernetes version it assumes for
      # `helm template`/`lint` (without which it says v1.20) comes from its client-go.
      dir=$CACHE/helm-$HELM_VERSION-k8sver; bin=$dir/helm
      if [ ! -x "$bin" ]; then
        need go
        say "building helm $HELM_VERSION from helm.sh/helm/v3 (first time only: 2-5 min)"
        mkdir -p "$dir"
        local gomod minor ldflags
        gomod=$(GOFLAGS=-mod=mod go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
        minor=$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod" | head -n1)
        [ -n "$minor" ] || die "could not read helm $HELM_VERSION's client-go version from $gomod"
        ldflags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
        ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
        ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
        GOBIN=$dir GOFLAGS=-mod=mod CGO_ENABLED=0 go install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2 \
          || die "building helm failed; the Go output is above"
      fi ;;
    k3d)
      dir=$CACHE/k3d-$K3D_VERSION; bin=$dir/k3d
      if [ ! -x "$bin" ]; then
        need curl
        local os arch
        os=$(uname -s | tr '[:upper:]' '[:lower:]'); arch=$(uname -m)
        case $arch in x86_64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; esac
        say "downloading k3d $K3D_VERSION ($os-$arch) from its GitHub release"
        mkdir -p "$dir"
        curl -fsSL -o "$bin.tmp" "https://github.com/k3d-io/k3d/releases/download/$K3D_VERSION/k3d-$os-$arch" \
          || die "could not download k3d; install k3d $K3D_VERSION yourself and put it on PATH"
        chmod +x "$bin.tmp" && mv "$bin.tmp" "$bin"
      fi ;;
    kubectl)
      bin=$K8S_BIN/kubectl
      [ -x "$bin" ] || install_control_plane ;;
    prometheus|promtool)
      # The stack's own Prometheus release (lib/prometheus.sh); promtool checks and unit-tests
      # the chart's alerts.
      bin=$PROMETHEUS_BIN/$1
      install_prometheus_tool "$1" >&2 ;;
    *) die "unknown tool '${1:-}'; use helm, k3d, kubectl, prometheus or promtool" ;;
  esac
  echo "$bin"
}

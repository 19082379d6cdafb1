#!/usr/bin/env bash
# `make test`: every test of the project against the real local stack. Starts the stack
# if it is not running (it stays up afterwards for the next run; `make stack-down` stops it),
# loads the image of this build into its node (the sinks, and the operator where a test
# installs the chart, run as pods), then runs the unit tests and the integration tests.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
step() { printf '\033[1m[test]\033[0m %s\n' "$*" >&2; }

step "building (cargo build --workspace --all-targets --locked)"
cargo build --workspace --all-targets --locked
step "release binaries for the image the node runs (cargo build --release)"
cargo build --release --locked --bin tributary-operator --bin tributary-sink --bin tributary-seed
step "pinned helm for the chart checks (built into the cache on first use)"
stack/scripts/stack.sh tool helm >/dev/null
step "pinned promtool for the alert rules' tests (built into the cache on first use)"
stack/scripts/stack.sh tool promtool >/dev/null
step "starting the local stack (idempotent)"
stack/scripts/stack.sh up
step "the tributary image (Debian base + the release binaries), loaded into the node"
stack/scripts/stack.sh image target/release
step "stand-ins for k3d/stack's Kafka and Cassandra images (built once), loaded into the node"
stack/scripts/stack.sh reference-images
eval "$(stack/scripts/stack.sh env)"
# The namespaces the tests made for their operators' Leases and chart releases go when the
# tests end, passed or failed (each test deletes its own Tenants and what they provisioned).
sweep() {
  kubectl delete namespace -l tributary.dev/test-scratch=true --wait=false >/dev/null || true
}
trap sweep EXIT
step "running every test (cargo test --workspace --locked)"
cargo test --workspace --locked -- "$@"

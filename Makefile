# Tributary — `make help` lists the targets.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help
STACK := stack/scripts/stack.sh

##@ Local stack (real kube-apiserver + etcd, 3 Kafka brokers, Cassandra — no Docker)

.PHONY: deps
deps: ## Install the Debian packages the build and the stack need (needs root)
	stack/scripts/install-deps.sh

.PHONY: stack-install
stack-install: ## Build/download the stack's components into .cache/ (idempotent)
	$(STACK) install

.PHONY: stack-up
stack-up: ## Start the whole stack and wait until every part answers
	$(STACK) up

.PHONY: stack-down
stack-down: ## Stop the whole stack (no process is left behind)
	$(STACK) down

.PHONY: stack-status
stack-status: ## One line per component of the stack
	$(STACK) status

.PHONY: stack-env
stack-env: ## Print exports for clients: eval "$$(make -s stack-env)"
	@$(STACK) env

.PHONY: stack-clean
stack-clean: ## Stop the stack and delete its data (keeps downloads)
	$(STACK) clean

##@ Operator

.PHONY: install-crds
install-crds: ## Install the CRDs into the cluster of $$KUBECONFIG (server-side apply)
	kubectl apply --server-side --force-conflicts -f crds/
	kubectl wait --for=condition=Established --timeout=60s crd/tenants.tributary.dev crd/topics.tributary.dev crd/cassandrasinks.tributary.dev

.PHONY: run
run: ## Run the operator in the foreground against the local stack (installs the CRDs first)
	@eval "$$($(STACK) env)" && $(MAKE) --no-print-directory install-crds && \
	  (kubectl get namespace tributary-system >/dev/null 2>&1 || kubectl create namespace tributary-system) && \
	  TRIBUTARY_HTTP_ADDR=$${TRIBUTARY_HTTP_ADDR:-127.0.0.1:8080} cargo run --locked --bin tributary-operator

##@ Build and test

.PHONY: build
build: ## Build every crate
	cargo build --workspace --all-targets

.PHONY: test
test: ## Start the stack if needed, then run every test (unit + integration) against it
	stack/scripts/test.sh $(ARGS)

.PHONY: lint
lint: check-generated ## rustfmt, clippy (warnings are errors) and generated files up to date
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

.PHONY: generate
generate: ## Regenerate crds/ from the Rust types in operator/src/api
	cargo run --quiet --locked --bin crdgen -- crds

.PHONY: check-generated
check-generated: generate ## Fail if crds/ is not what the Rust types generate
	@git diff --exit-code -- crds/ || { echo "crds/ is stale: run 'make generate' and commit the result"; exit 1; }
	@test -z "$$(git ls-files --others --exclude-standard crds/)" || { echo "untracked files in crds/: commit them"; exit 1; }

##@ Help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

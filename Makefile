# Tributary — `make help` lists the targets.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help
STACK := stack/scripts/stack.sh
# The CRDs, generated from api/src by `make generate`: crds/ (kubectl apply -f crds/)
# and the chart's identical copy, which Helm installs.
CRDS := crds charts/tributary/crds

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
run: ## Run the operator in the foreground against the local stack (installs the CRDs first; the stack's Prometheus scrapes it)
	@eval "$$($(STACK) env)" && $(MAKE) --no-print-directory install-crds && \
	  (kubectl get namespace tributary-system >/dev/null 2>&1 || kubectl create namespace tributary-system) && \
	  addr=$${TRIBUTARY_HTTP_ADDR:-127.0.0.1:8080} && targets=$$TRIBUTARY_PROMETHEUS_TARGETS/make-run.json && \
	  mkdir -p "$$TRIBUTARY_PROMETHEUS_TARGETS" && trap 'rm -f "$$targets"' EXIT && \
	  echo "[{\"targets\": [\"$$addr\"], \"labels\": {\"pod\": \"make-run\", \"source\": \"make run\"}}]" >"$$targets" && \
	  TRIBUTARY_HTTP_ADDR=$$addr cargo run --locked --bin tributary-operator

##@ Build and test

.PHONY: build
build: ## Build every crate
	cargo build --workspace --all-targets

.PHONY: test
test: ## Start the stack if needed, then run every test (unit + integration) against it
	stack/scripts/test.sh $(ARGS)

.PHONY: lint
lint: check-generated ## rustfmt, clippy (warnings are errors), shellcheck, generated files up to date
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	shellcheck -x -S warning stack/scripts/*.sh bench/run.sh k3d/stack/scripts/*.sh .ci/run

.PHONY: generate
generate: ## Regenerate crds/ and charts/tributary/crds from the Rust types in api/src
	cargo run --quiet --locked --bin crdgen -- $(CRDS)

.PHONY: check-generated
check-generated: generate ## Fail if crds/ or charts/tributary/crds is not what the Rust types generate
	@git diff --exit-code -- $(CRDS) || { echo "$(CRDS) are stale: run 'make generate' and commit the result"; exit 1; }
	@test -z "$$(git ls-files --others --exclude-standard $(CRDS))" || { echo "untracked files in $(CRDS): commit them"; exit 1; }

##@ Demo and packaging

IMAGE ?= tributary:dev
HELM = $$($(STACK) tool helm)
K3D = $$($(STACK) tool k3d)
K3D_CLUSTER := tributary
STACK_NS := tributary-stack
OPERATOR_NS := tributary-system
# The reference Kafka + Cassandra for clusters reads its configs from stack/config (one source).
STACK_MANIFESTS = kubectl kustomize --load-restrictor LoadRestrictionsNone k3d/stack

.PHONY: demo
demo: ## The whole pipeline with the seed tenants: k3d where it can create a cluster, else the local node
	stack/scripts/demo.sh

.PHONY: demo-down
demo-down: ## Remove what a local `make demo` installed (the operator release; the stack stays up)
	@eval "$$($(STACK) env)" && $(HELM) uninstall tributary -n $(OPERATOR_NS) --wait --ignore-not-found

.PHONY: image
image: ## The image (operator + sink + seed): docker build with Docker, else made here and loaded into the local node
	@if docker info >/dev/null 2>&1; then docker build -t $(IMAGE) .; else \
	  echo "no Docker daemon: building the release binaries and the image on a Debian base, loaded into the local node (stack.sh image)"; \
	  cargo build --release --locked --bin tributary-operator --bin tributary-sink --bin tributary-seed && \
	  $(STACK) image target/release; fi

.PHONY: operator-install-local
operator-install-local: ## Build the image into the local node and install the chart (values-local.yaml, 2 replicas)
	@$(STACK) up
	cargo build --release --locked --bin tributary-operator --bin tributary-sink --bin tributary-seed
	$(STACK) image target/release
	@eval "$$($(STACK) env)" && $(MAKE) --no-print-directory install-crds && \
	  $(HELM) upgrade --install tributary charts/tributary -n $(OPERATOR_NS) --create-namespace \
	    -f charts/tributary/values-local.yaml --set image.tag=$${TRIBUTARY_IMAGE##*:} \
	    --set-file kafka.tls.caSecret.ca=$$KAFKA_CA_FILE --wait --timeout 5m

.PHONY: chart-lint
chart-lint: ## helm lint the chart with each values file
	@for v in charts/tributary/values.yaml charts/tributary/values-*.yaml; do \
	  echo "helm lint -f $$v"; $(HELM) lint --strict charts/tributary -f $$v --set kafka.tls.caSecret.ca=PEM || exit 1; done

##@ k3d on a laptop (needs Docker; tools are pinned and installed into the cache)

.PHONY: k3d-create
k3d-create: ## Create the k3d cluster "tributary" (k3d/cluster.yaml)
	@docker info >/dev/null 2>&1 || { echo "k3d needs a running Docker daemon; without Docker use 'make demo' (local stack)"; exit 1; }
	$(K3D) cluster create --config k3d/cluster.yaml
	kubectl config use-context k3d-$(K3D_CLUSTER)

.PHONY: kafka-create
kafka-create: ## Three Kafka brokers (KRaft, SASL/SCRAM, ACLs) and Kafka UI in namespace tributary-stack
	$(STACK_MANIFESTS) | kubectl apply -l 'app.kubernetes.io/part-of in (tributary-stack-kafka,tributary-stack)' -f -
	kubectl -n $(STACK_NS) rollout status statefulset/kafka --timeout=600s

.PHONY: cassandra-create
cassandra-create: ## Cassandra (password authentication) in namespace tributary-stack
	$(STACK_MANIFESTS) | kubectl apply -l 'app.kubernetes.io/part-of in (tributary-stack-cassandra,tributary-stack)' -f -
	kubectl -n $(STACK_NS) rollout status statefulset/cassandra --timeout=900s

.PHONY: operator-install
operator-install: image ## Build the image, import it into k3d, install the chart with values-k3d.yaml
	$(K3D) image import $(IMAGE) -c $(K3D_CLUSTER)
	$(HELM) upgrade --install tributary charts/tributary -n $(OPERATOR_NS) --create-namespace \
	  -f charts/tributary/values-k3d.yaml --wait --timeout 5m

.PHONY: kafka-port-forward
kafka-port-forward: ## Brokers on 127.0.0.1-3:9092 (add the /etc/hosts lines it prints)
	@echo "Add to /etc/hosts:"; for i in 0 1 2; do echo "127.0.0.$$((i+1)) kafka-$$i.kafka-headless.$(STACK_NS).svc.cluster.local"; done
	@for i in 1 2; do kubectl -n $(STACK_NS) port-forward --address 127.0.0.$$((i+1)) pod/kafka-$$i 9092:9092 & done; \
	  kubectl -n $(STACK_NS) port-forward --address 127.0.0.1 pod/kafka-0 9092:9092

.PHONY: kafka-ui-port-forward
kafka-ui-port-forward: ## Kafka UI on http://localhost:8080
	kubectl -n $(STACK_NS) port-forward svc/kafka-ui 8080:8080

.PHONY: cassandra-port-forward
cassandra-port-forward: ## Cassandra on 127.0.0.1:9042
	kubectl -n $(STACK_NS) port-forward svc/cassandra 9042:9042

.PHONY: cassandra-cqlsh
cassandra-cqlsh: ## cqlsh inside the Cassandra pod (admin role)
	kubectl -n $(STACK_NS) exec -it cassandra-0 -- cqlsh -u cassandra -p cassandra

.PHONY: k3d-delete
k3d-delete: ## Delete the k3d cluster and everything in it
	$(K3D) cluster delete $(K3D_CLUSTER)

##@ Benchmarks (real local stack, release binaries; report in bench/results/)

.PHONY: bench
bench: ## All comparisons, 5 alternating runs per side (about 40 minutes on 2 cores)
	bench/run.sh full

.PHONY: bench-quick
bench-quick: ## A smoke run of the same comparisons (about ten minutes)
	bench/run.sh quick

##@ Help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-22s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

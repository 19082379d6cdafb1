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

##@ Build and test

.PHONY: build
build: ## Build every crate
	cargo build --workspace --all-targets

.PHONY: test
test: ## Start the stack if needed, then run every test (unit + integration) against it
	stack/scripts/test.sh $(ARGS)

.PHONY: lint
lint: ## rustfmt and clippy, warnings are errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

##@ Help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

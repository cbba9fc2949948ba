# coupon rush: the two commands are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

run: ## Install, start services, migrate, seed an admin, run API + consumer + Prometheus on :9090 (Ctrl-C stops all)
	@scripts/run.sh

test: ## Install, start services, run the whole test suite against them, stop what it started
	@scripts/test.sh

services: ## Start Redis, MariaDB and Kafka (idempotent)
	@scripts/services.sh up

services-down: ## Stop the services this project started (also the per-worker ones `make check` leaves up)
	@scripts/prometheus.sh down
	@scripts/services.sh down
	@scripts/redis_cluster.sh down
	@scripts/kafka_cluster.sh down
	@scripts/test.sh --down-instances

cluster: ## Start a local Redis Cluster: 3 masters on 127.0.0.1:7100-7102 (REDIS_CLUSTER_REPLICAS=1 adds 3 replicas)
	@scripts/redis_cluster.sh up

cluster-down: ## Stop the Redis Cluster nodes this project started
	@scripts/redis_cluster.sh down

kafka-cluster: ## Start a local 3-broker KRaft Kafka cluster on 127.0.0.1:9192,9194,9196 (RF 3, min ISR 2 defaults)
	@scripts/kafka_cluster.sh up

kafka-cluster-down: ## Stop the Kafka cluster nodes this project started
	@scripts/kafka_cluster.sh down

venv: ## Create .venv from requirements/
	@scripts/venv.sh

# Same flags for both files. --no-emit-find-links/--no-emit-index-url keep a machine's pip settings out of them;
# PINS_ARGS passes more, e.g. `make pins PINS_ARGS="-P ruff"` to upgrade one package (`--upgrade`: all).
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make pins" .venv/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	--strip-extras --no-emit-find-links --no-emit-index-url $(PINS_ARGS)
pins: venv ## Recompile requirements/base.txt, dev.txt and uv.txt (every package pinned, hashed) from the .in files
	@echo "[pins] requirements/base.in -> requirements/base.txt"
	@$(PIP_COMPILE) --output-file=requirements/base.txt requirements/base.in
	@echo "[pins] requirements/dev.in -> requirements/dev.txt"
	@$(PIP_COMPILE) --output-file=requirements/dev.txt requirements/dev.in
	@echo "[pins] requirements/uv.in -> requirements/uv.txt"
	@$(PIP_COMPILE) --output-file=requirements/uv.txt requirements/uv.in
	@scripts/venv.sh

unit: venv ## Unit tests only (no services needed)
	@.venv/bin/pytest tests/unit -q

config-doc: venv ## Regenerate the settings table of docs/CONFIGURATION.md from coupon/settings.py
	@.venv/bin/python -m coupon.settings_doc --write

lint: venv ## ruff (lint + format check), mypy --strict (coupon/, workers/), shellcheck (scripts/), promtool (alert rules)
	@scripts/lint.sh

check: venv ## The quick loop: lint + unit + static + integration tests not marked slow (starts the services if down)
	@scripts/check.sh

k6: venv ## Load run against a running `make run`: mint users, create a coupon, k6 (if installed), reconcile → verdict
	@scripts/k6.sh

# The three-broker cluster (replication stage) is stopped afterwards if this run started it: left up, its ports
# would stop a later `make test`'s failover tests.
bench: venv ## Benchmarks: ceiling vs issue (alone, beside a draining consumer), open loop (the same), CPU per coupon, 10k-user flash sale, issue beside a signup rush, consumer drain, RF 3 vs RF 1, Redis replica acks (own cluster on 7170-7175) and AOF on/off → bench/RESULTS.md
	@scripts/services.sh up
	@started=0; scripts/kafka_cluster.sh status >/dev/null 2>&1 || started=1; scripts/kafka_cluster.sh up && \
	  { .venv/bin/python bench/bench.py; rc=$$?; [ $$started = 0 ] || scripts/kafka_cluster.sh down; exit $$rc; }
bench-compare: venv ## This tree against bench/BASELINE (or BASE=<commit>), alternating pairs of the issue, openloop and flash stages → bench/results/compare.md
	@scripts/services.sh up
	@.venv/bin/python bench/compare.py $(if $(BASE),--base $(BASE)) $(COMPARE_ARGS)
bench-scaling: venv ## Gate calls/s of one Redis node and of the 3-master cluster, sharded-stock simulation → bench/SCALING-RESULTS.md
	@scripts/services.sh up
	@scripts/redis_cluster.sh up
	@BENCH_REDIS_CLUSTER_NODES="$${BENCH_REDIS_CLUSTER_NODES:-$$(scripts/redis_cluster.sh nodes)}" .venv/bin/python bench/scaling.py
.PHONY: help run test services services-down cluster cluster-down kafka-cluster kafka-cluster-down venv pins unit config-doc lint check k6 bench bench-compare bench-scaling

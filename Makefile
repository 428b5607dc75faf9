# Quickstart: `make demo` and `make test`; both install everything they need first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR := $(CURDIR)/.order_tracking
DAGSTER_HOME := $(DATA_DIR)/dagster_home
DELTA_ARTIFACTS := io.delta:delta-spark_2.13:4.0.1 io.delta:delta-storage:4.0.1

export ORDER_TRACKING_DATA_DIR ?= $(DATA_DIR)
export DAGSTER_HOME

.PHONY: install chromium jars demo explain undo rebuild stop demo-gcs demo-databricks test test-serial check test-thorough screenshot dev dev-postgres postgres bench bench-pieces bench-compaction bench-jobs bench-gcs bench-backfill bench-large bench-insights bench-suite bench-engine bench-explain bench-queue clean

install: $(VENV)/.installed

# uv installs the same pins as pip in about two thirds of the time (parallel downloads and
# unpacking). Where uv cannot reach the index the way pip is configured to (a pip.conf mirror or
# CA, which uv does not read), pip does it; old pips resolve the pinned integrations to 2021
# releases, so pip is upgraded first.
# Bytecode is compiled at install (pip does by default, uv only when asked), ours included: where
# PYTHONDONTWRITEBYTECODE is set, as on many CI images and containers, Python never caches what it
# compiles, and every process (each run, daemon, code server, Spark's Python workers) would compile
# some 2,300 modules from source again: about 5 CPU-seconds each (docs/performance.md).
$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	{ $(BIN)/pip install --quiet uv==0.13.9 && \
	  $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e ".[dev]"; } || { \
	  $(BIN)/pip install --quiet --upgrade pip && $(BIN)/pip install --quiet -e ".[dev]"; }
	$(BIN)/python -m compileall -q order_tracking order_tracking_devtools
	touch $@

# Spark resolves Delta's jars from Maven Central itself; if that fails, warm ~/.m2 with Maven,
# which Spark's resolver reads first, and try again.
jars: install
	$(BIN)/python -m order_tracking.engine jars || { \
	  for a in $(DELTA_ARTIFACTS); do mvn -q dependency:get -Dartifact=$$a || exit 1; done; \
	  $(BIN)/python -m order_tracking.engine jars; }

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: jars $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m order_tracking.demo

# Every line received for one order and what became of it: make explain TRK=TRK1017
explain: jars
	$(BIN)/python -m order_tracking.explain $(TRK)

# Stage a range again from the raw zone and rebuild the tables: make rebuild FIRST=2023-01-01 LAST=2023-01-05
rebuild: jars
	$(BIN)/python -m order_tracking.rebuild $(FIRST) $(LAST)

# Restore order_tracking to before a run's MERGE (refused if later runs merged): make undo RUN=<run id>
undo: jars
	$(BIN)/python -m order_tracking.undo $(RUN)

# The warm engine (a Spark Connect server that runs attach to) stops itself when idle; this stops
# it now.
stop:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m order_tracking.engine stop; fi

# The Dagster UI's browser test drives Debian's Chromium; installed here where apt-get is available.
chromium:
	@command -v chromium >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "Install Chromium for order_tracking_tests/test_ui.py" >&2; exit 1; }; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || { \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium; }; }

# The production instance's tests run a throwaway PostgreSQL cluster from Debian's postgresql
# package; installed here where it is missing (as chromium).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "Install PostgreSQL (initdb, pg_ctl) for order_tracking_tests/test_production_instance.py" >&2; exit 1; }; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null 2>&1 || { \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends postgresql; }; }

# Two workers, each test file on one (module fixtures such as the Databricks stand-in's days are
# built once), both attached to one warm engine: most of a test is waiting on a process or a
# Spark job, so two at a time use the two cores. `make test-serial` runs them one by one.
test: jars chromium postgres
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15

# The inner loop: the tests marked quick (no daemon, UI, Databricks stand-in or crash runs).
check: jars
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m quick

test-serial: jars chromium postgres
	$(BIN)/python -m pytest -q --durations=15

# The property test with 200 random histories instead of 3 (about 30 s each).
test-thorough: jars
	HYPOTHESIS_PROFILE=thorough $(BIN)/python -m pytest -q order_tracking_tests/test_property.py

# The sensor-driven flow against fake-gcs-server, with the Dagster UI on 127.0.0.1:3000 (Ctrl-C stops).
demo-gcs: jars
	PYTHONPATH=$(CURDIR) $(BIN)/python scripts/demo_gcs.py

# The production path through the real Databricks launcher, against the local REST stand-in.
demo-databricks: jars
	PYTHONPATH=$(CURDIR) $(BIN)/python scripts/demo_databricks.py

# Sensor tick time and landed-to-target latency; prints figures (never part of `make test`).
bench-gcs: jars
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/gcs_sensor.py

# Ours against the old notebooks and a plain MERGE: a 1M-row day, a 100k-row day into 1M/5M/20M
# targets (bench/results/<date>.md; SCALE=0.1 for a quick run).
SCALE ?= 1
bench: jars
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/upsert.py --scale $(SCALE)

# Where our time goes: each piece of staging and the MERGE timed alone in one warm session.
bench-pieces: jars
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/profile_pieces.py --scale $(SCALE)

# Spark jobs per asset for each sample day, each asset alone and as the run's one step.
bench-jobs: jars
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/spark_jobs.py

# The insight step's cost per day next to the pipeline's: the sample days and two 1M-row days.
bench-insights: jars
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/insights.py

# Explain's time on the upsert benchmark's largest table (20M orders, their events and history).
bench-explain: jars
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/explain.py

# Daily MERGEs fragment order_tracking; the probe MERGE before and after compacting it.
bench-compaction: jars
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/compaction.py

# The five sample days as five daily runs versus one range run (the backfill policy's figures).
bench-backfill: jars
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/backfill_policy.py

# Run queue latency: the local instance (SQLite) against the production one (PostgreSQL).
bench-queue: install postgres
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/run_queue.py

# The warm engine with two sets of JVM options, rounds of the sample days in turn (prints figures):
# the parallel collector alone against the engine's default options, or ENGINE_ARGS='"<a>" "<b>"'
# ("" for the JVM's defaults, G1).
ENGINE_ARGS ?=
bench-engine: jars
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/engine_rounds.py -- $(ENGINE_ARGS)

# Where the test suite's CPU goes (the engine, other JVMs, Python processes), by file and test, and
# how the engine's CPU splits between the JIT, the GC and its work: make bench-suite ARGS="-m quick"
bench-suite: jars chromium postgres
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/suite_cpu.py $(ARGS)

# One >= 1 GiB order file through raw_order_files and staged_orders with a 1 GiB Spark driver.
bench-large: jars
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/large_file.py --gb 1.0 --driver-memory 1g

# The README's picture of the asset graph, taken in headless Chromium (run `make demo` first).
screenshot: jars chromium $(DAGSTER_HOME)/dagster.yaml
	PYTHONPATH=$(CURDIR) $(BIN)/python scripts/screenshot_ui.py docs/images/asset_graph.png

dev: jars $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

# The Dagster UI on the production instance (deploy/dagster.production.yaml) with a throwaway
# PostgreSQL and fake-gcs-server for step logs (Ctrl-C stops all).
dev-postgres: jars postgres
	PYTHONPATH=$(CURDIR) $(BIN)/python scripts/dev_postgres.py

clean:
	rm -rf $(DATA_DIR)

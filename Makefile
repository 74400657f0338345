# The operator's entry points. Each target sets up what it needs (see `install`).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
CDK := node_modules/.bin/cdk
export PATH := $(abspath $(BIN)):$(PATH)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export AWS_DEFAULT_REGION ?= eu-central-1
STAMP := $(VENV)/.installed
# Every step that can take more than a couple of seconds says it started, shows it is alive
# every few seconds and says how long it took (scripts/heartbeat.py, standard library only).
HEARTBEAT := python3 scripts/heartbeat.py
PIPELINE_STACK := UploadLedgerPipeline

.PHONY: install synth nag test lint demo drill drill-matrix bench deploy deploy-pipeline destroy clean constraints

NODE_STAMP := node_modules/.installed

install: $(STAMP) $(NODE_STAMP)

# Rebuilt only when a requirements file changes, so `install` is idempotent and cheap.
$(STAMP): requirements.txt requirements-dev.txt handler/requirements.txt constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@$(HEARTBEAT) "pip: upgrading pip" -- $(BIN)/python -m pip install --quiet --upgrade pip
	@$(HEARTBEAT) "pip: installing requirements-dev.txt (a few minutes the first time)" -- \
		$(BIN)/python -m pip install -r requirements-dev.txt -c constraints.txt
	@touch $@

# The lock file pins the CLI; `npm ci` reinstalls exactly it when the lock file changes.
$(NODE_STAMP): package-lock.json
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
		|| { echo "Node.js 20 or later is needed (aws-cdk-lib requires it); this is $$(node --version)." >&2; exit 2; }
	@$(HEARTBEAT) "npm ci: the CDK CLI from package-lock.json" -- \
		npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Synth needs no AWS account (every stack names its own, nothing is looked up), so the CLI
# gets no credentials: with some it would ask STS who you are, and synth must stay offline.
NO_CREDENTIALS := env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
	-u AWS_PROFILE -u AWS_CONTAINER_CREDENTIALS_RELATIVE_URI -u AWS_CONTAINER_CREDENTIALS_FULL_URI \
	AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true

# cdk-nag runs inside synth (a validation plugin): any unacknowledged finding fails it.
synth: install
	@$(HEARTBEAT) "cdk synth: every stack, then cdk-nag" -- $(NO_CREDENTIALS) $(CDK) synth --quiet

# The same check, listed one finding per line (rule id and construct path) for fixing or
# acknowledging (see compliance/nag.py), then parliament over every IAM policy of every
# template (compliance/policies.py).
# A synth that fails for any other reason than findings (a configuration error...) fails
# here with its own message: the report it would have written is never stale.
nag: install
	@rm -f cdk.out/validation-report.json
	@out=$$($(NO_CREDENTIALS) $(CDK) synth --quiet 2>&1) || test -f cdk.out/validation-report.json \
		|| { printf '%s\n' "$$out" >&2; echo "make nag: cdk synth failed before cdk-nag ran" >&2; exit 1; }
	@$(BIN)/python -m compliance.report cdk.out; status=$$?; \
		$(BIN)/python -m compliance.policies cdk.out && exit $$status

lint: install
	@$(HEARTBEAT) "ruff check" -- $(BIN)/ruff check .
	@$(HEARTBEAT) "ruff format --check" -- $(BIN)/ruff format --check .
	@$(HEARTBEAT) "mypy (about a minute while its cache is cold)" -- $(BIN)/mypy

# One pytest worker per core (pytest-xdist; at most 4, each pays jsii's start once). Work
# stealing: a worker that runs out takes queued tests from a busy one, so a few long tests
# (the bench's sections, the drill, synths) don't leave one core idle at the end.
# Coverage (and its floor, pyproject.toml) is measured in CI (.ci/run sets CI=true) or with
# `make test COVERAGE=1`: tracing every line costs the local loop ~15 s of its ~2 minutes.
COVERAGE ?= $(CI)
test: install lint
	$(BIN)/python -m pytest --numprocesses=auto --maxprocesses=4 --dist=worksteal \
		$(if $(filter 1 true yes,$(COVERAGE)),--cov --cov-report=term)

# The whole flow offline: synth, then the sandbox deploys cdk.out into moto and runs it,
# and writes the stage's dashboard with the run's metrics (opens offline in a browser).
demo: install synth
	$(BIN)/python -m sandbox demo --dashboard .sandbox/dashboard.html

# A release rehearsed offline from cdk.out: a clean one (completes), then a broken one that
# fails every real upload but passes the hook (the canary's alarm rolls it back).
drill: install synth
	$(BIN)/python -m sandbox drill --uploads-per-minute 60 --expect success
	$(BIN)/python -m sandbox drill --uploads-per-minute 60 --fault 'keys:uploads/*' --expect rollback

# The calibration study behind README's table: releases x traffic levels x seeds, on the
# drill's model path (a few minutes). Results: bench-results/drill-matrix.{md,json}.
drill-matrix: install synth
	$(BIN)/python -m sandbox.drill.matrix

# Synth first: the burst section runs the sandbox from cdk.out. Results: bench-results/.
bench: install synth
	$(BIN)/python -m bench

# Your own stage (devStage in cdk.json), straight from your laptop; the shared stages go
# through the pipeline only.
deploy: install
	$(BIN)/python -m config.preflight dev
	$(CDK) deploy -c pipeline=false '**'

# The pipeline itself, once; after that it updates itself on every push.
deploy-pipeline: install
	$(BIN)/python -m config.preflight pipeline
	$(CDK) deploy $(PIPELINE_STACK)

destroy: install
	$(CDK) destroy -c pipeline=false '**'

constraints: install
	$(BIN)/python -m pip freeze --exclude-editable | sed '1i # Every transitive package pinned, generated by pip freeze from requirements-dev.txt.\n# Regenerate with make constraints after changing a requirements file.' > constraints.txt

clean:
	rm -rf cdk.out .sandbox test-artifacts bench-results .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage .coverage.*

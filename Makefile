# Switchyard's front door. Each target is one line into a script; variables given on the
# command line (experiment=, backend=, run=, ...) reach the scripts through the environment,
# never through a shell line. `make help` lists the verbs.
SHELL := /bin/bash
# No implicit rules: make looked for a rule to remake each of the ~240 sources dist/.built
# depends on (RCS, SCCS, %.ts from ...), ~30 ms before every verb.
MAKEFLAGS += --no-builtin-rules
.SUFFIXES:
NODE  := node
VERB  := $(NODE) dist/scripts
# Verbs run from a V8 code cache (build.mjs, scripts/boot/run-cached.ts): make train's start.
CACHED_VERB := $(NODE) dist/cached/run.cjs
CACHED_VERBS := train train-1 predict-smoke predict status logs stop agent-status pull verify fleet-status fleet-stop gcp-status gcp-pull gcp-stop

# Node parses the file NODE_EXTRA_CA_CERTS names at every start, TLS or not (~0.1 ms a
# certificate); a system bundle named there repeats most of the roots node bundles. The cached
# verbs start with only the certificates it adds (the same trust: scripts/lib/extra-ca.ts), and
# give their children the user's own. For a path make and the shell take as it is written: one
# word, none of these marks (the last is a lone backslash).
COMMA := ,
PATH_MARKS := : % ; = * ? [ ] ( ) { } < > & | ! ~ ` $(COMMA) \# ' " \$(NOTHING)
EXTRA_CA_SOURCE := $(if $(and $(filter 1,$(words $(NODE_EXTRA_CA_CERTS))),$(wildcard $(NODE_EXTRA_CA_CERTS))),$(if $(strip $(foreach m,$(PATH_MARKS),$(findstring $(m),$(NODE_EXTRA_CA_CERTS)))),,$(NODE_EXTRA_CA_CERTS)))
ifneq ($(EXTRA_CA_SOURCE),)
EXTRA_CA := dist/extra-ca/$(subst /,_,$(abspath $(EXTRA_CA_SOURCE)))
# The node that runs the verbs: a newer one bundles other roots.
NODE_BIN := $(if $(findstring /,$(NODE)),$(wildcard $(NODE)),$(firstword $(wildcard $(addsuffix /$(NODE),$(subst :, ,$(PATH))))))
$(CACHED_VERBS): $(EXTRA_CA)
# Set for the verb alone: a target's exported variables reach its prerequisites' recipes too.
CACHED_VERB := env NODE_EXTRA_CA_CERTS=$(EXTRA_CA) SWITCHYARD_NODE_EXTRA_CA_CERTS=$(NODE_EXTRA_CA_CERTS) $(CACHED_VERB)
$(EXTRA_CA): export SWITCHYARD_EXTRA_CA := $(EXTRA_CA)
$(EXTRA_CA): $(EXTRA_CA_SOURCE) $(NODE_BIN) dist/.built
	@$(NODE) dist/scripts/narrow-extra-ca.js
endif

# Runs each bench file given, then names those that missed a target or failed.
run-benches = missed=(); for b in $(1); do npx tsx "$$b" || missed+=("$$b"); done; \
  if (( $${\#missed[@]} )); then echo "bench: missed its target or failed: $${missed[*]}"; exit 1; fi

# Every TypeScript source, found by make itself: a $(shell find) here cost a shell, find and head
# on every make invocation (~4 ms of each verb's start). Sources sit at most four folders deep.
SOURCES := $(wildcard cluster_fleet_config.ts $(addsuffix *.ts,scripts/ scripts/*/ scripts/*/*/ scripts/*/*/*/ dashboard/ dashboard/*/ dashboard/*/*/))

.PHONY: help setup build dashboard train predict submit status logs stop pull verify reindex replay competition-new competition-inspect submissions kaggle-install kaggle-auth hosts bootstrap sync ssh \
        retry agent agent-install agent-status fleet-search fleet-status fleet-pull fleet-stop fleet-retry gcp-setup gcp-submit gcp-status gcp-pull gcp-stop merge spec-doc test e2e-smoke bench bench-scale typecheck clean \
        doctor init train-1 predict-smoke e2e-full

help:                ## list the verbs
	@grep -E '^[a-z0-9-]+:.*## ' Makefile | sed -E 's/:.*## /\t/' | expand -t 20

# Said first: `npm ci` compiles the SQLite binding from source, minutes of silence otherwise.
node_modules/.package-lock.json: package-lock.json
	@echo "installing npm dependencies (npm ci; better-sqlite3 compiles from source with g++: a few minutes the first time)" >&2
	@npm ci --no-audit --no-fund

dist/.built: node_modules/.package-lock.json $(SOURCES) build.mjs
	@node build.mjs

setup: dist/.built   ## install dependencies and build the scripts
	@$(VERB)/setup.js

init: dist/.built    ## write cluster_fleet_config.ts and .env, asking; then make doctor: [yes=1] [store= hosts= fleets= clusters= batch=]
	@$(VERB)/init.js

doctor: dist/.built  ## every dependency and remote, ✓ or ✗ with its fix: [host=<name>]
	@$(VERB)/doctor.js

build: dist/.built   ## compile scripts/ to dist/

# Without a shell: make starts node itself where SHELL is /bin/sh and the line has no shell syntax.
train train-1: SHELL := /bin/sh
train: dist/.built   ## train an experiment: experiment=<slug>[/<name>] [backend=local|ssh host=|fleet fleet=|gcp-batch batch=|slurm cluster=] [again=1] [detach=1]
	@$(CACHED_VERB) train

train-1: dist/.built ## a short run of an experiment (its spec's smoke: overrides), on any backend: experiment= [backend= ...]
	@smoke=1 $(CACHED_VERB) train

predict-smoke: dist/.built ## predictions from the smoke run of make train-1: experiment=
	@smoke=1 $(CACHED_VERB) predict

predict: dist/.built ## write predictions from a run's latest checkpoint: experiment= [run=]
	@$(CACHED_VERB) predict

submit: dist/.built  ## check a run's prediction file against the sample submission and upload it to Kaggle: experiment= [run=] [dry=1] [message=]
	@$(VERB)/submit.js

submissions: dist/.built ## Kaggle's scores for the recorded submissions, recorded under each run: [competition=]
	@$(VERB)/submissions.js

competition-inspect: dist/.built ## what Kaggle says of a competition: competition=<slug>
	@$(VERB)/competition-inspect.js

kaggle-auth: dist/.built ## kaggle.json (0600) from KAGGLE_USERNAME and KAGGLE_KEY in .env: [force=1]
	@$(VERB)/kaggle-auth.js

# The kaggle CLI in the project's own venv, for use by hand; Switchyard speaks Kaggle's API itself.
kaggle-install:      ## the kaggle CLI from PyPI into .venv/ (.venv/bin/kaggle)
	@[ -x .venv/bin/python ] || python3 -m venv .venv
	@.venv/bin/pip install --disable-pip-version-check -q kaggle >.venv/pip-kaggle.log 2>&1 \
	  || { echo "kaggle-install: pip could not install kaggle from PyPI ($$(tail -n 1 .venv/pip-kaggle.log)); Switchyard's own Kaggle verbs do not need it" >&2; exit 1; }
	@echo "installed $$(.venv/bin/kaggle --version 2>/dev/null || echo kaggle) in .venv/bin/kaggle"

status: dist/.built  ## table of runs: [experiment=]; one run's units and attempts: run=<id> (or experiment= detail=1)
	@$(CACHED_VERB) status

logs: dist/.built    ## a run's output: run=<id> [shard=i] [attempt=n] [stream=stderr] [follow=1]
	@$(CACHED_VERB) logs

stop: dist/.built    ## checkpoint and stop a running run: run=<id> [shard=i,j] [force=1]
	@$(CACHED_VERB) stop

agent: dist/.built   ## the supervisor as a long-lived process: carries every run make train opened to its end
	@$(VERB)/agent.js

agent-install: dist/.built ## keep the agent running: a systemd user unit, or a tmux session without systemd
	@$(VERB)/agent-install.js

agent-status: dist/.built ## whether the agent runs, since when, its last tick, and the runs it carries
	@$(CACHED_VERB) agent-status

retry: dist/.built   ## re-run shards of a sharded run from their checkpoints: run=<id> shard=<i>[,<j>] [host=<name>]
	@$(VERB)/retry.js

pull: dist/.built    ## copy runs home: run=<id> or host=<name> [dest=dir]
	@$(CACHED_VERB) pull

verify: dist/.built  ## check the ledger and everything it names in the store: [repair=1]
	@$(CACHED_VERB) verify

reindex: dist/.built ## rebuild .switchyard/state.db from the store
	@$(VERB)/reindex.js

replay: dist/.built  ## replay a run with the same pins, where it last ran: run=<id> [backend=] [host=|fleet=|cluster=|batch=]
	@$(VERB)/replay.js

hosts: dist/.built    ## the host inventory, each probed over SSH
	@$(VERB)/hosts.js

bootstrap: dist/.built ## make a host ready: host=<name> or fleet=<name> [experiment=<slug>] [start=1]
	@$(VERB)/bootstrap.js

sync: dist/.built     ## push the project to a host (rsync delta): host=<name>
	@$(VERB)/sync.js

ssh: dist/.built      ## a shell in the host's tmux: host=<name> [run=<id>]
	@$(VERB)/ssh.js

fleet-search: dist/.built ## shard a search over a fleet of hosts: experiment= fleet=<name> [requeue=0]
	@backend=fleet $(VERB)/train.js

fleet-status: dist/.built ## alias of make status detail=1 run=<id> (or experiment=)
	@$(CACHED_VERB) status detail=1

fleet-pull: dist/.built ## bring every shard's results home from its host: run=<id>
	@$(VERB)/fleet-pull.js

fleet-stop: dist/.built ## alias of make stop run=<id> [force=1]
	@$(CACHED_VERB) stop

fleet-retry: dist/.built ## alias of make retry run=<id> shard=<i>[,<j>] [host=<name>]
	@$(VERB)/retry.js

gcp-setup: dist/.built ## check Google Cloud for Batch: credentials, project, APIs, permissions [batch=<entry>]
	@$(VERB)/gcp-setup.js

gcp-submit: dist/.built ## run an experiment on Google Cloud Batch: experiment= [batch=<entry>] (alias of make train backend=gcp-batch)
	@backend=gcp-batch $(VERB)/train.js

gcp-status: dist/.built ## alias of make status detail=1 run=<id> (or experiment=)
	@$(CACHED_VERB) status detail=1

gcp-pull: dist/.built ## alias of make pull run=<id> [dest=dir]
	@$(CACHED_VERB) pull

gcp-stop: dist/.built ## alias of make stop run=<id> [force=1] (deletes the run's Batch jobs)
	@$(CACHED_VERB) stop

merge: dist/.built    ## verify a fleet search's shards and merge them: run=<id>
	@$(VERB)/merge.js

competition-new: dist/.built ## scaffold competitions/<slug>: competition=<slug> [name="Title"]
	@$(VERB)/competition-new.js

test: dist/.built    ## the whole test suite (unit, integration, e2e)
	@$(VERB)/test-report.js

spec-doc: dist/.built  ## write docs/experiment-spec.md from the spec schema
	@$(VERB)/spec-doc.js

e2e-smoke: dist/.built ## scaffold, train, kill -9, resume, predict, submit, verify
	@npx vitest run test/e2e/smoke.test.ts

dashboard: dist/.built ## the operator's web console: [port=8787] [host=127.0.0.1] (another host= needs SWITCHYARD_DASHBOARD_TOKEN in .env)
	@$(NODE) dist/dashboard/server.js

# Every route on the local test bed: laptop, ssh host, fleet, S3 store, SLURM, Batch (stand-in).
E2E_ROUTES := test/e2e/train.test.ts test/e2e/init.test.ts test/e2e/ssh.test.ts test/e2e/fleet.test.ts \
              test/e2e/fleet-s3.test.ts test/integration/slurm.test.ts test/e2e/batch.test.ts

e2e-full: dist/.built ## every route end to end on the local test bed: laptop, ssh, fleet, S3, SLURM, Batch
	@npx vitest run $(E2E_ROUTES)

bench: dist/.built   ## benchmarks against baselines measured side by side (a missing baseline tool is installed with apt-get)
	@$(call run-benches,$(filter-out bench/scale-%,$(wildcard bench/*.ts)))

bench-scale: dist/.built ## the scale benchmarks: 5,000 runs, a 1,000,000-entry ledger, a 10 GiB merge, 100 hosts x 1,000 shards
	@$(call run-benches,$(wildcard bench/scale-*.ts))

typecheck: node_modules/.package-lock.json ## tsc in strict mode, no output files
	@npx tsc --noEmit -p .

clean:               ## remove build output (keeps runs, the store and the ledger)
	@rm -rf dist

# Plugin Lab. `make lab` sets up and opens the lab; `make test` sets up and checks everything.
# Set-up is idempotent: a second run with nothing changed skips the installs.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := $(shell grep -v '^\s*\#' binder/apt.txt)
TEST_APT_PACKAGES := $(shell grep -v '^\s*\#' tests/apt.txt)
# The suites run with a clean environment: only PATH, HOME and LANG pass, so that no variable
# of the machine that runs them (PYTHONUNBUFFERED, PIP_*, a CI's settings) can hide a bug that
# a learner's laptop would show. The portable run sets CLEAN_ENV= to keep the environment
# Binder's image gives its kernels.
CLEAN_ENV = env -i PATH="$(PATH)" HOME="$(HOME)" $(if $(LANG),LANG="$(LANG)")
# Tests that need what only the host has (Chromium; repo2docker's view of this checkout).
HOST_ONLY_TESTS = tests/test_binder.py
# `make test PORTABLE=0` skips the portable run (it needs root).
PORTABLE ?= 1
NBVAL := $(BIN)/pytest --nbval --nbval-sanitize-with tests/nbval-sanitize.cfg --nbval-cell-timeout=600 -p no:cacheprovider
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: lab test test-host setup system-packages test-system-packages python-env test-code test-notebooks test-binder test-portable notebooks protos check clean hub test-hub

# Jupyter refuses to run as root unless told; on a laptop you are not root.
lab: setup
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS) notebooks/00-start-here.ipynb

# The portable run works in its own root filesystem, so it goes on beside the host's suites
# (they share 2 cores well: each is mostly one process at a time); its log follows theirs.
test: setup test-system-packages
	@portable=; if [ "$(PORTABLE)" = 1 ]; then \
	  mkdir -p build && echo "make test-portable runs beside these suites; its log: build/test-portable.log"; \
	  $(MAKE) --no-print-directory test-portable > build/test-portable.log 2>&1 & portable=$$!; \
	fi; \
	status=0; $(MAKE) --no-print-directory test-host || status=$$?; \
	if [ -n "$$portable" ]; then \
	  wait $$portable || { portable_status=$$?; [ $$status != 0 ] || status=$$portable_status; }; \
	  echo "--- make test-portable (build/test-portable.log) ---"; cat build/test-portable.log; \
	fi; \
	exit $$status

# The host's suites, one after another.
test-host: test-code test-notebooks test-binder

setup: system-packages python-env

# The system tools of binder/apt.txt (and, for `make test`, tests/apt.txt: Chromium for the
# browser test, which Binder's image does not need): installed when running as root, else
# the command is shown.
system-packages:
	@$(call apt_install,$(APT_PACKAGES))

test-system-packages:
	@$(call apt_install,$(TEST_APT_PACKAGES))

define apt_install
missing=""; for p in $(1); do \
  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
done; \
if [ -z "$$missing" ]; then exit 0; fi; \
if [ "$$(id -u)" = 0 ]; then \
  echo "Installing system packages:$$missing"; \
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
else \
  echo "Missing system packages:$$missing. Run: sudo apt-get install -y$$missing"; \
fi
endef

python-env: $(STAMP)

# .venv with environment.yml's pip section and labkit (editable); redone when either changes.
$(STAMP): environment.yml pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; v in ((3, 11), (3, 13)) or print(f"warning: the lab is tested on Python 3.11 and 3.13, this is {v[0]}.{v[1]}: set PYTHON=python3.11 or python3.13 if the set-up fails")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	awk '/^ *- pip:/ {p=1; next} p && /^ *- / {sub(/^ *- /, ""); sub(/ *#.*/, ""); print; next} p && !/^ *- / && !/^ *#/ && NF {p=0}' environment.yml > $(VENV)/requirements.txt
	$(BIN)/python -m pip install -q -r $(VENV)/requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

test-code:
	$(CLEAN_ENV) $(BIN)/pytest tests $(addprefix --ignore=,$(HOST_ONLY_TESTS))

test-notebooks:
	$(CLEAN_ENV) $(NBVAL) notebooks

test-binder:
	$(CLEAN_ENV) $(BIN)/pytest tests/test_binder.py

# The lab as Binder builds it and a learner runs it: Debian 13, Python 3.13, uid 1000, a clean
# environment, offline (tests/portable/run.py says how). Needs root.
test-portable:
	$(BIN)/python tests/portable/run.py

# The class hub (docs/facilitator-guide.md): JupyterHub on this machine, each learner their own
# Unix user, copy of the lab and cgroup; LABHUB_* variables set it (labkit/hub/settings.py).
# Needs root, node 20 or later and npm. Ctrl-C stops it.
hub: setup
	PATH="$(PATH):/usr/sbin:/sbin" $(BIN)/python -m labkit.hub serve

# The hub under load: 1, then 5, then 10 simulated learners on loopback, each running notebooks
# 02 and 03 in their own kernel; prints what each used. `make test` runs a two-learner version.
test-hub: setup
	$(CLEAN_ENV) PATH="$(PATH):/usr/sbin:/sbin" $(BIN)/python -m labkit.hub loadtest \
	  --learners $(or $(LEARNERS),1,5,10) --notebooks $(or $(HUB_NOTEBOOKS),02,03)

# Re-execute every notebook in place from a fresh kernel, in the clean environment the tests
# use (outputs are committed); NB=NN re-executes only the notebooks whose names start so.
# The second pass joins consecutive stream outputs, as nbval does when it compares.
NB ?= [0-9][0-9]
notebooks: setup
	cd notebooks && for nb in $(NB)-*.ipynb; do \
	  echo "executing $$nb"; \
	  $(CLEAN_ENV) ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=600 "$$nb" || exit 1; \
	  ../$(BIN)/jupyter nbconvert --to notebook --inplace --CoalesceStreamsPreprocessor.enabled=True "$$nb" 2>/dev/null || exit 1; \
	done

# Regenerate the committed Go code of plugins/proto/transformer.proto (Python's is built on use).
protos: setup
	$(BIN)/python -c 'from labkit.rpc.stubs import main; main()'

check: setup
	$(BIN)/ruff check labkit tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) notebooks/build

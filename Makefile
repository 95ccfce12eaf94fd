# TCUP developer tasks. `make demo` runs TCUP against a local Keystone; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DEMO   := .cache/demo-cloud
# Behind a TLS-inspecting proxy the image build must trust its CA: TCUP's own
# --ca-cert option, fed from $TCUP_CA_CERT, defaulting to the bundle pip uses here.
export TCUP_CA_CERT ?= $(PIP_CERT)

SOURCES := $(shell find src image -type f -not -path '*/__pycache__/*') build_zipapp.py launcher-requirements.txt

.PHONY: engine venv lock pyz release image demo test test-cloud bench clean

# A running Docker engine with the base image; installs and starts what is missing.
engine:
	bash .ci/engine.sh

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml launcher-requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r launcher-requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# The launcher's lock, for the oldest Python the pyz supports, on manylinux2014
# (see launcher-requirements.in); it names no index, so it serves any machine.
lock: venv
	$(VENV)/bin/uv pip compile launcher-requirements.in --python-version 3.9.2 \
	  --python-platform x86_64-manylinux2014 --generate-hashes --no-emit-index-url \
	  --no-emit-find-links --custom-compile-command "make lock" -o launcher-requirements.txt

pyz: dist/tcup.pyz
dist/tcup.pyz: $(VENV)/.installed $(SOURCES)
	$(PY) build_zipapp.py

# dist/tcup.pyz, its .sha256 and release notes; the version comes from git
# (tag v0.2.0 gives 0.2.0; otherwise the package version and the commit).
release: $(VENV)/.installed $(SOURCES)
	$(PY) build_zipapp.py --release

image: engine venv
	$(PY) -m tcup image

demo: engine pyz
	$(PYTHON) tools/keystone_cloud.py start --dir $(DEMO)
	. $(DEMO)/member-openrc && ./dist/tcup.pyz --no-upload; rc=$$?; \
	  $(PYTHON) tools/keystone_cloud.py stop --dir $(DEMO); \
	  case $$rc in 0|1|5) exit 0;; *) exit $$rc;; esac  # a run with a verdict is a demo that worked

test: engine venv
	$(PY) -m pytest

# The full OpenStack test cloud (tools/cloud.py; docs/TEST-CLOUD.md): slow, not part of `make test`.
test-cloud: engine venv
	$(PY) -m pytest -m cloud tests/test_cloud.py

bench: engine pyz
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-columns=median,min,max,rounds --benchmark-json=.cache/bench.json
	$(PY) -c "import json; [print(b['name'], b['extra_info']) for b in json.load(open('.cache/bench.json'))['benchmarks'] if b['extra_info']]"

clean:
	rm -rf dist build .cache $(VENV)

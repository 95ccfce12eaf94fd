# TCUP developer tasks. `make demo` runs TCUP against the local test cloud; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DEMO   := .cache/demo-cloud
# The demo: a member runs SCS-0128 against the test cloud with four member
# accounts (four workers); the test cloud is stopped afterwards.
DEMO_ARGS ?= --guideline scs-0128 --accounts $(DEMO)/accounts.yaml --concurrency 4
# Behind a TLS-inspecting proxy the image build must trust its CA: TCUP's own
# --ca-cert option, fed from $TCUP_CA_CERT, defaulting to the bundle pip uses here.
export TCUP_CA_CERT ?= $(PIP_CERT)

SOURCES := $(shell find src image -type f -not -path '*/__pycache__/*') build_zipapp.py launcher-requirements.txt

.PHONY: engine cloud-deps venv lock pyz release image demo tour test test-cloud bench clean

# A running Docker engine with the base image; installs and starts what is missing.
engine:
	bash .ci/engine.sh

# What the test cloud needs from Debian: MariaDB, RabbitMQ, qemu-img.
cloud-deps:
	bash .ci/cloud.sh

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

demo: engine cloud-deps pyz
	$(PYTHON) tools/cloud.py start --dir $(DEMO)
	. $(DEMO)/member-openrc && ./dist/tcup.pyz --no-upload $(DEMO_ARGS); rc=$$?; \
	  $(PYTHON) tools/cloud.py stop --dir $(DEMO); \
	  case $$rc in 0|1|5) exit 0;; *) exit $$rc;; esac  # a run with a verdict is a demo that worked

# The recorded tour (docs/tour/): a real run on a pty against a local Keystone,
# saved as an asciinema v2 cast with a still (SVG) and a replay page (HTML).
tour: engine pyz
	$(PY) tools/tour.py --pyz dist/tcup.pyz --out docs/tour

# Everything, the whole test cloud included (tests/test_cloud*.py start it once).
test: engine cloud-deps venv
	TCUP_TEST_CLOUD=1 $(PY) -m pytest

# Only the test cloud's tests (docs/TEST-CLOUD.md).
test-cloud: engine cloud-deps venv
	$(PY) -m pytest -m cloud tests/test_cloud.py tests/test_cloud_runs.py tests/test_tls_cloud.py tests/test_paging_cloud.py

bench: engine pyz
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-columns=median,min,max,rounds --benchmark-json=.cache/bench.json
	$(PY) -c "import json; [print(b['name'], b['extra_info']) for b in json.load(open('.cache/bench.json'))['benchmarks'] if b['extra_info']]"

clean:
	rm -rf dist build .cache $(VENV)

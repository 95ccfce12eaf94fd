# TCUP developer tasks. `make demo` runs TCUP against the local test cloud; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DEMO   := .cache/demo-cloud
# The demo: a member runs SCS-0128 against the test cloud with four member
# accounts (four workers); the test cloud is stopped afterwards. Its exit code
# is the run's: 0 when compliant by SCS-0128's rule (no test failed; the
# verdict names the skips by reason).
DEMO_ARGS ?= --guideline scs-0128 --accounts $(DEMO)/accounts.yaml --concurrency 4
# Behind a TLS-inspecting proxy the image build must trust its CA: TCUP's own
# --ca-cert option, fed from $TCUP_CA_CERT, defaulting to the bundle pip uses here.
export TCUP_CA_CERT ?= $(PIP_CERT)

SOURCES := $(shell find src image -type f -not -path '*/__pycache__/*') build_zipapp.py launcher-requirements.txt

.PHONY: engine cloud-deps cloud-venvs venv lock pyz release image demo demo-cloud tour test test-cloud bench clean

# A running Docker engine with the base image; installs and starts what is missing.
engine:
	bash .ci/engine.sh

# What the test cloud needs from Debian: MariaDB, RabbitMQ, qemu-img.
cloud-deps:
	bash .ci/cloud.sh

# pip brings only uv, which installs the rest (a sixth of pip's time on an empty cache;
# the test cloud's venvs use it too); the lock's hashes are checked either way.
venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml launcher-requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -r launcher-requirements.txt -e '.[dev]'
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

# What does not wait on each other runs at once (make -j): the engine (apt, dockerd,
# the base image), the test cloud's Debian packages and the dev venv; then the test
# cloud's venvs, the pyz and the image build; the image build goes on while the test cloud starts. A part that fails stops the cloud again. Their
# lines interleave as they come (each names its speaker: engine:, testcloud:, tcup:).
demo:
	$(MAKE) --no-print-directory -j5 demo-cloud image pyz || { $(PYTHON) tools/cloud.py stop --dir $(DEMO); exit 1; }
	. $(DEMO)/member-openrc && ./dist/tcup.pyz --no-upload $(DEMO_ARGS); rc=$$?; \
	  $(PYTHON) tools/cloud.py stop --dir $(DEMO); exit $$rc

demo-cloud: cloud-deps cloud-venvs
	$(PYTHON) tools/cloud.py start --dir $(DEMO)

# The test cloud's service venvs (uv, from the dev venv), while apt may still be busy.
cloud-venvs: venv
	$(PYTHON) tools/cloud.py venvs

# The recorded tour (docs/tour/): a real run on a pty against a local Keystone,
# saved as an asciinema v2 cast with a still (SVG) and a replay page (HTML).
tour: engine pyz
	$(PY) tools/tour.py --pyz dist/tcup.pyz --out docs/tour

# Everything, the whole test cloud included (tests/test_cloud*.py start it once).
test: engine cloud-deps venv
	TCUP_TEST_CLOUD=1 $(PY) -m pytest --durations=30

# Only the test cloud's tests (docs/TEST-CLOUD.md).
test-cloud: engine cloud-deps venv
	$(PY) -m pytest -m cloud tests/test_cloud.py tests/test_cloud_runs.py tests/test_tls_cloud.py tests/test_paging_cloud.py

bench: engine pyz
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-columns=median,min,max,rounds --benchmark-json=.cache/bench.json
	$(PY) -c "import json; [print(b['name'], b['extra_info']) for b in json.load(open('.cache/bench.json'))['benchmarks'] if b['extra_info']]"

clean:
	rm -rf dist build .cache $(VENV)

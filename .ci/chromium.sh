#!/usr/bin/env bash
# Headless Chromium, which tests/test_report.py renders the HTML report in
# (a screenshot and the rendered DOM). Debian 12, as root; safe to run again.
set -euo pipefail
if ! command -v chromium >/dev/null; then
    echo "chromium: installing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

#!/usr/bin/env bash
# tmux, for tests/test_progress_tty.py: it runs TCUP on a real terminal and
# reads the screen back (capture-pane). Installed from apt when missing.
set -euo pipefail

if ! command -v tmux >/dev/null; then
    echo "tmux: installing tmux"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tmux >/dev/null
fi

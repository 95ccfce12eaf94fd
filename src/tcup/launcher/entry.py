"""Where `tcup`, `python -m tcup` and the pyz start.

It refuses an unsupported Python in one line before anything is imported
that would fail on it with a traceback, so it keeps to syntax that even
Python 3.4 parses.
"""

import sys

# 3.9.2, not 3.9.0: the vendored cryptography excludes 3.9.0 and 3.9.1.
# build_zipapp.py vendors compiled extensions from this version on.
OLDEST = (3, 9, 2)


def main():
    if sys.version_info < OLDEST:
        sys.stderr.write(
            "tcup: error: this is Python %s; tcup needs Python %s or newer (run it with e.g. python3.11 tcup.pyz)\n"
            % (".".join(map(str, sys.version_info[:3])), ".".join(map(str, OLDEST)))
        )
        return 2
    from tcup.launcher.cli import main as run

    return run()

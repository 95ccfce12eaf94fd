"""Where `tcup`, `python -m tcup` and the pyz start.

It refuses an unsupported Python in one line before anything is imported
that would fail on it with a traceback, so it keeps to syntax that even
Python 3.4 parses. It also names what the pyz carries: build_zipapp.py
builds from PYTHONS and MACHINES, and the distro matrix tests each.
"""

import os
import sys

# The Pythons and machines the pyz carries compiled extensions for (cffi,
# cryptography, charset_normalizer), each tested in CI. 3.9.2, not 3.9.0: the
# vendored cryptography excludes 3.9.0 and 3.9.1.
PYTHONS = ("3.9.2", "3.10", "3.11", "3.12", "3.13", "3.14")
MACHINES = ("x86_64", "aarch64")
OLDEST = tuple(int(part) for part in PYTHONS[0].split("."))
# In the pyz, beside the shared packages: a directory per machine with the
# packages whose compiled parts do not name the machine in their file name
# (``_rust.abi3.so``), which a Python would otherwise load for any machine.
MACHINE_DIR = "tcup-machine"
# The directory that holds the tcup package: the pyz's extracted site-packages, or a checkout's src/.
SITE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    if sys.version_info < OLDEST:
        sys.stderr.write(
            "tcup: error: this is Python %s; tcup needs Python %s or newer (run it with e.g. python3.11 tcup.pyz)\n"
            % (".".join(map(str, sys.version_info[:3])), ".".join(map(str, OLDEST)))
        )
        return 2
    use_machine_packages()
    from tcup.launcher.cli import main as run

    return run()


def use_machine_packages():
    """In the pyz: this machine's own packages first on sys.path. From a
    checkout there are none; the installed packages serve."""
    packages = os.path.join(SITE, MACHINE_DIR, os.uname().machine)
    if os.path.isdir(packages) and packages not in sys.path:
        sys.path.insert(0, packages)


def missing_part(feature, package, error):
    """One line for ``feature`` failing to import ``package`` or its compiled
    part (``error``, an ImportError): for the pyz, which Pythons and machines
    carry them; from a checkout, what to install."""
    here = "Python %d.%d on %s" % (sys.version_info[0], sys.version_info[1], os.uname().machine)
    if not os.path.isdir(os.path.join(SITE, MACHINE_DIR)):
        return "%s needs the Python package %s, which this %s cannot import (%s); install it: pip install %s" % (
            feature, package, here, error, package)
    return ("%s needs %s, a compiled part tcup.pyz carries for CPython %s to %s on %s Linux; this is %s: "
            "run tcup.pyz with one of those (e.g. python%s tcup.pyz)" % (
                feature, error.name or error, PYTHONS[0], PYTHONS[-1], " and ".join(MACHINES), here, PYTHONS[-1]))

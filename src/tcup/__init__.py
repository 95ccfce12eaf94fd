"""TCUP: Tempest in a Container, Upload from Probe.

This module is imported by both sides (the launcher on the host, the runner in
the container), so it must stay free of imports.
"""

__version__ = "0.1.0"

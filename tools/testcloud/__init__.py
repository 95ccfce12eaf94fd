"""A real OpenStack control plane on 127.0.0.1 for TCUP's tests and demo.

One module per service (``keystone``, ``glance``, ``placement``, ``nova``,
``neutron``, ``cinder``, ``swift``, plus ``mariadb`` and ``rabbitmq`` that
they need), all built on ``common``: cached venvs pinned by ``locks/``,
processes with pidfiles and logs, ports, HTTP. ``cloud`` puts them together
and ``tools/cloud.py`` is its command line. Standard library only, so the
host's python3 and the tests' venv can import it.
"""

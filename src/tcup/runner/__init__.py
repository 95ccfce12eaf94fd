"""The runner: what runs inside the TCUP container.

It reads one settings line on stdin, writes tempest.conf under the secret
tmpfs, chooses the tests, runs Tempest, and writes the result files, speaking
to the launcher only through ``tcup.contract`` events on stdout. Steps live
in their own modules: config, selection, run, results; redact masks secrets
in everything that leaves.
"""

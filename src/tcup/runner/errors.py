"""Failures the runner reports as one ``error`` event and an exit code."""

from tcup import contract


class RunnerError(Exception):
    """A failure with a one-line message meant for the user."""

    kind = "infra"
    exit_code = contract.EXIT_INFRA


class InputError(RunnerError):
    """The settings ask for something this runner cannot do."""

    kind = "input"
    exit_code = contract.EXIT_BAD_INPUT


class InfraError(RunnerError):
    """Tempest, the cloud or the container let us down."""


class Stopped(InfraError):
    """SIGTERM arrived (the launcher or the user stopped the container)."""

"""The launcher's exit codes and the one error type the CLI turns into one line."""

from tcup import contract

EXIT_OK = contract.EXIT_OK
EXIT_TESTS_FAILED = contract.EXIT_TESTS_FAILED
EXIT_BAD_INPUT = contract.EXIT_BAD_INPUT  # also argparse's own code for a bad flag
EXIT_INFRA = contract.EXIT_INFRA
EXIT_UPLOAD_FAILED = 4  # results are saved; `tcup upload RUN` resumes
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM, as shells report it


class TcupError(Exception):
    """A failure the user can act on: ``str(error)`` is the whole message."""

    exit_code = EXIT_INFRA

    def __init__(self, message: str, exit_code: int = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class BadInput(TcupError):
    exit_code = EXIT_BAD_INPUT


class Infrastructure(TcupError):
    exit_code = EXIT_INFRA

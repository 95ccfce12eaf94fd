"""What an interrupt stopped, and what it left, in the words `tcup` ends with.

Ctrl-C and the ending signals (cli.ENDING_SIGNALS) arrive as
KeyboardInterrupt; the phase it stopped turns it into Interrupted, which
the CLI prints as it is.
"""

from contextlib import contextmanager

from tcup import contract
from tcup.launcher.errors import TcupError


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or an ending signal (cli.ENDING_SIGNALS), with what it
    interrupted and what is left, in words the CLI prints as they are."""


@contextmanager
def interrupted(what_is_left):
    """Say what an interrupt stopped: ``what_is_left()`` is asked when it
    comes, so it tells what is true then."""
    try:
        yield
    except Interrupted:
        raise
    except KeyboardInterrupt:
        raise Interrupted(what_is_left()) from None


class Leftovers:
    """The image-and-container part of a command (run, plan, debug shell):
    when it fails or is interrupted, an empty run directory goes, a partly
    written one is kept marked incomplete, and an interrupt says which, and
    whether the container is gone. Set ``container`` once there is one, and
    ``asked`` (a results.finish.Asked) once the tests are chosen: the tests
    that finished before a stop are then written as result files."""

    def __init__(self, run_dir=None):
        self.run_dir, self.container = run_dir, None  # run_dir: a results.runs.Run, or None (plan, debug)
        self.asked = None
        self.kept = 0  # finished tests whose results an interrupted run keeps

    def __enter__(self) -> "Leftovers":
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None:
            return False
        run_dir = self.run_dir
        if run_dir is not None:
            run_dir.discard_if_empty()
            self.keep_finished()
        if isinstance(error, KeyboardInterrupt) and not isinstance(error, Interrupted):
            raise Interrupted(self.what_is_left()) from None
        if run_dir is not None and isinstance(error, TcupError) and run_dir.incomplete.exists():
            # The runner did not finish: what it wrote stays, marked incomplete.
            raise TcupError(f"{error}; what it wrote is kept, marked incomplete, in {run_dir.incomplete}"
                            + self.kept_words(), error.exit_code) from None
        return False

    def what_is_left(self) -> str:
        """What an interrupt of the container's part of a run left, as it is now."""
        container, run_dir = self.container, self.run_dir
        if container is None or container.id is None:
            gone = "before any container was started"
        elif container.removed:
            gone = "while the container ran; the container is stopped and removed"
        else:
            gone = "while the container ran; the container may be left (see the warning above)"
        cleaned = ""
        if run_dir is not None and (run_dir.incomplete / contract.CLEANUP_FILE).exists():
            from tcup.launcher.progress import cleanup_lines
            from tcup.launcher.results.runs import json_object

            lines = cleanup_lines(json_object(run_dir.incomplete / contract.CLEANUP_FILE) or {})
            cleaned = "".join("\n" + line for line in lines) + ("\n" if lines else "")
            if not any("warning" in line for line in lines):
                gone += "; what the tests created in the cloud was removed"
        if run_dir is not None and run_dir.incomplete.exists():
            return (f"{gone}; the results of the tests that finished are kept, marked incomplete, "
                    f"in {run_dir.incomplete}{self.kept_words()}{cleaned}")
        return f"{gone}; nothing was saved{cleaned}"

    def keep_finished(self) -> None:
        """The finished tests' result files, from the stream a stopped run left."""
        if self.run_dir is None or not self.run_dir.incomplete.is_dir():
            return
        from tcup.launcher.results.partial import keep_finished

        try:
            self.kept = keep_finished(self.run_dir.incomplete, self.asked)
        except OSError:
            self.kept = 0  # a full disk, say: the stream itself is still there for `tcup rerun`

    def kept_words(self) -> str:
        from tcup.launcher.results.partial import kept_words

        return kept_words(self.kept)

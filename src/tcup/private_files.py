"""Result files, for both sides: whole or not at all, owner-only from the
first byte, never written through a link someone planted, and read back
only as what they claim to be. Standard library only: the runner imports it
inside the image."""

import errno
import os
import secrets
import stat
from pathlib import Path
from contextlib import contextmanager
from typing import BinaryIO, Iterator

# The most of a result file that is read. The largest the runner writes, a
# whole guideline's subunit stream with its tracebacks, is a few MB; a file
# past this was not written by the runner.
READ_LIMIT = 256 * 1024 * 1024

def create_private(path: Path) -> BinaryIO:
    """A new file only its owner can read; refuses to open what exists (a
    planted link included)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    return os.fdopen(os.open(path, flags, 0o600), "wb")


@contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A new private sibling to write into, renamed over path once whole (a
    rename replaces a link, never follows it), removed if the writing
    fails: a reader or a crash never sees half a file. For what is written
    in pieces (an image of hundreds of MB); write_atomically for the rest."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with create_private(temporary) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def write_atomically(path: Path, data: bytes) -> None:
    """Write a new sibling, then rename it over path (see ``replacing``)."""
    with replacing(path) as out:
        out.write(data)


def read_result(path: Path, limit: int = READ_LIMIT) -> bytes:
    """A file the container wrote (or could have replaced), read only when
    it is a regular file of at most ``limit`` bytes: never through a link
    (one planted in a run directory would show, bundle or upload a file of
    the user's), never a FIFO or device that would hang or flood the read.
    Anything else raises OSError, as a missing file does."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "a link, not a file TCUP wrote", str(path)) from None
        raise
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        data = file.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
    return data

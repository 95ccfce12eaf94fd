"""Result files, for both sides: whole or not at all, owner-only from the
first byte, and never written through a link someone planted. Standard
library only: the runner imports it inside the image."""

import os
import secrets
from pathlib import Path
from typing import BinaryIO

def create_private(path: Path) -> BinaryIO:
    """A new file only its owner can read; refuses to open what exists (a
    planted link included)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    return os.fdopen(os.open(path, flags, 0o600), "wb")


def write_atomically(path: Path, data: bytes) -> None:
    """Write a new sibling, then rename it over path (a rename replaces a link,
    never follows it): a reader or a crash never sees half a file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with create_private(temporary) as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise

"""Writing files so that a crash or a kill never leaves a half-written one."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path


def mode_for(path: Path) -> int:
    """The permissions open(path, "w") would leave: an existing file's own, else 0o666 less the umask (mkstemp's
    temporary file is 0o600, private to its owner)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)  # the only way to read it is to set it
        os.umask(umask)
        return 0o666 & ~umask


def write_atomically(path: Path, write) -> None:
    """Write via a temporary file in the same folder, fsync, then rename: a crash leaves the old file or the new."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            os.chmod(temporary, mode_for(path))
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def is_unfinished_write(path: Path) -> bool:
    """A temporary file of write_atomically's that a kill left behind (SIGKILL skips its clean-up): no result."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def write_text_atomically(path: Path, text: str) -> None:
    write_atomically(path, lambda file: file.write(text.encode()))


def write_json_atomically(path: Path, value) -> None:
    """`value` as indented JSON, atomically."""
    write_text_atomically(path, json.dumps(value, indent=2) + "\n")

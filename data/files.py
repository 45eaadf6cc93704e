"""Atomic file writes: a file is either absent, its previous version, or complete, never truncated.

Everything the project writes that a later step reads (checkpoints, latent caches, videos, annotation lists, metric
reports, figures, "step finished" markers) goes through :func:`atomic_path`: write to a temporary name in the target
folder, flush it to disk, then ``os.replace`` it over the target (atomic on POSIX file systems). An interrupted write
leaves the old file and removes the temporary one. :func:`save_atomic` does it for ``torch.save``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit, fsync it and move it over ``path``.

    Args:
        path: the destination; its folder must exist.
        suffix: ending of the temporary name, for writers that pick a format from it (e.g. ``".tmp.png"``).

    Raises:
        Whatever the body raises; the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename it over ``path`` (atomic on POSIX).

    An interrupted save leaves the previous file intact and never a truncated one (:func:`atomic_path`). The folder
    is created if needed.
    """
    import torch  # only where a tensor file is written: the lists, reports and docs that use this module never need it

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path

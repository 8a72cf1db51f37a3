"""Content-addressed blobs (guide attachments) under ``blobs_dir/ab/cdef…`` by SHA-256.

A blob is written to a temporary file in the same directory, fsynced, then renamed into place, so a crash
leaves either the whole blob or none of it; the directory is fsynced so the rename itself survives. The
hash is checked on the way in (the name is the content's hash) and again on the way out, so a blob corrupted
on disk is reported and never served.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from pathlib import Path

from protocol import TooLargeError

__all__ = ["BlobStore"]

log = logging.getLogger(__name__)


class BlobStore:
    """Blobs in a directory; thread- and process-safe (writes are atomic renames of identical content)."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path(self, digest: bytes) -> Path:
        """Raises:
        ValueError: ``digest`` is not 32 bytes.
        """
        if len(digest) != 32:
            raise ValueError("a blob digest is 32 bytes (SHA-256)")
        text = digest.hex()
        return self.root / text[:2] / text[2:]

    def put(self, data: bytes, expected: bytes | None = None) -> bytes:
        """Store ``data`` and return its SHA-256; storing the same bytes twice is a no-op.

        Raises:
            TooLargeError: over ``max_bytes``.
            ValueError: ``expected`` is given and is not the data's hash.
            OSError: the disk failed (nothing partial is left behind).
        """
        if len(data) > self.max_bytes:
            raise TooLargeError(f"blob is {len(data)} bytes, over the limit of {self.max_bytes}")
        digest = hashlib.sha256(data).digest()
        if expected is not None and expected != digest:
            raise ValueError(f"blob hash is {digest.hex()}, expected {expected.hex()}")
        target = self.path(digest)
        if target.exists() and self._read_verified(target, digest) is not None:
            return digest
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(target.parent)
        return digest

    def get(self, digest: bytes) -> bytes | None:
        """The blob's bytes, or None if absent or corrupt (a corrupt blob is logged).

        Raises:
            ValueError: ``digest`` is not 32 bytes.
        """
        return self._read_verified(self.path(digest), digest)

    def has(self, digest: bytes) -> bool:
        return self.path(digest).exists()

    def _read_verified(self, path: Path, digest: bytes) -> bytes | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if hashlib.sha256(data).digest() != digest:
            log.error("blob %s is corrupt on disk (its content hashes differently); not serving it", path)
            return None
        return data


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

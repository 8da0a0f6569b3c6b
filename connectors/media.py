"""Read the bytes of raw media an event points at: inline base64 or a ``file://`` URI.

This is the only place modalwatch opens a producer's media file. A URI is read only when its
scheme is allowed and its file, symlinks resolved, lies under an allowed root; the read is capped
at ``max_file_bytes`` so a huge file cannot exhaust memory. Every refusal is a ``MediaError`` that
names the modality and the reason.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from monitor.core.errors import MediaError


class MediaReader:
    def __init__(self, allowed_schemes=("file",), allowed_roots=(), max_file_bytes: int = 64 * 1024 * 1024):
        self.allowed_schemes = set(allowed_schemes)
        self.roots = [Path(r).expanduser().resolve() for r in allowed_roots]
        self.max_file_bytes = max_file_bytes

    @classmethod
    def from_config(cls, media) -> "MediaReader":
        return cls(media.allowed_schemes, media.allowed_roots, media.max_file_bytes)

    def read(self, modality: str, data_b64: str | None, uri: str | None) -> bytes:
        if data_b64 is not None:
            try:
                return base64.b64decode(data_b64, validate=True)
            except (binascii.Error, ValueError) as e:
                raise MediaError(modality, f"data_b64 is not valid base64: {e}") from None
        if uri is None:
            raise MediaError(modality, "no media: neither data_b64 nor uri")
        return self._read_uri(modality, uri)

    def _read_uri(self, modality: str, uri: str) -> bytes:
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        if scheme not in self.allowed_schemes:
            allowed = ", ".join(sorted(self.allowed_schemes)) or "none"
            raise MediaError(
                modality,
                f"URI scheme {scheme or '(none)'!r} is not allowed (media.allowed_schemes: {allowed})",
            )
        if parts.netloc not in ("", "localhost"):
            raise MediaError(modality, f"file:// URI names host {parts.netloc!r}: only local files are read")
        decoded = unquote(parts.path)
        if "\x00" in decoded:
            raise MediaError(modality, "file:// URI path holds a NUL (%00): no file has such a name")
        path = Path(decoded)
        if not path.is_absolute():
            raise MediaError(modality, "file:// URI path must be absolute")
        if not self.roots:
            raise MediaError(modality, "file:// URIs are refused: media.allowed_roots is empty")
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise MediaError(modality, f"cannot read {path}: no such file") from None
        if not any(real.is_relative_to(root) for root in self.roots):
            raise MediaError(modality, f"{path} is outside media.allowed_roots")
        try:
            with open(real, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size > self.max_file_bytes:
                    raise MediaError(
                        modality, f"{path} is {size} bytes > media.max_file_bytes={self.max_file_bytes}"
                    )
                data = fh.read(self.max_file_bytes + 1)
        except MediaError:
            raise
        except OSError as e:
            raise MediaError(modality, f"cannot read {path}: {e.strerror or e}") from None
        if len(data) > self.max_file_bytes:  # grew while being read
            raise MediaError(modality, f"{path} is over media.max_file_bytes={self.max_file_bytes}")
        return data

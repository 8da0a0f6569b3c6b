"""Signals as stored: packed float64 values in the order of a layout (migration 0007)."""

from __future__ import annotations

import hashlib
import struct

import numpy as np


class SignalPacker:
    """Signals as packed float64 values (little-endian) in the order of a layout: the sorted signal
    names, named by a 64-bit hash of them so that every writer derives the same id without asking
    the database. Layouts are cached by the names in the order an event gave them."""

    def __init__(self) -> None:
        self._by_keys: dict[tuple[str, ...], tuple[int, tuple[str, ...], struct.Struct]] = {}

    @staticmethod
    def layout_id(names: tuple[str, ...]) -> int:
        digest = hashlib.blake2b("\n".join(names).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little", signed=True)

    def pack(self, signals: dict[str, float]) -> tuple[int, tuple[str, ...], bytes]:
        """(layout id, layout names, packed values) of one event's signals."""
        keys = tuple(signals)
        hit = self._by_keys.get(keys)
        if hit is None:
            names = tuple(sorted(keys))
            hit = self._by_keys[keys] = (self.layout_id(names), names, struct.Struct(f"<{len(names)}d"))
        lid, names, st = hit
        return lid, names, st.pack(*[signals[n] for n in names])


def unpack(names: tuple[str, ...], packed: bytes) -> dict[str, float]:
    """One event's signals from its layout's names and its packed values."""
    return dict(zip(names, np.frombuffer(packed, dtype="<f8").tolist()))

"""An earlier commit checked out beside this one, for the scripts that measure it on the same data
(``--against`` / ``--baseline``)."""

from __future__ import annotations

import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """A temporary git worktree of ``rev`` (detached), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="mw-bench-") as tmp:
        tree = Path(tmp) / "previous"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT, check=True, capture_output=True
        )
        try:
            yield tree
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)

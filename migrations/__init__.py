"""Versioned, forward-only SQL migrations: ``sqlite/NNNN_name.sql`` and ``postgres/NNNN_name.sql``.

The SQL lives in this folder so that an installed modalwatch finds it beside its code.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def migration_files(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration of ``dialect``, in version order."""
    folder = ROOT / dialect
    out = []
    for path in sorted(folder.glob("*.sql")):
        version = int(path.name.split("_", 1)[0])
        out.append((version, path.stem, path.read_text(encoding="utf-8")))
    return out

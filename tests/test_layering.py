"""The layering contracts of pyproject.toml (import-linter): kept by the tree as it is, and broken
— naming the contract — by each kind of import they forbid, made in a copy of the tree."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("monitor", "detectors", "connectors", "alerts", "migrations")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--no-logo", "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_the_tree_keeps_every_contract():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "5 kept, 0 broken" in out.stdout


@pytest.mark.parametrize(
    "module,line,contract",
    [
        (
            "detectors/drift.py",
            "from monitor.core.records import EvaluationRow",
            "detectors/ imports nothing",
        ),
        ("connectors/kafka.py", "from monitor.pipeline import decode", "never the shell"),
        ("alerts/routing.py", "from connectors.sql.store import SqlStore", "independent of each other"),
        ("monitor/core/records.py", "import monitor.config", "monitor.core imports nothing"),
        ("monitor/schedule.py", "import monitor.evaluation", "no import cycles"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tmp_path, module, line, contract):
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n\ndef _late():\n    {line}  # noqa\n")
    out = _lint(tmp_path)
    assert out.returncode != 0 and contract in out.stdout.split("Broken contracts")[-1], out.stdout

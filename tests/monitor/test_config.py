from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]


def test_example_configs_validate():
    default = load_config(ROOT / "config" / "default.yaml", env={})
    assert default.store.kind == "sqlite" and default.ingest.http.host == "127.0.0.1"
    assert default.evaluation.intervals == [timedelta(days=1)]
    prod = load_config(
        ROOT / "config" / "production.yaml",
        env={
            "MODALWATCH_PG_URL": "postgresql://u:pw@db/x",
            "MODALWATCH_WEBHOOK_URL": "http://h/x",
            "MODALWATCH_WEBHOOK_SECRET": "007",
            "MODALWATCH_TOKEN": "a-token-of-some-length",
        },
    )
    assert prod.store.kind == "postgres" and prod.ingest.kafka.bootstrap_servers == ["kafka:9092"]
    assert prod.ingest.workers == 2
    assert prod.alerts.webhooks[0].secret.get_secret_value() == "007"
    assert "007" not in repr(prod) and "pw" not in repr(prod)


def test_no_config_means_the_embedded_default():
    assert load_config(None).model_dump() == load_config(ROOT / "config" / "default.yaml").model_dump()


def test_misspelt_key_names_key_and_line():
    with pytest.raises(ConfigError, match=r"evaluation\.lagg \(line 3\): Extra inputs"):
        parse_config("evaluation:\n  intervals: [1d]\n  lagg: 1d\n")


def test_bad_value_names_nested_key_and_line():
    text = (
        "alerts:\n  rules:\n    - name: A\n      metric: psi\n      threshold: 0.2\n"
        "    - name: B\n      metric: pis\n      threshold: 1\n"
    )
    with pytest.raises(ConfigError, match=r"alerts\.rules\[1\]\.metric \(line 7\)"):
        parse_config(text)


def test_env_interpolation_and_missing_variable():
    cfg = parse_config(
        "store:\n  path: ${DBP:-/tmp/x.db}\ningest:\n  http:\n    port: ${PORT}\n", env={"PORT": "9001"}
    )
    assert cfg.store.path == "/tmp/x.db" and cfg.ingest.http.port == 9001
    with pytest.raises(
        ConfigError, match=r"ingest\.http\.port \(line 5\): environment variable PORT is not set"
    ):
        parse_config("store:\n  path: x\ningest:\n  http:\n    port: ${PORT}\n", env={})


def test_pipeline_workers_need_postgres():
    with pytest.raises(ConfigError, match=r"ingest\.workers: 2 needs store\.kind: postgres"):
        parse_config("ingest:\n  workers: 2\n")
    cfg = parse_config("store: {kind: postgres, url: 'postgresql://db/x'}\ningest: {workers: 2}\n")
    assert cfg.ingest.workers == 2


def test_durations_and_invalid_duration():
    cfg = parse_config("evaluation:\n  intervals: [1h, 6h, 1d, 7d]\n  lag: 30m\n")
    assert cfg.evaluation.intervals[1] == timedelta(hours=6) and cfg.evaluation.lag == timedelta(minutes=30)
    with pytest.raises(ConfigError, match=r"evaluation\.lag"):
        parse_config("evaluation:\n  lag: soon\n")


def test_check_config_cli(tmp_path, capsys):
    from monitor.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("store:\n  kind: oracle\n")
    assert main(["check-config", str(bad)]) == 2
    assert "store.kind (line 2)" in capsys.readouterr().err
    assert main(["check-config", str(ROOT / "config" / "default.yaml")]) == 0

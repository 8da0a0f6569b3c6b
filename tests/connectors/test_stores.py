from datetime import datetime, timedelta

from monitor.core.window import RunKey
from monitor.pipeline import Pipeline, RawMessage
from monitor.config import Config
from monitor.core.records import EventRow, LabelRow
from tests.conftest import ROOT
from tests.helpers import NOW, T0, b64, inference, label, tone, wav_bytes
import json

import numpy as np
import pytest
import pandas as pd


def _msgs(objs, source="test"):
    return [RawMessage(source, f"{source}:{i}", json.dumps(o).encode()) for i, o in enumerate(objs)]


def _on_disk(dialect):
    """(version, name) of every migration file of a dialect, as the directory lists them."""
    return [(int(p.stem[:4]), p.stem) for p in sorted((ROOT / "migrations" / dialect).glob("*.sql"))]


def test_migrations_are_recorded_and_idempotent(any_store):
    assert any_store.migrate() == []
    rows = any_store.db.all("SELECT version, name FROM schema_migrations")
    assert rows == _on_disk(any_store.dialect.name) and len(rows) >= 5


def test_replayed_events_change_nothing(any_store):
    p = Pipeline(Config(), any_store, lambda: T0)
    first = p.process(_msgs([inference(i) for i in range(50)] + [label(i) for i in range(0, 50, 2)]))
    assert [o.status for o in first].count("stored") == 75
    again = p.process(
        _msgs([inference(i) for i in range(60)] + [label(i) for i in range(0, 50, 2)], "replay")
    )
    assert [o.status for o in again].count("duplicate") == 75
    assert [o.status for o in again].count("stored") == 10
    c = any_store.ops.counts()
    assert c["events"] == 60 and c["labels"] == 25 and c["labels_joined"] == 25


def test_label_before_its_event_is_kept_and_joined(any_store):
    p = Pipeline(Config(), any_store, lambda: T0)
    p.process(_msgs([label(7)]))
    assert any_store.ops.counts()["labels_joined"] == 0
    p.process(_msgs([inference(7)]))
    assert any_store.ops.counts()["labels_joined"] == 1
    w = any_store.events.load_window("m", "1", T0, T0 + timedelta(days=1), T0 + timedelta(days=2))
    assert list(w.frame["label"]) == ["cat"]
    assert w.signals.iloc[0].to_dict() == {"audio.loudness_lufs": -23.0, "image.brightness": 107.0}


def test_no_raw_media_reaches_any_table(any_store):
    good, bad = inference(1), inference(2)
    good["inputs"]["audio"] = {"data_b64": b64(wav_bytes(tone(-20, 0.5)))}
    bad["inputs"]["audio"] = {"data_b64": b64(wav_bytes(tone(-20, 0.5))[:40])}  # no data chunk: a dead letter
    out = Pipeline(Config(), any_store, lambda: T0).process(_msgs([good, bad]))
    assert [o.status for o in out] == ["stored", "stored"] and out[1].reason.startswith("partial: audio:")
    loudness = any_store.events.load_window(
        "m", "1", T0, T0 + timedelta(days=1), T0 + timedelta(days=2)
    ).signals["audio.integrated_loudness_lufs"]
    assert np.isfinite(loudness[0]) and np.isnan(loudness[1])
    assert len(any_store.ops.dead_letters()) == 1
    prefix = good["inputs"]["audio"]["data_b64"][:40]
    for table in ("events", "dead_letters", "labels"):
        dump = json.dumps(any_store.db.all(f"SELECT * FROM {table}"), default=str)
        assert prefix not in dump


def test_a_window_is_claimed_once(any_store):
    key = RunKey("m", "1", 86400, 0, T0)
    end = T0 + timedelta(days=1)
    assert any_store.evaluations.claim(key, end, "a", T0, timedelta(minutes=10))
    assert not any_store.evaluations.claim(key, end, "b", T0 + timedelta(minutes=1), timedelta(minutes=10))
    # a claimant that died: its claim expires and another replica takes the window
    assert any_store.evaluations.claim(key, end, "b", T0 + timedelta(minutes=11), timedelta(minutes=10))
    assert not any_store.evaluations.finish(
        key, "a", T0 + timedelta(minutes=12)
    )  # a was slow, not dead: b's now
    assert any_store.evaluations.finish(key, "b", T0 + timedelta(minutes=12))
    assert not any_store.evaluations.finish(key, "b", T0 + timedelta(minutes=13))  # finished once
    assert not any_store.evaluations.claim(key, end, "c", T0 + timedelta(hours=5), timedelta(minutes=10))
    assert any_store.evaluations.finished("m", "1", 86400, 0) == {T0}


def test_daemon_rides_out_a_lost_postgres_connection(pg_url, pg_server_url):
    """The server drops the daemon's session mid-run: the batch is retried on a new connection."""
    import psycopg

    from connectors.postgres import PostgresStore
    from monitor.daemon import Daemon

    class Src:
        name, exhausted, committed = "test", False, []

        def commit(self, outcomes):
            self.committed.append(len(outcomes))

    store = PostgresStore(pg_url)
    store.migrate()
    d = Daemon(Config(), [], store, {})
    src = Src()
    d.ingest(src, _msgs([inference(i) for i in range(100)]))
    pid = store.db.conn.info.backend_pid
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
    d.ingest(src, _msgs([inference(i) for i in range(100, 250)], "after"))
    assert store.db.conn.info.backend_pid != pid
    assert src.committed == [100, 150]
    assert store.ops.counts()["events"] == 250
    store.close()


def test_migrate_command_on_postgres_is_idempotent_and_says_which_kind(pg_url, tmp_path):
    import os
    import subprocess

    from tests.conftest import ROOT, modalwatch_cmd

    cfg = tmp_path / "pg.yaml"
    cfg.write_text("store:\n  kind: postgres\n  url: ${MW_URL}\n")
    env = {**os.environ, "MW_URL": pg_url}

    def migrate():
        out = subprocess.run(
            modalwatch_cmd() + ["migrate", "--config", str(cfg)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return out

    first, second = migrate(), migrate()
    names = [n for _, n in _on_disk("postgres")]
    assert f"applied {len(names)} migration(s): {', '.join(names)}" in first.stdout
    assert "applied 0 migration(s)" in second.stdout
    assert "timescaledb is not available" in first.stderr or "hypertables" in first.stderr
    assert "password" not in first.stderr + first.stdout


def _row(eid, minutes, sl, signals):
    # two hours apart: a window is read 6 hours at a time
    return EventRow(
        eid,
        T0 + timedelta(hours=2 * minutes),
        "m",
        "1",
        sl,
        signals,
        "image",
        "cat",
        0.5 + minutes / 10,
        None,
        minutes == 3,
        None,
        eid,
        T0,
        None,
    )


def test_a_window_reads_packed_signals_of_any_layout(any_store):
    any_store.events.insert(
        [
            _row("a", 1, {"device": "a"}, {"x": 1.5, "y": -2.0}),
            _row("b", 2, {"locale": "fr", "device": "b"}, {"z": 0.25, "y": 3.0}),
            _row("c", 3, {}, {"x": 7.0}),
            _row("d", 4, {"device": "a"}, {}),
        ]
    )
    any_store.events.insert_labels([LabelRow("b", "dog", "t", T0 + timedelta(minutes=5), "l", T0)])
    assert any_store.events.signals_for(["a", "b", "c", "d"]) == {
        "a": {"x": 1.5, "y": -2.0},
        "b": {"y": 3.0, "z": 0.25},
        "c": {"x": 7.0},
        "d": {},
    }
    w = any_store.events.load_window("m", "1", T0, T0 + timedelta(hours=9), T0 + timedelta(hours=1))
    # a window's rows come in the store's order: matched here by their confidence (one per event)
    assert _rows(w) == [
        {
            "confidence": 0.6,
            "pred_label": "cat",
            "abstained": False,
            "label": None,
            "device": "a",
            "locale": None,
            "x": 1.5,
            "y": -2.0,
            "z": None,
        },
        {
            "confidence": 0.7,
            "pred_label": "cat",
            "abstained": False,
            "label": "dog",
            "device": "b",
            "locale": "fr",
            "x": None,
            "y": 3.0,
            "z": 0.25,
        },
        {
            "confidence": 0.8,
            "pred_label": "cat",
            "abstained": True,
            "label": None,
            "device": None,
            "locale": None,
            "x": 7.0,
            "y": None,
            "z": None,
        },
        {
            "confidence": 0.9,
            "pred_label": "cat",
            "abstained": False,
            "label": None,
            "device": "a",
            "locale": None,
            "x": None,
            "y": None,
            "z": None,
        },
    ]
    assert list(w.signals.columns) == ["x", "y", "z"] and list(w.slices.columns) == ["device", "locale"]
    # a label known only later is not in a vintage evaluated before it arrived
    early = any_store.events.load_window("m", "1", T0, T0 + timedelta(hours=9), T0 + timedelta(minutes=5))
    assert [r["label"] for r in _rows(early)] == [None, None, None, None]


def _migrated_to(store, kind: str, version: int):
    """``store`` with the schema of release ``version``: its first migrations, recorded as applied."""
    from migrations import migration_files

    with store.tx():
        store.db.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL)"
        )
        for v, name, sql in migration_files(kind)[:version]:
            store._run_script(sql)
            store.db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (v, name, "then"))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_migration_0008_packs_the_signals_of_events_stored_before_0007(kind, tmp_path, request):
    """A database of an earlier release holds events whose signals are JSON only: after migrating,
    they read like every other event, and the JSON column is gone (one encoding to read)."""
    from connectors.postgres import PostgresStore
    from connectors.sqlite import SqliteStore

    store = (
        SqliteStore(tmp_path / "old.db")
        if kind == "sqlite"
        else PostgresStore(request.getfixturevalue("pg_url"))
    )
    _migrated_to(store, kind, 7)  # the schema of release 0007
    with store.tx():
        ts = store.dialect.ts
        for eid, minutes, signals in (("old", 1, '{"x": 7.0, "y": -1.5}'), ("empty", 2, "{}")):
            store.db.execute(
                "INSERT INTO events (event_id, ts, model_name, model_version, slice, signals, modalities,"
                " pred_label,"
                " confidence, abstained, position, ingested_at) VALUES (?, ?, 'm', '1', '{}', ?, 'image',"
                " 'cat', 0.7,"
                " ?, ?, ?)",
                (eid, ts(T0 + timedelta(hours=minutes)), signals, False, eid, ts(T0)),
            )
    assert store.migrate()[0] == "0008_one_signal_encoding"
    store.events.insert([_row("new", 2, {"device": "a"}, {"x": 1.0})])
    assert store.events.signals_for(["old", "empty", "new"]) == {
        "old": {"x": 7.0, "y": -1.5},
        "empty": {},
        "new": {"x": 1.0},
    }
    w = store.events.load_window("m", "1", T0, T0 + timedelta(hours=9), T0 + timedelta(hours=9))
    assert sorted(w.signals["x"].dropna().tolist()) == [1.0, 7.0] and len(w) == 3
    assert store.db.all("SELECT COUNT(*) FROM events WHERE signal_values IS NULL") == [(0,)]
    with pytest.raises(Exception):  # the JSON column is gone
        store.db.all("SELECT signals FROM events")
    store.close()


def _rows(w):
    frame = pd.concat([w.frame, w.slices, w.signals], axis=1).sort_values("confidence")
    return [
        {
            k: (None if isinstance(v, float) and np.isnan(v) else round(v, 9) if isinstance(v, float) else v)
            for k, v in r.items()
        }
        for r in frame.astype(object).to_dict("records")
    ]


def test_two_writers_storing_the_same_events_at_once_store_each_once(pg_url):
    """PostgreSQL copies a batch straight into the table; a writer that stores some of its events
    meanwhile makes that COPY fail, and the batch falls back to ON CONFLICT: each event is stored
    once and each writer is told which ones were its own."""
    import threading

    from connectors.postgres import PostgresStore

    PostgresStore(pg_url).migrate()
    a, b = PostgresStore(pg_url), PostgresStore(pg_url)
    rows = [_row(f"e{i:02d}", i, {"device": "a"}, {"x": float(i)}) for i in range(15)]
    got = {}
    with a.tx():
        got["a"] = a.events.insert(rows[:10])
        # b does not see a's uncommitted rows: its COPY waits on their keys, then fails on them
        t = threading.Thread(target=lambda: got.update(b=b.events.insert(rows[5:])))
        t.start()
        t.join(1.0)
        assert t.is_alive()  # waiting for a's transaction
    t.join(30)
    assert got["a"] == {f"e{i:02d}" for i in range(10)}
    assert got["b"] == {f"e{i:02d}" for i in range(10, 15)}
    assert a.ops.counts()["events"] == 15
    assert len(a.events.load_window("m", "1", T0, T0 + timedelta(days=2), T0 + timedelta(days=2))) == 15
    a.close()
    b.close()


def test_a_dialect_that_does_not_say_how_it_locks_does_not_construct():
    """A third backend that forgets a lock would lose updates the day two writers meet: it is an
    error at construction instead, naming what is missing."""
    from connectors.sql.dialect import Dialect

    class Partial(Dialect):  # says how it speaks, not how it locks
        name = "partial"

        def connect(self): ...

        def begin(self, conn): ...

        def sibling(self): ...

        def describe(self):
            return "partial"

        def insert_new(self, conn, table, cols, key, rows): ...

        def json_field(self, col, key): ...

        def concat_bytes(self, expr): ...

        def float_bytes(self, expr): ...

        def list_agg(self, expr): ...

    with pytest.raises(TypeError, match="lock_migrations, lock_notifications, lock_shared_state, row_lock"):
        Partial()


def test_an_event_sent_again_with_another_time_is_a_duplicate(any_store):
    """Idempotent by event id alone — also on TimescaleDB, whose hypertable key holds the time."""
    p = Pipeline(Config(), any_store, lambda: T0 + timedelta(days=5))
    first = p.process(_msgs([inference(i) for i in range(10)]))
    again = p.process(_msgs([inference(i, ts=T0 + timedelta(days=3, seconds=i)) for i in range(10)], "later"))
    assert [o.status for o in first] == ["stored"] * 10 and [o.status for o in again] == ["duplicate"] * 10
    assert any_store.ops.counts()["events"] == 10


def test_timescaledb_hypertables_compress_take_late_events_and_evaluate_over_them(timescale_url):
    from connectors.postgres import PostgresStore
    from monitor.config import parse_config
    from monitor.evaluation import Evaluator
    from tests.helpers import NOW
    from tests.monitor.test_evaluation import CFG, _traffic

    store = PostgresStore(timescale_url)
    store.migrate()
    assert store.timescale
    hyper = {
        r[0]
        for r in store.db.all(
            "SELECT hypertable_name FROM timescaledb_information.hypertables"
            " WHERE hypertable_schema = current_schema()"
        )
    }
    assert hyper == {"events", "evaluations"}
    cfg = parse_config(CFG)
    msgs = _traffic(days=6)
    late = [m for m in msgs if json.loads(m.payload)["event_id"] in ("e0000301", "e0000302")]
    Pipeline(cfg, store, lambda: NOW).process([m for m in msgs if m not in late])
    store.set_compression(timedelta(days=7))
    with store.tx():
        compressed = store.db.all("SELECT compress_chunk(c) FROM show_chunks('events') c")
    assert compressed
    out = Pipeline(cfg, store, lambda: NOW).process(late)  # into a compressed chunk
    assert [o.status for o in out] == ["stored"] * len(late)
    again = Pipeline(cfg, store, lambda: NOW).process(msgs[:50])  # and replays over compressed chunks
    assert {o.status for o in again} == {"duplicate"}
    assert Evaluator(cfg, store, lambda: NOW, owner="a").run_due(store.events.watermark()) == 5
    err = store.evaluations.frame()
    assert (err[err["metric"] == "error_rate"]["status"] == "ok").any()
    store.close()


def test_ingest_lookups_use_their_index_without_statistics_and_no_plan_is_kept(pg_url):
    """A batch's lookups by event id use the primary key's index on a table nobody has analysed
    (autovacuum off), and no plan made while a table was small is kept for later batches."""
    from connectors.postgres import PostgresStore

    store = PostgresStore(pg_url)
    store.migrate()
    with store.tx():
        for table in ("events", "labels"):
            store.db.conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    for _ in range(10):  # planned while the tables are empty, many times
        store.events.labelled([f"e{i}" for i in range(10)])
    with store.tx():
        store.db.conn.execute(
            "INSERT INTO events (event_id, ts, model_name, model_version, slice, modalities, pred_label,"
            " confidence, abstained, position, ingested_at, signal_layout, signal_values) SELECT 'e' || g,"
            " now(), 'm', '1', '{}'::jsonb, 'image', 'cat', 0.5, false, 'p', now(), 0, ''::bytea"
            " FROM generate_series(1, 200000) g"
        )
    assert store.db.all(
        "SELECT reltuples FROM pg_class WHERE relname = 'events'"
        " AND relnamespace = current_schema()::regnamespace"
    ) == [(-1.0,)]  # never analysed
    assert store.db.all("SELECT count(*) FROM pg_prepared_statements") == [(0,)]
    cond, params = store.db.dialect.in_list("event_id", [f"e{i}" for i in range(1000, 3000)])
    plan = " ".join(r[0] for r in store.db.all(f"EXPLAIN SELECT event_id FROM events WHERE {cond}", params))
    assert "events_pkey" in plan and "Seq Scan on events" not in plan, plan
    with store.tx():
        store.events.insert_labels(
            [LabelRow(f"e{i}", "cat", "t", T0, f"l{i}", T0) for i in range(1000, 3000, 2)]
        )
    assert len(store.events.labelled([f"e{i}" for i in range(1000, 3000)])) == 1000
    store.close()


def test_per_modality_answers_hashed_words_and_ingest_lag_read_back(any_store):
    """What issue 17 stores beside an event — each modality's own answer, the text's hashed words —
    comes back for the evaluation, and the report's ingest lag is computed by the database."""
    import numpy as np

    from detectors.text import token_buckets

    words = token_buckets("a cat and a dog", b"k").astype("<u4").tobytes()
    rows = [
        _row("a", 1, {"device": "a"}, {"x": 1.0})._replace(
            per_modality={
                "image": {"label": "cat", "confidence": 0.9},
                "audio": {"label": "dog", "confidence": None},
            },
            text_tokens=words,
            ingested_at=T0 + timedelta(hours=2, minutes=30),
        ),
        _row("b", 2, {"device": "b"}, {"x": 2.0})._replace(ingested_at=T0 + timedelta(hours=5)),
    ]
    any_store.events.insert(rows)
    end = T0 + timedelta(days=1)
    answers = any_store.events.window_answers("m", "1", T0, end, end)
    assert len(answers) == 1 and answers.labels["image"].tolist() == ["cat"]
    assert answers.labels["audio"].tolist() == ["dog"] and np.isnan(answers.confidence["audio"][0])
    tokens = any_store.events.window_tokens("m", "1", T0, end)
    assert len(tokens) == 1 and tokens.tokens[0].tolist() == token_buckets("a cat and a dog", b"k").tolist()
    assert tokens.window.slices.to_dict("records") == [{"device": "a"}]
    n, mean, most = any_store.events.arrivals("m", T0, end)
    # event a: 2 h in, stored at 2.5 h (30 min late); b: 4 h in, stored at 5 h (1 h late)
    assert n == 2 and mean == pytest.approx(2700, abs=1) and most == pytest.approx(3600, abs=1)


def test_the_pairs_completed_in_a_stretch_of_event_time_are_each_found_once(any_store):
    """A pair is complete at the later of its event's and its label's time: the stretches
    (None, a], (a, b], (b, c] hand out every stored pair once, whichever half came later."""
    rows = [_row(f"e{k}", k, {"device": "a"}, {"x": 1.0}) for k in range(6)]  # events at 0, 2, ..., 10 h
    any_store.events.insert(rows)
    any_store.events.note_model_versions({("m", "1"): (rows[0].ts, rows[-1].ts)})
    label_at = {0: 1, 1: 9, 2: -3, 4: 8, 5: 11}  # hours after T0; e3 has no label
    any_store.events.insert_labels(
        [LabelRow(f"e{k}", "dog", "t", T0 + timedelta(hours=h), f"l{k}", T0) for k, h in label_at.items()]
    )
    cuts = [None, T0 + timedelta(hours=3), T0 + timedelta(hours=8), T0 + timedelta(hours=12)]
    got = [
        sorted((p.event_id, p.completed_at) for p in any_store.events.completed_between(a, b))
        for a, b in zip(cuts, cuts[1:])
    ]

    def h(x):
        return T0 + timedelta(hours=x)

    assert got == [[("e0", h(1))], [("e2", h(4)), ("e4", h(8))], [("e1", h(9)), ("e5", h(11))]]
    assert {p.event_id: (p.label, p.pred_label) for p in any_store.events.labelled(["e1", "e3"])} == {
        "e1": ("dog", "cat")
    }


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_migration_0015_goes_on_from_the_watermark_where_detectors_were_fed_before(
    kind, tmp_path, request, monkeypatch
):
    """A store whose online detectors were fed batch by batch (before the frontier) starts its
    frontier at its watermark: no stored pair is fed a second time."""
    from connectors.postgres import PostgresStore
    from connectors.sqlite import SqliteStore
    from monitor.config import Config
    from monitor.pipeline import Pipeline
    from monitor.config import parse_config
    from tests.helpers import inference, label

    held_for_nothing = "evaluation: {checks: {online: {hold: 0s}}}"

    if kind == "sqlite":
        old, fresh = SqliteStore(tmp_path / "old.db"), SqliteStore(tmp_path / "fresh.db")
    else:
        old, fresh = (PostgresStore(request.getfixturevalue(f)) for f in ("pg_url", "second_pg_url"))
    msgs = [
        RawMessage("t", f"t:{i}", json.dumps(o).encode()) for i in range(5) for o in (inference(i), label(i))
    ]
    _migrated_to(old, kind, 14)
    with old.tx(), monkeypatch.context() as m:
        # that release's pipeline fed each pair as its batch stored it, and wrote no summaries
        from monitor.summaries import completed_pairs

        m.setattr(
            "monitor.pipeline.summarise_batch",
            lambda store, _, rows, labels: completed_pairs(store, rows, labels),
        )
        m.setattr("monitor.pipeline.ensure_summaries", lambda *args: None)
        Pipeline(parse_config(held_for_nothing), old, lambda: NOW).process(msgs)
        old.db.execute("DELETE FROM detector_state WHERE key = 'online:frontier'")
    _migrated_to(fresh, kind, 14)
    assert old.migrate() == fresh.migrate() == ["0015_online_frontier", "0016_summaries"]
    assert fresh.ops.states(["online:frontier"]) == {}  # nothing was fed: from the beginning
    frontier = old.ops.states(["online:frontier"])["online:frontier"]["ts"]
    assert datetime.fromisoformat(frontier) == old.events.watermark() == T0 + timedelta(seconds=4, minutes=5)
    later = [(5, T0 + timedelta(hours=1)), (6, T0 + timedelta(hours=2))]
    Pipeline(Config(), old, lambda: NOW).process(
        [
            RawMessage("t", f"t:n{i}", json.dumps(o).encode())
            for i, t in later
            for o in (inference(i, ts=t), label(i, ts=t))
        ]
    )
    from detectors.online import ADWINDetector

    state = old.ops.states(["adwin:m|*"])["adwin:m|*"]
    # the 5 before, none of them again, and e5 (the hold keeps e6 back): from the beginning, 11
    assert ADWINDetector.from_state_dict(state).n_seen == 6
    for st in (old, fresh):
        st.close()


def test_a_chunk_too_large_for_one_value_is_read_in_pieces_with_the_same_window(any_store, monkeypatch):
    """A group's packed signals must stay far below the databases' 1 GiB limit on one value: a
    chunk of more events than that allows is read in halves of event time, and the window is the
    same as read whole."""
    import connectors.sql.events as events_module

    rows = [
        _row(f"e{i}", 0, {"device": "a"}, {"x": float(i), "y": -float(i)})._replace(
            ts=T0 + timedelta(seconds=7 * i)
        )
        for i in range(1200)  # one group, within one 6-hour chunk
    ]
    any_store.events.insert(rows)
    any_store.events.insert_labels(
        [LabelRow(f"e{i}", "dog", "t", T0, f"l{i}", T0) for i in range(0, 1200, 3)]
    )
    args = ("m", "1", T0, T0 + timedelta(days=1), T0 + timedelta(days=1))
    whole = _rows(any_store.events.load_window(*args))
    reads = []
    real = any_store.dialect.read_cursor

    class Counting:
        def __init__(self, cur):
            self.cur = cur

        def execute(self, sql, params=None):
            reads.append(sql)
            return self.cur.execute(sql, params)

        def __getattr__(self, name):
            return getattr(self.cur, name)

    def counting_cursor(conn):
        return Counting(real(conn))

    monkeypatch.setattr(any_store.dialect, "read_cursor", counting_cursor)
    monkeypatch.setattr(events_module, "WINDOW_GROUP_BYTES", 8 * 3 * 100)  # 100 events of 2 signals
    pieces = _rows(any_store.events.load_window(*args))
    assert pieces == whole and len(whole) == 1200
    groups = [s for s in reads if "GROUP BY" in s]
    assert len(groups) >= 12 + 3, len(groups)  # ≥ 1200 / 100 pieces of the one chunk, 3 empty chunks

    # a producer's wide signals elsewhere make the layouts' bound useless: the chunk's stored
    # bytes decide, and a chunk that fits is read whole
    wide = _row("wide", 0, {}, {f"s{k}": 1.0 for k in range(1000)})._replace(model_name="other")
    any_store.events.insert([wide])
    monkeypatch.setattr(events_module, "WINDOW_GROUP_BYTES", 40_000)  # 1200 events x 24 bytes fit
    reads.clear()
    assert _rows(any_store.events.load_window(*args)) == whole
    assert len([s for s in reads if "GROUP BY" in s]) == 4  # a day of 6-hour chunks, none split

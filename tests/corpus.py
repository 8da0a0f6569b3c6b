"""A corpus of hostile messages and a way to read back everything a store holds, for the tests
that prove no message stops the daemon and nothing raw or secret is kept."""

import json

import numpy as np

from tests.helpers import b64, image_bytes, inference, label

PNG = image_bytes(np.full((8, 8, 3), 200, dtype="uint8"))
PNG_B64 = b64(PNG)


def ev_bytes(i, **over):
    return json.dumps({**inference(i), **over}).encode()


def with_value(i, path, value):
    """inference(i) with ``value`` at ``path`` (a tuple of keys)."""
    ev = inference(i)
    node = ev
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return json.dumps(ev).encode()


def bad_inference_messages():
    """(name, payload) of messages sent where inference events go, each to be rejected."""
    deep_obj = b'{"a":' * 3000 + b"1" + b"}" * 3000
    return [
        ("deep object", deep_obj),
        ("deep array", b"[" * 100_000 + b"]" * 100_000),
        ("5,000-digit number", ev_bytes(1).replace(b'"confidence": 0.51', b'"confidence": ' + b"1" * 5000)),
        ("NaN", ev_bytes(2).replace(b"0.52", b"NaN")),
        ("Infinity", ev_bytes(3).replace(b"0.53", b"Infinity")),
        ("NUL escape in a label", with_value(4, ("output", "label"), "c\u0000t")),
        ("NUL escape in a slice value", with_value(5, ("slice", "device"), "d\u00000")),
        ("NUL escape in a key", with_value(6, ("slice",), {"dev\u0000ice": "x"})),
        ("a raw NUL byte", ev_bytes(7).replace(b'"m"', b'"m\x00"')),
        ("invalid UTF-8", ev_bytes(8).replace(b'"cat"', b'"c\xffat"').replace(b'"dog"', b'"d\xffog"')),
        ("a lone surrogate", ev_bytes(9).replace(b'"m"', b'"\\ud800"')),
        ("empty body", b""),
        ("whitespace", b"   \n "),
        ("an array", b"[1, 2]"),
        ("a string", b'"event"'),
        ("null", b"null"),
        ("unknown field", with_value(10, ("colour",), "red")),
        ("confidence as a string", with_value(11, ("output", "confidence"), "0.9")),
        ("confidence as a boolean", with_value(12, ("output", "confidence"), True)),
        ("abstained as yes", with_value(13, ("output", "abstained"), "yes")),
        ("ts as Unix seconds", with_value(14, ("ts",), 1767225600)),
        ("ts without a zone", with_value(15, ("ts",), "2026-01-05T00:00:15")),
        ("empty event id", with_value(16, ("event_id",), "")),
        ("a 10,000-character event id", with_value(17, ("event_id",), "e" * 10_000)),
        ("an empty embedding", with_value(18, ("embeddings",), {"clip": []})),
        ("a label sent as an inference", json.dumps(label(19)).encode()),
        ("an unknown type", with_value(20, ("type",), "prediction")),
        ("confidence above 1", with_value(21, ("output", "confidence"), 1.5)),
        ("truncated JSON", ev_bytes(22)[:-5]),
        (
            "a data: URI and data_b64 at once",
            with_value(23, ("inputs", "image"), {"data_b64": PNG_B64, "uri": "data:image/png;base64,x"}),
        ),
    ]


def good(start, n):
    return [(f"good {i}", ev_bytes(i)) for i in range(start, start + n)]


TABLES = ["events", "labels", "dead_letters", "evaluations", "alerts", "outbox", "review_items", "findings"]


def values(store) -> list:
    return [v for t in TABLES for r in store.db.all(f"SELECT * FROM {t}") for v in r]


def dump(store) -> str:
    """Every table's rows as text (bytes as their repr)."""
    return json.dumps(
        values(store), default=lambda v: repr(bytes(v)) if isinstance(v, memoryview) else repr(v)
    )

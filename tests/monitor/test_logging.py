"""What the daemon's log says when the network goes: the error, not a library's stack trace."""

import logging

from monitor.runtime import configure_logging


def test_a_lost_broker_connection_is_one_line_without_a_traceback(capsys):
    configure_logging("INFO", "%(levelname)s %(name)s: %(message)s")
    transport = logging.getLogger("kafka.net.transport")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    transport.addHandler(handler)
    try:
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except OSError:
            transport.exception("<KafkaTCPTransport>: Error receiving network data closing socket")
        try:
            raise KeyError("a bug of the library's")
        except KeyError:
            transport.exception("something else")
    finally:
        transport.removeHandler(handler)
    err = capsys.readouterr().err
    assert "Error receiving network data closing socket: ConnectionResetError: [Errno 104]" in err
    assert err.count("Traceback") == 1 and "KeyError" in err  # a real bug keeps its stack


FORGED = "m\n2026-01-01 00:00:00,000 ERROR modalwatch.daemon: forged\x1b[2J\x1b]0;owned\x07\u202eevil"


def test_a_model_name_forges_no_log_line_and_steers_no_terminal(tmp_path):
    """A producer's model name with a newline, terminal escapes and a bidi override, through
    `modalwatch ingest` and `modalwatch evaluate` (whose log lines name each model): every record
    of the log stays one line, and shows what was sent, escaped."""
    import subprocess
    from datetime import timedelta

    from tests.conftest import ROOT, modalwatch_cmd
    from tests.helpers import T0, inference, write_jsonl

    events = [
        inference(i, T0 + timedelta(minutes=10 * i), model={"name": FORGED, "version": "1"})
        for i in range(600)
    ]
    path = write_jsonl(tmp_path / "in.jsonl", events)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"store: {{kind: sqlite, path: {tmp_path / 's.db'}}}\n"
        "evaluation: {intervals: [1d], lag: 0s, reference: {days: 1}}\n"
    )
    err = ""
    for args in (["ingest", str(path)], ["evaluate", "--from", "2026-01-05", "--to", "2026-01-09"]):
        out = subprocess.run(
            modalwatch_cmd() + [*args, "--config", str(cfg)], cwd=ROOT, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr[-2000:]
        err += out.stderr
    assert "evaluated m\\n2026-01-01 00:00:00,000 ERROR modalwatch.daemon: forged\\x1b[2J" in err
    # the forged record would be a line of its own, at level ERROR
    levels = [line.split(" ")[2] for line in err.splitlines() if line[:4].isdigit() and line.count(" ") >= 2]
    assert "ERROR" not in levels and "INFO" in levels
    assert not [c for c in err if c in "\x1b\x07\u202e"]


def test_a_terminal_shows_a_producers_escape_sequences_as_text(tmp_path):
    """`modalwatch dlq list` on a terminal: a JSONL file named with an escape sequence (its dead
    letters' positions name it) clears no screen; the line shows what the name holds."""
    import os
    import pty
    import subprocess

    from tests.conftest import ROOT, modalwatch_cmd

    bad = tmp_path / "in\x1b[2J\x1b]0;owned\x07.jsonl"
    bad.write_text('{"type": "inference", "event_id": "x"}\n')
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"store: {{kind: sqlite, path: {tmp_path / 's.db'}}}\n")
    run = [*modalwatch_cmd(), "--config", str(cfg)]
    subprocess.run([*run, "ingest", str(bad)], cwd=ROOT, check=True, capture_output=True)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*run, "dlq", "list"], cwd=ROOT, stdout=follower, stderr=subprocess.DEVNULL)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        out += chunk
    proc.wait(60)
    os.close(leader)
    text = out.decode()
    assert "in\\x1b[2J\\x1b]0;owned\\x07.jsonl" in text and "\x1b" not in text and "\x07" not in text

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

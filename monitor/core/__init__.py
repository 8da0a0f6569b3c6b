"""The contracts every part of modalwatch shares, importing nothing of the project.

What a source hands over (``RawMessage``) and gets back (``Outcome``); the event contract
(``InferenceEvent``, ``LabelEvent``); a window read from a store (``Window``) and the key of a
scheduled evaluation (``RunKey``); the typed rows that cross from one part to another
(``EvaluationRow``, ``Finding``, ``AlertRecord``, ``GroupState``, ``DeadLetter``); the errors
that name what failed (``MediaError``, ``DeliveryError``); and the ports — small Protocols for
sources, stores and senders — that the shell wires. ``connectors/`` and ``alerts/`` import from
here, never from the rest of ``monitor/`` (the import-linter contract in pyproject.toml checks it).
"""

"""The online check's lane: (event, label) pairs fed to its detectors in event-time order behind a
frontier, so that workers and replicas storing batches in whatever order give the same findings.

A pair is complete at the later of its event's and its label's time. The frontier trails the
event-time watermark by ``evaluation.checks.online.hold``: each batch, under the store's
shared-state lock, feeds the pairs the frontier has newly passed, ordered by (completion time,
event id), and moves it. A pair completed behind the frontier — its event or label stored more
than ``hold`` after the watermark passed it — is fed at once, by the batch that completes it: the
only observations whose place in the order depends on timing. Before a window's findings are
read, the evaluation moves the frontier to the vintage's cut-off, so a window's count does not
depend on when it ran either.

Each pair is fed exactly once: a batch reads the frontier and its own pairs after taking the lock,
so a pair whose two halves are stored by two concurrent batches is found by the second (behind
the frontier, or in the range the frontier passes), never by both, never by neither.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from monitor.checks.online import OnlineErrorRate
from monitor.core.records import LabelledEvent

FRONTIER = "online:frontier"  # its detector_state row: {"ts": ISO time} or absent (never fed)


class OnlineLane:
    def __init__(self, check: OnlineErrorRate, store):
        self.check = check
        self.store = store
        self.hold: timedelta = check.config.hold

    def feed(self, stored: dict[str, datetime], pairs: list[LabelledEvent], now: datetime) -> None:
        """Within the batch's transaction, under the shared-state lock (other writers — workers,
        replicas — feed too: one at a time): the pairs completed behind the frontier by the
        halves the batch stored (``stored``: event id → the time of the event or label stored;
        ``pairs``: the pairs they complete, read after the lock was taken), then those the
        frontier passes now."""
        events = self.store.events
        frontier = self._frontier()
        behind = []
        if frontier is not None:  # a half later than the frontier completes a pair later than it
            behind = sorted(
                (p for p in pairs if stored[p.event_id] <= frontier and p.completed_at <= frontier),
                key=_order,
            )
        watermark = events.watermark()
        self._observe(behind, frontier, watermark - self.hold if watermark is not None else None, now)

    def advance(self, to: datetime, now: datetime) -> None:
        """Move the frontier to ``to`` (a vintage's cut-off), feeding what it passes."""
        with self.store.tx():
            self.store.ops.lock_shared_state()
            self._observe([], self._frontier(), to, now)

    def _frontier(self) -> datetime | None:
        state = self.store.ops.states([FRONTIER]).get(FRONTIER)
        return datetime.fromisoformat(state["ts"]) if state else None

    def _observe(
        self, behind: list[LabelledEvent], frontier: datetime | None, until: datetime | None, now: datetime
    ) -> None:
        moves = until is not None and (frontier is None or until > frontier)
        passed = sorted(self.store.events.completed_between(frontier, until), key=_order) if moves else []
        pairs = behind + passed
        if not pairs and not moves:
            return
        ops = self.store.ops
        states, findings = self.check.observe(pairs, ops.states(self.check.state_keys(pairs)), now)
        if moves:
            states[FRONTIER] = {"ts": until.isoformat()}
        ops.put_states(states, now)
        ops.insert_findings(findings)


def _order(p: LabelledEvent) -> tuple[datetime, str]:
    return p.completed_at, p.event_id

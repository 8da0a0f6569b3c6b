"""One typed config tree, loaded from YAML with ``${ENV}`` interpolation.

Errors name the key and the line: ``ConfigError("alerts.rules[0].op (line 41): ...")``.
Only the CLI exits; this module raises.
"""
from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(v: Any) -> Any:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"1d"``, ``"2w"`` or seconds as a number → timedelta."""
    if isinstance(v, str):
        m = _DURATION.match(v)
        if not m:
            raise ValueError(f"not a duration: {v!r} (use e.g. 30s, 15m, 1h, 1d, 7d)")
        return timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2)])
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return timedelta(seconds=v)
    return v


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreConfig(_Section):
    kind: Literal["sqlite", "postgres"] = "sqlite"
    path: str = "modalwatch.db"
    url: SecretStr | None = None
    batch_size: int = Field(1000, ge=1, le=100_000)
    # Raw event rows (events, their labels and review items) older than this — event time, against
    # the ingest clock — are deleted every ``purge_every``; evaluations are kept, and so are the
    # events of each model version's reference. Unset: kept for ever.
    retention: Duration | None = None
    purge_every: Duration = timedelta(hours=1)
    # A label whose event has not been stored this long after the label arrived (its event is
    # older than the retention, or never came) becomes a dead letter saying so.
    label_wait: Duration = timedelta(days=1)
    # timescaledb only: event chunks older than this are compressed; unset: not compressed.
    compress_after: Duration | None = timedelta(days=7)

    @model_validator(mode="after")
    def _url_for_postgres(self) -> "StoreConfig":
        if self.kind == "postgres" and not self.url:
            raise ValueError("store.url is required when store.kind is postgres")
        return self


class HttpConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8787, ge=0, le=65535)


class JsonlConfig(_Section):
    paths: list[str] = Field(default_factory=list)
    follow: bool = True


class KafkaConfig(_Section):
    bootstrap_servers: list[str]
    group_id: str = "modalwatch"
    events_topic: str = "inferences"
    labels_topic: str = "labels"
    max_poll_records: int = Field(2000, ge=1)
    poll_timeout_ms: int = Field(500, ge=1)
    session_timeout_ms: int = Field(10_000, ge=1000)
    max_poll_interval_ms: int = Field(300_000, ge=1000)
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    fetch_max_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    max_partition_fetch_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    retry_initial_s: float = Field(1.0, gt=0)
    retry_max_s: float = Field(60.0, gt=0)


class IngestConfig(_Section):
    max_payload_bytes: int = Field(1_048_576, ge=256)
    # An event or label whose time is further ahead of the daemon's clock than this is a dead
    # letter (clock skew on the producer); null accepts any time.
    max_future_skew: Duration | None = timedelta(hours=1)
    http: HttpConfig = Field(default_factory=HttpConfig)
    jsonl: JsonlConfig = Field(default_factory=JsonlConfig)
    kafka: KafkaConfig | None = None
    # Processes that decode, validate, measure and store the polled batches, beside the daemon's
    # own, which keeps the sources and commits them in order (PostgreSQL only: SQLite takes one
    # writer at a time). 0: the daemon's process does it all. One per core is a good start.
    workers: int = Field(0, ge=0, le=64)


class MediaConfig(_Section):
    """Raw media in events: modalwatch measures it, keeps the signals and drops the bytes.

    Inline media (``data_b64``) is always read. A ``uri`` is read only when its scheme is listed
    in ``allowed_schemes`` and, for ``file://``, when the file lies under one of ``allowed_roots``
    (symlinks resolved first); with no roots every ``file://`` URI is refused.
    """

    allowed_schemes: list[Literal["file"]] = Field(default_factory=lambda: ["file"])
    allowed_roots: list[str] = Field(default_factory=list)
    max_file_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    max_pixels: int = Field(64_000_000, ge=1)
    max_audio_seconds: float = Field(3600.0, gt=0)
    keep_partial_events: bool = True
    expected_modalities: list[Literal["image", "audio", "text"]] = Field(default_factory=list)
    workers: int = Field(2, ge=1, le=64)
    # Image signals of a batch computed at once in torch on this device ("cpu", "cuda", "cuda:1");
    # unset: one image at a time in NumPy (the same values either way).
    torch_device: Annotated[str, Field(pattern=r"^(cpu|cuda(:\d+)?)$")] | None = None


class ReferenceConfig(_Section):
    """The reference: the first ``days`` of each model version (default 7), a fixed ``from``/``to``
    range, or a JSONL ``file`` of events and labels in the event contract (e.g. the validation
    set), whose events of the evaluated model's name are the reference of every version."""

    days: float | None = Field(7, gt=0)
    from_at: AwareDatetime | None = Field(None, alias="from")
    to_at: AwareDatetime | None = Field(None, alias="to")
    file: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "ReferenceConfig":
        if (self.from_at is None) != (self.to_at is None):
            raise ValueError("give both 'from' and 'to', or neither")
        if self.file is not None and self.from_at is not None:
            raise ValueError("give a reference 'file' or a 'from'/'to' range, not both")
        if self.from_at is not None:
            if self.from_at >= self.to_at:
                raise ValueError("'from' must be before 'to'")
            self.days = None
        return self


class EvaluationConfig(_Section):
    intervals: list[Duration] = Field(default_factory=lambda: [timedelta(days=1)], min_length=1)
    lag: Duration = timedelta(days=1)
    # Windows align to calendar boundaries in this IANA time zone (local midnight, Monday for 7d).
    timezone: str = "UTC"
    # Label-maturity lags: each (interval, lag) is a vintage, evaluated at window end + lag with the
    # labels known by then, and stored beside the others. Unset: the single ``lag``.
    lags: list[Duration] | None = None
    reference: ReferenceConfig = Field(default_factory=ReferenceConfig)
    psi_bins: int = Field(10, ge=2, le=100)
    psi_min_n: int = Field(100, ge=1)
    ece_bins: int = Field(15, ge=2, le=100)
    ece_min_n: int = Field(100, ge=1)
    error_rate_min_n: int = Field(50, ge=1)
    tick_s: float = Field(5.0, gt=0)
    # A replica claims a vintage before evaluating it; a claim not finished this long after it was
    # taken (its replica died) is taken over by another.
    claim_expiry: Duration = timedelta(minutes=10)
    # Drift tests run on every signal × slice (psi, ks, wasserstein); ``signal_tests`` overrides
    # them per signal, e.g. {"audio.snr_db": [wasserstein]}.
    drift_tests: list[Literal["psi", "ks", "wasserstein"]] = Field(default_factory=lambda: ["psi", "ks"])
    signal_tests: dict[str, list[Literal["psi", "ks", "wasserstein"]]] = Field(default_factory=dict)
    # Per signal, the tests' thresholds instead of the three below, e.g.
    # {"audio.snr_db": {psi: 0.4, ks: 0.2}} (ks: the minimum D; wasserstein: the normalised distance).
    signal_thresholds: dict[str, dict[Literal["psi", "ks", "wasserstein"], Annotated[float, Field(gt=0)]]] = Field(
        default_factory=dict)
    psi_threshold: float = Field(0.25, gt=0)
    ks_min_effect: float = Field(0.1, ge=0, le=1)  # KS drifts when BH-significant AND D ≥ this
    wasserstein_threshold: float = Field(0.1, gt=0)
    fdr: float = Field(0.05, gt=0, lt=1)  # Benjamini–Hochberg within each test family of one window
    calibration_bootstrap: int = Field(500, ge=0)  # resamples for the ECE-difference interval; 0: off
    cross: list[tuple[str, str]] = Field(default_factory=list)  # slice attributes crossed in pairs
    # Signal bands as slices of the slice-gap tests, e.g. {"image.brightness": [40, 80, 160, 200]}
    # gives image.brightness=<40, =[40,80) … =>=200 (a band name may be crossed too).
    bands: dict[str, list[float]] = Field(default_factory=dict)
    performance_estimate: bool = True  # label-free accuracy per slice (detectors/performance.py)
    embedding_drift: bool = True  # MMD² per embedding name, all traffic (detectors/embedding.py)
    mmd_permutations: int = Field(100, ge=10, le=10_000)
    mmd_max_n: int = Field(2000, ge=50)  # per side; larger windows are subsampled (seeded)
    # Where the MMD kernel is computed: auto = the first CUDA device when torch sees one, else cpu.
    mmd_device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    # Aging: a Mann–Kendall trend test over the last ``trend_window`` intervals of each slice's
    # error rate, ECE and estimated accuracy (of the same interval and lag), once there are
    # ``trend_min_n`` of them; 0 switches it off.
    trend_window: int = Field(14, ge=0)
    trend_min_n: int = Field(10, ge=4)

    @model_validator(mode="after")
    def _positive(self) -> "EvaluationConfig":
        for iv in self.intervals:
            if iv <= timedelta(0) or timedelta(days=1) % iv and iv % timedelta(days=1):
                raise ValueError(f"interval {iv} must divide a day or be a whole number of days")
        if self.lag < timedelta(0) or any(lag < timedelta(0) for lag in self.lags or []):
            raise ValueError("lags must not be negative")
        if self.lags is not None and (not self.lags or len(set(self.lags)) != len(self.lags)):
            raise ValueError("lags must be a non-empty list without repeats")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as UTC or Europe/Berlin)") from None
        return v

    @property
    def tz(self):
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)

    @property
    def vintage_lags(self) -> list[timedelta]:
        return sorted(self.lags) if self.lags is not None else [self.lag]


class OnlineConfig(_Section):
    adwin_delta: float = Field(0.002, gt=0, lt=1)


class RuleConfig(_Section):
    """A threshold on an evaluation: ``field op threshold``.

    ``field`` is one of the evaluation's numbers; with ``vs_reference`` the reference value is
    subtracted first (e.g. ``ci_low`` of the window's error rate minus the reference error rate).
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
    metric: Literal["psi", "ks", "wasserstein", "ece", "ece_drift", "error_rate", "error_rate_gap",
                    "abstention_rate_gap", "mean_confidence_gap", "estimated_accuracy", "mmd", "trend",
                    "missing_modality_share",
                    # data health, measured on every evaluation job run (monitor/health.py)
                    "dead_letter_rate", "source_silence_s", "ingest_lag_s"]
    field: Literal["value", "ci_low", "ci_high", "effect", "p_adjusted", "decision"] = "value"
    vs_reference: bool = False
    # the previous window's value (same interval, lag and slice) is subtracted first: a jump
    vs_previous: bool = False
    # the same window's value at the next shorter lag (its previous vintage) is subtracted first:
    # what the labels that arrived since changed
    vs_earlier_lag: bool = False
    op: Literal[">", ">=", "<", "<="] = ">"
    threshold: float
    slice: str | None = None
    signal: str | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    summary: str = ""
    # A breach must hold this long (event time, from the first breached window's start to the
    # current window's end) before the alert fires; until then it is pending and notifies nobody.
    for_: Duration = Field(timedelta(0), alias="for")
    labels: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _one_baseline(self) -> "RuleConfig":
        if self.vs_reference + self.vs_previous + self.vs_earlier_lag > 1:
            raise ValueError(f"rule {self.name!r}: vs_reference, vs_previous and vs_earlier_lag exclude each other")
        return self


class WebhookConfig(_Section):
    """A receiver. ``kind``: ``webhook`` (generic JSON, Alertmanager v4 shape, HMAC-signed when
    ``secret`` is set), ``alertmanager`` (the Alertmanager webhook v4 payload, unsigned, for
    existing Alertmanager tooling), ``slack`` (an incoming-webhook URL; Block Kit message) or
    ``pagerduty`` (Events API v2; ``routing_key``; ``url`` defaults to PagerDuty's endpoint).
    URLs, secrets and routing keys come from the environment and are never logged."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] = "default"
    kind: Literal["webhook", "alertmanager", "slack", "pagerduty"] = "webhook"
    url: SecretStr | None = None
    secret: SecretStr | None = None
    routing_key: SecretStr | None = None
    timeout_s: float = Field(5.0, gt=0)
    max_per_minute: int = Field(60, ge=1)  # rate limit: beyond it, notifications wait in the outbox
    send_resolved: bool = True

    @model_validator(mode="after")
    def _needs(self) -> "WebhookConfig":
        if self.kind == "pagerduty":
            if self.routing_key is None:
                raise ValueError(f"receiver {self.name!r}: routing_key is required for pagerduty")
            if self.url is None:
                self.url = SecretStr("https://events.pagerduty.com/v2/enqueue")
        elif self.url is None:
            raise ValueError(f"receiver {self.name!r}: url is required for {self.kind}")
        return self


class RouteConfig(_Section):
    """A node of the routing tree (Alertmanager's model). An alert goes down the first child whose
    ``matchers`` all hold (``label: value``, or ``label: "~regex"`` for a full-match regex), or
    every matching child where a child says ``continue: true``; where no child matches, the node
    itself takes it. Unset fields are inherited from the parent."""

    receiver: str | None = None
    matchers: dict[str, str] = Field(default_factory=dict)
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    continue_: bool = Field(False, alias="continue")
    routes: list["RouteConfig"] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class InhibitConfig(_Section):
    """While an alert matching ``source`` fires, alerts matching ``target`` with the same values
    of the ``equal`` labels are not notified (e.g. a stalled stream inhibits drift alerts)."""

    source: dict[str, str]
    target: dict[str, str]
    equal: list[str] = Field(default_factory=lambda: ["model"])


def default_rules() -> list[RuleConfig]:
    """The rules of the embedded default (config/default.yaml spells them out; a test keeps both equal)."""
    return [
        RuleConfig(name="SignalDrift", metric="psi", field="decision", op=">=", threshold=1,
                   summary="a modality signal's distribution moved away from the reference "
                           "(PSI ≥ 0.25 and significant after Benjamini–Hochberg)"),
        RuleConfig(name="SliceErrorRateUp", metric="error_rate", field="ci_low", vs_reference=True, threshold=0.05,
                   severity="critical",
                   summary="the lower 95% bound of the slice's error rate is more than 5 points above the reference"),
        RuleConfig(name="CalibrationDrift", metric="ece_drift", slice="*", field="decision", op=">=", threshold=1,
                   summary="top-label ECE is above what the reference's calibration gives at this sample size "
                           "(bootstrap interval above 0, significant after Benjamini–Hochberg)"),
    ]


class AlertsConfig(_Section):
    rules: list[RuleConfig] = Field(default_factory=default_rules)  # `rules: []` switches them off
    webhooks: list[WebhookConfig] = Field(default_factory=list)  # the receivers
    # Unset: every receiver gets every group; group_by alertname + model, group_wait 30s,
    # group_interval 5m, repeat_interval 4h unless the root route says otherwise.
    route: RouteConfig | None = None
    inhibit: list[InhibitConfig] = Field(default_factory=list)
    # Data health: the dead-letter rate over the last ``health_window``; a source that sent within
    # ``silence_lookback`` is measured for how long it has been silent.
    health_window: Duration = timedelta(minutes=15)
    silence_lookback: Duration = timedelta(days=1)
    retry_initial_s: float = Field(1.0, gt=0)
    retry_max_s: float = Field(300.0, gt=0)
    external_url: str = "http://127.0.0.1:8787"

    @model_validator(mode="after")
    def _unique(self) -> "AlertsConfig":
        for what, names in (("rule", [r.name for r in self.rules]), ("webhook", [w.name for w in self.webhooks])):
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"{what} names must be unique: {sorted(dup)}")
        known = {w.name for w in self.webhooks}

        def walk(r: RouteConfig, where: str) -> None:
            if r.receiver is not None and r.receiver not in known:
                raise ValueError(f"{where}.receiver: no receiver named {r.receiver!r} in alerts.webhooks")
            for i, child in enumerate(r.routes):
                walk(child, f"{where}.routes[{i}]")

        if self.route is not None:
            walk(self.route, "alerts.route")
        return self


class ReviewConfig(_Section):
    """Which events go to human review, and how many (monitor/review.py)."""

    confidence_below: float = Field(0.35, ge=0, le=1)
    abstained: bool = True  # abstentions are candidates too
    modalities_disagree: bool = True  # and events whose output.per_modality labels differ
    events_per_alert: int = Field(50, ge=0)  # unlabelled events of a slice whose alert fired
    # a slice whose label-free accuracy estimate is below this sends its unlabelled events too
    estimated_accuracy_below: float | None = Field(None, ge=0, le=1)
    mean_confidence_below: float | None = Field(None, ge=0, le=1)  # likewise, a slice's mean confidence
    daily_budget_per_stratum: int = Field(200, ge=0)
    stratify_by: list[str] | None = None  # slice attributes; None: all of them
    item_ttl: Duration = timedelta(days=7)
    # `review export --to kafka`: this topic on ingest.kafka's brokers; `--to webhook`: POST here
    # (signed like the alert webhooks when export_secret is set)
    export_topic: str = "review-tasks"
    export_url: SecretStr | None = None
    export_secret: SecretStr | None = None


class Config(_Section):
    store: StoreConfig = Field(default_factory=StoreConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    media: MediaConfig = Field(default_factory=MediaConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    online: OnlineConfig = Field(default_factory=OnlineConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


    @model_validator(mode="after")
    def _workers_need_postgres(self) -> "Config":
        if self.ingest.workers and self.store.kind != "postgres":
            raise ValueError(f"ingest.workers: {self.ingest.workers} needs store.kind: postgres"
                             f" (SQLite takes one writer at a time); use 0 with {self.store.kind}")
        return self

    @model_validator(mode="after")
    def _retention_outlives_the_vintages(self) -> "Config":
        ret = self.store.retention
        if ret is not None:
            ev = self.evaluation
            need = max(ev.intervals) + max(ev.lags or [ev.lag]) + timedelta(days=1)
            if ret < need:
                raise ValueError(f"store.retention {ret} is shorter than the longest interval plus the longest lag"
                                 f" plus a day ({need}): the last vintages would miss their events")
        return self


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
WORKER_LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"  # monitor/workers.py


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key and, where known, the line."""


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Read, interpolate and validate a YAML config; with no ``path``, the embedded default.

    The embedded default is ``Config()`` itself, so it needs no file and works wherever modalwatch
    is installed; config/default.yaml writes the same tree out for people to copy and edit.
    """
    if path is None:
        return Config()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror or e}") from None
    return parse_config(text, name=str(p), env=os.environ if env is None else env)


def parse_config(text: str, name: str = "<config>", env: dict[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{name}{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
    lines: dict[tuple, int] = {}
    data = _to_python(root, (), lines, env, name) if root is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: the top level must be a mapping")
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            loc = tuple(err["loc"])
            key = _dotted(loc) or "(top level)"
            line = _nearest_line(lines, loc)
            where = f" (line {line})" if line else ""
            msgs.append(f"{key}{where}: {err['msg']}")
        raise ConfigError(f"{name}: " + "; ".join(msgs)) from None


def _to_python(node: yaml.Node, loc: tuple, lines: dict, env, name: str) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = {}
        for k, v in node.value:
            key = k.value
            if key in out:
                raise ConfigError(f"{name}: {_dotted(loc + (key,))} (line {k.start_mark.line + 1}): duplicate key")
            out[key] = _to_python(v, loc + (key,), lines, env, name)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(v, loc + (i,), lines, env, name) for i, v in enumerate(node.value)]
    value = node.value
    if "${" in value:
        def sub(m: re.Match) -> str:
            var, default = m.group(1), m.group(2)
            if var in env:
                return env[var]
            if default is not None:
                return default
            raise ConfigError(
                f"{name}: {_dotted(loc)} (line {node.start_mark.line + 1}): environment variable {var} is not set"
            )

        # An interpolated value stays a string; pydantic's lax mode turns "8787" into 8787 where
        # the model wants an int, and a secret made of digits stays a secret.
        return _ENV.sub(sub, value)
    return yaml.safe_load(yaml.serialize(node))


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _nearest_line(lines: dict, loc: tuple) -> int | None:
    loc = tuple(p for p in loc if not (isinstance(p, str) and p[:1].isupper()))  # drop union tags
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return None

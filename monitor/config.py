"""One typed config tree, loaded from YAML with ``${ENV}`` interpolation.

Errors name the key and the line: ``ConfigError("alerts.rules[0].op (line 41): ...")``.
Only the CLI exits; this module raises.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from alerts import receivers
from monitor import checks
from monitor.core.matchers import check_matchers
from monitor.core.settings import Duration, Section as _Section, duration_text, parse_duration  # noqa: F401 - parse_duration: the CLI's


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
    # `modalwatch run`: a database that refuses connections at start is tried again, with backoff,
    # this long (a container's database may still be initialising) before the daemon gives up.
    startup_wait: Duration = timedelta(minutes=2)

    @model_validator(mode="after")
    def _url_for_postgres(self) -> "StoreConfig":
        if self.kind == "postgres" and not self.url:
            raise ValueError("store.url is required when store.kind is postgres")
        return self


def _yaml_switch(v: Any) -> Any:
    return {False: "off", True: "required"}[v] if isinstance(v, bool) else v


class HttpConfig(_Section):
    """HTTP ingest, the pages and the daemon's endpoints (connectors/http.py says each rule).

    Writes (``POST /v1/events``, ``/v1/labels``, ``/v1/silences``) take ``Authorization: Bearer
    <token>`` with any of ``tokens`` (from the environment; several, so one can be rotated in
    before the other is dropped). ``auth``: ``auto`` requires tokens when ``host`` binds beyond
    loopback, ``required`` always, ``off`` never (loopback only, or behind a proxy that
    authenticates). Without tokens a write must carry a JSON Content-Type and no other site's
    Origin: a web page cannot send one. Reads (the pages, the JSON API, ``/metrics``) take a
    write token or one of ``read_tokens`` — as a bearer token or as the password of HTTP Basic,
    which a browser asks for — wherever tokens are configured, unless ``reads: open``. ``/livez``,
    ``/healthz``, ``/readyz`` and ``/v1/status`` are always open. Served on loopback without
    tokens, only loopback host names (and ``allowed_hosts``) are answered."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8787, ge=0, le=65535)
    # YAML reads a bare off / on as booleans: they mean off / required here
    auth: Annotated[Literal["auto", "required", "off"], BeforeValidator(_yaml_switch)] = "auto"
    tokens: list[SecretStr] = Field(default_factory=list)
    read_tokens: list[SecretStr] = Field(default_factory=list)
    reads: Literal["protected", "open"] = "protected"
    allowed_hosts: list[str] = Field(default_factory=list)
    # a connection without a whole request head this long is closed; a body, likewise
    header_timeout: Duration = timedelta(seconds=10)
    body_timeout: Duration = timedelta(seconds=60)
    # connections open at once (never more than the file-descriptor limit leaves room for)
    max_connections: int = Field(1000, ge=16)

    @property
    def loopback(self) -> bool:
        return self.host in ("127.0.0.1", "::1", "localhost") or self.host.startswith("127.")

    @property
    def tokens_required(self) -> bool:
        return self.auth == "required" or (self.auth == "auto" and not self.loopback)

    @model_validator(mode="after")
    def _tokens_where_required(self) -> "HttpConfig":
        if self.enabled and self.tokens_required and not self.tokens:
            why = "auth is required" if self.auth == "required" else f"host {self.host} binds beyond loopback"
            raise ValueError(
                f"ingest.http.tokens: none given, and {why} (set tokens from the environment, e.g."
                ' ["${MODALWATCH_TOKEN}"], or auth: off behind an authenticating proxy)'
            )
        for key in ("tokens", "read_tokens"):
            if any(len(t.get_secret_value()) < 16 for t in getattr(self, key)):
                raise ValueError(f"ingest.http.{key}: a token must be at least 16 characters")
        for key in ("header_timeout", "body_timeout"):
            if not timedelta(seconds=1) <= getattr(self, key) <= timedelta(hours=1):
                raise ValueError(f"ingest.http.{key}: between 1s and 1h")
        return self


class JsonlConfig(_Section):
    paths: list[str] = Field(default_factory=list)
    follow: bool = True


class KafkaConfig(_Section):
    bootstrap_servers: list[str]
    group_id: str = "modalwatch"
    events_topic: str = "inferences"
    labels_topic: str = "labels"
    max_poll_records: int = Field(2000, ge=1)
    poll_timeout_ms: int = Field(500, ge=1)  # the longest one poll waits for records
    session_timeout_ms: int = Field(10_000, ge=1000)
    max_poll_interval_ms: int = Field(300_000, ge=1000)
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    fetch_max_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    max_partition_fetch_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    retry_initial_s: float = Field(1.0, gt=0)
    retry_max_s: float = Field(60.0, gt=0)
    # Managed Kafka: TLS (SSL), SASL over TLS (SASL_SSL: PLAIN or SCRAM), or SASL without TLS.
    # Files are PEM; the key's password and the SASL password come from the environment.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    ssl_cafile: str | None = None  # the CA that signed the brokers' certificates (else the system's)
    ssl_certfile: str | None = None  # a client certificate, where the brokers want one (mTLS)
    ssl_keyfile: str | None = None
    ssl_password: SecretStr | None = None
    ssl_check_hostname: bool = True
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    @model_validator(mode="after")
    def _security_complete(self) -> "KafkaConfig":
        sasl = self.security_protocol.startswith("SASL")
        if sasl and not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_mechanism, sasl_username and"
                " sasl_password"
            )
        if not sasl and self.sasl_mechanism:
            raise ValueError(
                f"sasl_mechanism is set but security_protocol is {self.security_protocol}: use"
                " SASL_SSL (or SASL_PLAINTEXT)"
            )
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, key)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{key}: {path} is not a file")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("give ssl_certfile and ssl_keyfile together, or neither")
        return self

    def security_settings(self) -> dict:
        """kafka-python's settings for the connection's security (secrets unwrapped here only)."""
        out: dict = {"security_protocol": self.security_protocol}
        if self.security_protocol in ("SSL", "SASL_SSL"):
            out.update(
                ssl_cafile=self.ssl_cafile,
                ssl_certfile=self.ssl_certfile,
                ssl_keyfile=self.ssl_keyfile,
                ssl_check_hostname=self.ssl_check_hostname,
                ssl_password=self.ssl_password.get_secret_value() if self.ssl_password else None,
            )
        if self.security_protocol.startswith("SASL"):
            out.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password.get_secret_value(),
            )
        return out


class IngestConfig(_Section):
    max_payload_bytes: int = Field(1_048_576, ge=256)
    # An event or label whose time is further ahead of the daemon's clock than this is a dead
    # letter (clock skew on the producer); null accepts any time.
    max_future_skew: Duration | None = timedelta(hours=1)
    # An event that moves the event-time watermark further than this is logged as a warning
    # (a producer's clock, or traffic after a long pause); one that moves it further than
    # max_watermark_jump is a dead letter (null: none is refused). The windows a jump leaves
    # without events cost a probe each, not an evaluation.
    watermark_jump_warning: Duration | None = timedelta(days=7)
    max_watermark_jump: Duration | None = None
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
    # the key of the hash that turns a text's words into vocabulary buckets (detectors/text.py:
    # with it, a bucket can be matched to a word someone guesses; keep it secret, from the
    # environment, e.g. ${MODALWATCH_TEXT_HASH_KEY}). Unset: a key every modalwatch shares.
    text_hash_key: SecretStr | None = None

    def hash_key(self) -> bytes:
        key = self.text_hash_key.get_secret_value() if self.text_hash_key else "modalwatch-vocabulary"
        return key.encode()[:64]


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
    tick_s: float = Field(5.0, gt=0)
    # A replica claims a vintage before evaluating it; a claim not finished this long after it was
    # taken (its replica died) is taken over by another.
    claim_expiry: Duration = timedelta(minutes=10)
    fdr: float = Field(0.05, gt=0, lt=1)  # Benjamini–Hochberg within each test family of one window
    # Per slice attribute, at most this many values are slices of their own (the reference's most
    # frequent, then the window's); the rest are one "(other)" slice, and the slice_cardinality
    # check's row says so (a producer putting an id in an attribute makes 51 slices, not 20,000).
    max_slice_values: int = Field(50, ge=1, le=10_000)
    # Read what the checks can take from the summaries written at ingest (monitor/summaries.py)
    # from them, not from the window's rows; false: everything from the rows (the exact path
    # the summaries are checked against — the same numbers, more work per event).
    from_summaries: bool = True
    # One section per registered check (monitor/checks/): its settings and ``enabled``.
    checks: Any = None  # replaced by the checks' model below (``_rebuild_checks_section``)

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
            raise ValueError(
                f"unknown time zone {v!r} (use an IANA name such as UTC or Europe/Berlin)"
            ) from None
        return v

    @property
    def tz(self):
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)

    @property
    def vintage_lags(self) -> list[timedelta]:
        return sorted(self.lags) if self.lags is not None else [self.lag]


class RuleConfig(_Section):
    """A threshold on an evaluation: ``field op threshold``.

    ``field`` is one of the evaluation's numbers; with ``vs_reference`` the reference value is
    subtracted first (e.g. ``ci_low`` of the window's error rate minus the reference error rate).
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
    # a metric some registered check emits (monitor/checks/), or several whose rows of one slice and
    # signal are one alert, breached when any of them is (e.g. [psi, ks])
    metric: str | Annotated[list[str], Field(min_length=1)]
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
    # A firing alert whose breach has ended keeps firing this long (event time, from the first
    # window without it to the current window's end) before it resolves: a change that persists
    # near the threshold does not fire, resolve and fire again (Prometheus's keep_firing_for).
    keep_firing_for: Duration = timedelta(0)
    # While firing, the alert holds as long as ``field op resolve_threshold`` (a looser bound than
    # ``threshold``: e.g. fire above 5 points, resolve only at 2); unset: the firing threshold.
    resolve_threshold: float | None = None
    # A breach also needs the row's p-value after Benjamini–Hochberg at most this: the threshold is
    # then the effect floor, so neither noise in a small slice nor a tiny, significant difference
    # on huge n alerts. Holding needs only the (resolve) threshold. A daemon tests every window:
    # at 5 % a family of null slices breaches about once in 20 windows, so rules read a stricter p.
    max_p: float | None = Field(None, gt=0, le=1)
    # Only rows of windows of this length (one of evaluation.intervals); unset: every interval,
    # each with an alert of its own (labelled ``interval`` when there are several).
    interval: Duration | None = None
    labels: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = Field(
        default_factory=dict
    )

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("metric")
    @classmethod
    def _metric_of_a_check(cls, v: str | list[str]) -> str | list[str]:
        known = checks.metrics()
        for m in [v] if isinstance(v, str) else v:
            if m not in known:
                raise ValueError(f"no check emits metric {m!r} (known: {', '.join(sorted(known))})")
        return v

    @model_validator(mode="after")
    def _one_baseline(self) -> "RuleConfig":
        if self.vs_reference + self.vs_previous + self.vs_earlier_lag > 1:
            raise ValueError(
                f"rule {self.name!r}: vs_reference, vs_previous and vs_earlier_lag exclude each other"
            )
        r = self.resolve_threshold
        if r is not None and (r > self.threshold if self.op in (">", ">=") else r < self.threshold):
            raise ValueError(
                f"rule {self.name!r}: resolve_threshold {r} must be on the quiet side of threshold "
                f"{self.threshold} (op {self.op!r}): an alert resolves at it, after firing at the threshold"
            )
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

    @field_validator("matchers")
    @classmethod
    def _linear_regexes(cls, v: dict[str, str]) -> dict[str, str]:
        check_matchers(v)
        return v


class InhibitConfig(_Section):
    """While an alert matching ``source`` fires, alerts matching ``target`` with the same values
    of the ``equal`` labels are not notified (e.g. a stalled stream inhibits drift alerts)."""

    source: dict[str, str]
    target: dict[str, str]
    equal: list[str] = Field(default_factory=lambda: ["model"])

    @field_validator("source", "target")
    @classmethod
    def _linear_regexes(cls, v: dict[str, str], info) -> dict[str, str]:
        check_matchers(v, info.field_name)
        return v


# How long the default rules keep an alert firing once its breach has ended: two daily windows,
# so that a change that persists near a threshold is one episode, not a fire/resolve per day.
KEEP_FIRING_FOR = timedelta(days=2)


def default_rules() -> list[RuleConfig]:
    """The rules of the embedded default (config/default.yaml spells them out; a test keeps both equal)."""
    return [
        RuleConfig(
            name="SignalDrift",
            metric=["psi", "ks"],
            field="decision",
            op=">=",
            threshold=1,
            summary="a modality signal's distribution moved away from the reference (PSI ≥ 0.25, or "
            "Kolmogorov–Smirnov D ≥ 0.1, and significant after Benjamini–Hochberg)",
            keep_firing_for=KEEP_FIRING_FOR,
        ),
        RuleConfig(
            name="CategoryDrift",
            metric="chisquare",
            field="decision",
            op=">=",
            threshold=1,
            summary="a category signal's shares (e.g. the texts' language) moved away from the "
            "reference's (two-sample chi-square, Cramér's V ≥ 0.1, significant after Benjamini–Hochberg)",
            keep_firing_for=KEEP_FIRING_FOR,
        ),
        RuleConfig(
            name="VocabularyDrift",
            metric=["oov_rate", "vocabulary_shift"],
            field="decision",
            op=">=",
            threshold=1,
            summary="the texts' words moved away from the reference's: more words the reference never had "
            "(5 points above its own novelty) or the most frequent words' shares shifted (Jensen–Shannon ≥ "
            "0.1), significant after Benjamini–Hochberg (hashed words: no text is kept)",
            keep_firing_for=KEEP_FIRING_FOR,
        ),
        RuleConfig(
            name="MissingModalityUp",
            metric="missing_modality_share",
            field="ci_low",
            vs_reference=True,
            threshold=0.02,
            resolve_threshold=0.005,
            summary="the lower 95% bound of the share of events without this modality is more than 2 points "
            "above the reference's",
            keep_firing_for=KEEP_FIRING_FOR,
        ),
        RuleConfig(
            name="EstimatedAccuracyDown",
            metric="estimated_accuracy",
            field="ci_high",
            vs_reference=True,
            op="<",
            threshold=-0.05,
            resolve_threshold=-0.02,
            summary="label-free: the upper 95% bound of the accuracy estimated from confidences is more than "
            "5 points below the reference's accuracy",
            keep_firing_for=KEEP_FIRING_FOR,
        ),
        RuleConfig(
            name="SliceErrorRateUp",
            metric="error_rate",
            field="value",
            vs_reference=True,
            max_p=0.01,
            threshold=0.05,
            resolve_threshold=0.02,
            severity="critical",
            summary="the slice's error rate is more than 5 points above the reference's, and higher beyond "
            "chance (one-sided two-proportion test, p after Benjamini–Hochberg at most 0.01)",
            keep_firing_for=KEEP_FIRING_FOR,
        ),
        RuleConfig(
            name="CalibrationDrift",
            metric="ece_drift",
            slice="*",
            field="value",
            threshold=0.02,
            resolve_threshold=0.01,
            max_p=0.01,
            summary="top-label ECE is more than 2 points above what the reference's calibration gives at "
            "this sample size, beyond chance (bootstrap, p after Benjamini–Hochberg at most 0.01)",
            keep_firing_for=KEEP_FIRING_FOR,
        ),
        RuleConfig(
            name="ModalityErrorRateUp",
            metric="modality_error_rate",
            field="value",
            vs_reference=True,
            max_p=0.01,
            threshold=0.05,
            resolve_threshold=0.02,
            summary="one modality's own answers are wrong more than 5 points more often than on the "
            "reference, beyond chance (one-sided two-proportion test, p after Benjamini–Hochberg at most "
            "0.01)",
            keep_firing_for=KEEP_FIRING_FOR,
        ),
        RuleConfig(
            name="ModalityCalibrationDrift",
            metric="modality_ece_drift",
            field="value",
            threshold=0.02,
            resolve_threshold=0.01,
            max_p=0.01,
            summary="one modality's own confidences are more than 2 points of ECE worse calibrated than on "
            "the reference at this sample size, beyond chance (bootstrap, p after Benjamini–Hochberg at "
            "most 0.01)",
            keep_firing_for=KEEP_FIRING_FOR,
        ),
        RuleConfig(
            name="FusionNotHelping",
            metric="fusion_vs_best",
            field="value",
            threshold=0.0,
            max_p=0.01,
            summary="the fused answer is wrong more often than the best single modality's own answer on "
            "the same events (exact McNemar test, p after Benjamini–Hochberg at most 0.01): fusion is not "
            "helping",
            keep_firing_for=KEEP_FIRING_FOR,
        ),
        RuleConfig(
            name="Aging",
            metric="trend",
            slice="*",
            field="decision",
            op=">=",
            threshold=1,
            summary="the error rate, ECE or label-free accuracy of all traffic has been getting worse "
            "over the last intervals (Mann–Kendall corrected for serial correlation, significant after "
            "Benjamini–Hochberg, Sen's slope at least 0.1 points a day)",
            keep_firing_for=KEEP_FIRING_FOR,
        ),
        RuleConfig(
            name="SliceValuesFlooded",
            metric="slice_values",
            field="decision",
            op=">=",
            threshold=1,
            summary="a slice attribute has more values than evaluation.max_slice_values: the rest are "
            "evaluated as one (other) slice (is a producer putting an id in it?)",
            keep_firing_for=KEEP_FIRING_FOR,
        ),
    ]


class AlertsConfig(_Section):
    rules: list[RuleConfig] = Field(default_factory=default_rules)  # `rules: []` switches them off
    # The receivers: each entry's ``kind`` (default webhook) names a receiver kind (alerts/receivers/)
    # whose model validates it; replaced by the kinds' union below (``_rebuild_receivers``).
    webhooks: list[Any] = Field(default_factory=list)
    # Unset: every receiver gets every group; group_by model + incident, group_wait 30s,
    # group_interval 5m, repeat_interval 4h unless the root route says otherwise.
    route: RouteConfig | None = None
    inhibit: list[InhibitConfig] = Field(default_factory=list)
    retry_initial_s: float = Field(1.0, gt=0)
    retry_max_s: float = Field(300.0, gt=0)
    external_url: str = "http://127.0.0.1:8787"

    @model_validator(mode="after")
    def _unique(self) -> "AlertsConfig":
        for what, names in (
            ("rule", [r.name for r in self.rules]),
            ("webhook", [w.name for w in self.webhooks]),
        ):
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


class ReportConfig(_Section):
    """Periodic reports (monitor/periodic.py): every ``every`` of event time the daemon writes that
    period's report under ``dir`` (one directory per period, and an index), once across replicas;
    ``GET /report`` serves the latest."""

    every: Duration | None = None  # e.g. 1d, 7d; null: no periodic reports
    dir: str = "reports"

    @field_validator("every")
    @classmethod
    def _positive(cls, v: timedelta | None) -> timedelta | None:
        if v is not None and v < timedelta(hours=1):
            raise ValueError("must be at least 1h (a report covers whole evaluated windows)")
        return v


class TrustTopicConfig(_Section):
    """Modality trust for a serving system (monitor/trust.py): always at ``GET /v1/trust`` and in
    the ``modalwatch_modality_trust`` gauge; with ``topic``, also each change of a stream's state
    as one JSON message on that topic of ``ingest.kafka``'s brokers (keyed by model, slice and
    modality: one partition keeps a stream's changes in order), delivered through the outbox."""

    topic: str | None = None


class Config(_Section):
    store: StoreConfig = Field(default_factory=StoreConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    media: MediaConfig = Field(default_factory=MediaConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    trust: TrustTopicConfig = Field(default_factory=TrustTopicConfig)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _workers_need_postgres(self) -> "Config":
        if self.ingest.workers and self.store.kind != "postgres":
            raise ValueError(
                f"ingest.workers: {self.ingest.workers} needs store.kind: postgres"
                f" (SQLite takes one writer at a time); use 0 with {self.store.kind}"
            )
        return self

    @model_validator(mode="after")
    def _trust_topic_needs_kafka(self) -> "Config":
        if self.trust.topic and self.ingest.kafka is None:
            raise ValueError(
                f"trust.topic: {self.trust.topic!r} is a Kafka topic, but ingest.kafka (its brokers)"
                " is not set"
            )
        return self

    @model_validator(mode="after")
    def _rule_intervals_are_evaluated(self) -> "Config":
        def text(d: timedelta) -> str:
            return duration_text(int(d.total_seconds()))

        for i, rule in enumerate(self.alerts.rules):
            if rule.interval is not None and rule.interval not in self.evaluation.intervals:
                raise ValueError(
                    f"alerts.rules[{i}].interval ({rule.name}): {text(rule.interval)} is not one of"
                    f" evaluation.intervals ({', '.join(text(iv) for iv in self.evaluation.intervals)})"
                )
        return self

    @model_validator(mode="after")
    def _retention_outlives_the_vintages(self) -> "Config":
        ret = self.store.retention
        if ret is not None:
            ev = self.evaluation
            need = max(ev.intervals) + max(ev.lags or [ev.lag]) + timedelta(days=1)
            if ret < need:
                raise ValueError(
                    f"store.retention {ret} is shorter than the longest interval plus the longest lag"
                    f" plus a day ({need}): the last vintages would miss their events"
                )
        return self


def _rebuild_checks_section() -> None:
    """``evaluation.checks``: one field per registered check, its own Config model, defaulted; an
    unknown check name is an error naming it. Rebuilt when a check is registered (a plugin's, a
    test's) so that its section validates like the built-in ones."""
    fields = {
        name: (cls.Config, Field(default_factory=cls.Config)) for name, cls in checks.registered().items()
    }
    section = create_model("ChecksConfig", __base__=_Section, __module__=__name__, **fields)
    globals()["ChecksConfig"] = section  # pickled by name (a config goes to pipeline workers)
    EvaluationConfig.model_fields["checks"] = FieldInfo(annotation=section, default_factory=section)
    EvaluationConfig.model_rebuild(force=True)
    Config.model_rebuild(force=True)


def _receiver_kind(v: Any) -> str:
    kind = v.get("kind", "webhook") if isinstance(v, dict) else getattr(v, "kind", "webhook")
    return f"{_KIND_TAG}{kind}"


_KIND_TAG = "kind="  # how a receiver kind shows in a validation error's location (left out of messages)


def _rebuild_receivers() -> None:
    """``alerts.webhooks``: a list of the registered receiver kinds' configs, told apart by ``kind``
    (default ``webhook``). Rebuilt when a kind is registered."""
    kinds = receivers.receiver_kinds()
    entry = Annotated[
        Union[tuple(Annotated[k.Config, Tag(f"{_KIND_TAG}{name}")] for name, k in kinds.items())],
        Discriminator(
            _receiver_kind,
            custom_error_type="receiver_kind",
            custom_error_message=f"kind must be one of {', '.join(sorted(kinds))}",
        ),
    ]
    AlertsConfig.model_fields["webhooks"] = FieldInfo(annotation=list[entry], default_factory=list)
    AlertsConfig.model_rebuild(force=True)
    Config.model_rebuild(force=True)


_rebuild_checks_section()
checks.on_registry_change(_rebuild_checks_section)
_rebuild_receivers()
receivers.on_kinds_change(_rebuild_receivers)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
WORKER_LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"  # monitor/workers.py


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key and, where known, the line."""


# Keys of earlier releases and where their settings live now (each check owns its section).
_MOVED = {
    ("evaluation", "psi_bins"): "evaluation.checks.signal_drift.bins",
    ("evaluation", "psi_min_n"): "evaluation.checks.signal_drift.min_n",
    ("evaluation", "drift_tests"): "evaluation.checks.signal_drift.tests",
    ("evaluation", "signal_tests"): "evaluation.checks.signal_drift.signal_tests",
    ("evaluation", "signal_thresholds"): "evaluation.checks.signal_drift.signal_thresholds",
    ("evaluation", "psi_threshold"): "evaluation.checks.signal_drift.thresholds.psi",
    ("evaluation", "ks_min_effect"): "evaluation.checks.signal_drift.thresholds.ks",
    ("evaluation", "wasserstein_threshold"): "evaluation.checks.signal_drift.thresholds.wasserstein",
    ("evaluation", "ece_bins"): "evaluation.checks.calibration.bins",
    ("evaluation", "ece_min_n"): "evaluation.checks.calibration.min_n",
    ("evaluation", "calibration_bootstrap"): "evaluation.checks.calibration.bootstrap",
    ("evaluation", "error_rate_min_n"): "evaluation.checks.error_rate.min_n (and the min_n of slice_gaps,"
    " missing_modality and estimated_accuracy)",
    ("evaluation", "cross"): "evaluation.checks.slice_gaps.cross",
    ("evaluation", "bands"): "evaluation.checks.slice_gaps.bands",
    ("evaluation", "performance_estimate"): "evaluation.checks.estimated_accuracy.enabled",
    ("evaluation", "embedding_drift"): "evaluation.checks.embedding_drift.enabled",
    ("evaluation", "mmd_permutations"): "evaluation.checks.embedding_drift.permutations",
    ("evaluation", "mmd_max_n"): "evaluation.checks.embedding_drift.max_n",
    ("evaluation", "mmd_device"): "evaluation.checks.embedding_drift.device",
    ("evaluation", "trend_window"): "evaluation.checks.trend.window (0 is now enabled: false)",
    ("evaluation", "trend_min_n"): "evaluation.checks.trend.min_n",
    ("online",): "evaluation.checks.online",
    ("alerts", "health_window"): "evaluation.checks.data_health.window",
    ("alerts", "silence_lookback"): "evaluation.checks.data_health.silence_lookback",
}


def _moved_keys(data: dict, lines: dict, name: str) -> None:
    """A key of an earlier release is an error that says where its setting lives now."""
    msgs = []
    for path, new in _MOVED.items():
        node: Any = data
        for part in path:
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if node is not _MISSING:
            line = lines.get(path)
            msgs.append(f"{_dotted(path)}{f' (line {line})' if line else ''}: moved to {new}")
    if msgs:
        raise ConfigError(f"{name}: " + "; ".join(msgs))


_MISSING = object()

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
    _moved_keys(data, lines, name)
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
                raise ConfigError(
                    f"{name}: {_dotted(loc + (key,))} (line {k.start_mark.line + 1}): duplicate key"
                )
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
                f"{name}: {_dotted(loc)} (line {node.start_mark.line + 1}): environment variable {var} is"
                " not set"
            )

        # An interpolated value stays a string; pydantic's lax mode turns "8787" into 8787 where
        # the model wants an int, and a secret made of digits stays a secret.
        return _ENV.sub(sub, value)
    return yaml.safe_load(yaml.serialize(node))


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, str) and part.startswith(_KIND_TAG):
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _nearest_line(lines: dict, loc: tuple) -> int | None:
    loc = tuple(p for p in loc if not (isinstance(p, str) and (p[:1].isupper() or p.startswith(_KIND_TAG))))
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return None

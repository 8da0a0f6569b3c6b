"""The registry of checks: one class in one file each (see monitor/checks/base.py).

Importing this package registers the built-in checks, in the order their rows are computed:
signal drift, error rate, calibration (and its drift), per-modality answers, label-free
accuracy, slice gaps, missing modalities, vocabulary, embedding drift, online change detection, trend (after
the rows it follows), modality trust (after the decisions it reads), and data health (on the
ingest clock). A new check is a module with a ``@register``-ed class; import it before the config
is loaded (a plugin's own import does that).
"""

# imported to register, in this order (isort would sort them: the order is the rows')
from monitor.checks import signal_drift  # noqa: F401, I001
from monitor.checks import error_rate  # noqa: F401
from monitor.checks import calibration  # noqa: F401
from monitor.checks import per_modality  # noqa: F401
from monitor.checks import estimated_accuracy  # noqa: F401
from monitor.checks import slice_gaps  # noqa: F401
from monitor.checks import missing_modality  # noqa: F401
from monitor.checks import vocabulary  # noqa: F401
from monitor.checks import slice_cardinality  # noqa: F401
from monitor.checks import embedding_drift  # noqa: F401
from monitor.checks import online  # noqa: F401
from monitor.checks import trend  # noqa: F401
from monitor.checks import trust  # noqa: F401
from monitor.checks import data_health  # noqa: F401
from monitor.checks.base import (
    Check,
    CheckConfig,
    EvaluationInput,
    ReferenceSummary,
    WindowView,
    enabled_checks,
    metrics,
    on_registry_change,
    register,
    registered,
    reported_metrics,
    unregister,
)

__all__ = [
    "Check",
    "CheckConfig",
    "EvaluationInput",
    "ReferenceSummary",
    "WindowView",
    "enabled_checks",
    "metrics",
    "on_registry_change",
    "register",
    "registered",
    "reported_metrics",
    "unregister",
]

"""The one place Logger, Tracer and Metrics are created.

Service name, log level, metrics namespace and tracing switches come from the standard Powertools
environment variables (POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL, POWERTOOLS_METRICS_NAMESPACE, ...),
which the template sets per function.
"""
from __future__ import annotations

import hashlib

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def pii_hash(value: str | None) -> str | None:
    """A short, stable reference to a personal value that can be logged instead of it."""
    if value is None:
        return None
    return hashlib.sha256(value.strip().lower().encode("utf-8")).hexdigest()[:16]

"""The one place Logger, Tracer and Metrics are created.

Service name, log level, metrics namespace and tracing switches come from the standard Powertools
environment variables (POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL, POWERTOOLS_METRICS_NAMESPACE, ...),
which the template sets per function.
"""
from __future__ import annotations

import hashlib

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
# Only the libraries segflow calls out with: patching all the X-Ray SDK supports imports sqlite3, httplib
# and more at every cold start, for calls segflow never makes.
tracer = Tracer(patch_modules=("botocore", "requests"))
metrics = Metrics()


def pii_hash(value: str | None) -> str | None:
    """A short, stable reference to a personal value that can be logged instead of it."""
    if value is None:
        return None
    return hashlib.sha256(value.strip().lower().encode("utf-8")).hexdigest()[:16]

"""erasure: the right to erasure across the profile table, the data bucket and both destinations.

Triggers (template.yaml): DataIngested for erasure drops, ErasureRequested. Emits ErasureCompleted with
counts and writes reports/erasure/<request>.json (no email). A repeated request finds its report complete
and does nothing; a failed step leaves the report incomplete and raises, so the event is retried.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from segflow.consent.composition import build_service
from segflow.consent.service import ConsentService
from segflow.observability import logger, metrics, tracer


@lru_cache(maxsize=1)
def service() -> ConsentService:
    return build_service()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = service().handle(event)
    metrics.add_metric(name="ErasuresCompleted", unit="Count",
                       value=sum(bool(e.get("complete")) for e in outcome.erasures))
    return outcome.summary()

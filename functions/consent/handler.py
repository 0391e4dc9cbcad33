"""consent: the consent ledger, eligibility and suppression.

Triggers (template.yaml): DataIngested for customers and consent drops, ProfilesScored, ConsentChanged from
other producers, CustomerActivity `unsubscribe`. Emits ConsentChanged (customers whose CONSENT#email item
changed). Every path is naturally idempotent (ledger records are keyed by their content, items are written
only when they change), so a redelivered event changes nothing. Erasure runs in its own function
(functions/erasure), which carries the data layer needed to rewrite Parquet.
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
    metrics.add_metric(name="ConsentRecordsAppended", unit="Count", value=outcome.appended)
    metrics.add_metric(name="ConsentItemsChanged", unit="Count", value=len(outcome.changed))
    return outcome.summary()

"""score: DataIngested / ModelTrained / nightly schedule -> SCORES items for changed customers, ProfilesScored."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from segflow import wiring
from segflow.config import get_settings
from segflow.observability import logger, metrics, tracer
from segflow.scoring.service import ScoreService


@lru_cache(maxsize=1)
def service() -> ScoreService:
    settings = get_settings()
    return ScoreService(wiring.object_store(settings), wiring.customer_items(settings), wiring.publisher(settings))


def run_mode(event: dict[str, Any]) -> str:
    """Nightly runs and new models rescore everyone; a drop rescores what changed because of it."""
    if event.get("mode") == "all" or event.get("detail-type") == "ModelTrained":
        return "all"
    return "touched"


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    scored = service().score(get_settings().now(), run_mode(event))
    metrics.add_metric(name="CustomersScored", unit="Count", value=scored.customers_scored)
    metrics.add_metric(name="ScoresChanged", unit="Count", value=scored.changed.count)
    return scored.model_dump(mode="json")

"""train: weekly schedule or on demand -> clusters and CLV/churn models under models/, ModelTrained."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from segflow import wiring
from segflow.config import get_settings
from segflow.observability import logger, metrics, tracer
from segflow.scoring.service import Horizons, TrainService


@lru_cache(maxsize=1)
def service() -> TrainService:
    settings = get_settings()
    horizons = Horizons(settings.clv_horizon_days, settings.churn_horizon_days)
    return TrainService(wiring.object_store(settings), wiring.publisher(settings), horizons)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trained = service().train(get_settings().now())
    metrics.add_metric(name="ModelsTrained", unit="Count", value=len(trained))
    return {"models": [m.model_dump(mode="json") for m in trained]}

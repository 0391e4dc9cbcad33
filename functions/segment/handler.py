"""segment: ProfilesScored and CustomerActivity events -> memberships, SegmentsChanged, segments/latest.json.

The segments file is read and validated once per container (a bad file fails the cold start, naming the
segment and the problem). No pandas, numpy or scikit-learn here: the function stays small and starts fast.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from segflow import wiring
from segflow.config import get_settings
from segflow.events.schemas import CustomerActivity, ProfilesScored, parse_detail
from segflow.observability import logger, metrics, pii_hash, tracer
from segflow.segments.rules import compile_rules
from segflow.segments.service import Outcome, SegmentService, load_config
from segflow.segments.store import S3SnapshotStore, SegmentItems

OUTCOME_METRICS = {"evaluated": "SegmentsEvaluated", "entries": "SegmentEntries", "exits": "SegmentExits",
                   "violations": "SegmentGuardrailViolations", "retries": "SegmentWriteRetries"}


@lru_cache(maxsize=1)
def service() -> SegmentService:
    settings = get_settings()
    objects = wiring.object_store(settings)
    config = load_config(objects, settings.segments_config_key)
    logger.info("segments file loaded", extra={"segments": len(config.by_name)})
    return SegmentService(
        items=SegmentItems(wiring.customer_items(settings)),
        objects=objects,
        identities=wiring.profile_store(settings),
        publisher=wiring.publisher(settings),
        snapshots=S3SnapshotStore(wiring.client("s3"), settings.data_bucket),
        compiled=compile_rules(config),
        clock=settings.now,
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = parse_detail(event)
    if isinstance(detail, ProfilesScored):
        outcome = service().on_scored(detail, delivery_id=event.get("id"))
    elif isinstance(detail, CustomerActivity):
        customer = detail.customer_id or pii_hash(detail.email)  # never the address itself
        logger.append_keys(activity_event=detail.event_id, customer=customer)
        outcome = service().on_activity(detail)
    else:
        raise ValueError(f"segment does not handle {event.get('detail-type')!r} events")
    record(outcome)
    return outcome.as_dict()


def record(outcome: Outcome) -> None:
    for name, metric in OUTCOME_METRICS.items():
        metrics.add_metric(name=metric, unit="Count", value=getattr(outcome, name))
    logger.info("segments evaluated", extra=outcome.as_dict())

"""ingest: S3 drops under raw/ (delivered through SQS) -> clean data, quarantine, profiles, DataIngested."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from segflow import wiring
from segflow.config import get_settings
from segflow.ingest.s3_events import drop_refs
from segflow.ingest.drop import DropRef
from segflow.ingest.service import IngestService
from segflow.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)
ROW_METRICS = {"rows_in": "RowsIn", "clean": "RowsClean", "merged": "RowsMerged",
               "quarantined": "RowsQuarantined", "pending": "RowsPending"}
# Keyed on bucket, key and version: a redelivered notification returns the stored outcome at once.
idempotency_config = IdempotencyConfig(event_key_jmespath="[bucket, key, version]", expires_after_seconds=7 * 86400)
persistence = DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table)


@lru_cache(maxsize=1)
def service() -> IngestService:
    settings = get_settings()
    return IngestService(
        wiring.object_store(settings), wiring.profile_store(settings), wiring.publisher(settings), settings,
        erased=wiring.erasure_gate(settings),
    )


@tracer.capture_method
def handle_record(record: SQSRecord) -> None:
    for ref in drop_refs(record.body):
        ingest_once(ref=ref)


@idempotent_function(data_keyword_argument="ref", config=idempotency_config, persistence_store=persistence)
def ingest_once(ref: DropRef) -> dict[str, Any]:
    outcome = service().ingest(ref)
    if outcome.status == "ingested":
        for name, metric in ROW_METRICS.items():
            metrics.add_metric(name=metric, unit="Count", value=outcome.accounting[name])
    return {"status": outcome.status, "drop_id": outcome.drop_id, "reason": outcome.reason}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency_config.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)

"""sync-mailchimp: SQS work items (batch size 1, partial batch failures) -> the Mailchimp audience.

One message is one work item (or a nightly read-back item), processed once per work_item_id (Powertools
idempotency). Consent is re-read from DynamoDB right before the item is applied; a destination refusal is
sent to the consent function as an opt-out; contacts left to retry fail the message so SQS redelivers it.
The worker that finishes a run's last item writes its sync-log line and publishes SyncCompleted.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from segflow import wiring
from segflow.config import get_settings
from segflow.consent.guard import may_push, may_subscribe_new
from segflow.destinations import MailchimpClient, load_credentials
from segflow.observability import logger, metrics, tracer
from segflow.store.sync_state import DynamoSyncStateStore
from segflow.sync.adapters import MailchimpAdapter
from segflow.sync.desired import SyncConfig
from segflow.sync.runs import DynamoRunLedger
from segflow.sync.service import WorkerPorts, WorkerService

DESTINATION = "mailchimp"
# Failures are reported per message; a failed single-message batch must not raise as a whole.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
idempotency_config = IdempotencyConfig(event_key_jmespath="work_item_id", expires_after_seconds=7 * 86400)
persistence = DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table)


@lru_cache(maxsize=1)
def secrets() -> SecretsProvider:
    return SecretsProvider(boto3_client=wiring.client("secretsmanager"))  # this function's client and cache


def adapter_for(config: SyncConfig) -> MailchimpAdapter:
    settings = get_settings()
    if not settings.mailchimp_list_id or not settings.destination_secret:
        raise RuntimeError(
            "Mailchimp is not configured: MAILCHIMP_LIST_ID and DESTINATION_SECRET are required"
        )
    credentials = load_credentials(value=secrets().get(settings.destination_secret, max_age=300))
    client = MailchimpClient(credentials.api_key or credentials.secret, base_url=settings.mailchimp_base_url)
    return MailchimpAdapter(client, settings.mailchimp_list_id, config)


@lru_cache(maxsize=1)
def service() -> WorkerService:
    settings = get_settings()
    table = wiring.session().resource("dynamodb", config=wiring.BOTO_CONFIG).Table(settings.table_name)
    ports = WorkerPorts(
        objects=wiring.object_store(settings),
        items=wiring.customer_items(settings),
        states=DynamoSyncStateStore(table),
        runs=DynamoRunLedger(table),
        publisher=wiring.publisher(settings),
    )
    return WorkerService(
        ports,
        DESTINATION,
        adapter_for,
        may_push=lambda view: may_push(view, now=settings.now()),
        may_subscribe_new=lambda view, status: may_subscribe_new(view, status, now=settings.now()),
        now=settings.now,
    )


@tracer.capture_method
def handle_record(record: SQSRecord) -> None:
    receive_count = int(record.attributes.approximate_receive_count or 1)
    process_once(message=json.loads(record.body), receive_count=receive_count)


@idempotent_function(
    data_keyword_argument="message", config=idempotency_config, persistence_store=persistence
)
def process_once(message: dict[str, Any], receive_count: int) -> dict[str, Any]:
    outcome = service().process(message, receive_count)
    metrics.add_metric(name="SyncItemsApplied", unit="Count", value=1)
    # Contacts that ended this item failed (the SyncFailuresAlarm watches this metric).
    failed = int((outcome.record.get("outcomes") or {}).get("failed", 0))
    metrics.add_metric(name="SyncContactsFailed", unit="Count", value=failed)
    return outcome.as_dict()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency_config.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=handle_record, processor=processor, context=context
    )

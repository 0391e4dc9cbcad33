"""The Lambda side of a sync worker, shared by sync-mailchimp and sync-hubspot.

One SQS message is one work item (or a nightly read-back item), processed once per work_item_id (Powertools
idempotency). Consent is re-read from DynamoDB right before the item is applied; a destination refusal is
sent to the consent function as an opt-out; contacts left to retry fail the message so SQS redelivers it.
The worker that finishes a run's last item writes its sync-log line and publishes SyncCompleted. Each
destination's handler module only says how to build its adapter.
"""
from __future__ import annotations

import json
from functools import cached_property
from typing import Any, Callable

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
from segflow.config import Settings, get_settings
from segflow.consent.guard import may_push, may_subscribe_new
from segflow.observability import logger, metrics, tracer
from segflow.store.profiles import DynamoProfileStore
from segflow.store.sync_state import DynamoSyncStateStore
from segflow.sync.desired import SyncConfig
from segflow.sync.runs import DynamoRunLedger
from segflow.sync.service import WorkerPorts, WorkerService

# (sync config, settings, this function's secrets provider) -> the destination adapter
AdapterFactory = Callable[[SyncConfig, Settings, SecretsProvider], Any]


class SyncWorkerLambda:
    def __init__(self, destination: str, build_adapter: AdapterFactory) -> None:
        self.destination = destination
        self.build_adapter = build_adapter
        # Failures are reported per message; a failed single-message batch must not raise as a whole.
        self.processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self.idempotency = IdempotencyConfig(event_key_jmespath="work_item_id", expires_after_seconds=7 * 86400)
        persistence = DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table)
        self.process_once = idempotent_function(
            data_keyword_argument="message", config=self.idempotency, persistence_store=persistence
        )(self._process)
        self.lambda_handler = logger.inject_lambda_context(
            tracer.capture_lambda_handler(metrics.log_metrics(self._handle))
        )

    @cached_property
    def secrets(self) -> SecretsProvider:
        return SecretsProvider(boto3_client=wiring.client("secretsmanager"))  # this function's client and cache

    @cached_property
    def service(self) -> WorkerService:
        settings = get_settings()
        table = wiring.session().resource("dynamodb", config=wiring.BOTO_CONFIG).Table(settings.table_name)
        ports = WorkerPorts(
            objects=wiring.object_store(settings),
            items=wiring.customer_items(settings),
            states=DynamoSyncStateStore(table),
            runs=DynamoRunLedger(table),
            publisher=wiring.publisher(settings),
            identities=DynamoProfileStore(table),  # its identity items: the audience scan's email lookup
        )
        return WorkerService(
            ports,
            self.destination,
            lambda config: self.build_adapter(config, get_settings(), self.secrets),
            may_push=lambda view: may_push(view, now=settings.now()),
            may_subscribe_new=lambda view, status: may_subscribe_new(view, status, now=settings.now()),
            now=settings.now,
        )

    def _process(self, message: dict[str, Any], receive_count: int) -> dict[str, Any]:
        outcome = self.service.process(message, receive_count)
        metrics.add_metric(name="SyncItemsApplied", unit="Count", value=1)
        # Contacts that ended this item failed (the SyncFailuresAlarm watches this metric).
        failed = int((outcome.record.get("outcomes") or {}).get("failed", 0))
        metrics.add_metric(name="SyncContactsFailed", unit="Count", value=failed)
        return outcome.as_dict()

    def _handle_record(self, record: SQSRecord) -> None:
        receive_count = int(record.attributes.approximate_receive_count or 1)
        self.process_once(message=json.loads(record.body), receive_count=receive_count)

    def _handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        self.idempotency.register_lambda_context(context)
        return process_partial_response(
            event=event, record_handler=self._handle_record, processor=self.processor, context=context
        )

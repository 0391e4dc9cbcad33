"""sync-plan: SegmentsChanged, ConsentChanged (segflow.consent), ContactsChecked (segflow.sync: contacts a plan
deferred until every destination was checked) and the nightly {"mode": "all", "reconcile": true} -> desired
state per destination, diffed against the last synced state, work items under sync/<run_id>/ and one SQS
message per item (SYNC_DRY_RUN: the plan in sync/<run_id>/plan.json, no messages).

Holds no destination credentials. A destination is planned only when configured: its queue, and for
Mailchimp the audience (MAILCHIMP_LIST_ID). No pandas, numpy or scikit-learn here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from segflow import wiring
from segflow.config import Settings, get_settings
from segflow.consent.guard import may_push, may_subscribe_new
from segflow.observability import logger, metrics, tracer
from segflow.segments.personalisation import personalise
from segflow.segments.rules import compile_rules
from segflow.segments.service import load_config
from segflow.store.sync_state import DynamoSyncStateStore
from segflow.sync.desired import SyncConfig
from segflow.sync.runs import DynamoRunLedger
from segflow.sync.plan_service import PlanPorts, PlanService, SqsWorkQueue, Target


def targets(settings: Settings) -> list[Target]:
    found = []
    if settings.mailchimp_queue_url and settings.mailchimp_list_id:
        found.append(Target("mailchimp", settings.mailchimp_queue_url))
    if settings.hubspot_queue_url:
        found.append(Target("hubspot", settings.hubspot_queue_url))
    skipped = sorted({"mailchimp", "hubspot"} - {t.destination for t in found})
    if skipped:
        logger.info("destinations not configured, not planned", extra={"skipped": skipped})
    return found


@lru_cache(maxsize=1)
def service() -> PlanService:
    settings = get_settings()
    objects = wiring.object_store(settings)
    config = load_config(objects, settings.segments_config_key)
    compiled = compile_rules(config)
    table = wiring.session().resource("dynamodb", config=wiring.BOTO_CONFIG).Table(settings.table_name)
    ports = PlanPorts(
        items=wiring.customer_items(settings),
        objects=objects,
        states=DynamoSyncStateStore(table),
        queue=SqsWorkQueue(wiring.client("sqs")),
        runs=DynamoRunLedger(table),
    )
    return PlanService(
        ports,
        SyncConfig.from_segments(config),
        targets(settings),
        # Keyed by merge tag for both destinations: build_desired maps tags to HubSpot property names itself.
        field_values=lambda view: personalise(compiled, view).mailchimp,
        eligible=lambda view: may_push(view, now=settings.now()),
        subscribable=lambda view: may_subscribe_new(view, now=settings.now()),
        dry_run=settings.sync_dry_run,
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = service().handle(event)
    for destination in outcome.destinations.values():
        metrics.add_metric(name="SyncWorkItems", unit="Count", value=destination.get("work_items", 0))
        metrics.add_metric(name="SyncContactsWithWork", unit="Count", value=destination["contacts_with_work"])
    return outcome.as_dict()

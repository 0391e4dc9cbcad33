"""Builds the AWS-backed ports from settings (the composition root shared by all handlers).

boto3 honours AWS_ENDPOINT_URL, so the same wiring reaches moto locally and AWS when deployed.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, Iterable

import boto3
from botocore.config import Config

from segflow.config import Settings
from segflow.events.bus import EventBridgePublisher
from segflow.store.customers import DynamoCustomerItems
from segflow.store.objects import S3ObjectStore
from segflow.store.profiles import DynamoProfileStore

# Standard retry mode backs off on throttling and 5xx for every AWS call segflow makes.
BOTO_CONFIG = Config(retries={"max_attempts": 8, "mode": "standard"}, max_pool_connections=32)


@lru_cache(maxsize=1)
def session() -> boto3.session.Session:
    return boto3.session.Session()


def client(name: str) -> Any:
    return session().client(name, config=BOTO_CONFIG)


def object_store(settings: Settings) -> S3ObjectStore:
    return S3ObjectStore(client("s3"), settings.data_bucket)


def profile_store(settings: Settings) -> DynamoProfileStore:
    table = session().resource("dynamodb", config=BOTO_CONFIG).Table(settings.table_name)
    return DynamoProfileStore(table, concurrency=settings.write_concurrency)


def customer_items(settings: Settings) -> DynamoCustomerItems:
    table = session().resource("dynamodb", config=BOTO_CONFIG).Table(settings.table_name)
    return DynamoCustomerItems(table, concurrency=settings.write_concurrency)


def publisher(settings: Settings) -> EventBridgePublisher:
    return EventBridgePublisher(client("events"), settings.event_bus_name)


def erasure_gate(settings: Settings) -> Callable[[Iterable[str]], set[str]] | None:
    """Which emails / customer ids are erased (salted tombstones); None when no salt is configured."""
    if not settings.erasure_salt_secret:
        return None
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from segflow.consent.store import DynamoTombstones, ErasureGate

    secrets = SecretsProvider(boto3_client=client("secretsmanager"))
    table = session().resource("dynamodb", config=BOTO_CONFIG).Table(settings.table_name)
    tombstones = DynamoTombstones(table)

    def erased(values: Iterable[str]) -> set[str]:
        return ErasureGate(tombstones, str(secrets.get(settings.erasure_salt_secret, max_age=3600))).erased(values)

    return erased

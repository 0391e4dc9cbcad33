"""Composition root of the consent and erasure functions: AWS adapters behind the consent service's ports."""
from __future__ import annotations

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from segflow import wiring
from segflow.config import Settings, get_settings
from segflow.consent.eligibility import EligibilityConfig
from segflow.consent.erasure_adapters import DestinationErasers, S3VersionPurger, StoreErasureBackend, TableItemDeleter
from segflow.consent.service import ConsentPorts, ConsentService
from segflow.consent.store import DynamoLedger, DynamoTombstones, LedgerArchive
from segflow.store.customers import DynamoCustomerItems
from segflow.store.profiles import DynamoProfileStore


def _salt(settings: Settings, secrets: SecretsProvider) -> str:
    if not settings.erasure_salt_secret:
        raise RuntimeError("ERASURE_SALT_SECRET is not configured: tombstones cannot be checked or written")
    return str(secrets.get(settings.erasure_salt_secret, max_age=3600))


def build_service() -> ConsentService:
    """The consent service wired to AWS: shared by the consent and erasure functions."""
    settings = get_settings()
    # Our own provider (not Powertools' module-wide default), bound to this function's client and cache.
    secrets = SecretsProvider(boto3_client=wiring.client("secretsmanager"))
    table = wiring.session().resource("dynamodb", config=wiring.BOTO_CONFIG).Table(settings.table_name)
    objects = wiring.object_store(settings)
    items = DynamoCustomerItems(table, concurrency=settings.write_concurrency)
    identities = DynamoProfileStore(table, concurrency=settings.write_concurrency)
    ledger, tombstones = DynamoLedger(table), DynamoTombstones(table)
    erasers = DestinationErasers(
        read_secret=lambda name: secrets.get(name, max_age=300),
        mailchimp_secret=settings.mailchimp_secret, hubspot_secret=settings.hubspot_secret,
        mailchimp_list_id=settings.mailchimp_list_id, mailchimp_base_url=settings.mailchimp_base_url,
        hubspot_base_url=settings.hubspot_base_url, hubspot_tier=settings.hubspot_tier,
    )
    backend = StoreErasureBackend(
        items=items, resolve=identities.resolve, ledger=ledger, objects=objects,
        versions=S3VersionPurger(wiring.client("s3"), settings.data_bucket), tombstones=tombstones,
        item_deleter=TableItemDeleter(table), destinations=erasers, skipped_destinations=erasers.skipped,
        mailchimp_list_id=settings.mailchimp_list_id, delete_raw=settings.erasure_delete_raw,
    )
    ports = ConsentPorts(
        objects=objects, items=items, identities=identities, ledger=ledger, tombstones=tombstones,
        publisher=wiring.publisher(settings), erasure=backend, salt=lambda: _salt(settings, secrets),
        archive=LedgerArchive(objects),
    )
    config = EligibilityConfig(activity_window_days=settings.consent_activity_window_days)
    return ConsentService(ports, now=settings.now, config=config)

"""sync-hubspot: SQS work items (batch size 1, partial batch failures) -> HubSpot contacts and lists.

The shared worker (segflow.sync.worker_lambda) does the work; this module only builds the HubSpot adapter.
"""
from __future__ import annotations

from typing import cast

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from segflow.config import Settings
from segflow.destinations import HubSpotClient, load_credentials
from segflow.destinations.hubspot import HUBSPOT_URL, Tier
from segflow.sync.adapters import HubSpotAdapter
from segflow.sync.desired import SyncConfig
from segflow.sync.worker_lambda import SyncWorkerLambda


def adapter_for(config: SyncConfig, settings: Settings, secrets: SecretsProvider) -> HubSpotAdapter:
    if not settings.destination_secret:
        raise RuntimeError("HubSpot is not configured: DESTINATION_SECRET is required")
    credentials = load_credentials(value=secrets.get(settings.destination_secret, max_age=300))
    client = HubSpotClient(
        credentials.token or credentials.secret,
        base_url=settings.hubspot_base_url or HUBSPOT_URL,
        tier=cast(Tier, settings.hubspot_tier),
    )
    return HubSpotAdapter(client, config)


worker = SyncWorkerLambda("hubspot", adapter_for)
lambda_handler = worker.lambda_handler

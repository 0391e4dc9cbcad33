"""sync-mailchimp: SQS work items (batch size 1, partial batch failures) -> the Mailchimp audience.

The shared worker (segflow.sync.worker_lambda) does the work; this module only builds the Mailchimp adapter.
"""
from __future__ import annotations

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from segflow.config import Settings
from segflow.destinations import MailchimpClient, load_credentials
from segflow.sync.adapters import MailchimpAdapter
from segflow.sync.desired import SyncConfig
from segflow.sync.worker_lambda import SyncWorkerLambda


def adapter_for(config: SyncConfig, settings: Settings, secrets: SecretsProvider) -> MailchimpAdapter:
    if not settings.mailchimp_list_id or not settings.destination_secret:
        raise RuntimeError("Mailchimp is not configured: MAILCHIMP_LIST_ID and DESTINATION_SECRET are required")
    credentials = load_credentials(value=secrets.get(settings.destination_secret, max_age=300))
    client = MailchimpClient(credentials.api_key or credentials.secret, base_url=settings.mailchimp_base_url)
    return MailchimpAdapter(client, settings.mailchimp_list_id, config)


worker = SyncWorkerLambda("mailchimp", adapter_for)
lambda_handler = worker.lambda_handler

"""Destination clients: Mailchimp Marketing API v3 and HubSpot CRM v3 (the only network edges of sync)."""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ApiSession": "segflow.destinations.http",
    "CallStats": "segflow.destinations.results",
    "ContactResult": "segflow.destinations.results",
    "ContactUpsert": "segflow.destinations.hubspot_models",
    "Credentials": "segflow.destinations.credentials",
    "CredentialsError": "segflow.destinations.credentials",
    "DailyLimitReached": "segflow.destinations.errors",
    "DestinationError": "segflow.destinations.errors",
    "HubSpotClient": "segflow.destinations.hubspot",
    "HubSpotPaths": "segflow.destinations.hubspot",
    "MailchimpClient": "segflow.destinations.mailchimp",
    "MemberUpsert": "segflow.destinations.mailchimp_models",
    "MembershipChange": "segflow.destinations.hubspot",
    "MergeFieldSpec": "segflow.destinations.mailchimp_models",
    "Outcome": "segflow.destinations.results",
    "PropertyReport": "segflow.destinations.hubspot",
    "PropertySpec": "segflow.destinations.hubspot_models",
    "ProvisioningConflict": "segflow.destinations.errors",
    "RequestRejected": "segflow.destinations.errors",
    "RetriesExhausted": "segflow.destinations.errors",
    "RetryPolicy": "segflow.destinations.http",
    "TagUpdate": "segflow.destinations.mailchimp_models",
    "Timeouts": "segflow.destinations.http",
    "WindowRateLimiter": "segflow.destinations.ratelimit",
    "load_credentials": "segflow.destinations.credentials",
    "outcome_counts": "segflow.destinations.results",
    "subscriber_hash": "segflow.destinations.mailchimp_models",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): a light handler that needs one module does not pay for importing all of them.
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value

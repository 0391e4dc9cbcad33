"""Destination clients: Mailchimp Marketing API v3 and HubSpot CRM v3 (the only network edges of sync)."""
from __future__ import annotations

from segflow.lazy import lazy_exports

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
__getattr__ = lazy_exports(__name__, _EXPORTS)

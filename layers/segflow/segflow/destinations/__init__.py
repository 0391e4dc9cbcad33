"""Destination clients: Mailchimp Marketing API v3 and HubSpot CRM v3 (the only network edges of sync)."""
from segflow.destinations.credentials import Credentials, CredentialsError, load_credentials
from segflow.destinations.errors import (
    DailyLimitReached,
    DestinationError,
    ProvisioningConflict,
    RequestRejected,
    RetriesExhausted,
)
from segflow.destinations.http import ApiSession, RetryPolicy, Timeouts
from segflow.destinations.hubspot import HubSpotClient, HubSpotPaths, MembershipChange, PropertyReport
from segflow.destinations.hubspot_models import ContactUpsert, PropertySpec
from segflow.destinations.mailchimp import MailchimpClient
from segflow.destinations.mailchimp_models import MemberUpsert, MergeFieldSpec, TagUpdate, subscriber_hash
from segflow.destinations.ratelimit import WindowRateLimiter
from segflow.destinations.results import CallStats, ContactResult, Outcome, outcome_counts

__all__ = [
    "ApiSession",
    "CallStats",
    "ContactResult",
    "ContactUpsert",
    "Credentials",
    "CredentialsError",
    "DailyLimitReached",
    "DestinationError",
    "HubSpotClient",
    "HubSpotPaths",
    "MailchimpClient",
    "MemberUpsert",
    "MembershipChange",
    "MergeFieldSpec",
    "Outcome",
    "PropertyReport",
    "PropertySpec",
    "ProvisioningConflict",
    "RequestRejected",
    "RetriesExhausted",
    "RetryPolicy",
    "TagUpdate",
    "Timeouts",
    "WindowRateLimiter",
    "load_credentials",
    "outcome_counts",
    "subscriber_hash",
]

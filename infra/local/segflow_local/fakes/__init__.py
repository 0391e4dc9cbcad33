"""Fake Mailchimp and HubSpot servers on loopback that enforce the real APIs' contracts."""

from segflow_local.fakes.common import Exchange, FakeServer
from segflow_local.fakes.hubspot import FakeHubSpot
from segflow_local.fakes.mailchimp import FakeMailchimp

__all__ = ["Exchange", "FakeHubSpot", "FakeMailchimp", "FakeServer"]

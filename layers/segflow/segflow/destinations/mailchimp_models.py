"""What segflow asks of a Mailchimp audience: merge field definitions and member changes (plain data)."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

MergeFieldType = Literal[
    "text", "number", "address", "phone", "date", "url", "imageurl", "radio", "dropdown", "birthday", "zip"
]
MAX_TAG_LENGTH = 10
MAX_MERGE_FIELDS = 30  # per audience, Mailchimp's own default fields included
TAG_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]*$")


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 of the lower-cased email."""
    return hashlib.md5(email.strip().lower().encode()).hexdigest()


def email_key(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True)
class MergeFieldSpec:
    tag: str
    name: str
    type: MergeFieldType = "text"
    choices: Sequence[str] = ()  # radio / dropdown
    required: bool = False  # segflow never makes its fields required: a required field rejects members

    def __post_init__(self) -> None:
        if not 1 <= len(self.tag) <= MAX_TAG_LENGTH:
            raise ValueError(f"merge tag {self.tag!r} must be 1-{MAX_TAG_LENGTH} characters")
        if not TAG_PATTERN.match(self.tag):
            raise ValueError(f"merge tag {self.tag!r} must be upper-case letters, digits or _, starting with a letter")
        if not self.name.strip() or len(self.name) > 50:
            raise ValueError("merge field name must be 1-50 characters")
        if self.type in ("radio", "dropdown") and not self.choices:
            raise ValueError(f"a {self.type} merge field needs choices")

    def create_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "type": self.type, "tag": self.tag, "required": self.required}
        if self.choices:
            body["options"] = {"choices": list(self.choices)}
        return body


@dataclass(frozen=True)
class MemberUpsert:
    """One contact to push to an audience.

    `subscribe_if_new` is set by the caller only for contacts with recorded marketing consent that
    are not yet on the audience: only those are ever sent with a `status` (and only through a
    create-only batch, which cannot touch an existing member). Everyone else is updated without
    `status`, so an unsubscribed, cleaned or pending member keeps their status.
    """

    email: str
    merge_fields: Mapping[str, Any] = field(default_factory=dict)
    subscribe_if_new: bool = False
    language: str | None = None
    vip: bool | None = None

    def fields(self) -> dict[str, Any]:
        body: dict[str, Any] = {"email_address": self.email.strip()}
        if self.merge_fields:
            body["merge_fields"] = dict(self.merge_fields)
        if self.language is not None:
            body["language"] = self.language
        if self.vip is not None:
            body["vip"] = self.vip
        return body

    def create_item(self) -> dict[str, Any]:
        """A member of a create-only batch (update_existing false): status is required there."""
        return {**self.fields(), "status": "subscribed"}

    def update_body(self) -> dict[str, Any]:
        """PUT body for an existing member: no `status`; `status_if_new` only matters if the member vanished."""
        return {**self.fields(), "status_if_new": "subscribed" if self.subscribe_if_new else "transactional"}


@dataclass(frozen=True)
class TagUpdate:
    email: str
    tags: Mapping[str, bool]  # tag name -> active (True) / inactive (False); inactive is not an unsubscribe

    def body(self, is_syncing: bool) -> dict[str, Any]:
        return {
            "tags": [{"name": name, "status": "active" if active else "inactive"} for name, active in self.tags.items()],
            "is_syncing": is_syncing,
        }


# Member statuses a list read can filter on (the spec's enum for GET /lists/{list_id}/members `status`).
MEMBER_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional", "archived")


@dataclass(frozen=True)
class MemberPage:
    """One page of an audience read: the members (only the fields asked for), where the page starts, and
    how many members matched the filter when Mailchimp answered it (it moves if members change meanwhile)."""

    members: Sequence[Mapping[str, Any]]
    offset: int
    total_items: int

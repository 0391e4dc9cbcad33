"""Request bodies the fake Mailchimp accepts, strict like the real API's JSON-schema validation.

Unknown fields are refused at every level (a client sending `tags` in a batch member learns it here,
not in production), and the requirements the published spec copy lost (batch members need
`email_address` and `status`) are enforced.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MemberStatus = Literal["subscribed", "unsubscribed", "cleaned", "pending", "transactional"]
MergeFieldType = Literal[
    "text", "number", "address", "phone", "date", "url", "imageurl", "radio", "dropdown", "birthday", "zip"
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Location(_Strict):
    latitude: float | None = None
    longitude: float | None = None


class MarketingPermission(_Strict):
    marketing_permission_id: str
    enabled: bool


class _MemberFields(_Strict):
    email_type: Literal["html", "text"] | None = None
    merge_fields: dict[str, Any] | None = None
    interests: dict[str, bool] | None = None
    language: str | None = None
    vip: bool | None = None
    location: Location | None = None
    ip_signup: str | None = None
    timestamp_signup: str | None = None
    ip_opt: str | None = None
    timestamp_opt: str | None = None


class BatchMember(_MemberFields):
    email_address: str
    status: MemberStatus


class BatchSubscribe(_Strict):
    members: list[BatchMember]
    update_existing: bool = False
    sync_tags: bool = False


class PutMember(_MemberFields):
    email_address: str
    status_if_new: MemberStatus
    status: MemberStatus | None = None
    marketing_permissions: list[MarketingPermission] | None = None


class MemberTag(_Strict):
    name: str = Field(min_length=1, max_length=100)
    status: Literal["active", "inactive"]


class MemberTags(_Strict):
    tags: list[MemberTag]
    is_syncing: bool = False


class MergeFieldOptions(_Strict):
    default_country: int | None = None
    phone_format: str | None = None
    date_format: str | None = None
    choices: list[str] | None = None
    size: int | None = None


class MergeFieldCreate(_Strict):
    name: str = Field(min_length=1, max_length=50)
    type: MergeFieldType
    tag: str | None = None
    required: bool = False
    default_value: str | None = None
    public: bool = True
    display_order: int | None = None
    options: MergeFieldOptions | None = None
    help_text: str | None = None


class SegmentConditions(_Strict):
    match: Literal["any", "all"] | None = None
    conditions: list[dict[str, Any]] | None = None


class SegmentCreate(_Strict):
    name: str = Field(min_length=1, max_length=100)
    static_segment: list[str] | None = None
    options: SegmentConditions | None = None


class SegmentMembersUpdate(_Strict):
    members_to_add: list[str] = Field(default_factory=list)
    members_to_remove: list[str] = Field(default_factory=list)


HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class BatchOperation(_Strict):
    """One call inside POST /batches: `body` is the JSON body as a string, `path` is relative to /3.0."""

    method: HttpMethod
    path: str = Field(pattern=r"^/([^/\s]\S*)?$")  # "/lists/abc/..."; never a full or scheme-relative URL
    params: dict[str, Any] | None = None
    body: str | None = None
    operation_id: str | None = None


class BatchRequest(_Strict):
    operations: list[BatchOperation] = Field(min_length=1)

"""In-memory Mailchimp audience state and the rules the real API applies to it (no HTTP here).

Modelled facts (see /work/shared/API-NOTES.md):
- members are keyed by the subscriber hash, MD5 of the lowercased email;
- an unsubscribed or cleaned member is never set back to `subscribed` ("Member In Compliance State");
  the route back is `pending` (a confirmation email);
- a permanently deleted ("forgotten") email cannot be re-imported ("Forgotten Email Not Subscribed");
- merge tags: upper-case A-Z, 0-9 and _, at most 10 characters, at most 30 fields per audience, and
  every audience starts with Mailchimp's default fields, which count towards the 30;
- tags and static segments are the same objects in Mailchimp: tagging a member adds it to the
  static segment of that name, and a new tag name creates that segment.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from email_validator import EmailNotValidError

from segflow_local.fakes.common import normalised_email, utc_iso
from segflow_local.fakes.mailchimp_models import (
    BatchSubscribe,
    MergeFieldCreate,
    PutMember,
    SegmentCreate,
    SegmentMembersUpdate,
)

MAX_BATCH_MEMBERS = 500
MAX_SEGMENT_CHANGES = 500
MAX_MERGE_TAG_LENGTH = 10
MERGE_TAG_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]*$")
COMPLIANCE_STATES = frozenset({"unsubscribed", "cleaned"})

# Mailchimp audiences start with these fields (tag, name, type, options); they count towards the 30.
DEFAULT_MERGE_FIELDS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("FNAME", "First Name", "text", {"size": 25}),
    ("LNAME", "Last Name", "text", {"size": 25}),
    ("ADDRESS", "Address", "address", {"default_country": 164}),
    ("PHONE", "Phone Number", "phone", {"phone_format": "none"}),
    ("BIRTHDAY", "Birthday", "birthday", {"date_format": "MM/DD"}),
)

COMPLIANCE_TITLE = "Member In Compliance State"
FORGOTTEN_TITLE = "Forgotten Email Not Subscribed"


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode()).hexdigest()  # Mailchimp's id scheme


class Problem(Exception):
    """A request-level failure: becomes a problem+json response."""

    def __init__(
        self, status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.errors = status, title, detail, errors


class MemberRejected(Exception):
    """A per-member failure: an entry of errors[] in a batch, a problem+json response on PUT."""

    def __init__(
        self,
        title: str,
        message: str,
        *,
        error_code: str = "ERROR_GENERIC",
        field: str = "",
        field_message: str = "",
    ) -> None:
        super().__init__(message)
        self.title, self.message, self.error_code = title, message, error_code
        self.field, self.field_message = field, field_message

    def as_batch_error(self, email: str) -> dict[str, str]:
        return {
            "email_address": email,
            "error": self.message,
            "error_code": self.error_code,
            "field": self.field,
            "field_message": self.field_message,
        }

    def as_problem(self) -> Problem:
        errors = [{"field": self.field, "message": self.field_message}] if self.field else None
        return Problem(400, self.title, self.message, errors)


@dataclass
class MergeField:
    merge_id: int
    tag: str
    name: str
    type: str
    required: bool = False
    default_value: str = ""
    public: bool = True
    display_order: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    help_text: str = ""

    def as_json(self, list_id: str) -> dict[str, Any]:
        return {
            "merge_id": self.merge_id,
            "tag": self.tag,
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default_value": self.default_value,
            "public": self.public,
            "display_order": self.display_order,
            "options": dict(self.options),
            "help_text": self.help_text,
            "list_id": list_id,
        }


@dataclass
class Member:
    email_address: str
    status: str
    web_id: int
    created_at: float
    last_changed: float
    merge_fields: dict[str, Any] = field(default_factory=dict)
    interests: dict[str, bool] = field(default_factory=dict)
    language: str = ""
    vip: bool = False
    email_type: str = "html"
    ip_signup: str = ""
    ip_opt: str = ""
    location: dict[str, float] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return subscriber_hash(self.email_address)


@dataclass
class Segment:
    id: int
    name: str
    created_at: float
    updated_at: float
    type: str = "static"
    members: dict[str, float] = field(default_factory=dict)  # subscriber hash -> time added


@dataclass
class Audience:
    id: str
    name: str
    web_id: int
    created_at: float
    merge_fields: list[MergeField] = field(default_factory=list)
    members: dict[str, Member] = field(default_factory=dict)
    segments: dict[int, Segment] = field(default_factory=dict)
    forgotten: set[str] = field(default_factory=set)  # subscriber hashes only: the email is gone

    def merge_field(self, tag: str) -> MergeField | None:
        return next((f for f in self.merge_fields if f.tag == tag), None)

    def segment_named(self, name: str) -> Segment | None:
        return next((s for s in self.segments.values() if s.name == name), None)

    def tags_of(self, member_hash: str) -> list[Segment]:
        return [s for s in self.segments.values() if member_hash in s.members]


def _normalised_email(raw: str) -> str:
    try:
        return normalised_email(raw)
    except EmailNotValidError as exc:
        raise MemberRejected(
            "Invalid Resource", f"{raw} looks fake or invalid, please enter a real email address."
        ) from exc


class MailchimpStore:
    """All audiences of one fake account. Not thread-safe by itself: the server holds its lock."""

    def __init__(
        self,
        *,
        max_merge_fields: int = 30,
        default_merge_fields: Sequence[tuple[str, str, str, dict[str, Any]]] = DEFAULT_MERGE_FIELDS,
    ) -> None:
        self.max_merge_fields = max_merge_fields
        self.default_merge_fields = tuple(default_merge_fields)
        self.audiences: dict[str, Audience] = {}
        self._next_web_id = 100_001
        self._next_segment_id = 1
        self._next_merge_id = 1

    def _web_id(self) -> int:
        self._next_web_id += 1
        return self._next_web_id

    # ---- audiences and merge fields ------------------------------------------------------------

    def add_audience(self, name: str, list_id: str, now: float) -> Audience:
        if list_id in self.audiences:
            raise ValueError(f"list {list_id} already exists")
        audience = Audience(id=list_id, name=name, web_id=self._web_id(), created_at=now)
        for tag, field_name, field_type, options in self.default_merge_fields:
            audience.merge_fields.append(self._new_merge_field(tag, field_name, field_type, dict(options)))
        self.audiences[list_id] = audience
        return audience

    def audience(self, list_id: str) -> Audience:
        audience = self.audiences.get(list_id)
        if audience is None:
            raise Problem(404, "Resource Not Found", "The requested resource could not be found.")
        return audience

    def _new_merge_field(self, tag: str, name: str, field_type: str, options: dict[str, Any]) -> MergeField:
        merge_id, self._next_merge_id = self._next_merge_id, self._next_merge_id + 1
        return MergeField(
            merge_id=merge_id, tag=tag, name=name, type=field_type, options=options, display_order=merge_id
        )

    def add_merge_field(self, audience: Audience, request: MergeFieldCreate) -> MergeField:
        def invalid(field_name: str, message: str) -> Problem:
            return Problem(
                400,
                "Invalid Resource",
                "The resource submitted could not be validated. "
                "For field-specific details, see the 'errors' array.",
                [{"field": field_name, "message": message}],
            )

        if len(audience.merge_fields) >= self.max_merge_fields:
            raise invalid(
                "", f"This audience already has the maximum of {self.max_merge_fields} merge fields."
            )
        tag = request.tag
        if tag is not None:
            if len(tag) > MAX_MERGE_TAG_LENGTH:
                raise invalid("tag", f"The merge tag must be at most {MAX_MERGE_TAG_LENGTH} characters.")
            if not MERGE_TAG_PATTERN.match(tag):
                raise invalid(
                    "tag",
                    "The merge tag may contain only upper-case letters, digits and underscores, "
                    "starting with a letter.",
                )
            if audience.merge_field(tag) is not None:
                raise invalid("tag", f'A Merge Field with the tag "{tag}" already exists for this list.')
        options = request.options.model_dump(exclude_none=True) if request.options else {}
        if request.type in ("radio", "dropdown") and not options.get("choices"):
            raise invalid("options.choices", f"A {request.type} merge field needs at least one choice.")
        created = self._new_merge_field(tag or "", request.name, request.type, options)
        if not created.tag:
            created.tag = f"MMERGE{created.merge_id}"  # Mailchimp's generated tag when none is given
        created.required = request.required
        created.default_value = request.default_value or ""
        created.public = request.public
        created.help_text = request.help_text or ""
        if request.display_order is not None:
            created.display_order = request.display_order
        audience.merge_fields.append(created)
        return created

    # ---- members ---------------------------------------------------------------------------------

    def member(self, audience: Audience, hash_or_email: str) -> Member:
        key = subscriber_hash(hash_or_email) if "@" in hash_or_email else hash_or_email.lower()
        member = audience.members.get(key)
        if member is None:
            raise Problem(404, "Resource Not Found", "The requested resource could not be found.")
        return member

    def _check_merge_values(
        self, audience: Audience, values: dict[str, Any], *, is_new: bool, skip_required: bool
    ) -> None:
        def rejected(tag: str, message: str) -> MemberRejected:
            return MemberRejected(
                "Invalid Resource", "Your merge fields were invalid.", field=tag, field_message=message
            )

        for tag, value in values.items():
            definition = audience.merge_field(tag)
            if definition is None:
                raise rejected(tag, f"The merge field {tag} does not exist on this audience.")
            problem = _merge_value_problem(definition, value)
            if problem:
                raise rejected(tag, problem)
        if skip_required:
            return
        for definition in audience.merge_fields:
            if not definition.required:
                continue
            value = values.get(definition.tag, None if is_new else "<unchanged>")
            if value is None or value == "":
                raise rejected(definition.tag, "Please enter a value")

    def apply_member(
        self,
        audience: Audience,
        fields: PutMember | Any,
        *,
        status: str | None,
        status_if_new: str | None,
        allow_existing: bool,
        skip_merge_validation: bool,
        now: float,
    ) -> tuple[Member, bool]:
        """Create or update one member under Mailchimp's rules; returns (member, created)."""
        email = _normalised_email(fields.email_address)
        key = subscriber_hash(email)
        existing = audience.members.get(key)
        merge_values = dict(fields.merge_fields or {})
        if existing is None:
            if key in audience.forgotten:
                raise MemberRejected(
                    FORGOTTEN_TITLE,
                    f"{fields.email_address} was permanently deleted and cannot be re-imported. "
                    "The contact must re-subscribe to get back on the list.",
                )
            self._check_merge_values(audience, merge_values, is_new=True, skip_required=skip_merge_validation)
            member = Member(
                email_address=fields.email_address.strip(),
                status=status or status_if_new or "subscribed",
                web_id=self._web_id(),
                created_at=now,
                last_changed=now,
            )
            self._update_member_fields(member, fields, merge_values)
            audience.members[key] = member
            return member, True
        if not allow_existing:
            raise MemberRejected(
                "Member Exists",
                f"{fields.email_address} is already a list member. Use PUT to insert or update list members.",
                error_code="ERROR_CONTACT_EXISTS",
            )
        if status == "subscribed" and existing.status in COMPLIANCE_STATES:
            raise MemberRejected(
                COMPLIANCE_TITLE,
                f"{fields.email_address} is in a compliance state due to unsubscribe, bounce, or compliance "
                "review and cannot be subscribed.",
            )
        self._check_merge_values(audience, merge_values, is_new=False, skip_required=skip_merge_validation)
        self._update_member_fields(existing, fields, merge_values)
        if status and status != existing.status:
            existing.status = status
        existing.last_changed = now
        return existing, False

    @staticmethod
    def _update_member_fields(member: Member, fields: Any, merge_values: dict[str, Any]) -> None:
        member.merge_fields.update(merge_values)
        if fields.interests:
            member.interests.update(fields.interests)
        for name in ("language", "vip", "email_type", "ip_signup", "ip_opt"):
            value = getattr(fields, name, None)
            if value is not None:
                setattr(member, name, value)
        if fields.location is not None:
            member.location = fields.location.model_dump(exclude_none=True)

    def batch_subscribe(
        self,
        audience: Audience,
        request: BatchSubscribe,
        *,
        skip_merge_validation: bool,
        skip_duplicate_check: bool,
        now: float,
    ) -> dict[str, Any]:
        if len(request.members) > MAX_BATCH_MEMBERS:
            raise Problem(
                400,
                "Invalid Resource",
                f"A batch may hold at most {MAX_BATCH_MEMBERS} members; received {len(request.members)}.",
                [{"field": "members", "message": f"at most {MAX_BATCH_MEMBERS} items"}],
            )
        new_members: list[Member] = []
        updated_members: list[Member] = []
        errors: list[dict[str, str]] = []
        seen: set[str] = set()
        for item in request.members:
            try:
                key = subscriber_hash(_normalised_email(item.email_address))
                if key in seen and not skip_duplicate_check:
                    raise MemberRejected(
                        "Invalid Resource", f"{item.email_address} appears more than once in this batch."
                    )
                seen.add(key)
                member, created = self.apply_member(
                    audience,
                    item,
                    status=item.status,
                    status_if_new=None,
                    allow_existing=request.update_existing,
                    skip_merge_validation=skip_merge_validation,
                    now=now,
                )
            except MemberRejected as rejection:
                errors.append(rejection.as_batch_error(item.email_address))
                continue
            (new_members if created else updated_members).append(member)
        return {
            "new_members": [self.member_json(audience, m) for m in new_members],
            "updated_members": [self.member_json(audience, m) for m in updated_members],
            "errors": errors,
            "total_created": len(new_members),
            "total_updated": len(updated_members),
            "error_count": len(errors),
        }

    def forget(self, audience: Audience, hash_or_email: str) -> None:
        member = self.member(audience, hash_or_email)
        key = member.hash
        del audience.members[key]
        for segment in audience.segments.values():
            segment.members.pop(key, None)
        audience.forgotten.add(key)

    # ---- tags and static segments -----------------------------------------------------------------

    def _new_segment(self, audience: Audience, name: str, now: float) -> Segment:
        segment = Segment(id=self._next_segment_id, name=name, created_at=now, updated_at=now)
        self._next_segment_id += 1
        audience.segments[segment.id] = segment
        return segment

    def set_tags(
        self, audience: Audience, member: Member, tags: Iterable[tuple[str, bool]], now: float
    ) -> None:
        for name, active in tags:
            segment = audience.segment_named(name)
            if active:
                segment = segment or self._new_segment(audience, name, now)
                segment.members.setdefault(member.hash, now)
                segment.updated_at = now
            elif segment is not None and segment.members.pop(member.hash, None) is not None:
                segment.updated_at = now

    def create_segment(self, audience: Audience, request: SegmentCreate, now: float) -> Segment:
        if request.options is not None and request.static_segment is not None:
            raise Problem(
                400,
                "Invalid Resource",
                "Provide either static_segment or options, not both.",
                [{"field": "static_segment", "message": "not allowed together with options"}],
            )
        if request.options is not None:
            raise Problem(
                400,
                "Invalid Resource",
                "This fake supports static segments only (no saved conditions).",
                [{"field": "options", "message": "saved segments are not supported by the fake"}],
            )
        if audience.segment_named(request.name) is not None:
            raise Problem(
                400,
                "Invalid Resource",
                f'A tag or segment named "{request.name}" already exists.',
                [{"field": "name", "message": "must be unique"}],
            )
        segment = self._new_segment(audience, request.name, now)
        for email in request.static_segment or []:
            key = subscriber_hash(email)
            if key in audience.members:  # emails not on the audience are ignored, as documented
                segment.members[key] = now
        return segment

    def segment(self, audience: Audience, segment_id: str) -> Segment:
        segment = audience.segments.get(int(segment_id)) if segment_id.isdigit() else None
        if segment is None:
            raise Problem(404, "Resource Not Found", "The requested resource could not be found.")
        return segment

    def update_segment_members(
        self, audience: Audience, segment: Segment, request: SegmentMembersUpdate, now: float
    ) -> dict[str, Any]:
        for name, items in (
            ("members_to_add", request.members_to_add),
            ("members_to_remove", request.members_to_remove),
        ):
            if len(items) > MAX_SEGMENT_CHANGES:
                raise Problem(
                    400,
                    "Invalid Resource",
                    f"{name} may hold at most {MAX_SEGMENT_CHANGES} emails; received {len(items)}.",
                    [{"field": name, "message": f"at most {MAX_SEGMENT_CHANGES} items"}],
                )
        added: list[Member] = []
        removed: list[Member] = []
        not_on_list: list[str] = []
        for email in request.members_to_add:
            member = audience.members.get(subscriber_hash(email))
            if member is None:
                not_on_list.append(email)
            elif member.hash not in segment.members:
                segment.members[member.hash] = now
                added.append(member)
        not_in_segment: list[str] = []
        for email in request.members_to_remove:
            key = subscriber_hash(email)
            if segment.members.pop(key, None) is None:
                not_in_segment.append(email)
            else:
                removed.append(audience.members[key])
        if added or removed:
            segment.updated_at = now
        errors = []
        if not_on_list:
            errors.append(
                {"email_addresses": not_on_list, "error": "Email addresses are not members of this list."}
            )
        if not_in_segment:
            errors.append(
                {"email_addresses": not_in_segment, "error": "Email addresses are not in this segment."}
            )
        return {
            "members_added": [self.member_json(audience, m) for m in added],
            "members_removed": [self.member_json(audience, m) for m in removed],
            "errors": errors,
            "total_added": len(added),
            "total_removed": len(removed),
            "error_count": sum(len(e["email_addresses"]) for e in errors),
        }

    # ---- JSON views ------------------------------------------------------------------------------

    def member_json(self, audience: Audience, member: Member) -> dict[str, Any]:
        tags = [{"id": s.id, "name": s.name} for s in audience.tags_of(member.hash)]
        return {
            "id": member.hash,
            "email_address": member.email_address,
            "unique_email_id": member.hash[:10],
            "contact_id": member.hash,
            "web_id": member.web_id,
            "email_type": member.email_type,
            "status": member.status,
            "merge_fields": dict(member.merge_fields),
            "interests": dict(member.interests),
            "stats": {"avg_open_rate": 0, "avg_click_rate": 0},
            "ip_signup": member.ip_signup,
            "timestamp_signup": utc_iso(member.created_at),
            "ip_opt": member.ip_opt,
            "timestamp_opt": utc_iso(member.created_at),
            "member_rating": 2,
            "last_changed": utc_iso(member.last_changed),
            "language": member.language,
            "vip": member.vip,
            "email_client": "",
            "location": {"latitude": 0, "longitude": 0, **member.location},
            "tags_count": len(tags),
            "tags": tags,
            "list_id": audience.id,
        }

    @staticmethod
    def segment_json(audience: Audience, segment: Segment) -> dict[str, Any]:
        return {
            "id": segment.id,
            "name": segment.name,
            "member_count": len(segment.members),
            "type": segment.type,
            "created_at": utc_iso(segment.created_at),
            "updated_at": utc_iso(segment.updated_at),
            "list_id": audience.id,
        }

    @staticmethod
    def audience_json(audience: Audience) -> dict[str, Any]:
        statuses = [m.status for m in audience.members.values()]
        return {
            "id": audience.id,
            "web_id": audience.web_id,
            "name": audience.name,
            "date_created": utc_iso(audience.created_at),
            "double_optin": False,
            "email_type_option": False,
            "visibility": "prv",
            "stats": {
                "member_count": statuses.count("subscribed"),
                "unsubscribe_count": statuses.count("unsubscribed"),
                "cleaned_count": statuses.count("cleaned"),
                "total_contacts": len(statuses),
                "merge_field_count": len(audience.merge_fields),
            },
        }

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable view of every audience, members keyed by lower-cased email."""
        result: dict[str, Any] = {}
        for audience in self.audiences.values():
            result[audience.id] = {
                "name": audience.name,
                "merge_fields": [
                    {
                        "tag": f.tag,
                        "name": f.name,
                        "type": f.type,
                        "required": f.required,
                        "options": dict(f.options),
                    }
                    for f in audience.merge_fields
                ],
                "members": {
                    m.email_address.lower(): {
                        "status": m.status,
                        "merge_fields": dict(m.merge_fields),
                        "tags": sorted(s.name for s in audience.tags_of(key)),
                        "vip": m.vip,
                        "language": m.language,
                    }
                    for key, m in audience.members.items()
                },
                "segments": {
                    s.name: {
                        "id": s.id,
                        "type": s.type,
                        "members": sorted(audience.members[k].email_address.lower() for k in s.members),
                    }
                    for s in audience.segments.values()
                },
                "forgotten_hashes": sorted(audience.forgotten),
            }
        return result


def _merge_value_problem(definition: MergeField, value: Any) -> str | None:
    """Why a merge value does not fit its field type, or None. Empty strings clear a field."""
    if value == "":
        return None
    kind = definition.type
    if kind == "address":
        if not isinstance(value, dict):
            return "An address must be an object with addr1, city, state and zip."
        missing = [k for k in ("addr1", "city", "state", "zip") if not value.get(k)]
        return f"The address is missing {', '.join(missing)}." if missing else None
    if kind == "number":
        if isinstance(value, bool):
            return "Please enter a number"
        if isinstance(value, (int, float)):
            return None
        try:
            float(str(value))
        except ValueError:
            return "Please enter a number"
        return None
    if not isinstance(value, str):
        return f"A {kind} merge field takes a string."
    if kind in ("radio", "dropdown") and value not in definition.options.get("choices", []):
        return f"'{value}' is not one of the field's choices."
    if kind == "date":
        try:
            date.fromisoformat(value)
        except ValueError:
            if not re.fullmatch(r"\d{2}/\d{2}/\d{4}", value):
                return "Please enter a date (YYYY-MM-DD or the field's date format)."
    if kind == "birthday" and not re.fullmatch(r"\d{2}/\d{2}", value):
        return "Please enter a birthday as MM/DD."
    if kind in ("url", "imageurl") and not re.match(r"^https?://", value):
        return "Please enter a URL starting with http:// or https://."
    if kind == "zip" and not re.fullmatch(r"\d{5}(-\d{4})?", value):
        return "Please enter a US zip code."
    if kind == "text" and len(value) > 255:
        return "Text merge values are at most 255 characters."
    return None

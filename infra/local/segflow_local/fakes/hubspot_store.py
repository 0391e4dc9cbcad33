"""In-memory HubSpot portal state and the rules the real CRM v3 API applies to it (no HTTP here).

Modelled facts (see /work/shared/API-NOTES.md): batch upsert by email, at most 100 inputs, duplicate
ids in one batch refused; per-input failures (unknown property, invalid enumeration option, GDPR
blocklisted email) come back as a 207 multi-status; property and group names are unique (409);
lists v3 with unique names and membership by record id; GDPR delete blocklists the email; an
opted-out subscription is not silently re-subscribed.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from email_validator import EmailNotValidError

from segflow_local.fakes.common import normalised_email, utc_iso_millis
from segflow_local.fakes.hubspot_models import (
    BatchRead,
    BatchUpsert,
    ListCreate,
    ListSearch,
    PropertyCreate,
    PropertyGroupCreate,
    PropertyUpdate,
    StatusUpdate,
)

MAX_BATCH_INPUTS = 100
MAX_MEMBERSHIP_CHANGE = 100_000
CONTACT_OBJECT_TYPE_ID = "0-1"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
READ_ONLY_PROPERTIES = frozenset({"hs_object_id", "createdate", "lastmodifieddate"})
COMPATIBLE_FIELD_TYPES: dict[str, frozenset[str]] = {
    "string": frozenset({"text", "textarea", "file", "phonenumber"}),
    "number": frozenset({"number", "calculation_equation"}),
    "date": frozenset({"date"}),
    "datetime": frozenset({"date"}),
    "enumeration": frozenset({"select", "radio", "checkbox", "booleancheckbox"}),
    "bool": frozenset({"booleancheckbox"}),
    "phone_number": frozenset({"phonenumber"}),
}
LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
DEFAULT_GROUPS = (("contactinformation", "Contact information"), ("emailinformation", "Email information"))
# name, label, type, fieldType, options
DEFAULT_PROPERTIES: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("email", "Email", "string", "text", ()),
    ("firstname", "First Name", "string", "text", ()),
    ("lastname", "Last Name", "string", "text", ()),
    ("phone", "Phone Number", "string", "phonenumber", ()),
    ("company", "Company Name", "string", "text", ()),
    ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", LIFECYCLE_STAGES),
    ("hs_object_id", "Record ID", "number", "number", ()),
    ("createdate", "Create Date", "datetime", "date", ()),
    ("lastmodifieddate", "Last Modified Date", "datetime", "date", ()),
)
DEFAULT_SUBSCRIPTIONS: tuple[tuple[int, str], ...] = ((1, "Marketing Information"),)


def email_hash(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


class HubSpotError(Exception):
    """A request-level failure: becomes HubSpot's {status, message, correlationId, category, ...}."""

    def __init__(
        self,
        status: int,
        message: str,
        category: str = "VALIDATION_ERROR",
        errors: list[dict[str, Any]] | None = None,
        context: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.category = status, message, category
        self.errors, self.context = errors, context


@dataclass
class PropertyDef:
    name: str
    label: str
    type: str
    field_type: str
    group_name: str
    created_at: float
    options: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""
    display_order: int = -1
    hubspot_defined: bool = False
    has_unique_value: bool = False
    hidden: bool = False
    form_field: bool = False
    updated_at: float | None = None

    @property
    def read_only(self) -> bool:
        return self.name in READ_ONLY_PROPERTIES

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": self.group_name,
            "description": self.description,
            "options": [dict(o) for o in self.options],
            "displayOrder": self.display_order,
            "hubspotDefined": self.hubspot_defined,
            "hasUniqueValue": self.has_unique_value,
            "hidden": self.hidden,
            "formField": self.form_field,
            "calculated": False,
            "externalOptions": False,
            "archived": False,
            "createdAt": utc_iso_millis(self.created_at),
            "updatedAt": utc_iso_millis(self.updated_at if self.updated_at is not None else self.created_at),
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
                "readOnlyOptions": self.hubspot_defined,
            },
        }


@dataclass
class Contact:
    id: str
    created_at: float
    updated_at: float
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def email(self) -> str:
        return self.properties.get("email", "")


@dataclass
class HsList:
    list_id: str
    name: str
    processing_type: str
    created_at: float
    updated_at: float
    version: int = 1
    filter_branch: dict[str, Any] | None = None
    members: dict[str, float] = field(default_factory=dict)  # record id -> time added

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "listId": self.list_id,
            "name": self.name,
            "objectTypeId": CONTACT_OBJECT_TYPE_ID,
            "processingType": self.processing_type,
            "processingStatus": "COMPLETE",
            "listVersion": self.version,
            "size": len(self.members),
            "createdAt": utc_iso_millis(self.created_at),
            "updatedAt": utc_iso_millis(self.updated_at),
        }
        if self.filter_branch is not None:
            body["filterBranch"] = self.filter_branch
        return body


@dataclass
class SubscriptionStatus:
    status: str
    timestamp: float
    legal_basis: str | None = None
    legal_basis_explanation: str | None = None


class HubSpotStore:
    """One fake HubSpot portal. Not thread-safe by itself: the server holds its lock."""

    def __init__(
        self,
        *,
        now: float,
        subscriptions: Sequence[tuple[int, str]] = DEFAULT_SUBSCRIPTIONS,
        allow_resubscribe: bool = False,
        require_legal_basis: bool = True,
    ) -> None:
        self.allow_resubscribe = allow_resubscribe
        self.require_legal_basis = require_legal_basis
        self.groups: dict[str, dict[str, Any]] = {}
        self.properties: dict[str, PropertyDef] = {}
        self.contacts: dict[str, Contact] = {}
        self.by_email: dict[str, str] = {}
        self.lists: dict[str, HsList] = {}
        self.subscription_names = dict(subscriptions)
        self.statuses: dict[tuple[str, int], SubscriptionStatus] = {}
        self.blocklist: set[str] = set()  # sha256 of lower-cased emails: the address itself is erased
        self._next_contact_id = 101
        self._next_list_id = 1
        self._created_at = now
        for order, (name, label) in enumerate(DEFAULT_GROUPS):
            self.groups[name] = {"name": name, "label": label, "displayOrder": order, "archived": False}
        for order, (name, label, kind, field_type, options) in enumerate(DEFAULT_PROPERTIES):
            self.properties[name] = PropertyDef(
                name=name,
                label=label,
                type=kind,
                field_type=field_type,
                group_name="contactinformation",
                created_at=now,
                display_order=order,
                hubspot_defined=True,
                has_unique_value=name == "email",
                options=[
                    {"label": value, "value": value, "hidden": False, "displayOrder": i}
                    for i, value in enumerate(options)
                ],
            )

    # ---- property groups and properties --------------------------------------------------------

    def create_group(self, request: PropertyGroupCreate) -> dict[str, Any]:
        if not NAME_PATTERN.match(request.name):
            raise HubSpotError(
                400, f"Group name '{request.name}' must be lower-case letters, digits and underscores."
            )
        if request.name in self.groups:
            raise HubSpotError(409, f"A property group named '{request.name}' already exists.", "CONFLICT")
        group = {
            "name": request.name,
            "label": request.label,
            "displayOrder": request.displayOrder if request.displayOrder is not None else -1,
            "archived": False,
        }
        self.groups[request.name] = group
        return dict(group)

    def group(self, name: str) -> dict[str, Any]:
        if name not in self.groups:
            raise HubSpotError(404, f"Property group '{name}' does not exist.", "OBJECT_NOT_FOUND")
        return dict(self.groups[name])

    def create_property(self, request: PropertyCreate, now: float) -> PropertyDef:
        if not NAME_PATTERN.match(request.name):
            raise HubSpotError(
                400,
                f"Property name '{request.name}' must start with a letter and contain only "
                "lower-case letters, digits and underscores.",
            )
        if request.name in self.properties:
            raise HubSpotError(409, f"Property named '{request.name}' already exists.", "CONFLICT")
        if request.groupName not in self.groups:
            raise HubSpotError(400, f"Property group '{request.groupName}' does not exist.")
        if request.fieldType not in COMPATIBLE_FIELD_TYPES[request.type]:
            raise HubSpotError(
                400, f"fieldType '{request.fieldType}' is not valid for a property of type '{request.type}'."
            )
        values = [o.value for o in request.options]
        if request.type == "enumeration" and not values:
            raise HubSpotError(400, "An enumeration property needs at least one option.")
        if len(values) != len(set(values)):
            raise HubSpotError(400, "Option values must be unique.")
        created = PropertyDef(
            name=request.name,
            label=request.label,
            type=request.type,
            field_type=request.fieldType,
            group_name=request.groupName,
            created_at=now,
            description=request.description or "",
            display_order=request.displayOrder if request.displayOrder is not None else -1,
            has_unique_value=bool(request.hasUniqueValue),
            hidden=bool(request.hidden),
            form_field=bool(request.formField),
            options=[o.model_dump(exclude_none=True) for o in request.options],
        )
        self.properties[request.name] = created
        return created

    def update_property(self, name: str, request: PropertyUpdate, now: float) -> PropertyDef:
        """PATCH semantics: only the given fields change; `options` replaces the whole list, so a client
        adding an option sends the existing ones too (options missing from the list are removed)."""
        definition = self.properties.get(name)
        if definition is None:
            raise HubSpotError(404, f"Property {name} does not exist.", "OBJECT_NOT_FOUND")
        if definition.hubspot_defined:
            raise HubSpotError(400, f"Property {name} is defined by HubSpot and cannot be changed.")
        new_type = request.type or definition.type
        new_field_type = request.fieldType or definition.field_type
        if new_field_type not in COMPATIBLE_FIELD_TYPES[new_type]:
            raise HubSpotError(
                400, f"fieldType '{new_field_type}' is not valid for a property of type '{new_type}'."
            )
        if request.groupName is not None and request.groupName not in self.groups:
            raise HubSpotError(400, f"Property group '{request.groupName}' does not exist.")
        if request.options is not None:
            values = [o.value for o in request.options]
            if len(values) != len(set(values)):
                raise HubSpotError(400, "Option values must be unique.")
            if new_type == "enumeration" and not values:
                raise HubSpotError(400, "An enumeration property needs at least one option.")
            definition.options = [o.model_dump(exclude_none=True) for o in request.options]
        definition.type, definition.field_type = new_type, new_field_type
        for attribute, value in (
            ("label", request.label),
            ("group_name", request.groupName),
            ("description", request.description),
            ("display_order", request.displayOrder),
            ("hidden", request.hidden),
            ("form_field", request.formField),
        ):
            if value is not None:
                setattr(definition, attribute, value)
        definition.updated_at = now
        return definition

    def _value_problem(self, name: str, value: str) -> tuple[str, str] | None:
        """(code, message) when a property value is not acceptable; empty strings clear a value."""
        definition = self.properties.get(name)
        if definition is None:
            return "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
        if definition.read_only:
            return "READ_ONLY_VALUE", f'Property "{name}" is read-only'
        if value == "":
            return None
        kind = definition.type
        if kind == "enumeration":
            allowed = [o["value"] for o in definition.options]
            chosen = value.split(";") if definition.field_type == "checkbox" else [value]
            bad = [v for v in chosen if v not in allowed]
            if bad:
                return (
                    "INVALID_OPTION",
                    f'"{bad[0]}" was not one of the allowed options: [{", ".join(allowed)}]',
                )
        elif kind == "number":
            try:
                float(value)
            except ValueError:
                return "INVALID_DOUBLE", f'"{value}" is not a valid number'
        elif kind == "bool" and value not in ("true", "false"):
            return "INVALID_BOOLEAN", f'"{value}" is not a valid boolean (true or false)'
        elif kind in ("date", "datetime") and not _is_date_value(value, kind):
            return "INVALID_DATE", f'"{value}" is not a valid {kind} (ISO 8601 or epoch milliseconds)'
        return None

    # ---- contacts ------------------------------------------------------------------------------

    def is_blocklisted(self, email: str) -> bool:
        return email_hash(email) in self.blocklist

    def contact_by_email(self, email: str) -> Contact | None:
        contact_id = self.by_email.get(email.strip().lower())
        return self.contacts.get(contact_id) if contact_id else None

    def create_contact(self, email: str, now: float) -> Contact:
        contact_id = str(self._next_contact_id)
        self._next_contact_id += 1
        stamp = utc_iso_millis(now)
        contact = Contact(
            id=contact_id,
            created_at=now,
            updated_at=now,
            properties={
                "email": email,
                "hs_object_id": contact_id,
                "createdate": stamp,
                "lastmodifieddate": stamp,
            },
        )
        self.contacts[contact_id] = contact
        self.by_email[email] = contact_id
        return contact

    def batch_upsert(self, request: BatchUpsert, now: float) -> tuple[int, dict[str, Any]]:
        inputs = request.inputs
        if len(inputs) > MAX_BATCH_INPUTS:
            raise HubSpotError(
                400, f"Batch input may contain at most {MAX_BATCH_INPUTS} inputs; got {len(inputs)}."
            )
        not_email = [i.idProperty for i in inputs if i.idProperty != "email"]
        if not_email:
            raise HubSpotError(
                400,
                "Batch upsert needs idProperty 'email' on every input (the fake supports "
                f"upsert by email only); got {not_email[0]!r}.",
            )
        keys = [i.id.strip().lower() for i in inputs]
        duplicates = sorted(k for k, n in Counter(keys).items() if n > 1)
        if duplicates:
            raise HubSpotError(
                400,
                f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique.",
                context={"ids": duplicates},
            )
        started = utc_iso_millis(now)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item, email in zip(inputs, keys, strict=True):
            failure = self._upsert_failure(item.id, email, item.properties)
            if failure is not None:
                errors.append(failure)
                continue
            contact = self.contact_by_email(email)
            created = contact is None
            if contact is None:
                contact = self.create_contact(email, now)
            contact.properties.update({k: v for k, v in item.properties.items() if k != "email"})
            contact.updated_at = now
            contact.properties["lastmodifieddate"] = utc_iso_millis(now)
            results.append({**self.contact_json(contact), "new": created})
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": utc_iso_millis(now),
        }
        if errors:
            body["errors"] = errors
            body["numErrors"] = len(errors)
        return (207 if errors else 200), body

    def _upsert_failure(self, raw_id: str, email: str, properties: dict[str, str]) -> dict[str, Any] | None:
        def failure(message: str, category: str, details: list[dict[str, Any]]) -> dict[str, Any]:
            return {
                "status": "error",
                "category": category,
                "message": message,
                "context": {"ids": [raw_id]},
                "links": {},
                "errors": details,
            }

        try:
            normalised_email(email)
        except EmailNotValidError:
            return failure(
                f"Email address {raw_id} is invalid",
                "VALIDATION_ERROR",
                [{"message": "invalid email address", "code": "INVALID_EMAIL", "in": "email"}],
            )
        if self.is_blocklisted(email):
            return failure(
                "This contact was permanently deleted (GDPR) and its email address cannot be used again.",
                "VALIDATION_ERROR",
                [
                    {
                        "message": "email address is blocklisted after a GDPR delete",
                        "code": "GDPR_BLOCKLISTED",
                        "in": "email",
                    }
                ],
            )
        given_email = properties.get("email")
        if given_email is not None and given_email.strip().lower() != email:
            return failure(
                "The email property must match the id of an upsert by email.",
                "VALIDATION_ERROR",
                [{"message": "email differs from id", "code": "INVALID_EMAIL", "in": "email"}],
            )
        problems = []
        for name, value in properties.items():
            problem = None if name == "email" else self._value_problem(name, value)
            if problem is not None:
                code, message = problem
                problems.append(
                    {"message": message, "code": code, "in": name, "context": {"propertyName": [name]}}
                )
        if problems:
            return failure("Property values were not valid", "VALIDATION_ERROR", problems)
        return None

    def contact_json(self, contact: Contact, wanted: Iterable[str] | None = None) -> dict[str, Any]:
        if wanted is None:
            properties: dict[str, str | None] = dict(contact.properties)
        else:
            base = {"hs_object_id", "createdate", "lastmodifieddate"}
            properties = {name: contact.properties.get(name) for name in [*base, *wanted]}
        return {
            "id": contact.id,
            "properties": properties,
            "createdAt": utc_iso_millis(contact.created_at),
            "updatedAt": utc_iso_millis(contact.updated_at),
            "archived": False,
        }

    def find_contact(self, contact_id: str, id_property: str | None) -> Contact | None:
        if id_property == "email":
            return self.contact_by_email(contact_id)
        if id_property not in (None, "hs_object_id"):
            raise HubSpotError(
                400, f"idProperty {id_property!r} is not a unique property (use email or hs_object_id)."
            )
        return self.contacts.get(contact_id)

    def batch_read(self, request: BatchRead, now: float) -> tuple[int, dict[str, Any]]:
        if len(request.inputs) > MAX_BATCH_INPUTS:
            raise HubSpotError(400, f"Batch input may contain at most {MAX_BATCH_INPUTS} inputs.")
        results, missing = [], []
        for item in request.inputs:
            contact = self.find_contact(item.id, request.idProperty)
            if contact is None:
                missing.append(item.id)
            else:
                results.append(self.contact_json(contact, request.properties))
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": utc_iso_millis(now),
            "completedAt": utc_iso_millis(now),
        }
        if not missing:
            return 200, body
        body["numErrors"] = 1
        body["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "links": {},
                "errors": [],
                "message": "Could not get some CONTACT objects, they may be deleted or not exist.",
                "context": {"ids": missing},
            }
        ]
        return 207, body

    def gdpr_delete(self, object_id: str, id_property: str | None) -> None:
        contact = self.find_contact(object_id, id_property)
        if contact is None and id_property != "email":
            raise HubSpotError(404, f"Contact {object_id} does not exist.", "OBJECT_NOT_FOUND")
        email = contact.email if contact else object_id.strip().lower()
        if contact is not None:
            del self.contacts[contact.id]
            self.by_email.pop(contact.email, None)
            for hs_list in self.lists.values():
                hs_list.members.pop(contact.id, None)
        for key in [k for k in self.statuses if k[0] == email]:
            del self.statuses[key]
        self.blocklist.add(email_hash(email))

    # ---- lists ---------------------------------------------------------------------------------

    def create_list(self, request: ListCreate, now: float) -> HsList:
        if request.objectTypeId != CONTACT_OBJECT_TYPE_ID:
            raise HubSpotError(
                400, f"objectTypeId {request.objectTypeId!r} is not supported by the fake (contacts: 0-1)."
            )
        if self.list_by_name(request.name) is not None:
            raise HubSpotError(409, f"A list named '{request.name}' already exists.", "CONFLICT")
        if request.processingType == "DYNAMIC" and request.filterBranch is None:
            raise HubSpotError(400, "A DYNAMIC list needs a filterBranch.")
        created = HsList(
            list_id=str(self._next_list_id),
            name=request.name,
            processing_type=request.processingType,
            created_at=now,
            updated_at=now,
            filter_branch=request.filterBranch,
        )
        self._next_list_id += 1
        self.lists[created.list_id] = created
        return created

    def list_by_name(self, name: str) -> HsList | None:
        wanted = name.casefold()
        return next((li for li in self.lists.values() if li.name.casefold() == wanted), None)

    def hs_list(self, list_id: str) -> HsList:
        found = self.lists.get(list_id)
        if found is None:
            raise HubSpotError(404, f"List {list_id} does not exist.", "OBJECT_NOT_FOUND")
        return found

    def search_lists(self, request: ListSearch) -> dict[str, Any]:
        matches = [
            li
            for li in self.lists.values()
            if (not request.query or request.query.casefold() in li.name.casefold())
            and (not request.listIds or li.list_id in request.listIds)
            and (not request.processingTypes or li.processing_type in request.processingTypes)
        ]
        page = matches[request.offset : request.offset + request.count]
        lists = [{**li.as_json(), "additionalProperties": {}} for li in page]
        for item in lists:
            item.pop("size", None)
            item.pop("filterBranch", None)
        return {
            "lists": lists,
            "offset": request.offset + len(page),
            "total": len(matches),
            "hasMore": request.offset + len(page) < len(matches),
        }

    def change_memberships(
        self, hs_list: HsList, record_ids: list[str], add: bool, now: float
    ) -> dict[str, Any]:
        if hs_list.processing_type == "DYNAMIC":
            raise HubSpotError(
                400, f"List {hs_list.list_id} is DYNAMIC: its memberships cannot be edited by hand."
            )
        if len(record_ids) > MAX_MEMBERSHIP_CHANGE:
            raise HubSpotError(400, f"At most {MAX_MEMBERSHIP_CHANGE} record ids per request.")
        changed, missing = [], []
        for record_id in dict.fromkeys(record_ids):
            if add and record_id in self.contacts:
                if record_id not in hs_list.members:
                    hs_list.members[record_id] = now
                    changed.append(record_id)
            elif not add and hs_list.members.pop(record_id, None) is not None:
                changed.append(record_id)
            else:
                missing.append(record_id)
        if changed:
            hs_list.version += 1
            hs_list.updated_at = now
        key = "recordsIdsAdded" if add else "recordIdsRemoved"  # sic: HubSpot's spelling
        return {key: changed, "recordIdsMissing": missing}

    # ---- subscriptions (communication preferences v4) -------------------------------------------

    def status_results(self, email: str) -> list[dict[str, Any]]:
        key = email.strip().lower()
        return [self._status_json(key, sub_id) for sub_id in self.subscription_names]

    def _status_json(self, email: str, subscription_id: int, reason: str | None = None) -> dict[str, Any]:
        current = self.statuses.get((email, subscription_id))
        body: dict[str, Any] = {
            "subscriberIdString": email,
            "channel": "EMAIL",
            "subscriptionId": subscription_id,
            "subscriptionName": self.subscription_names[subscription_id],
            "status": current.status if current else "NOT_SPECIFIED",
            "source": "PUBLIC_API",
            "timestamp": utc_iso_millis(current.timestamp if current else self._created_at),
        }
        optional = {
            "legalBasis": current.legal_basis if current else None,
            "legalBasisExplanation": current.legal_basis_explanation if current else None,
            "setStatusSuccessReason": reason,
        }
        # omitted rather than null: the spec's nullable enums reject null under JSON-schema validation
        body.update({k: v for k, v in optional.items() if v is not None})
        return body

    def set_status(self, email: str, request: StatusUpdate, now: float) -> dict[str, Any]:
        key = email.strip().lower()
        if request.channel != "EMAIL":
            raise HubSpotError(400, f"Channel {request.channel} is not supported by the fake (EMAIL only).")
        if request.subscriptionId not in self.subscription_names:
            raise HubSpotError(400, f"Subscription {request.subscriptionId} does not exist.")
        if self.is_blocklisted(key):
            raise HubSpotError(
                400, "This email address was permanently deleted (GDPR) and cannot be used again."
            )
        if request.statusState == "SUBSCRIBED" and self.require_legal_basis and request.legalBasis is None:
            raise HubSpotError(
                400, "A legal basis is required to subscribe a contact in a GDPR-enabled portal."
            )
        current = self.statuses.get((key, request.subscriptionId))
        previous = current.status if current else "NOT_SPECIFIED"
        if previous == request.statusState:
            reason = "NO_STATUS_CHANGE"
        elif previous == "UNSUBSCRIBED" and request.statusState == "SUBSCRIBED":
            if not self.allow_resubscribe:
                raise HubSpotError(
                    400,
                    "This contact has opted out of this subscription and cannot be "
                    "re-subscribed through the API.",
                )
            reason = "RESUBSCRIBE_OCCURRED"
        else:
            reason = "REQUESTED_CHANGE_OCCURRED"
        self.statuses[(key, request.subscriptionId)] = SubscriptionStatus(
            request.statusState, now, request.legalBasis, request.legalBasisExplanation
        )
        return self._status_json(key, request.subscriptionId, reason)

    def definitions_json(self) -> list[dict[str, Any]]:
        stamp = utc_iso_millis(self._created_at)
        return [
            {
                "id": str(sub_id),
                "name": name,
                "description": f"{name} subscription",
                "purpose": "Marketing",
                "communicationMethod": "Email",
                "isActive": True,
                "isDefault": sub_id == min(self.subscription_names),
                "isInternal": False,
                "createdAt": stamp,
                "updatedAt": stamp,
            }
            for sub_id, name in self.subscription_names.items()
        ]

    # ---- snapshot ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        email_of = {c.id: c.email for c in self.contacts.values()}
        return {
            "contacts": {
                c.email: {"id": c.id, "properties": dict(c.properties)} for c in self.contacts.values()
            },
            "properties": {
                p.name: {
                    "type": p.type,
                    "fieldType": p.field_type,
                    "groupName": p.group_name,
                    "label": p.label,
                    "options": [o["value"] for o in p.options],
                    "hubspotDefined": p.hubspot_defined,
                }
                for p in self.properties.values()
            },
            "groups": sorted(self.groups),
            "lists": {
                li.name: {
                    "listId": li.list_id,
                    "processingType": li.processing_type,
                    "members": sorted(email_of[r] for r in li.members),
                }
                for li in self.lists.values()
            },
            "subscriptions": {
                email: {str(sub_id): s.status for (e, sub_id), s in self.statuses.items() if e == email}
                for email in sorted({e for e, _ in self.statuses})
            },
            "blocklisted_hashes": sorted(self.blocklist),
        }


def _is_date_value(value: str, kind: str) -> bool:
    if value.isdigit():  # epoch milliseconds; dates must be midnight UTC
        return kind == "datetime" or int(value) % 86_400_000 == 0
    try:
        if kind == "date":
            date.fromisoformat(value)
        else:
            datetime.fromisoformat(value)  # accepts a trailing Z since Python 3.11
    except ValueError:
        return False
    return True

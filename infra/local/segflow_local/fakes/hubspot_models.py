"""Request bodies the fake HubSpot accepts, strict like HubSpot's JSON binding (unknown fields -> 400)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

PropertyType = Literal["string", "number", "date", "datetime", "enumeration", "bool", "phone_number"]
FieldType = Literal[
    "textarea",
    "text",
    "date",
    "file",
    "number",
    "select",
    "radio",
    "checkbox",
    "booleancheckbox",
    "calculation_equation",
    "phonenumber",
]
StatusState = Literal["SUBSCRIBED", "UNSUBSCRIBED", "NOT_SPECIFIED"]
Channel = Literal["EMAIL", "WHATSAPP", "SMS"]
LegalBasis = Literal[
    "LEGITIMATE_INTEREST_PQL",
    "LEGITIMATE_INTEREST_CLIENT",
    "PERFORMANCE_OF_CONTRACT",
    "CONSENT_WITH_NOTICE",
    "NON_GDPR",
    "PROCESS_AND_STORE",
    "LEGITIMATE_INTEREST_OTHER",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class UpsertInput(_Strict):
    id: str = Field(min_length=1)
    idProperty: str | None = None
    properties: dict[str, str]
    objectWriteTraceId: str | None = None


class BatchUpsert(_Strict):
    inputs: list[UpsertInput]


class ObjectId(_Strict):
    id: str = Field(min_length=1)


class BatchRead(_Strict):
    inputs: list[ObjectId]
    properties: list[str]
    propertiesWithHistory: list[str] = Field(default_factory=list)
    idProperty: str | None = None


class GdprDelete(_Strict):
    objectId: str = Field(min_length=1)
    idProperty: str | None = None


class OptionInput(_Strict):
    label: str
    value: str
    hidden: bool
    displayOrder: int | None = None
    description: str | None = None


class PropertyCreate(_Strict):
    name: str = Field(min_length=1)
    label: str = Field(min_length=1)
    type: PropertyType
    fieldType: FieldType
    groupName: str = Field(min_length=1)
    options: list[OptionInput] = Field(default_factory=list)
    description: str | None = None
    displayOrder: int | None = None
    hidden: bool | None = None
    formField: bool | None = None
    hasUniqueValue: bool | None = None
    calculationFormula: str | None = None
    referencedObjectType: str | None = None
    externalOptions: bool | None = None


class PropertyUpdate(_Strict):
    """PATCH body: every field optional; `options`, when given, replaces the whole option list."""

    label: str | None = Field(default=None, min_length=1)
    type: PropertyType | None = None
    fieldType: FieldType | None = None
    groupName: str | None = Field(default=None, min_length=1)
    options: list[OptionInput] | None = None
    description: str | None = None
    displayOrder: int | None = None
    hidden: bool | None = None
    formField: bool | None = None
    calculationFormula: str | None = None


class PropertyGroupCreate(_Strict):
    name: str = Field(min_length=1)
    label: str = Field(min_length=1)
    displayOrder: int | None = None


class ListCreate(_Strict):
    name: str = Field(min_length=1)
    objectTypeId: str
    processingType: Literal["MANUAL", "SNAPSHOT", "DYNAMIC"]
    customProperties: dict[str, str] | None = None
    listFolderId: int | None = None
    filterBranch: dict[str, Any] | None = None


class ListSearch(_Strict):
    query: str | None = None
    listIds: list[str] | None = None
    processingTypes: list[str] | None = None
    additionalProperties: list[str] | None = None
    offset: int = Field(default=0, ge=0)
    count: int = Field(default=20, ge=1, le=500)
    sort: str | None = None


RecordIds = TypeAdapter(list[str], config=ConfigDict(strict=True))


class StatusUpdate(_Strict):
    statusState: StatusState
    channel: Channel
    subscriptionId: int
    legalBasis: LegalBasis | None = None
    legalBasisExplanation: str | None = None

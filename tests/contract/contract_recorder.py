"""Validate what a client exchanged with a fake against the vendors' OpenAPI descriptions.

Every fake records `fake.exchanges` (method, path, query, headers without secrets, body, status,
response body, response headers); the fake Mailchimp also records each operation it ran inside a batch
(POST /batches) as an exchange, so those are validated like direct calls. `SpecBook.problems(vendor, exchanges)` checks each request and each
response against the matching spec, plus the documented requirements the spec copies lost
(API-NOTES.md); `assert_valid` fails a test with one readable line per problem.

The specs are not part of this repository: they are read from $SEGFLOW_API_SPECS, or from
`<repo>/../shared/api-specs`. `api_specs_dir()` returns None when they are absent (tests then skip).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from segflow_local.fakes.common import Exchange

Vendor = Literal["mailchimp", "hubspot"]
REPO_ROOT = Path(__file__).resolve().parents[2]
MAILCHIMP_HOST = "https://server.api.mailchimp.com"
HUBSPOT_HOST = "https://api.hubapi.com"
# HubSpot files put the path prefix into the server URL; the request path is validated in full.
HUBSPOT_SPECS: tuple[tuple[str, str], ...] = (
    ("/crm/v3/objects/contacts", "hubspot-crm-contacts-v3.json"),
    ("/crm/v3/properties", "hubspot-crm-properties-v3.json"),
    ("/crm/v3/lists", "hubspot-crm-lists-v3.yaml"),
    ("/communication-preferences/v4", "hubspot-communication-preferences-v4.json"),
)
MAILCHIMP_SPEC = "mailchimp-marketing.json"
# Real endpoints that the spec copies do not describe: checked by the documented rules only.
UNDOCUMENTED: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("GET", re.compile(r"^/crm/v3/properties/[^/]+/groups/?$")),
)


def api_specs_dir() -> Path | None:
    configured = os.environ.get("SEGFLOW_API_SPECS")
    folder = Path(configured) if configured else REPO_ROOT.parent / "shared" / "api-specs"
    return folder if (folder / MAILCHIMP_SPEC).is_file() else None


# ---- documented requirements the spec copies lost --------------------------------------------------

Rule = Callable[[Exchange], list[str]]


def _mailchimp_batch(ex: Exchange) -> list[str]:
    members = (ex.body or {}).get("members") or []
    found = [f"batch has {len(members)} members; at most 500"] if len(members) > 500 else []
    for index, member in enumerate(members):
        missing = [k for k in ("email_address", "status") if k not in member]
        if missing:
            found.append(f"members[{index}] lacks {', '.join(missing)}")
        if "tags" in member:
            found.append(
                f"members[{index}] sends tags, which batch subscribe ignores (use the tags endpoint)"
            )
    return found


def _mailchimp_put_member(ex: Exchange) -> list[str]:
    body = ex.body or {}
    found = [f"PUT member lacks {k}" for k in ("email_address", "status_if_new") if k not in body]
    if "tags" in body:
        found.append("PUT member sends tags, which it ignores (use the tags endpoint)")
    email = body.get("email_address")
    path_hash = ex.path.rstrip("/").rsplit("/", 1)[-1]
    if email and "@" not in path_hash and path_hash != hashlib.md5(email.lower().encode()).hexdigest():
        found.append("subscriber hash in the path is not md5(lower(email_address))")
    return found


def _mailchimp_segment_members(ex: Exchange) -> list[str]:
    body = ex.body or {}
    return [
        f"{k} has {len(body.get(k) or [])} emails; at most 500"
        for k in ("members_to_add", "members_to_remove")
        if len(body.get(k) or []) > 500
    ]


def _mailchimp_merge_field(ex: Exchange) -> list[str]:
    tag = (ex.body or {}).get("tag")
    if tag is not None and not re.fullmatch(r"[A-Z][A-Z0-9_]{0,9}", tag):
        return [f"merge tag {tag!r} is not 1-10 upper-case letters, digits or underscores"]
    return []


def _mailchimp_batch_operations(ex: Exchange) -> list[str]:
    """POST /batches: each operation's path is relative to the API root and its body a JSON string."""
    found: list[str] = []
    for index, operation in enumerate((ex.body or {}).get("operations") or []):
        path = str(operation.get("path", ""))
        if not path.startswith("/") or path.startswith(("//", "/3.0/")):
            found.append(f"operations[{index}].path {path!r} is not relative to the API root (/lists/...)")
        body = operation.get("body")
        if body is None:
            continue
        try:
            parsed = json.loads(body) if isinstance(body, str) else None
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            found.append(f"operations[{index}].body is not a string holding a JSON object")
    return found


def _hubspot_upsert(ex: Exchange) -> list[str]:
    inputs = (ex.body or {}).get("inputs") or []
    found = [f"batch upsert has {len(inputs)} inputs; at most 100"] if len(inputs) > 100 else []
    ids = [str(i.get("id", "")).lower() for i in inputs]
    if len(ids) != len(set(ids)):
        found.append("batch upsert repeats an id (emails compared case-insensitively)")
    found += [
        f"inputs[{n}] idProperty is {i.get('idProperty')!r}, expected 'email'"
        for n, i in enumerate(inputs)
        if i.get("idProperty") != "email"
    ]
    return found


def _hubspot_batch_read(ex: Exchange) -> list[str]:
    inputs = (ex.body or {}).get("inputs") or []
    return [f"batch read has {len(inputs)} inputs; at most 100"] if len(inputs) > 100 else []


def _hubspot_status_read(ex: Exchange) -> list[str]:
    """The spec sets no limit; 100 as the CRM batch reads, which the fake enforces too."""
    inputs = (ex.body or {}).get("inputs") or []
    return [f"status batch read has {len(inputs)} inputs; at most 100"] if len(inputs) > 100 else []


def _hubspot_memberships(ex: Exchange) -> list[str]:
    body = ex.body
    if not isinstance(body, list) or not all(isinstance(i, str) and i.isdigit() for i in body):
        return ["membership changes take a JSON array of record-id strings"]
    return []


RULES: dict[Vendor, tuple[tuple[str, re.Pattern[str], Rule], ...]] = {
    "mailchimp": (
        ("POST", re.compile(r"^/3\.0/lists/[^/]+/?$"), _mailchimp_batch),
        ("PUT", re.compile(r"^/3\.0/lists/[^/]+/members/[^/]+/?$"), _mailchimp_put_member),
        ("POST", re.compile(r"^/3\.0/lists/[^/]+/segments/[^/]+/?$"), _mailchimp_segment_members),
        ("POST", re.compile(r"^/3\.0/lists/[^/]+/merge-fields/?$"), _mailchimp_merge_field),
        ("POST", re.compile(r"^/3\.0/batches/?$"), _mailchimp_batch_operations),
    ),
    "hubspot": (
        ("POST", re.compile(r"^/crm/v3/objects/contacts/batch/upsert/?$"), _hubspot_upsert),
        ("POST", re.compile(r"^/crm/v3/objects/contacts/batch/read/?$"), _hubspot_batch_read),
        ("PUT", re.compile(r"^/crm/v3/lists/[^/]+/memberships/(add|remove)/?$"), _hubspot_memberships),
        ("POST", re.compile(r"^/communication-preferences/v4/statuses/batch/read/?$"), _hubspot_status_read),
    ),
}


# ---- OpenAPI validation -----------------------------------------------------------------------------


@dataclass
class _Request:
    """The openapi-core Request protocol for a recorded exchange."""

    host_url: str
    path: str
    method: str
    body: bytes | None
    content_type: str
    parameters: Any


@dataclass
class _Response:
    status_code: int
    data: bytes | None
    headers: Any
    content_type: str


class SpecBook:
    """Loads each spec once (openapi-core takes a few seconds for Mailchimp's) and validates exchanges."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._apps: dict[str, Any] = {}

    def app(self, filename: str) -> Any:
        if filename not in self._apps:
            from openapi_core import Config, OpenAPI
            from openapi_core.deserializing.media_types.util import json_loads

            config = Config(
                spec_validator_cls=None,  # trusted data files: skip re-validating the spec (saves ~2.5 s)
                # problem+json (Mailchimp errors) and */* (HubSpot's documented error media type) carry JSON
                extra_media_type_deserializers={"application/problem+json": json_loads, "*/*": json_loads},
            )
            self._apps[filename] = OpenAPI.from_file_path(str(self.folder / filename), config=config)
        return self._apps[filename]

    def _spec_for(self, vendor: Vendor, path: str) -> tuple[str, str] | None:
        if vendor == "mailchimp":
            return MAILCHIMP_SPEC, MAILCHIMP_HOST
        for prefix, filename in HUBSPOT_SPECS:
            if path.startswith(prefix):
                return filename, HUBSPOT_HOST
        return None

    def problems(
        self, vendor: Vendor, exchanges: Iterable[Exchange], *, responses_only: bool = False
    ) -> list[str]:
        found: list[str] = []
        for number, exchange in enumerate(exchanges):
            label = f"#{number} {exchange.method} {exchange.path} -> {exchange.status}"
            found += [
                f"{label}: {p}"
                for p in self.exchange_problems(vendor, exchange, responses_only=responses_only)
            ]
        return found

    def exchange_problems(
        self, vendor: Vendor, exchange: Exchange, *, responses_only: bool = False
    ) -> list[str]:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        found: list[str] = []
        if not responses_only:
            for method, pattern, rule in RULES[vendor]:
                if method == exchange.method and pattern.match(exchange.path):
                    found += [f"documented rule: {p}" for p in rule(exchange)]
        if any(m == exchange.method and p.match(exchange.path) for m, p in UNDOCUMENTED):
            return found  # a spec template would mis-match it (groups as a {propertyName})
        target = self._spec_for(vendor, exchange.path)
        if target is None:
            return [*found, "no spec describes this path"]
        filename, host = target
        app = self.app(filename)
        body = None if exchange.body is None else _encode(exchange.body)
        request_content_type = next(
            (v for k, v in exchange.headers.items() if k.lower() == "content-type"), "application/json"
        )
        path = exchange.path
        request = _Request(
            host_url=host,
            path=path,
            method=exchange.method.lower(),
            body=body,
            content_type=request_content_type.split(";")[0].strip().lower(),
            parameters=RequestParameters(
                query=ImmutableMultiDict([(k, v) for k, values in exchange.query.items() for v in values]),
                header=Headers(exchange.headers),
                cookie=ImmutableMultiDict(),
            ),
        )
        response_content_type = next(
            (v for k, v in exchange.response_headers.items() if k.lower() == "content-type"),
            "application/json",
        )
        response = _Response(
            status_code=exchange.status,
            data=None if exchange.response_body is None else _encode(exchange.response_body),
            headers=Headers(exchange.response_headers),
            content_type=response_content_type.split(";")[0].strip().lower(),
        )
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="Unsupported scheme type"
            )  # HubSpot's oauth2 alternative
            request_errors = list(app.iter_request_errors(request))
            if _path_not_found(request_errors):
                # HubSpot lists describes POST /crm/v3/lists as its server URL + "/"
                request.path = path.rstrip("/") + "/"
                request_errors = list(app.iter_request_errors(request))
            if _path_not_found(request_errors):
                return [*found, "operation not found in the spec"]
            if not responses_only:
                found += _errors(request_errors)
            response_errors = list(app.iter_response_errors(request, response))
            if exchange.status == 204 and exchange.response_body is None:
                # the Mailchimp copy describes "no content" as an empty content map, which openapi-core
                # reads as "a body is required"
                response_errors = [e for e in response_errors if type(e).__name__ != "MissingData"]
            found += _errors(response_errors)
        return found

    def assert_valid(
        self, vendor: Vendor, exchanges: Sequence[Exchange], *, responses_only: bool = False
    ) -> None:
        problems = self.problems(vendor, exchanges, responses_only=responses_only)
        assert not problems, f"{len(problems)} contract problem(s):\n" + "\n".join(problems)


def _path_not_found(errors: list[Exception]) -> bool:
    from openapi_core.templating.paths.exceptions import PathError

    return any(isinstance(e, PathError) for e in errors)


def _encode(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


def _errors(iterator: Iterable[Exception]) -> list[str]:
    found = []
    for error in iterator:
        cause = error.__cause__
        details = getattr(cause, "schema_errors", None) or getattr(error, "schema_errors", None)
        if details:
            found += [
                f"{type(error).__name__}: {d.message} at {'/'.join(map(str, d.absolute_path))}"
                for d in details
            ]
        else:
            found.append(f"{type(error).__name__}: {error}")
    return found

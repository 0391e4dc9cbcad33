"""HTTP plumbing shared by the fake destination servers.

A fake is a real HTTP/1.1 server on loopback (stdlib ThreadingHTTPServer, one thread per connection)
that routes requests to handler methods, holds its state in memory behind one lock, and records every
exchange. Each request goes through the same pipeline, so a fault or a limit always answers BEFORE any
state changes and a client retry is safe:

    route -> authenticate -> admit (rate/concurrency limits) -> injected fault -> hold gate
          -> parse + validate body -> handler (under the state lock) -> record exchange
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qs, unquote, urlsplit

from email_validator import validate_email
from pydantic import BaseModel, TypeAdapter, ValidationError

from segflow_local.fakes.faults import ALL_FAULTS, FaultInjector, FaultKind
from segflow_local.fakes.limits import Clock

log = logging.getLogger("segflow_local.fakes")

JsonBody = Any
BodySchema = type[BaseModel] | TypeAdapter[Any]
REDACTED = "<redacted>"
_SECRET_HEADERS = {"authorization", "cookie", "x-api-key", "private-app", "private-app-legacy"}


class Exchange(NamedTuple):
    """One request/response pair as seen by the fake, secrets removed (for contract validation)."""

    method: str
    path: str  # raw path as sent, without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # credentials replaced by "<scheme> <redacted>"
    body: JsonBody  # parsed JSON, raw text when not JSON, None when empty
    status: int
    response_body: JsonBody  # parsed JSON, None when the response had no body
    response_headers: dict[str, str]


@dataclass
class Reply:
    status: int
    body: JsonBody = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


class ApiError(Exception):
    """Raised by handlers and pipeline steps to answer with a vendor-shaped error."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(f"HTTP {reply.status}")
        self.reply = reply


@dataclass(frozen=True)
class Call:
    """A parsed, authenticated, validated request handed to a route handler."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    body: Any  # the validated model (or plain JSON when the route declares no schema)
    credential: str

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default


Handler = Callable[[Call], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # "/3.0/lists/{list_id}"; placeholders match one path segment
    handler: Handler
    body: BodySchema | None = None
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "regex", re.compile(f"^{pattern}/?$"))

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.template}"


def utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def utc_iso_millis(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_request_id() -> str:
    return str(uuid.uuid4())


@lru_cache(maxsize=65_536)  # validation dominates batch cost, and syncs resend the same emails
def normalised_email(raw: str) -> str:
    """The address with its domain lower-cased; raises email_validator.EmailNotValidError."""
    return validate_email(raw, check_deliverability=False).normalized


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Keep the auth scheme (validators check it) and drop the secret itself."""
    clean: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() in _SECRET_HEADERS:
            scheme = value.split(" ", 1)[0] if " " in value else ""
            clean[name] = f"{scheme} {REDACTED}".strip()
        else:
            clean[name] = value
    return clean


def validation_errors(error: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as [{field, message}] with dotted field paths (members.3.status)."""
    return [
        {"field": ".".join(str(part) for part in item["loc"]) or "body", "message": item["msg"]}
        for item in error.errors(include_url=False)
    ]


def parse_int_arg(call: Call, name: str, default: int, minimum: int, maximum: int | None) -> int:
    """An integer query argument; raises ValueError with a readable message when out of range."""
    raw = call.arg(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer") from exc
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and {maximum}" if maximum is not None else ""
        raise ValueError(f"{name} must be between {minimum}{upper}")
    return value


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeServer) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Drop idle keep-alive connections so their handler threads end with the server."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid the 40 ms delayed-ACK stall
    timeout = 30  # idle keep-alive connections are closed after this many seconds
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        reply = self.server.fake.dispatch(self.command, self.path, dict(self.headers.items()), raw_body)
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        if payload:
            self.send_header("Content-Type", f"{reply.content_type}; charset=utf-8")
        if reply.status not in (204, 304):
            self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        """Silenced: raw paths can hold emails; dispatch logs the route template instead."""


class FakeServer:
    """Base class: lifecycle, request pipeline, statistics, exchange recording, fault injection.

    Subclasses provide `routes()`, `authenticate()`, `error_reply()` and optionally `admit()` and
    `response_headers()`; handlers run under `self._lock`, so state needs no further locking.
    """

    vendor = "fake"
    base_path = ""

    def __init__(
        self,
        *,
        fault_rate: float = 0.0,
        seed: int | None = None,
        fault_kinds: Sequence[FaultKind] = ALL_FAULTS,
        fault_delay_s: float = 0.05,
        clock: Clock = time.time,
        record_exchanges: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.clock = clock
        self.faults = FaultInjector(fault_rate, seed, fault_kinds, fault_delay_s)
        self.record_exchanges = record_exchanges
        self.exchanges: list[Exchange] = []
        self._host, self._requested_port = host, port
        self._lock = threading.RLock()  # guards the fake's domain state
        self._meta_lock = threading.Lock()  # guards stats and exchanges
        self._requests: Counter[str] = Counter()
        self._statuses: Counter[int] = Counter()
        self._faults_served: Counter[str] = Counter()
        self._in_flight = 0
        self._max_in_flight = 0
        self._held = 0
        self._in_flight_changed = threading.Condition(self._meta_lock)
        self._gate = threading.Event()
        self._gate.set()
        self._routes = self.routes()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- to be provided by subclasses -------------------------------------------------------

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def authenticate(self, headers: Mapping[str, str]) -> str:
        """Return the credential key (limits are per key) or raise ApiError(401)."""
        raise NotImplementedError

    def error_reply(
        self, status: int, kind: str, message: str, errors: list[dict[str, Any]] | None = None
    ) -> Reply:
        """A vendor-shaped error.

        kind: not_found, method_not_allowed, bad_json, invalid, throttled or internal.
        """
        raise NotImplementedError

    def admit(self, credential: str) -> Callable[[], None]:
        """Apply rate/concurrency limits (raise ApiError(429)); return the release callback."""
        return lambda: None

    def response_headers(self, credential: str | None) -> dict[str, str]:
        return {}

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._server = _Server((self._host, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll interval
            name=f"fake-{self.vendor}",
            daemon=True,
        )
        self._thread.start()
        log.debug("fake %s listening on port %d", self.vendor, self.port)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._gate.set()  # never leave held requests hanging
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"fake {self.vendor} is not started")
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}{self.base_path}"

    # ---- observation ----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        with self._meta_lock:
            return {
                "requests": dict(self._requests),
                "total_requests": sum(self._requests.values()),
                "responses_by_status": {str(code): n for code, n in sorted(self._statuses.items())},
                "throttled": self._statuses[429],
                "errors": sum(n for code, n in self._statuses.items() if code >= 400),
                "server_errors": sum(n for code, n in self._statuses.items() if code >= 500),
                "faults_injected": dict(self._faults_served),
                "max_in_flight": self._max_in_flight,
            }

    def reset_observations(self) -> None:
        with self._meta_lock:
            self._requests.clear()
            self._statuses.clear()
            self._faults_served.clear()
            self._max_in_flight = self._in_flight
            self.exchanges.clear()

    def in_flight(self) -> int:
        with self._meta_lock:
            return self._in_flight

    # ---- test controls --------------------------------------------------------------------------

    @contextmanager
    def holding_requests(self) -> Iterator[None]:
        """Admitted requests wait (holding their connection slot) until the block exits."""
        self._gate.clear()
        try:
            yield
        finally:
            self._gate.set()

    def wait_for_held(self, count: int, timeout_s: float = 5.0) -> bool:
        """Block until at least `count` admitted requests wait at the hold gate; False on timeout."""
        with self._in_flight_changed:
            return self._in_flight_changed.wait_for(lambda: self._held >= count, timeout_s)

    # ---- pipeline -------------------------------------------------------------------------------

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        path_known = False
        for route in self._routes:
            found = route.regex.match(path)
            if found is None:
                continue
            path_known = True
            if route.method == method:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}, True
        return None, {}, path_known

    def dispatch(self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes) -> Reply:
        split = urlsplit(target)
        path, query = split.path, parse_qs(split.query, keep_blank_values=True)
        route, params, path_known = self._match(method, path)
        endpoint = route.endpoint if route else f"{method} <unmatched>"
        with self._in_flight_changed:
            self._requests[endpoint] += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._in_flight_changed.notify_all()
        credential: str | None = None
        try:
            credential = self.authenticate(headers)
            reply = self._admitted(route, path_known, method, path, params, query, raw_body, credential)
        except ApiError as error:
            reply = error.reply
        except Exception:  # a bug in the fake must still answer, like a real 500
            log.exception("fake %s crashed on %s", self.vendor, endpoint)
            reply = self.error_reply(500, "internal", "An unexpected error occurred.")
        finally:
            with self._in_flight_changed:
                self._in_flight -= 1
                self._in_flight_changed.notify_all()
        reply.headers = {**self.response_headers(credential), **reply.headers}
        self._observe(method, path, query, headers, raw_body, reply)
        log.debug("fake %s %s -> %d", self.vendor, endpoint, reply.status)
        return reply

    def _admitted(
        self,
        route: Route | None,
        path_known: bool,
        method: str,
        path: str,
        params: dict[str, str],
        query: dict[str, list[str]],
        raw_body: bytes,
        credential: str,
    ) -> Reply:
        release = self.admit(credential)
        try:
            self._inject_fault()
            self._wait_at_gate()
            if route is None:
                if path_known:
                    return self.error_reply(405, "method_not_allowed", "The requested method is not allowed.")
                return self.error_reply(404, "not_found", "The requested resource could not be found.")
            body = self._validated_body(route, raw_body)
            call = Call(method, path, params, query, body, credential)
            with self._lock:
                return route.handler(call)
        finally:
            release()

    def _wait_at_gate(self) -> None:
        if self._gate.is_set():
            return
        with self._in_flight_changed:
            self._held += 1
            self._in_flight_changed.notify_all()
        try:
            self._gate.wait()
        finally:
            with self._in_flight_changed:
                self._held -= 1

    def _inject_fault(self) -> None:
        kind = self.faults.draw()
        if kind is None:
            return
        with self._meta_lock:
            self._faults_served[kind] += 1
        if kind == "slow":
            time.sleep(self.faults.delay_s)
        elif kind == "429":
            raise ApiError(self.error_reply(429, "throttled", "Too many requests (injected fault)."))
        else:
            raise ApiError(
                self.error_reply(500, "internal", "An unexpected error occurred (injected fault).")
            )

    def _validated_body(self, route: Route, raw_body: bytes) -> Any:
        if route.body is None:
            return None
        try:
            data = json.loads(raw_body) if raw_body.strip() else None
        except ValueError as exc:
            raise ApiError(self.error_reply(400, "bad_json", "The request body is not valid JSON.")) from exc
        if data is None:
            raise ApiError(
                self.error_reply(
                    400, "invalid", "A request body is required.", [{"field": "body", "message": "required"}]
                )
            )
        try:
            if isinstance(route.body, TypeAdapter):
                return route.body.validate_python(data)
            return route.body.model_validate(data)
        except ValidationError as exc:
            raise ApiError(
                self.error_reply(
                    400, "invalid", "The request body failed validation.", validation_errors(exc)
                )
            ) from exc

    def _observe(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Mapping[str, str],
        raw_body: bytes,
        reply: Reply,
    ) -> None:
        with self._meta_lock:
            self._statuses[reply.status] += 1
            if not self.record_exchanges:
                return
            response_headers = dict(reply.headers)
            if reply.body is not None:
                response_headers["Content-Type"] = reply.content_type
            self.exchanges.append(
                Exchange(
                    method=method,
                    path=path,
                    query=query,
                    headers=redact_headers(headers),
                    body=_decode_body(raw_body),
                    status=reply.status,
                    response_body=json.loads(json.dumps(reply.body)) if reply.body is not None else None,
                    response_headers=response_headers,
                )
            )


def _decode_body(raw: bytes) -> JsonBody:
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text

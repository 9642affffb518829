"""A stub model server on 127.0.0.1 that speaks enough of the OpenAI, Anthropic, Gemini and
Ollama HTTP APIs for litellm to talk to it.

    with StubServer(text="Hello.") as stub:
        litellm.completion(model="openai/m", api_base=stub.base_url, api_key="k", messages=...)
        assert stub.requests_to("/v1/chat/completions")[0].body["model"] == "m"

Routes (any other path answers 404):

* OpenAI-compatible: ``POST /v1/chat/completions`` (and ``/chat/completions``),
  ``POST /v1/completions``, ``GET /v1/models`` (and ``/models``).
* Anthropic: ``POST /v1/messages``.
* Gemini: ``POST .../models/{model}:generateContent`` and ``:streamGenerateContent`` under any
  prefix (litellm's ``gemini/`` provider posts to ``{api_base}/models/{model}:generateContent``).
* Ollama: ``POST /api/generate``, ``POST /api/chat``, ``POST /api/show``, ``GET /api/tags``,
  ``GET /api/version``.

Every request is recorded (:class:`RecordedRequest`), rejected ones included. Replies are a
minimal valid instance of the schema when the request asks for structured output (and the
``schema_support`` mode honours it), else the fixed ``text``. Fault knobs (``rate_limit_per_s``,
``fail_next``, ``stall_s``, ``echo``, ``require_key``) can be changed while the server runs.
"""

from __future__ import annotations

import json
import math
import re
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_TEXT = "I agree with the plan."
SCHEMA_SUPPORT = ("openai", "llamacpp", "vllm", "none")

_GEMINI_PATH = re.compile(r"^(?P<prefix>.*?)/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")


# --------------------------------------------------------------------------------------------
# Minimal instances of JSON schemas
# --------------------------------------------------------------------------------------------

_WORDS = ("ok", "a", "A", "x", "0", "word", "yes", "task", "A1", "a-1", "ok.", "a b")


def _resolve_ref(ref: str, root: dict) -> Any:
    if not ref.startswith("#"):
        raise ValueError(f"only local $ref are supported: {ref}")
    node: Any = root
    for part in ref[1:].lstrip("/").split("/") if ref not in ("#", "#/") else []:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _merge_all_of(schema: dict) -> dict:
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    for sub in schema["allOf"]:
        if not isinstance(sub, dict):
            continue
        for key, value in sub.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
            else:
                merged.setdefault(key, value)
    return merged


def _string_instance(schema: dict) -> str:
    fmt = schema.get("format")
    by_format = {
        "date-time": "2024-01-01T00:00:00Z", "date": "2024-01-01", "time": "00:00:00Z",
        "email": "a@example.com", "uri": "http://127.0.0.1/", "url": "http://127.0.0.1/",
        "uuid": "00000000-0000-4000-8000-000000000000", "ipv4": "127.0.0.1",
        "hostname": "localhost",
    }
    min_len = int(schema.get("minLength", 0))
    max_len = schema.get("maxLength")
    pattern = schema.get("pattern")

    def fit(word: str) -> str:
        while len(word) < min_len:
            word += "a" if word[-1:].isalpha() or not word else word[-1]
        return word if max_len is None else word[: int(max_len)]

    candidates = [by_format[fmt]] if fmt in by_format else []
    candidates += [fit(w) for w in ("ok", *_WORDS)]
    if pattern is None:
        return candidates[0]
    for cand in candidates:
        try:
            if re.search(pattern, cand):
                return cand
        except re.error:
            break
    return candidates[0]


def _number_instance(schema: dict, integer: bool) -> int | float:
    low, high = schema.get("minimum"), schema.get("maximum")
    xlow, xhigh = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(xlow, bool):  # draft-4 style: exclusiveMinimum is a flag on minimum
        xlow, low = (low if xlow else None), (None if xlow else low)
    if isinstance(xhigh, bool):
        xhigh, high = (high if xhigh else None), (None if xhigh else high)
    if integer:
        lows = [math.ceil(v) for v in (low,) if v is not None]
        lows += [math.floor(v) + 1 for v in (xlow,) if v is not None]
        highs = [math.floor(v) for v in (high,) if v is not None]
        highs += [math.ceil(v) - 1 for v in (xhigh,) if v is not None]
    else:
        gap = 1.0 if xlow is None or xhigh is None else (xhigh - xlow) / 2
        lows = [float(v) for v in (low,) if v is not None]
        lows += [xlow + min(gap, 1.0) for v in (xlow,) if v is not None]
        highs = [float(v) for v in (high,) if v is not None]
        highs += [xhigh - min(gap, 1.0) for v in (xhigh,) if v is not None]
    lower, upper = max(lows, default=None), min(highs, default=None)
    value: float = 0
    if lower is not None and value < lower:
        value = lower
    if upper is not None and value > upper:
        value = upper
    multiple = schema.get("multipleOf")
    if multiple and value % multiple:
        value = math.ceil(value / multiple) * multiple
    return int(value) if integer else float(value)


def _infer_type(schema: dict) -> str | None:
    if any(k in schema for k in ("properties", "required", "additionalProperties",
                                 "minProperties")):
        return "object"
    if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems")):
        return "array"
    if any(k in schema for k in ("minLength", "maxLength", "pattern", "format")):
        return "string"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        return "number"
    return None


def schema_instance(schema: Any, root: Any = None, _depth: int = 0) -> Any:
    """A minimal value valid against ``schema`` (a JSON schema as a dict or bool).

    Supported: ``$ref`` to ``$defs``/``definitions`` (any local JSON pointer), ``const``, ``enum``
    (first value), ``anyOf``/``oneOf`` (first branch), ``allOf`` (merged), ``type`` (a name or a
    list: the first), object (required properties, ``additionalProperties``, ``minProperties``),
    string (``minLength``/``maxLength``/``format``, ``pattern`` loosely: a plain word that matches
    if one of a few does), integer/number (``minimum``/``maximum``/exclusive bounds/
    ``multipleOf``), boolean, null, array (``prefixItems``, ``items``, ``minItems``/``maxItems``).
    Type names are case-insensitive (Gemini's ``OBJECT`` works too).
    """
    if root is None:
        root = schema
    if schema is True or schema is None or schema == {}:
        return "ok"
    if schema is False:
        raise ValueError("no value is valid against the schema false")
    if not isinstance(schema, dict):
        raise TypeError(f"not a schema: {schema!r}")
    if _depth > 32:
        raise ValueError("schema nests too deeply (recursive $ref without a way out?)")
    if "$ref" in schema:
        target = _resolve_ref(schema["$ref"], root)
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        if rest and isinstance(target, dict):
            target = {**target, **rest}
        return schema_instance(target, root, _depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            rest = {k: v for k, v in schema.items() if k != key}
            first = schema[key][0]
            branch = {**rest, **first} if isinstance(first, dict) and "$ref" not in first else first
            return schema_instance(branch, root, _depth + 1)
    if schema.get("allOf"):
        return schema_instance(_merge_all_of(schema), root, _depth + 1)

    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0] if kind else None
    kind = kind.lower() if isinstance(kind, str) else _infer_type(schema)
    if kind is None:
        return "ok"
    if kind == "null":
        return None
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return _number_instance(schema, integer=kind == "integer")
    if kind == "string":
        return _string_instance(schema)
    if kind == "array":
        return _array_instance(schema, root, _depth)
    if kind == "object":
        return _object_instance(schema, root, _depth)
    raise ValueError(f"unknown type {kind!r}")


def _array_instance(schema: dict, root: Any, depth: int) -> list:
    prefix = schema.get("prefixItems") or []
    items = schema.get("items")
    if isinstance(items, list):  # draft-7 tuple form
        prefix, items = items, schema.get("additionalItems", True)
    min_items = int(schema.get("minItems", 0))
    max_items = schema.get("maxItems")
    out = [schema_instance(s, root, depth + 1) for s in prefix[:max(min_items, len(prefix))]]
    if max_items is not None:
        out = out[: int(max_items)]
    while len(out) < min_items:
        if items is False:
            break
        value = schema_instance(items if items is not None else True, root, depth + 1)
        if schema.get("uniqueItems") and value in out:
            value = _distinct(items if isinstance(items, dict) else {}, out, root, depth)
        out.append(value)
    return out


def _distinct(items: dict, taken: list, root: Any, depth: int) -> Any:
    for value in items.get("enum", []):
        if value not in taken:
            return value
    base = schema_instance(items, root, depth + 1) if items else "ok"
    if isinstance(base, bool):
        return not base
    if isinstance(base, (int, float)):
        return base + len(taken)
    if isinstance(base, str):
        return f"{base}{len(taken)}"
    return base


def _object_instance(schema: dict, root: Any, depth: int) -> dict:
    properties = schema.get("properties") or {}
    additional = schema.get("additionalProperties", True)
    out: dict = {}
    for name in schema.get("required") or []:
        sub = properties.get(name, additional if isinstance(additional, dict) else True)
        out[name] = schema_instance(sub, root, depth + 1)
    for name, sub in properties.items():
        if len(out) >= int(schema.get("minProperties", 0)):
            break
        out.setdefault(name, schema_instance(sub, root, depth + 1))
    n = 0
    while len(out) < int(schema.get("minProperties", 0)) and additional is not False:
        n += 1
        out[f"key{n}"] = schema_instance(additional if isinstance(additional, dict) else True,
                                         root, depth + 1)
    return out


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as the stub received it."""

    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # keys lower-cased
    body: Any  # parsed JSON, or None when the body was empty or not JSON
    raw: bytes
    time: float  # time.time() on arrival
    status: int = 0  # status of the answer (set once answered)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass
class _Reply:
    """What a route decided to answer: plain text, a JSON instance, or a forced tool call."""

    text: str
    structured: Any = None
    is_structured: bool = False
    tool_name: str | None = None


@dataclass(eq=False)
class StubServer:
    """A threaded HTTP stub of model APIs on 127.0.0.1 (port 0: a free port).

    Args: ``text`` (the fixed reply), ``schema_support`` (``openai``/``llamacpp``/``vllm``/
    ``none``), ``model`` (the name listed by ``/v1/models`` and ``/api/tags``), ``port``.

    Knobs, settable while running: ``rate_limit_per_s``, ``stall_s``, ``echo``, ``require_key``,
    ``text``, ``schema_support``, and :meth:`fail_next`.
    """

    text: str = DEFAULT_TEXT
    schema_support: str = "openai"
    model: str = "stub-model"
    port: int = 0
    rate_limit_per_s: int | None = None
    stall_s: float = 0.0
    echo: bool = False
    require_key: str | None = None
    rate_limited: int = field(default=0, init=False)  # how many 429s were answered
    in_flight: int = field(default=0, init=False)  # requests being handled right now
    max_in_flight_seen: int = field(default=0, init=False)  # the most at once since clear()

    def __post_init__(self) -> None:
        if self.schema_support not in SCHEMA_SUPPORT:
            raise ValueError(f"schema_support must be one of {SCHEMA_SUPPORT}")
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._window: deque[float] = deque()
        # Queued faults: (status, Retry-After seconds) or None (let one request through).
        self._failures: deque[tuple[int, float] | None] = deque()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> StubServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        handler = type("_BoundHandler", (_Handler,), {"stub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]  # later start() calls reuse the port
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"stub:{self.port}",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection (clients' kept-alive ones too, so a
        stopped stub really is down). ``start()`` again listens on the same port."""
        self._stopping.set()  # wakes stalled handlers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (Anthropic, Gemini and Ollama api_base)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (OpenAI-compatible api_base)."""
        return f"{self.url}/v1"

    # ---- records ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path_prefix: str = "") -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    def count(self, path_prefix: str = "") -> int:
        return len(self.requests_to(path_prefix))

    @property
    def last(self) -> RecordedRequest | None:
        with self._lock:
            return self._requests[-1] if self._requests else None

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._window.clear()
            self.rate_limited = 0
            self.max_in_flight_seen = self.in_flight

    # ---- faults -----------------------------------------------------------------------------

    def fail_next(self, k: int = 1, status: int = 500, *, after: int = 0,
                  retry_after: float | None = None) -> None:
        """The next ``k`` requests answer ``status`` with an error body in the route's format.

        ``after``: let that many requests through first (e.g. a run's probe). ``retry_after``:
        the ``Retry-After`` header of those answers (429s carry one of at least 1 s anyway).
        """
        with self._lock:
            self._failures.extend([None] * after)
            self._failures.extend([(status, retry_after if retry_after is not None else 0.0)]
                                  * k)

    def heal(self) -> None:
        """Forget every queued fault (``fail_next``)."""
        with self._lock:
            self._failures.clear()

    def _admit(self, record: RecordedRequest) -> tuple[int, float] | None:
        """Record the request; return (status, retry_after) when it must be refused."""
        with self._lock:
            self._requests.append(record)
            limit = self.rate_limit_per_s
            if limit is not None:
                now = time.monotonic()
                while self._window and now - self._window[0] >= 1.0:
                    self._window.popleft()
                if len(self._window) >= limit:
                    self.rate_limited += 1
                    wait = 1.0 - (now - self._window[0]) if self._window else 1.0
                    return 429, max(wait, 0.0)
                self._window.append(now)
            if self._failures:
                fault = self._failures.popleft()
                if fault is not None:
                    return fault
        return None

    def _key_ok(self, record: RecordedRequest) -> bool:
        if self.require_key is None:
            return True
        given = [record.header("x-api-key"), record.header("x-goog-api-key"),
                 *(record.query.get("key") or [])]
        auth = record.header("authorization")
        if auth:
            given += [auth, auth.split(" ", 1)[1] if " " in auth else auth]
        return self.require_key in given

    # ---- replies ----------------------------------------------------------------------------

    def _plain(self, record: RecordedRequest) -> str:
        if not self.echo:
            return self.text
        body = record.body if record.body is not None else record.raw.decode("utf-8", "replace")
        return (f"{self.text}\nheaders: {json.dumps(record.headers, sort_keys=True)}\n"
                f"body: {json.dumps(body, sort_keys=True, default=str)}")

    def _structured(self, record: RecordedRequest, schema: Any) -> _Reply:
        value = {"text": self.text} if schema is None else schema_instance(schema)
        return _Reply(text=json.dumps(value), structured=value, is_structured=True)

    def reply_for_openai(self, record: RecordedRequest) -> _Reply | tuple[int, dict]:
        body = record.body if isinstance(record.body, dict) else {}
        mode = self.schema_support
        if mode == "none":
            return _Reply(self._plain(record))
        forced = _forced_openai_tool(body)
        if forced is not None:
            name, schema = forced
            return _Reply(json.dumps(schema_instance(schema)), schema_instance(schema), True, name)
        if mode == "vllm":
            guided = body.get("guided_json")
            if guided is None and isinstance(body.get("structured_outputs"), dict):
                guided = body["structured_outputs"].get("json")
            if guided is not None:
                schema = json.loads(guided) if isinstance(guided, str) else guided
                return self._structured(record, schema)
        fmt = body.get("response_format")
        if isinstance(fmt, dict):
            kind = fmt.get("type")
            if kind == "json_schema":
                if mode == "llamacpp":
                    return 500, {"error": {
                        "message": "1 validation error:\n  {'type': 'literal_error', 'loc': "
                                   "('body', 'response_format', 'type'), 'msg': \"Input should be "
                                   "'text' or 'json_object'\", 'input': 'json_schema', 'ctx': "
                                   "{'expected': \"'text' or 'json_object'\"}}",
                        "type": "internal_server_error", "param": None, "code": None}}
                return self._structured(record, (fmt.get("json_schema") or {}).get("schema", True))
            if kind == "json_object":
                schema = fmt.get("schema") if mode in ("openai", "llamacpp") else None
                return self._structured(record, schema)
        return _Reply(self._plain(record))

    def reply_for_anthropic(self, record: RecordedRequest) -> _Reply:
        body = record.body if isinstance(record.body, dict) else {}
        if self.schema_support != "none":
            choice = body.get("tool_choice") or {}
            if choice.get("type") == "tool":
                for tool in body.get("tools") or []:
                    if tool.get("name") == choice.get("name"):
                        value = schema_instance(tool.get("input_schema") or {"type": "object"})
                        return _Reply(json.dumps(value), value, True, tool["name"])
            for fmt in (body.get("output_format"), (body.get("output_config") or {}).get("format")):
                if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
                    return self._structured(record, fmt.get("schema", True))
        return _Reply(self._plain(record))

    def reply_for_gemini(self, record: RecordedRequest) -> _Reply:
        body = record.body if isinstance(record.body, dict) else {}
        config = body.get("generationConfig") or {}
        if self.schema_support != "none":
            for key in ("responseJsonSchema", "response_json_schema", "responseSchema",
                        "response_schema"):
                if config.get(key) is not None:
                    return self._structured(record, config[key])
            mime = config.get("responseMimeType", config.get("response_mime_type"))
            if mime == "application/json":
                return self._structured(record, None)
        return _Reply(self._plain(record))

    def reply_for_ollama(self, record: RecordedRequest) -> _Reply:
        body = record.body if isinstance(record.body, dict) else {}
        fmt = body.get("format")
        if self.schema_support != "none" and fmt:
            return self._structured(record, fmt if isinstance(fmt, dict) else None)
        return _Reply(self._plain(record))


def _forced_openai_tool(body: dict) -> tuple[str, Any] | None:
    choice = body.get("tool_choice")
    tools = body.get("tools") or []
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
    elif choice == "required" and len(tools) == 1:
        name = (tools[0].get("function") or {}).get("name")
    else:
        return None
    for tool in tools:
        function = tool.get("function") or {}
        if function.get("name") == name:
            return name, function.get("parameters") or {"type": "object"}
    return None


def _count_words(value: Any) -> int:
    """A rough token count: words in every string inside ``value``."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, dict):
        return sum(_count_words(v) for k, v in value.items() if k not in ("role", "type"))
    if isinstance(value, list):
        return sum(_count_words(v) for v in value)
    return 0


def _truncate(reply: _Reply, max_tokens: Any) -> tuple[str, bool]:
    """Plain text is cut to ``max_tokens`` words (finish reason "length"); JSON never is."""
    words = reply.text.split()
    if reply.is_structured or not isinstance(max_tokens, int) or len(words) <= max_tokens:
        return reply.text, False
    return " ".join(words[:max(max_tokens, 0)]), True


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


class _Handler(BaseHTTPRequestHandler):
    stub: StubServer  # set on a subclass per server
    protocol_version = "HTTP/1.1"
    server_version = "agentsim-stub/1.0"

    def setup(self) -> None:
        super().setup()
        with self.stub._lock:
            self.stub._connections.add(self.connection)

    def finish(self) -> None:
        with self.stub._lock:
            self.stub._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence access logs
        pass

    # ---- plumbing ---------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle("HEAD")

    def _handle(self, method: str) -> None:
        stub = self.stub
        with stub._lock:
            stub.in_flight += 1
            stub.max_in_flight_seen = max(stub.max_in_flight_seen, stub.in_flight)
        try:
            self._handle_one(method)
        finally:
            with stub._lock:
                stub.in_flight -= 1

    def _handle_one(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.record = RecordedRequest(
            method=method, path=parts.path, query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()}, body=body, raw=raw,
            time=time.time())
        self.flavour = self._flavour(parts.path)
        stub = self.stub
        refused = stub._admit(self.record)
        if stub.stall_s > 0 and stub._stopping.wait(stub.stall_s):
            self.close_connection = True
            return
        if refused is not None:
            status, retry_after = refused
            extra = {"Retry-After": str(max(1, math.ceil(retry_after)))} \
                if status == 429 or (status == 503 and retry_after) else {}
            message = "rate limit exceeded" if status == 429 else f"injected failure {status}"
            return self._reply_error(status, message, extra)
        if not stub._key_ok(self.record):
            return self._reply_error(401, "invalid api key")
        try:
            self._route(method, parts.path)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
            self.close_connection = True
        except Exception as exc:  # a bug in the stub must still answer, not hang the client
            self._error(500, f"stub error: {type(exc).__name__}: {exc}")

    def _reply_error(self, status: int, message: str, headers: dict | None = None) -> None:
        try:
            self._error(status, message, headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _flavour(self, path: str) -> str:
        if path.startswith("/api/"):
            return "ollama"
        if path.startswith("/v1/messages"):
            return "anthropic"
        if _GEMINI_PATH.match(path):
            return "gemini"
        return "openai"

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.record.status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _stream(self, chunks: list[Any], content_type: str, sse: bool,
                done_marker: bool = False, events: list[str] | None = None) -> None:
        lines = []
        for i, chunk in enumerate(chunks):
            text = json.dumps(chunk)
            if not sse:
                lines.append(text + "\n")
            elif events:
                lines.append(f"event: {events[i]}\ndata: {text}\n\n")
            else:
                lines.append(f"data: {text}\n\n")
        if done_marker:
            lines.append("data: [DONE]\n\n")
        self._send(200, "".join(lines).encode(), content_type=content_type)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        kind = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
        if self.flavour == "anthropic":
            payload: Any = {"type": "error", "error": {"type": kind, "message": message}}
        elif self.flavour == "gemini":
            google = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND",
                      429: "RESOURCE_EXHAUSTED"}.get(status, "INTERNAL")
            payload = {"error": {"code": status, "message": message, "status": google}}
        elif self.flavour == "ollama":
            payload = {"error": message}
        else:
            payload = {"error": {"message": message, "type": kind, "param": None,
                                 "code": str(status)}}
        self._send(status, payload, headers)

    # ---- routes -----------------------------------------------------------------------------

    def _route(self, method: str, path: str) -> None:
        post = method == "POST"
        if post and path in ("/v1/chat/completions", "/chat/completions"):
            return self._openai_chat()
        if post and path in ("/v1/completions", "/completions"):
            return self._openai_text()
        if method in ("GET", "HEAD") and path in ("/v1/models", "/models"):
            return self._send(200, {"object": "list", "data": [
                {"id": self.stub.model, "object": "model", "created": int(time.time()),
                 "owned_by": "agentsim-stub"}]})
        if post and path == "/v1/messages":
            return self._anthropic()
        match = _GEMINI_PATH.match(path)
        if post and match and match["method"] in ("generateContent", "streamGenerateContent"):
            return self._gemini(match["model"], stream=match["method"] == "streamGenerateContent")
        if post and path in ("/api/generate", "/api/chat"):
            return self._ollama(chat=path == "/api/chat")
        if method in ("GET", "HEAD") and path == "/api/tags":
            return self._send(200, {"models": [self._ollama_model_entry()]})
        if method in ("GET", "HEAD") and path == "/api/version":
            return self._send(200, {"version": "0.6.0"})
        if post and path == "/api/show":
            entry = self._ollama_model_entry()
            return self._send(200, {"modelfile": "", "parameters": "", "template": "{{ .Prompt }}",
                                    "details": entry["details"], "capabilities": ["completion"],
                                    "model_info": {"general.architecture": "llama",
                                                   "llama.context_length": 4096}})
        return self._error(404, f"no route for {method} {path}")

    def _body(self) -> dict:
        return self.record.body if isinstance(self.record.body, dict) else {}

    def _openai_chat(self) -> None:
        body = self._body()
        reply = self.stub.reply_for_openai(self.record)
        if isinstance(reply, tuple):
            return self._send(*reply)
        text, cut = _truncate(reply, body.get("max_completion_tokens", body.get("max_tokens")))
        finish = "length" if cut else ("tool_calls" if reply.tool_name else "stop")
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if reply.tool_name:
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                "function": {"name": reply.tool_name, "arguments": text}}]}
        prompt = max(1, _count_words(body.get("messages")))
        completion = max(1, len(text.split()))
        usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                 "total_tokens": prompt + completion}
        base = {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "created": int(time.time()),
                "model": body.get("model", self.stub.model), "system_fingerprint": "stub"}
        if body.get("stream"):
            delta = dict(message)
            chunks = [{**base, "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": delta, "finish_reason": None}]},
                {**base, "object": "chat.completion.chunk", "choices": [
                    {"index": 0, "delta": {}, "finish_reason": finish}]}]
            if (body.get("stream_options") or {}).get("include_usage"):
                chunks.append({**base, "object": "chat.completion.chunk", "choices": [],
                               "usage": usage})
            return self._stream(chunks, "text/event-stream", sse=True, done_marker=True)
        self._send(200, {**base, "object": "chat.completion", "choices": [
            {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": usage})

    def _openai_text(self) -> None:
        body = self._body()
        reply = self.stub.reply_for_openai(self.record)
        if isinstance(reply, tuple):
            return self._send(*reply)
        text, cut = _truncate(reply, body.get("max_tokens"))
        prompt = max(1, _count_words(body.get("prompt")))
        completion = max(1, len(text.split()))
        self._send(200, {"id": f"cmpl-{uuid.uuid4().hex[:12]}", "object": "text_completion",
                         "created": int(time.time()), "model": body.get("model", self.stub.model),
                         "choices": [{"index": 0, "text": text, "logprobs": None,
                                      "finish_reason": "length" if cut else "stop"}],
                         "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                   "total_tokens": prompt + completion}})

    def _anthropic(self) -> None:
        body = self._body()
        reply = self.stub.reply_for_anthropic(self.record)
        text, cut = _truncate(reply, body.get("max_tokens"))
        if reply.tool_name:
            block: dict[str, Any] = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:12]}",
                                     "name": reply.tool_name, "input": reply.structured}
            stop = "tool_use"
        else:
            block = {"type": "text", "text": text}
            stop = "max_tokens" if cut else "end_turn"
        prompt = max(1, _count_words([body.get("system"), body.get("messages")]))
        usage = {"input_tokens": prompt, "output_tokens": max(1, len(text.split())),
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        message = {"id": f"msg_{uuid.uuid4().hex[:12]}", "type": "message", "role": "assistant",
                   "model": body.get("model", self.stub.model), "content": [block],
                   "stop_reason": stop, "stop_sequence": None, "usage": usage}
        if not body.get("stream"):
            return self._send(200, message)
        if reply.tool_name:
            start = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": text}
        else:
            start, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": text}
        events = [
            ("message_start", {"type": "message_start", "message": {
                **message, "content": [], "stop_reason": None,
                "usage": {**usage, "output_tokens": 0}}}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": start}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": stop, "stop_sequence": None},
                               "usage": {"output_tokens": usage["output_tokens"]}}),
            ("message_stop", {"type": "message_stop"}),
        ]
        self._stream([e[1] for e in events], "text/event-stream", sse=True,
                     events=[e[0] for e in events])

    def _gemini(self, model: str, stream: bool) -> None:
        body = self._body()
        reply = self.stub.reply_for_gemini(self.record)
        config = body.get("generationConfig") or {}
        text, cut = _truncate(reply, config.get("maxOutputTokens", config.get("max_output_tokens")))
        prompt = max(1, _count_words([body.get("systemInstruction"), body.get("contents")]))
        completion = max(1, len(text.split()))
        payload = {
            "candidates": [{"content": {"parts": [{"text": text}], "role": "model"},
                            "finishReason": "MAX_TOKENS" if cut else "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": completion,
                              "totalTokenCount": prompt + completion},
            "modelVersion": model, "responseId": uuid.uuid4().hex[:12]}
        if stream:
            sse = (self.record.query.get("alt") or [""])[0] == "sse"
            if sse:
                return self._stream([payload], "text/event-stream", sse=True)
            return self._send(200, [payload])
        self._send(200, payload)

    def _ollama_model_entry(self) -> dict:
        name = self.stub.model if ":" in self.stub.model else f"{self.stub.model}:latest"
        return {"name": name, "model": name, "modified_at": _now_iso(), "size": 1,
                "digest": "0" * 64,
                "details": {"parent_model": "", "format": "gguf", "family": "llama",
                            "families": ["llama"], "parameter_size": "135M",
                            "quantization_level": "Q4_1"}}

    def _ollama(self, chat: bool) -> None:
        body = self._body()
        reply = self.stub.reply_for_ollama(self.record)
        options = body.get("options") or {}
        text, cut = _truncate(reply, options.get("num_predict"))
        prompt = max(1, _count_words(body.get("messages") if chat else
                                     [body.get("system"), body.get("prompt")]))
        completion = max(1, len(text.split()))
        final = {"model": body.get("model", self.stub.model), "created_at": _now_iso(),
                 "done": True, "done_reason": "length" if cut else "stop",
                 "total_duration": 1_000_000, "load_duration": 1_000,
                 "prompt_eval_count": prompt, "prompt_eval_duration": 1_000,
                 "eval_count": completion, "eval_duration": 1_000}
        if chat:
            content = {"message": {"role": "assistant", "content": text}}
            empty = {"message": {"role": "assistant", "content": ""}}
        else:
            content, empty = {"response": text}, {"response": ""}
            final["context"] = [1, 2, 3]
        if body.get("stream", True):  # Ollama streams NDJSON unless told "stream": false
            first = {"model": final["model"], "created_at": final["created_at"], **content,
                     "done": False}
            return self._stream([first, {**final, **empty}], "application/x-ndjson", sse=False)
        self._send(200, {**final, **content})

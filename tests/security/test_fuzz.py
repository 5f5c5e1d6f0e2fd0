"""Property-based fuzzing of the API, bounded in time, run in CI by default
(contract sections 2, 3 and 10).

What each property sends, to one real server on the suite's stack:

- every query and every mutation of the served schema, generated valid by
  `hypothesis-graphql` (and, separately, with one schema violation each),
  as each of eight callers (the customer's admin, approver and auditor, an
  engineer, the provider's support manager and operator, another tenant's
  admin, no token): never INTERNAL_SERVER_ERROR or a code outside the
  contract, never a 5xx, never an ERROR or traceback in the server's log;
- hostile values in every argument of every mutation, sent as raw JSON
  (lone surrogates escaped, NUL, controls, format characters, very long
  strings, deep and non-finite JSON, NaN/Infinity/1e400 tokens, 5,000-digit
  integers, wrong types), sometimes written into the document itself: a
  contract code, and when the call is refused nothing is stored (row counts,
  tenants' settings and requests' statuses are compared in the database);
  when it is accepted, no stored text breaks section 10's rules;
- hostile request bodies (invalid UTF-8, 3,000-deep JSON, bodies that are
  not objects, wrong content types, GET with a mutation);
- malformed WebSocket frames and protocol sequences on both sub-protocols:
  the server answers or closes with a protocol code, never 1011 for a fault
  or an abnormal close, and a socket opened before them still streams.

How: the server, its demo world and a few requests in each state are made
once per module (`fuzz`, tests.security.fuzz_support). A hypothesis test
is a plain synchronous function: it talks to the server with `httpx.Client`
and `websockets.sync`, and reads the database through its own event loop
thread, so pytest-asyncio and hypothesis never share a loop. The server's
log is watched by a handler on the root and uvicorn loggers.

Bounded and reproducible: `derandomize=True` (the same examples on every
run, no example database), `deadline=None` (one slow call on a busy CI
machine is not a failure), and `max_examples` per property set so that the
module takes well under a minute per stack. LOCKBOX_FUZZ_SCALE multiplies
the examples for a longer local run (`LOCKBOX_FUZZ_SCALE=10 pytest ...`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import graphql
import hypothesis_graphql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import Stack, fresh_stack
from tests.security.fuzz_support import (
    CONTRACT_CODES,
    PROD,
    ROLES,
    Answer,
    FuzzServer,
    Raw,
    fuzz_server,
    to_json,
)
from tests.support import LEGACY_WS, TRANSPORT_WS

# hypothesis warns when an example's repr is large: the long strings are the point.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

SCHEMA_SDL = (Path(__file__).parents[2] / "schema" / "schema.graphql").read_text()
SCHEMA = graphql.build_schema(SCHEMA_SDL)
SCALE = float(os.environ.get("LOCKBOX_FUZZ_SCALE", "1"))


def fuzzed(examples: int, **strategies: Any) -> Callable[[Callable[..., None]], Callable[[], None]]:
    """`@given(**strategies)` with the module's settings, as a function to
    call inside a test (which holds the server); it checks that the property
    ran for every example asked for."""

    def decorate(body: Callable[..., None]) -> Callable[[], None]:
        wanted = max(1, int(examples * SCALE))
        ran = 0

        @functools.wraps(body)
        def counted(**kwargs: Any) -> None:
            nonlocal ran
            ran += 1
            body(**kwargs)

        prop = settings(
            max_examples=wanted,
            deadline=None,
            derandomize=True,
            database=None,
            print_blob=False,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )(given(**strategies)(counted))

        def run() -> None:
            prop()
            print(f"{body.__qualname__}: {ran} examples")
            assert ran >= wanted, f"{body.__qualname__} ran {ran} of {wanted} examples"

        return run

    return decorate


# --------------------------------------------------------------------------
# The server: one per module, on the suite's stack.


@pytest.fixture(scope="module")
def fuzz_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with fresh_stack(request, tmp_path_factory.mktemp("fuzz"), "lockbox_fuzz") as stack:
        yield stack


@pytest.fixture(scope="module")
def fuzz(fuzz_stack: Stack) -> Iterator[FuzzServer]:
    with fuzz_server(fuzz_stack) as server:
        yield server
        # Whatever ran in the module, the server's log holds no fault.
        assert server.logs.faults() == []


@pytest.fixture(autouse=True)
def _server_survives(fuzz: FuzzServer) -> Iterator[None]:
    yield
    assert fuzz.healthy(), "the server no longer answers /healthz"


def assert_contract(answer: Answer, fuzz: FuzzServer, since: int, what: object) -> None:
    """A 4xx or 200, every error with a contract code, nothing in the log."""
    assert answer.status < 500, (answer, what)
    assert set(answer.codes()) <= CONTRACT_CODES, (answer.body, what)
    if answer.status == 200:
        assert answer.is_json and isinstance(answer.body, dict), (answer, what)
        assert "data" in answer.body or answer.body.get("errors"), (answer.body, what)
    faults = fuzz.logs.faults(since)
    assert not faults, (faults, what)


# --------------------------------------------------------------------------
# Valid (and one-violation) operations from the schema, as every caller.


def known_ids(fuzz: FuzzServer) -> st.SearchStrategy[graphql.ValueNode]:
    return st.one_of(
        st.sampled_from(fuzz.known_ids()),
        st.text(max_size=40),
        st.uuids().map(str),
    ).map(nodes.String)


def json_nodes() -> st.SearchStrategy[graphql.ValueNode]:
    names = st.from_regex(r"\A[_A-Za-z][_0-9A-Za-z]{0,8}\Z")
    leaves = st.one_of(
        st.integers(-(2**40), 2**40).map(nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
        st.text(max_size=20).map(nodes.String),
        st.booleans().map(nodes.Boolean),
        st.just(graphql.NullValueNode()),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4).map(nodes.List),
            st.lists(st.tuples(names, children), max_size=4, unique_by=lambda kv: kv[0]).map(
                lambda pairs: nodes.Object(
                    [
                        graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v)
                        for k, v in pairs
                    ]
                )
            ),
        ),
        max_leaves=10,
    )


def scalars(fuzz: FuzzServer) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    return {
        "ID": known_ids(fuzz),
        "JSON": json_nodes(),
        "DateTime": st.datetimes().map(lambda d: nodes.String(d.isoformat())),
    }


# createWebhook's URL is any string here; a valid public one would make the
# outbox post off this machine. The hostile property covers it with URLs
# that can only be refused.
MUTATION_FIELDS = [name for name in SCHEMA.mutation_type.fields if name != "createWebhook"]  # type: ignore[union-attr]


def send_document(fuzz: FuzzServer, role: str | None, document: str) -> None:
    since = fuzz.logs.mark()
    answer = fuzz.post(role, {"query": document})
    assert_contract(answer, fuzz, since, (role, document))
    assert answer.status in (200, 413), (answer, document)


def test_generated_queries_as_every_caller(fuzz: FuzzServer) -> None:
    strategy = hypothesis_graphql.queries(SCHEMA, custom_scalars=scalars(fuzz))

    @fuzzed(150, document=strategy, role=st.sampled_from(ROLES))
    def prop(document: str, role: str | None) -> None:
        send_document(fuzz, role, document)

    prop()


def test_generated_mutations_as_every_caller(fuzz: FuzzServer) -> None:
    strategy = hypothesis_graphql.mutations(
        SCHEMA, fields=MUTATION_FIELDS, custom_scalars=scalars(fuzz)
    )

    @fuzzed(200, document=strategy, role=st.sampled_from(ROLES))
    def prop(document: str, role: str | None) -> None:
        send_document(fuzz, role, document)

    prop()


def test_operations_with_one_schema_violation_are_refused_with_a_code(fuzz: FuzzServer) -> None:
    strategy = hypothesis_graphql.from_schema(
        SCHEMA,
        fields=["me", "accessRequests", "accessRequest", "auditLog", *MUTATION_FIELDS],
        custom_scalars=scalars(fuzz),
        mode=hypothesis_graphql.Mode.NEGATIVE,
    )

    @fuzzed(80, document=strategy, role=st.sampled_from(ROLES))
    def prop(document: str, role: str | None) -> None:
        since = fuzz.logs.mark()
        answer = fuzz.post(role, {"query": document})
        assert_contract(answer, fuzz, since, (role, document))
        assert answer.codes(), (answer.body, document)

    prop()


# --------------------------------------------------------------------------
# Hostile values in every argument of every mutation.

SPECIAL = [
    "\x00",
    "\x1b[31m",
    "\r",
    "\n",
    "\t",
    "\x7f",
    "\u0085",
    "\u200b",
    "\u200d",
    "\u202e",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\ufffe",
    "\uffff",
    "\uff0e\uff0e",
    "%2e%2e",
    "..%2f",
    "\\..\\",
    "/../",
    "\U0001f600",
    "\u0301",
    "'; DROP TABLE access_requests; --",
    "${jndi:ldap://x}",
    "<script>",
]
SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
PIECES = st.one_of(
    st.characters(codec=None, exclude_categories=()),  # any code point, surrogates too
    SURROGATES,
    st.sampled_from(SPECIAL),
)


def texts(max_pieces: int) -> st.SearchStrategy[str]:
    """Text made of any code points (lone surrogates too) and SPECIAL pieces."""
    return st.lists(PIECES, max_size=max_pieces).map("".join)


def hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(
        texts(40),
        texts(10).map(lambda s: f"{PROD}/{s}"),
        st.tuples(st.integers(1_000, 300_000), texts(3)).map(lambda t: "x" * t[0] + t[1]),
        st.sampled_from(["", " ", PROD, PROD + "/", "/", "read", "ok"]),
    )


RAW_NUMBERS = [
    Raw("NaN"),
    Raw("Infinity"),
    Raw("-Infinity"),
    Raw("1e400"),
    Raw("-1e400"),
    Raw("9" * 5000),
    Raw("-" + "9" * 400),
    Raw("1.0e-400"),
    Raw("0x10"),
]


def wrong_types() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.sampled_from(RAW_NUMBERS),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    )


def hostile_json() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**80), 2**80),
        st.floats(),  # NaN and infinities included
        st.sampled_from(RAW_NUMBERS),
        hostile_text(),
    )
    nested = st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=5),
            st.dictionaries(texts(10), children, max_size=5),
        ),
        max_leaves=20,
    )

    def deep(args: tuple[int, bool]) -> Any:
        depth, as_object = args
        value: Any = 1
        for _ in range(depth):
            value = {"a": value} if as_object else [value]
        return value

    return st.one_of(
        nested,
        st.tuples(st.integers(10, 3000), st.booleans()).map(deep),
        st.integers(10_000, 20_000).map(lambda n: [1] * n),
    )


def hostile_int() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(-(2**70), 2**70),
        st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, 2**53 + 1, 2**63, -(2**63) - 1]),
        wrong_types(),
        hostile_text(),
    )


def hostile_list(item: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(item, max_size=8),
        st.integers(21, 2000).map(lambda n: [PROD] * n),
        st.lists(st.integers(), max_size=3),
        wrong_types(),
        item,
    )


def arg(strategy: st.SearchStrategy[Any], *, optional: bool = True) -> st.SearchStrategy[Any]:
    """An argument's value; MISSING leaves it out of the variables."""
    return st.one_of(strategy, st.just(MISSING)) if optional else strategy


MISSING = object()


@dataclass(frozen=True)
class Mutation:
    name: str
    document: str
    variables: Callable[[FuzzServer], st.SearchStrategy[dict[str, Any]]]
    callers: tuple[str, ...]
    # Variables holding text the server stores: (variable, key in it or None, free text).
    stored_text: tuple[tuple[str, str | None, bool], ...] = ()


def ids(fuzz: FuzzServer) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(fuzz.known_ids()), hostile_text(), wrong_types())


def fixed(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(fields).map(
        lambda d: {k: v for k, v in d.items() if v is not MISSING}
    )


def input_object(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """An input object with hostile fields, missing ones, unknown ones, or
    not an object at all."""
    return st.one_of(
        fixed(**{k: arg(v) for k, v in fields.items()}),
        fixed(**{k: arg(v) for k, v in fields.items()}).map(lambda d: {**d, "unknown": 1}),
        wrong_types(),
    )


def decider_call(name: str) -> Mutation:
    return Mutation(
        name,
        f"mutation($id: ID!, $reason: String) {{ {name}(id: $id, reason: $reason) {{"
        " id status } }",
        lambda fuzz: fixed(id=arg(ids(fuzz)), reason=arg(st.one_of(hostile_text(), wrong_types()))),
        ("contoso-admin", "contoso-approver-prod"),
        stored_text=(("reason", None, True),),
    )


def engineer_call(name: str) -> Mutation:
    return Mutation(
        name,
        f"mutation($id: ID!) {{ {name}(id: $id) {{ id status }} }}",
        lambda fuzz: fixed(id=arg(ids(fuzz))),
        ("engineer-alice",),
    )


# Only URLs that are refused before any name lookup or delivery: no traffic
# leaves this machine whatever is generated.
WEBHOOK_URLS = st.one_of(
    hostile_text().filter(lambda s: "://" not in s),
    st.sampled_from(
        [
            "http://127.0.0.1:1/hook",
            "http://[::1]/hook",
            "http://10.0.0.1/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://0.0.0.0/",
            "file:///etc/passwd",
            "gopher://127.0.0.1/",
            "http://user:pw@127.0.0.1/",
            "http://127.0.0.1:99999/",
            "http:///nohost",
            "http://\u0000/",
        ]
    ),
)

MUTATIONS = [
    Mutation(
        "createAccessRequest",
        "mutation($input: CreateAccessRequestInput!) { createAccessRequest(input: $input) {"
        " id status resources justification } }",
        lambda fuzz: fixed(
            input=input_object(
                ticketId=ids(fuzz),
                resources=hostile_list(hostile_text()),
                justification=st.one_of(hostile_text(), wrong_types()),
                durationSeconds=hostile_int(),
            )
        ),
        ("engineer-alice",),
        stored_text=(("input", "justification", True), ("input", "resources", False)),
    ),
    engineer_call("cancelAccessRequest"),
    engineer_call("releaseAccess"),
    decider_call("approveRequest"),
    decider_call("denyRequest"),
    decider_call("revokeAccess"),
    Mutation(
        "authorizeAccess",
        "mutation($input: AuthorizeAccessInput!) { authorizeAccess(input: $input) {"
        " allowed reason event { id action resource detail } } }",
        lambda fuzz: fixed(
            input=input_object(
                requestId=st.one_of(
                    st.sampled_from([fuzz.ids["approved"], fuzz.ids["northwind"]]), ids(fuzz)
                ),
                resource=st.one_of(hostile_text(), wrong_types()),
                action=st.one_of(hostile_text(), wrong_types()),
                detail=hostile_json(),
            )
        ),
        ("engineer-alice",),
        stored_text=(("input", "resource", False), ("input", "action", False)),
    ),
    Mutation(
        "setLockboxEnabled",
        "mutation($enabled: Boolean!) { setLockboxEnabled(enabled: $enabled) {"
        " id lockboxEnabled } }",
        lambda fuzz: fixed(enabled=arg(st.one_of(wrong_types(), hostile_text()))),
        ("contoso-admin",),
    ),
    Mutation(
        "updateLockboxSettings",
        "mutation($input: LockboxSettingsInput!) { updateLockboxSettings(input: $input) {"
        " settings { pendingRequestTtlSeconds defaultAccessSeconds maxAccessSeconds } } }",
        lambda fuzz: fixed(
            input=input_object(
                pendingRequestTtlSeconds=hostile_int(),
                defaultAccessSeconds=hostile_int(),
                maxAccessSeconds=hostile_int(),
                notificationEmails=hostile_list(hostile_text()),
            )
        ),
        ("contoso-admin",),
    ),
    Mutation(
        "createWebhook",
        "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } } }",
        lambda fuzz: fixed(
            input=input_object(url=WEBHOOK_URLS, events=hostile_list(hostile_text())).filter(
                # An object needs its url to be one of the refusable ones.
                lambda v: not isinstance(v, dict) or "url" not in v or isinstance(v["url"], str)
            )
        ),
        ("contoso-admin",),
    ),
    Mutation(
        "deleteWebhook",
        "mutation($id: ID!) { deleteWebhook(id: $id) }",
        lambda fuzz: fixed(id=arg(ids(fuzz))),
        ("contoso-admin",),
    ),
]


def refused_text(value: str, free_text: bool) -> str | None:
    """Why section 10 would refuse `value` as stored text, if it would."""
    for char in value:
        if free_text and char in "\t\n":
            continue
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            return f"U+{ord(char):04X}"
    return None


def refused_resource(value: str) -> str | None:
    if "%" in value or "\\" in value:
        return "% or backslash"
    if unicodedata.normalize("NFKC", value) != value:
        return "changed by NFKC"
    return refused_text(value, False)


def check_stored_text(mutation: Mutation, variables: dict[str, Any]) -> None:
    for name, key, free_text in mutation.stored_text:
        value = variables.get(name)
        if key is not None:
            value = value.get(key) if isinstance(value, dict) else None
        values = value if isinstance(value, list) else [value]
        for item in values:
            if not isinstance(item, str):
                continue
            why = refused_resource(item) if key in ("resource", "resources") else None
            why = why or refused_text(item, free_text)
            assert why is None, f"{mutation.name} stored {name}.{key} with {why}: {item[:80]!r}"


def inline_document(mutation: Mutation, variables: dict[str, Any]) -> str | None:
    """The same call with each plain variable written into the document as
    a GraphQL literal (strings escaped as JSON, which GraphQL reads)."""
    if mutation.name not in ("approveRequest", "denyRequest", "revokeAccess"):
        return None
    parts = []
    for name, value in variables.items():
        if isinstance(value, str) and not isinstance(value, Raw):
            parts.append(f"{name}: {to_json(value)}")
    if not parts:
        return None
    return f"mutation {{ {mutation.name}({', '.join(parts)}) {{ id status }} }}"


def calls(fuzz: FuzzServer) -> st.SearchStrategy[tuple[Mutation, str | None, dict[str, Any], bool]]:
    def one(mutation: Mutation) -> st.SearchStrategy[Any]:
        return st.tuples(
            st.just(mutation),
            st.one_of(st.sampled_from(mutation.callers), st.sampled_from(ROLES)),
            mutation.variables(fuzz),
            st.booleans(),
        )

    return st.one_of(*(one(m) for m in MUTATIONS))


def test_hostile_arguments_to_every_mutation(fuzz: FuzzServer) -> None:
    @fuzzed(300, call=calls(fuzz))
    def prop(call: tuple[Mutation, str | None, dict[str, Any], bool]) -> None:
        mutation, role, variables, inline = call
        document = (inline and inline_document(mutation, variables)) or mutation.document
        body = f'{{"query": {to_json(document)}, "variables": {to_json(variables)}}}'
        before = fuzz.probe.counts()
        since = fuzz.logs.mark()
        answer = fuzz.post(role, body)
        what = (mutation.name, role, body[:300])
        assert_contract(answer, fuzz, since, what)
        data = answer.body.get("data") if isinstance(answer.body, dict) else None
        if data and data.get(mutation.name) is not None:
            check_stored_text(mutation, variables)
        else:
            # Even a body that is not JSON (0x10, a lone surrogate JSON
            # cannot carry) is answered with a GraphQL error and its code.
            assert answer.codes(), (answer, what)
            assert fuzz.probe.counts() == before, ("a refused call stored something", what)

    prop()


# --------------------------------------------------------------------------
# Hostile request bodies.

ME = "{ me { name } }"
DEEP = 3000


def raw_bodies() -> st.SearchStrategy[tuple[str, bytes, str]]:
    """(method, body or query string, content type)."""
    query = to_json(ME)
    bodies = st.one_of(
        st.sampled_from(
            [
                b"",
                b" ",
                b"null",
                b"[]",
                b'"query"',
                b"1",
                b"true",
                b"{",
                b'{"query": "\xff\xfe"}',
                b"\xef\xbb\xbf" + f'{{"query": {query}}}'.encode(),
                b'{"query": "\\ud800"}',
                b'{"query": NaN}',
                b'{"query": ' + query.encode() + b', "variables": {"x": NaN}}',
                b'{"query": ' + query.encode() + b', "variables": {"x": ' + b"9" * 5000 + b"}}",
                b'{"query": ' + query.encode() + b', "variables": {"x": 1e400}}',
                b"[" * DEEP + b"]" * DEEP,
                b'{"a":' * DEEP + b"1" + b"}" * DEEP,
                b'{"query": '
                + query.encode()
                + b', "variables": '
                + b"[" * DEEP
                + b"]" * DEEP
                + b"}",
                b'{"query": ' + query.encode() + b', "variables": "x"}',
                b'{"query": ' + query.encode() + b', "variables": []}',
                b'{"query": ' + query.encode() + b', "operationName": 1}',
                b'{"query": ' + query.encode() + b', "operationName": "Nope"}',
                b'{"query": ' + query.encode() + b', "extensions": "x"}',
                b'{"query": ' + query.encode() + b', "extensions": {"persistedQuery": 1}}',
                b'[{"query": ' + query.encode() + b"}]",
                b'{"query": 1}',
                b'{"query": null}',
                b'{"query": ["{ me { name } }"]}',
                b'{"query": {"a": 1}}',
                b'{"query": "query A { me { name } } query A { me { name } }"}',
                b'{"query": "subscription { accessRequestUpdates { id } }"}',
                b'{"query": "' + b"{" * 10_000 + b'"}',
                # The same key twice: the second wins, and GET/POST rules still hold.
                b'{"query": "{ me { name } }",'
                b' "query": "mutation { setLockboxEnabled(enabled: false) { id } }"}',
            ]
        ),
        st.binary(max_size=200),
        texts(100).map(lambda q: json.dumps({"query": q}).encode("utf-8", "surrogatepass")),
        texts(100).map(lambda s: s.encode("utf-8", "surrogatepass")),
    )
    content_types = st.sampled_from(
        [
            "application/json",
            "application/json; charset=latin-1",
            "text/plain",
            "application/graphql",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "multipart/form-data; boundary=x",
            "",
        ]
    )
    gets = st.sampled_from(
        [
            "query=%7B%20me%20%7B%20name%20%7D%20%7D&variables=NaN",
            "query=%7B%20me%20%7B%20name%20%7D%20%7D&variables=%5B",
            "query=mutation%20%7B%20setLockboxEnabled(enabled%3A%20false)%20%7B%20id%20%7D%20%7D",
            "query=%7B",
            "query=%ff%fe",
            "query=" + "%7B" * 3000,
            "variables=%7B%7D",
            "",
        ]
    ).map(str.encode)
    return st.one_of(
        st.tuples(st.just("POST"), bodies, content_types),
        st.tuples(st.just("GET"), gets, st.just("")),
    )


def test_hostile_request_bodies(fuzz: FuzzServer) -> None:
    @fuzzed(100, request=raw_bodies(), role=st.sampled_from(["contoso-admin", None]))
    def prop(request: tuple[str, bytes, str], role: str | None) -> None:
        method, body, content_type = request
        before = fuzz.probe.counts()
        since = fuzz.logs.mark()
        if method == "GET":
            response = fuzz.client.get(
                f"{fuzz.url}?{body.decode()}",
                headers={**fuzz.headers(role), "Accept": "application/json"},
            )
        else:
            headers = {**fuzz.headers(role)}
            if content_type:
                headers["Content-Type"] = content_type
            response = fuzz.client.post(fuzz.url, content=body, headers=headers)
        try:
            answer = Answer(response.status_code, response.json(), True)
        except ValueError:
            answer = Answer(response.status_code, response.text, False)
        assert_contract(answer, fuzz, since, (method, body[:200], content_type))
        assert fuzz.probe.counts() == before or answer.status == 200, (method, body[:200])

    prop()


# --------------------------------------------------------------------------
# WebSocket frames and protocol sequences, both sub-protocols.

SUBSCRIPTION = "subscription { accessRequestUpdates { id status } }"
ACTIVITY = "subscription($id: ID!) { engineerActivity(requestId: $id) { id action } }"
# Close codes a server may answer hostile frames with: normal, protocol
# error, unsupported or invalid data, too big, and graphql-transport-ws's
# own (bad request, unauthorized, forbidden, init timeout, duplicate id,
# too many inits). Never 1011 (a fault) unless the legacy protocol refused
# a connection_init with connection_error first; never 1006 (no close frame).
CLOSE_CODES = {1000, 1002, 1003, 1007, 1008, 1009, 4400, 4401, 4403, 4408, 4409, 4429}


@dataclass(frozen=True)
class Frame:
    data: str | bytes


def frames(protocol: str, fuzz: FuzzServer) -> st.SearchStrategy[Frame]:
    start = "subscribe" if protocol == TRANSPORT_WS else "start"
    stop = "complete" if protocol == TRANSPORT_WS else "stop"
    op_ids = st.one_of(
        st.sampled_from(["1", "2", "1"]),
        texts(20),
        st.integers(1000, 60_000).map(lambda n: "i" * n),
        wrong_types(),
    )
    token = f"Bearer {fuzz.token('contoso-admin')}"
    payloads = st.one_of(
        st.just({"query": SUBSCRIPTION}),
        st.just({"query": ACTIVITY, "variables": {"id": fuzz.ids["approved"]}}),
        st.just({"query": ME}),
        st.just({"query": "mutation { setLockboxEnabled(enabled: true) { id } }"}),
        st.just({"query": "{"}),
        st.just({}),
        st.just({"query": SUBSCRIPTION, "variables": "x"}),
        st.just({"query": SUBSCRIPTION, "variables": [1]}),
        st.just({"query": SUBSCRIPTION, "operationName": 5}),
        st.just({"query": ACTIVITY, "variables": {"id": Raw("NaN")}}),
        st.builds(lambda q: {"query": q}, st.one_of(hostile_text(), wrong_types())),
        wrong_types(),
        st.just(MISSING),
    )
    inits = st.one_of(
        st.just({"authorization": token}),
        st.just({"Authorization": token}),
        st.just({"authorization": "Bearer nope"}),
        st.just({"authorization": ["x"]}),
        st.just({}),
        wrong_types(),
        st.just(MISSING),
    )

    def message(kind: str, op_id: Any = MISSING, payload: Any = MISSING) -> Frame:
        body: dict[str, Any] = {"type": kind}
        if op_id is not MISSING:
            body["id"] = op_id
        if payload is not MISSING:
            body["payload"] = payload
        return Frame(to_json(body))

    return st.one_of(
        st.builds(lambda p: message("connection_init", payload=p), inits),
        st.builds(lambda i, p: message(start, i, p), op_ids, payloads),
        st.builds(lambda i, p: message(start, i, p), st.just(MISSING), payloads),
        st.builds(lambda i: message(stop, i), st.one_of(op_ids, st.just(MISSING))),
        st.sampled_from(
            ["ping", "pong", "ka", "connection_terminate", "next", "data", "error"]
        ).map(lambda k: message(k)),
        texts(12).map(lambda k: message(k)),
        st.builds(lambda t: Frame(to_json({"type": t})), wrong_types()),
        st.just(Frame(to_json({"id": "1"}))),
        st.builds(lambda v: Frame(to_json(v)), wrong_types()),
        texts(50).map(Frame),
        st.binary(max_size=50).map(Frame),
        st.just(Frame("[" * DEEP + "]" * DEEP)),
        st.just(Frame('{"type": "' + start + '", "id": ' + "9" * 5000 + "}")),
    )


def sequences(protocol: str, fuzz: FuzzServer) -> st.SearchStrategy[list[Frame]]:
    token = fuzz.token("contoso-admin")
    init = Frame(
        to_json({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    )
    anything = st.lists(frames(protocol, fuzz), min_size=1, max_size=6)
    # Half the sequences start on an acknowledged socket, so the frames
    # reach the operation handling, not only the init check.
    return st.one_of(anything, anything.map(lambda rest: [init, *rest]))


def drain(
    ws: ClientConnection, seen: list[Any], until: Callable[[Any], bool], timeout: float
) -> bool:
    """Read frames into `seen` until one matches `until` (True) or the socket
    closes (False). A silence longer than `timeout` is a hang."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, ("the server neither answered nor closed", seen)
        try:
            raw = ws.recv(timeout=remaining)
        except TimeoutError:
            continue
        except ConnectionClosed:
            return False
        message = json.loads(raw) if isinstance(raw, str) else raw
        seen.append(message)
        if until(message):
            return True


def run_sequence(fuzz: FuzzServer, protocol: str, sequence: list[Frame]) -> None:
    seen: list[Any] = []
    with connect(fuzz.ws_url, subprotocols=[protocol], open_timeout=10, max_size=None) as ws:  # type: ignore[list-item]
        for frame in sequence:
            try:
                if isinstance(frame.data, str):
                    # A text frame, its lone surrogates as they are (invalid UTF-8).
                    ws.send(frame.data.encode("utf-8", "surrogatepass"), text=True)
                else:
                    ws.send(frame.data)
            except ConnectionClosed:
                break
        # The sentinel: a frame every open socket answers, whatever its state.
        sentinel: dict[str, Any]
        if protocol == TRANSPORT_WS:
            sentinel = {"type": "ping"}

            def answered(m: Any) -> bool:
                return isinstance(m, dict) and m.get("type") == "pong"
        else:
            sentinel = {
                "type": "start",
                "id": "sentinel",
                "payload": {"query": "subscription { nope }"},
            }

            def answered(m: Any) -> bool:
                return isinstance(m, dict) and m.get("id") == "sentinel"

        with contextlib.suppress(ConnectionClosed):
            ws.send(json.dumps(sentinel))
        if drain(ws, seen, answered, timeout=10):
            return
    close = ws.protocol.close_rcvd
    assert close is not None, ("closed without a close frame (1006)", seen)
    refused_init = any(isinstance(m, dict) and m.get("type") == "connection_error" for m in seen)
    allowed = CLOSE_CODES | ({1011} if protocol == LEGACY_WS and refused_init else set())
    assert close.code in allowed, (close.code, close.reason, seen)


class Witness:
    """A socket opened before the fuzzing, subscribed to request updates:
    after it, a change must still reach it."""

    def __init__(self, fuzz: FuzzServer, protocol: str, ws: ClientConnection) -> None:
        self.fuzz = fuzz
        self.protocol = protocol
        self.ws = ws
        token = fuzz.token("contoso-admin")
        self.ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        )
        assert self.receive()["type"] == "connection_ack"
        kind = "subscribe" if protocol == TRANSPORT_WS else "start"
        self.ws.send(json.dumps({"id": "w", "type": kind, "payload": {"query": SUBSCRIPTION}}))

    def receive(self) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(self.ws.recv(timeout=10))
            if message["type"] not in ("ka", "ping", "pong"):
                return message

    def still_streams(self) -> None:
        created = self.fuzz.data(
            "engineer-alice",
            "mutation($t: ID!, $r: [String!]!) { createAccessRequest(input: {ticketId: $t,"
            ' resources: $r, justification: "witness"}) { id } }',
            t=str(self.fuzz.world["tickets"]["contoso-ticket"]["id"]),
            r=[PROD],
        )
        wanted = created["createAccessRequest"]["id"]
        while True:
            message = self.receive()
            assert message["type"] in ("next", "data"), message
            if message["payload"]["data"]["accessRequestUpdates"]["id"] == wanted:
                break


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
def test_malformed_websocket_frames_and_sequences(fuzz: FuzzServer, protocol: str) -> None:
    with connect(fuzz.ws_url, subprotocols=[protocol], open_timeout=10) as ws:  # type: ignore[list-item]
        witness = Witness(fuzz, protocol, ws)
        fuzz_sequences(fuzz, protocol)
        witness.still_streams()


def fuzz_sequences(fuzz: FuzzServer, protocol: str) -> None:

    @fuzzed(100, sequence=sequences(protocol, fuzz))
    def prop(sequence: list[Frame]) -> None:
        since = fuzz.logs.mark()
        run_sequence(fuzz, protocol, sequence)
        # A fault may be logged just after the socket closes.
        time.sleep(0.01)
        faults = fuzz.logs.faults(since)
        assert not faults, (faults, sequence)

    prop()


# --------------------------------------------------------------------------
# The faults the properties found, each pinned by an explicit case (they
# were a 500 or a traceback, or an error without a code).


@pytest.mark.parametrize(
    "body",
    [
        b'{"query": "{ me { name } }", "variables": {"x": ' + b"9" * 5000 + b"}}",
        b"[" * DEEP + b"]" * DEEP,
        b'{"query": "\xff\xfe"}',
        b"null",
        b"[]",
        b'"query"',
        b'[{"query": "{ me { name } }"}]',
    ],
    ids=["5000-digits", "3000-deep", "invalid-utf8", "null", "array", "string", "batch"],
)
def test_a_body_that_is_not_a_json_object_is_a_400_not_a_fault(
    fuzz: FuzzServer, body: bytes
) -> None:
    since = fuzz.logs.mark()
    answer = fuzz.post("contoso-admin", body)
    assert answer.status == 400, answer
    assert answer.codes() == ["BAD_USER_INPUT"], answer
    assert fuzz.logs.faults(since) == []


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ("{", "GRAPHQL_PARSE_FAILED"),
        ('{ me(x: "\\ud800 ) }', "GRAPHQL_PARSE_FAILED"),
        ("{ me { " + "name " * 2100 + "} }", "BAD_USER_INPUT"),  # the token limit
    ],
)
def test_a_document_that_does_not_parse_has_a_code(
    fuzz: FuzzServer, document: str, code: str
) -> None:
    answer = fuzz.post("contoso-admin", {"query": document})
    assert answer.codes() == [code], answer.body


def ws_exchange(
    fuzz: FuzzServer, protocol: str, frames: list[str | bytes]
) -> tuple[Any, list[Any]]:
    """Send an init and `frames`; the close (or None) and what came back."""
    seen: list[Any] = []
    with connect(fuzz.ws_url, subprotocols=[protocol], open_timeout=10) as ws:  # type: ignore[list-item]
        token = fuzz.token("contoso-admin")
        ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        )
        for frame in frames:
            with contextlib.suppress(ConnectionClosed):
                if isinstance(frame, str):
                    ws.send(frame.encode("utf-8", "surrogatepass"), text=True)
                else:
                    ws.send(frame)
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            while True:
                raw = ws.recv(timeout=1)
                seen.append(json.loads(raw))
                if seen[-1].get("type") in ("error", "next", "data", "complete"):
                    break
    return ws.protocol.close_rcvd, seen


MALFORMED = {
    "array": '[{"type": "connection_init"}]',
    "number-id": '{"type": "START", "id": 1, "payload": {"query": "subscription { x }"}}',
    "payload-string": '{"type": "START", "id": "1", "payload": "x"}',
    "no-query": '{"type": "START", "id": "1", "payload": {}}',
    "variables-list": '{"type": "START", "id": "1", "payload": {"query": "x", "variables": []}}',
    "stop-list-id": '{"type": "STOP", "id": ["1"]}',
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
def test_a_malformed_message_is_a_protocol_error_not_a_traceback(
    fuzz: FuzzServer, protocol: str, case: str
) -> None:
    start, stop = ("subscribe", "complete") if protocol == TRANSPORT_WS else ("start", "stop")
    frame = MALFORMED[case].replace("START", start).replace("STOP", stop)
    since = fuzz.logs.mark()
    close, seen = ws_exchange(fuzz, protocol, [frame])
    if protocol == TRANSPORT_WS:
        assert close is not None and close.code == 4400, (close, seen)
    else:
        errors = [m for m in seen if m.get("type") == "error"]
        assert errors and errors[0]["payload"]["extensions"]["code"] == "BAD_USER_INPUT", seen
    assert fuzz.logs.faults(since) == []


def test_close_reasons_never_carry_a_lone_surrogate_or_more_than_123_bytes(
    fuzz: FuzzServer,
) -> None:
    for kind in ("\ud800", "x" * 500):
        since = fuzz.logs.mark()
        close, _ = ws_exchange(fuzz, TRANSPORT_WS, [to_json({"type": kind})])
        assert close is not None and close.code == 4400
        assert len(close.reason.encode()) <= 123
        assert fuzz.logs.faults(since) == []


def test_a_query_over_graphql_ws_runs(fuzz: FuzzServer) -> None:
    """It was refused (first as a masked fault, then BAD_USER_INPUT): the
    legacy protocol runs queries and mutations too (contract section 11)."""
    since = fuzz.logs.mark()
    _, seen = ws_exchange(
        fuzz, LEGACY_WS, [json.dumps({"type": "start", "id": "1", "payload": {"query": ME}})]
    )
    answers = [m for m in seen if m.get("type") in ("error", "data")]
    assert answers[0]["type"] == "data" and not answers[0]["payload"].get("errors"), seen
    assert fuzz.logs.faults(since) == []


def test_a_text_frame_that_is_not_utf8_closes_1007_with_one_line_and_no_traceback(
    fuzz: FuzzServer,
) -> None:
    since = fuzz.logs.mark()
    close, _ = ws_exchange(fuzz, TRANSPORT_WS, ["\ud800"])
    assert close is not None and close.code == 1007
    time.sleep(0.05)
    assert fuzz.logs.faults(since) == []
    lines = [r for r in fuzz.logs.records[since:] if "UTF-8" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None

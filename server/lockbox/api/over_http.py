"""GraphQL over HTTP, as the GraphQL-over-HTTP specification says it.

- The media type of an answer follows the request's `Accept`:
  `application/graphql-response+json` when the client prefers it (Apollo
  Client, graphql-http, urql do), `application/json` otherwise (no Accept,
  `*/*`, or only `application/json`).
- A request that is not well-formed (a body that is not a JSON object,
  parameters of the wrong type, no query) is 400 under both media types;
  405 for a mutation over GET (`Allow: POST`), 415 for a body that is not
  JSON, 413 for one too large (api.request_body).
- A well-formed request whose document does not parse or validate, or
  whose variables do not coerce (execution never starts) is answered with
  no `data` entry at all: 400 under `application/graphql-response+json`,
  200 under `application/json` (legacy clients read the errors of a 200).

Every error is a GraphQL error with `extensions.code`, never plain text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cross_web import HTTPException
from starlette.responses import Response

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


class RequestError(Exception):
    """A request answered with one error and no data. `status` applies under
    application/graphql-response+json, `json_status` under application/json."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int = 400,
        json_status: int = 400,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.strict_status = status
        self.json_status = json_status
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})

    def response(self, media_type: str) -> Response:
        error = {"message": self.message, "extensions": {"code": self.code, **self.extensions}}
        return Response(
            json.dumps({"errors": [error]}, separators=(",", ":")),
            status_code=self.strict_status if media_type == GRAPHQL_RESPONSE else self.json_status,
            media_type=media_type,
            headers=self.headers,
        )


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept.split(","):
        media, _, params = part.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        ranges.append((media.strip().lower(), quality))
    return ranges


def response_media_type(accept: str | None) -> str:
    """application/graphql-response+json when the client names it and likes it
    at least as much as application/json; application/json otherwise."""
    if not accept:
        return JSON
    ranges = _media_ranges(accept)
    graphql = max((q for media, q in ranges if media == GRAPHQL_RESPONSE), default=0.0)
    plain = max((q for media, q in ranges if media in (JSON, "application/*", "*/*")), default=0.0)
    return GRAPHQL_RESPONSE if graphql > 0 and graphql >= plain else JSON


def from_strawberry(exc: HTTPException) -> RequestError:
    """strawberry's own refusals (plain text there), as GraphQL errors."""
    if exc.status_code == 405:
        return RequestError(
            "GraphQL is served over GET and POST only",
            code="BAD_USER_INPUT",
            status=405,
            json_status=405,
            headers={"Allow": "GET, POST"},
        )
    if exc.status_code == 404:
        return RequestError("Not Found", code="NOT_FOUND", status=404, json_status=404)
    if exc.reason == "Unsupported content type":
        return RequestError(
            "a POST body must be JSON (Content-Type: application/json)",
            code="BAD_USER_INPUT",
            status=415,
            json_status=415,
        )
    if exc.reason == "Unable to parse request body as JSON":
        return RequestError("the request body must be a JSON object", code="BAD_USER_INPUT")
    return RequestError(exc.reason, code="BAD_USER_INPUT")


def is_request_error(body: Mapping[str, Any]) -> bool:
    """Execution never started: no data, and no error at a path."""
    errors = body.get("errors") or []
    return body.get("data") is None and bool(errors) and not any(e.get("path") for e in errors)


def graphql_response(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A result as application/graphql-response+json has it: a request error
    has no `data` and status 400 (500 when a fault stopped it)."""
    if not is_request_error(body):
        return body, 200
    faulted = any(
        (e.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR" for e in body["errors"]
    )
    return {k: v for k, v in body.items() if k != "data"}, 500 if faulted else 400


def without_data(body: dict[str, Any]) -> dict[str, Any]:
    """Under application/json too, a request error has no `data` entry: it
    was never computed (the spec's "data entry absent")."""
    if not is_request_error(body):
        return body
    return {k: v for k, v in body.items() if k != "data"}

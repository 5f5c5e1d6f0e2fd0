"""The browser pages (GraphiQL, the console): static files under a strict CSP.

A page is one of our own HTML files; everything it loads comes from Lockbox,
through an `Assets` endpoint that serves an explicit allow-list of files by
name. No inline script or style anywhere, so the policy needs no
'unsafe-inline', no nonce and no 'unsafe-eval'.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib.resources import files
from importlib.resources.abc import Traversable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}

# A Host header we are willing to repeat in the policy: name or IPv4 or
# [IPv6], optional port. Anything else gets 'self' alone.
_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


# The one stylesheet GraphiQL writes into the page itself: its dialogs'
# scroll lock (react-remove-scroll-bar), whose numbers are all 0 on a page
# that never scrolls, as ours. Allowed by its hash rather than refused with
# a console error each time a dialog opens; any other inline style is refused.
GRAPHIQL_STYLE_HASHES = ("sha256-Y/huXlwoYkVyQlxwSVcCi1RCDGDCSVBzDt0hYP9qlTc=",)


def content_security_policy(host: str | None, style_hashes: tuple[str, ...] = ()) -> str:
    """The pages' policy. `connect-src 'self'` covers same-origin ws(s) in
    current browsers (CSP level 3); the explicit ws/wss sources of the
    request's host are for the ones that predate that rule."""
    connect = ["'self'"]
    if host and _HOST.fullmatch(host):
        connect += [f"ws://{host}", f"wss://{host}"]
    styles = ["'self'", *(f"'{digest}'" for digest in style_hashes)]
    directives = [
        "default-src 'self'",
        "script-src 'self'",
        f"style-src {' '.join(styles)}",
        "img-src 'self' data:",
        # GraphiQL's stylesheet embeds its fonts as data: URLs.
        "font-src 'self' data:",
        f"connect-src {' '.join(connect)}",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ]
    return "; ".join(directives)


def security_headers(request: Request, style_hashes: tuple[str, ...] = ()) -> dict[str, str]:
    """The headers every page carries."""
    return {
        "Content-Security-Policy": content_security_policy(
            request.headers.get("host"), style_hashes
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


def media_type(name: str) -> str:
    for suffix, value in MEDIA_TYPES.items():
        if name.endswith(suffix):
            return value
    raise ValueError(f"no media type for {name!r}")


def page(source: Traversable, request: Request, style_hashes: tuple[str, ...] = ()) -> Response:
    """One of our HTML pages, with the security headers."""
    return Response(
        source.read_bytes(),
        media_type=MEDIA_TYPES[".html"],
        headers=security_headers(request, style_hashes),
    )


@dataclass(frozen=True)
class Asset:
    """A file a page loads: where it is, and how it is served."""

    source: Traversable

    @cached_property
    def body(self) -> bytes:
        return self.source.read_bytes()

    @cached_property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'


class Assets:
    """Files served by name from an allow-list (`endpoint`, for a route with a
    `{name}` parameter); any other name is a 404.

    Revalidated on every load (`no-cache` with a strong ETag, answered 304),
    so an upgrade of Lockbox or of the packaged files is seen at once.
    """

    def __init__(self, assets: Mapping[str, Traversable]) -> None:
        for name in assets:
            media_type(name)  # refuse, at start, a name we could not label
        self.assets = {name: Asset(source) for name, source in assets.items()}

    async def endpoint(self, request: Request) -> Response:
        name = request.path_params["name"]
        asset = self.assets.get(name)
        if asset is None:
            return PlainTextResponse("Not Found", status_code=404)
        headers = {
            "ETag": asset.etag,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        }
        if asset.etag in _etags(request.headers.get("if-none-match", "")):
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=media_type(name), headers=headers)


def _etags(header: str) -> list[str]:
    return [tag.strip().removeprefix("W/") for tag in header.split(",")]


# GraphiQL 2 and what it needs, from the graphene-django-graphiql-static
# package (installed, never copied into this repository), and our own page.
_VENDOR = files("graphene_django_graphiql_static") / "static" / "graphene_django_graphiql_static"
_OWN = files("lockbox") / "static" / "graphiql"

GRAPHIQL_PAGE = _OWN / "index.html"
GRAPHIQL_ASSETS_PATH = "/graphiql/assets"


def graphiql_assets() -> Assets:
    return Assets(
        {
            "react.production.min.js": _VENDOR / "react.production.min.js",
            "react-dom.production.min.js": _VENDOR / "react-dom.production.min.js",
            "graphiql.min.js": _VENDOR / "graphiql.min.js",
            "graphiql.min.css": _VENDOR / "graphiql.min.css",
            "graphql-ws.min.js": _VENDOR / "graphql-ws.min.js",
            "graphiql-plugin-explorer.umd.js": _VENDOR / "graphiql-plugin-explorer.umd.js",
            "graphiql-plugin-explorer.css": _VENDOR / "style.css",
            "graphiql.js": _OWN / "graphiql.js",
            "graphiql.css": _OWN / "graphiql.css",
        }
    )

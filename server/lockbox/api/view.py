"""The ASGI GraphQL endpoint: HTTP, both WebSocket sub-protocols, GraphiQL.

GraphiQL is our own page (`lockbox/static/graphiql`), served with the pages'
security headers; its assets come from Lockbox too (`pages.graphiql_assets`).
With it turned off, a browser's GET is answered as strawberry does: 404.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UnsetType

from lockbox.api import pages
from lockbox.api.context import Context
from lockbox.api.operations import LegacyWSHandler, TransportWSHandler
from lockbox.api.schema import build_schema
from lockbox.domain.errors import Unauthenticated
from lockbox.services.deps import Deps


class LockboxGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, deps: Deps, *, graphiql: bool) -> None:
        super().__init__(build_schema(), graphql_ide="graphiql" if graphiql else None)
        self.deps = deps

    async def render_graphql_ide(self, request: Request) -> Response:
        return pages.page(pages.GRAPHIQL_PAGE, request, pages.GRAPHIQL_STYLE_HASHES)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return Context(deps=self.deps, request=request)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        try:
            actor = await context.actor()
        except Unauthenticated as exc:
            raise ConnectionRejectionError({"message": exc.message}) from None
        return {"principal": actor.name}

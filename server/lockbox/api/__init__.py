"""The GraphQL API: types, resolvers, context and the ASGI view. Resolvers are
thin: parse, authenticate, call one service, wrap the result in a type."""

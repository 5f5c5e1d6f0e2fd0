"""The GraphQL API. Resolvers are thin: parse, authenticate, call one
service, wrap the result in a type.

schema      build_schema(): the roots and the extensions
queries     Query          mutations  Mutation (callers declared per field)
inputs      input objects  subscriptions  Subscription
permissions who may call each mutation, declared where a reader sees it
errors      error codes, masking of unexpected faults
limits      depth, alias and token limits on every document
types       object types   loaders  batch loading of related rows
context     the caller, per request or connection
operations  which operation on which socket (for direct delivery)
view        the ASGI endpoint: HTTP, both WebSocket protocols, GraphiQL
"""

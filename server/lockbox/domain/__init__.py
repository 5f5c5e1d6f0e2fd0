"""The rules of Lockbox in plain Python: no database, no GraphQL, no I/O."""

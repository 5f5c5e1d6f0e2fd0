"""Use cases: one function each. Load, ask the domain, save and audit in one
transaction, then publish a wake-up after commit."""

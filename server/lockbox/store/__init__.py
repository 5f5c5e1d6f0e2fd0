"""Persistence: tortoise models, migrations and every query Lockbox runs."""

"""Lockbox: a self-hostable Customer Lockbox service."""

__version__ = "0.1.0"

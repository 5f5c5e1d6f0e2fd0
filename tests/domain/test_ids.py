"""Identifiers: UUIDs, and nothing else names an object."""

from __future__ import annotations

import uuid

import pytest

from lockbox.domain.ids import parse_uuid

SAMPLE = uuid.UUID("12345678-1234-5678-1234-567812345678")


@pytest.mark.parametrize(
    "value",
    [SAMPLE, str(SAMPLE), str(SAMPLE).upper(), SAMPLE.hex],
    ids=["uuid", "text", "upper", "hex"],
)
def test_uuid_forms_parse_to_the_same_id(value: object) -> None:
    assert parse_uuid(value) == SAMPLE


@pytest.mark.parametrize(
    "value",
    [None, "", "42", 42, "not-a-uuid", str(SAMPLE)[:-1], str(SAMPLE) + "0", "' OR 1=1 --"],
    ids=repr,
)
def test_anything_else_names_nothing(value: object) -> None:
    assert parse_uuid(value) is None

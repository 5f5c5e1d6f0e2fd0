"""Resource paths: validation, segment-wise containment, request resource lists."""

from __future__ import annotations

import pytest

from lockbox.domain.errors import BadUserInput
from lockbox.domain.resources import (
    MAX_PATH_LENGTH,
    MAX_RESOURCES_PER_REQUEST,
    is_within,
    normalize,
    parse_path,
    validate_request_resources,
    within_any,
)

PROD = "/subscriptions/contoso-prod"
DEV = "/subscriptions/contoso-dev"
ROOTS = [PROD, DEV]


def path_of_length(n: int) -> str:
    """A valid absolute path exactly n characters long."""
    base = f"{PROD}/"
    return base + "a" * (n - len(base))


# --- parse_path / normalize -------------------------------------------------


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        ("/a", ("a",)),
        (PROD, ("subscriptions", "contoso-prod")),
        (f"{PROD}/resourceGroups/rg1", ("subscriptions", "contoso-prod", "resourceGroups", "rg1")),
        ("/a/.../b", ("a", "...", "b")),
        ("/a/.hidden/b..c", ("a", ".hidden", "b..c")),
        ("/ünïcode/名前", ("ünïcode", "名前")),
    ],
)
def test_valid_path_splits_into_segments(path: str, segments: tuple[str, ...]) -> None:
    assert parse_path(path) == segments
    assert normalize(path) == path


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("", id="empty"),
        pytest.param("subscriptions/contoso-prod", id="relative"),
        pytest.param("contoso-prod", id="bare-name"),
        pytest.param("./subscriptions", id="dot-relative"),
        pytest.param("/", id="root-only"),
        pytest.param("//", id="double-slash"),
        pytest.param("//subscriptions", id="leading-double-slash"),
        pytest.param("/subscriptions//contoso-prod", id="inner-empty-segment"),
        pytest.param("/subscriptions/contoso-prod/", id="trailing-slash"),
        pytest.param("/.", id="lone-dot"),
        pytest.param("/..", id="lone-dotdot"),
        pytest.param("/subscriptions/./contoso-prod", id="dot-segment"),
        pytest.param("/subscriptions/contoso-prod/..", id="trailing-dotdot"),
        pytest.param("/subscriptions/contoso-prod/../contoso-dev", id="dotdot-escape"),
        pytest.param("/subscriptions/contoso\x00prod", id="nul"),
        pytest.param("/subscriptions/contoso-prod\n", id="newline"),
        pytest.param("/subscriptions/\tprod", id="tab"),
        pytest.param("/subscriptions/\x1bprod", id="escape"),
        pytest.param("/subscriptions/\x1fprod", id="unit-separator"),
        pytest.param("/subscriptions/\x7fprod", id="delete"),
    ],
)
def test_invalid_path_is_refused_as_bad_user_input(path: str) -> None:
    with pytest.raises(BadUserInput) as caught:
        parse_path(path)
    assert caught.value.extensions == {"code": "BAD_USER_INPUT"}
    with pytest.raises(BadUserInput):
        normalize(path)


@pytest.mark.parametrize("value", [None, 42, b"/subscriptions", ["/a"]], ids=repr)
def test_non_string_path_is_refused(value: object) -> None:
    with pytest.raises(BadUserInput):
        parse_path(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("char", ["\x85", "\x9b"], ids=["NEL", "CSI"])
def test_c1_control_characters_are_refused(char: str) -> None:
    with pytest.raises(BadUserInput):
        parse_path(f"{PROD}/rg{char}1")


def test_relative_path_message_says_what_and_why() -> None:
    with pytest.raises(BadUserInput, match="must start with '/'"):
        parse_path("subscriptions/x")
    with pytest.raises(BadUserInput, match=r"^resource root "):
        parse_path("subscriptions/x", what="resource root")


def test_dotdot_message_names_the_path() -> None:
    with pytest.raises(BadUserInput, match=r"'/a/\.\./b'.*'\.' or '\.\.'"):
        parse_path("/a/../b")


def test_path_of_exactly_1024_characters_is_accepted() -> None:
    path = path_of_length(MAX_PATH_LENGTH)
    assert MAX_PATH_LENGTH == 1024
    assert len(path) == 1024
    assert normalize(path) == path


def test_path_of_1025_characters_is_refused() -> None:
    path = path_of_length(MAX_PATH_LENGTH + 1)
    with pytest.raises(BadUserInput, match="1024"):
        parse_path(path)


# --- is_within / within_any -------------------------------------------------


@pytest.mark.parametrize(
    ("path", "root", "inside"),
    [
        (PROD, PROD, True),
        (f"{PROD}/x", PROD, True),
        (f"{PROD}/resourceGroups/rg1/providers/vm", PROD, True),
        ("/subscriptions/contoso-prod2", PROD, False),
        ("/subscriptions/contoso-prod2/x", PROD, False),
        ("/subscriptions/contoso-pro", PROD, False),
        ("/subscriptions", PROD, False),
        (DEV, PROD, False),
        ("/other/contoso-prod", PROD, False),
        ("/Subscriptions/contoso-prod/x", PROD, False),
        (f"{PROD}/x", "/subscriptions", True),
        (f"{PROD}/x", f"{PROD}/x/y", False),
        (f"{PROD}/rg1", f"{PROD}/rg", False),
    ],
)
def test_containment_is_by_whole_segments(path: str, root: str, inside: bool) -> None:
    assert is_within(path, root) is inside


def test_is_within_refuses_malformed_paths_rather_than_guessing() -> None:
    with pytest.raises(BadUserInput):
        is_within(f"{PROD}/../contoso-dev", PROD)
    with pytest.raises(BadUserInput):
        is_within(f"{PROD}/x", f"{PROD}/")


def test_within_any_checks_each_root() -> None:
    assert within_any(f"{DEV}/rg", ROOTS)
    assert within_any(f"{PROD}/rg", tuple(ROOTS))
    assert not within_any("/subscriptions/contoso-dev2/rg", ROOTS)
    assert not within_any(f"{PROD}/rg", [])


# --- validate_request_resources ---------------------------------------------


def test_single_resource_within_a_root_is_accepted() -> None:
    assert validate_request_resources([f"{PROD}/rg1"], ROOTS) == [f"{PROD}/rg1"]


def test_a_root_itself_is_a_valid_resource() -> None:
    assert validate_request_resources([DEV], ROOTS) == [DEV]


def test_twenty_resources_are_accepted() -> None:
    resources = [f"{PROD}/rg{i}" for i in range(MAX_RESOURCES_PER_REQUEST)]
    assert MAX_RESOURCES_PER_REQUEST == 20
    assert validate_request_resources(resources, ROOTS) == resources


def test_no_resources_is_refused() -> None:
    with pytest.raises(BadUserInput, match="1 to 20"):
        validate_request_resources([], ROOTS)


def test_twenty_one_resources_are_refused() -> None:
    resources = [f"{PROD}/rg{i}" for i in range(21)]
    with pytest.raises(BadUserInput, match="got 21"):
        validate_request_resources(resources, ROOTS)


def test_duplicates_are_collapsed_keeping_first_order() -> None:
    a, b, c = f"{PROD}/a", f"{DEV}/b", f"{PROD}/c"
    assert validate_request_resources([a, b, a, c, b, a], ROOTS) == [a, b, c]


@pytest.mark.parametrize(
    "outside",
    [
        "/subscriptions/contoso-prod2/rg",
        "/subscriptions/fabrikam-prod/rg",
        "/subscriptions",
        "/subscriptions/contoso-test",
    ],
)
def test_resource_outside_every_root_is_refused_and_named(outside: str) -> None:
    with pytest.raises(BadUserInput) as caught:
        validate_request_resources([f"{PROD}/ok", outside], ROOTS)
    assert outside in caught.value.message
    assert "not within" in caught.value.message


def test_tenant_without_roots_accepts_no_resource() -> None:
    with pytest.raises(BadUserInput):
        validate_request_resources([f"{PROD}/rg"], [])


@pytest.mark.parametrize(
    "bad",
    [
        "subscriptions/contoso-prod/rg",
        f"{PROD}//rg",
        f"{PROD}/rg/",
        f"{PROD}/./rg",
        f"{PROD}/../contoso-dev/rg",
        f"{PROD}/rg\x00",
    ],
)
def test_one_malformed_resource_spoils_the_request(bad: str) -> None:
    with pytest.raises(BadUserInput):
        validate_request_resources([f"{PROD}/ok", bad], ROOTS)


def test_an_overlong_resource_spoils_the_request() -> None:
    with pytest.raises(BadUserInput, match="1024"):
        validate_request_resources([path_of_length(1025)], ROOTS)

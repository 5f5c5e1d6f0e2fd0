"""Resource paths and segment-wise containment."""

from __future__ import annotations

import unicodedata

from lockbox.domain.errors import BadUserInput
from lockbox.domain.text import REFUSED_CATEGORIES

MAX_PATH_LENGTH = 1024
MAX_RESOURCES_PER_REQUEST = 20


def parse_path(path: str, *, what: str = "resource") -> tuple[str, ...]:
    """Split an absolute path into segments, refusing anything ambiguous."""
    if not isinstance(path, str) or not path:
        raise BadUserInput(f"{what} must be a non-empty absolute path")
    if len(path) > MAX_PATH_LENGTH:
        raise BadUserInput(f"{what} is longer than {MAX_PATH_LENGTH} characters")
    if not path.startswith("/"):
        raise BadUserInput(f"{what} {path!r} must start with '/'")
    segments = tuple(path[1:].split("/"))
    for segment in segments:
        if segment == "":
            raise BadUserInput(f"{what} {path!r} has an empty segment")
        if segment in (".", ".."):
            raise BadUserInput(f"{what} {path!r} may not contain '.' or '..' segments")
        if any(unicodedata.category(ch) in REFUSED_CATEGORIES for ch in segment):
            raise BadUserInput(f"{what} {path!r} contains control or format characters")
        if "%" in segment or "\\" in segment:
            # Encoded or backslashed paths mean different things to different
            # readers ("%2e%2e" is ".." to the service behind the gate).
            raise BadUserInput(f"{what} {path!r} may not contain '%' or '\\'")
        if unicodedata.normalize("NFKC", segment) != segment:
            # Fullwidth dots and look-alikes normalise to other paths.
            raise BadUserInput(f"{what} {path!r} is not in Unicode normal form NFKC")
    return segments


def normalize(path: str, *, what: str = "resource") -> str:
    return "/" + "/".join(parse_path(path, what=what))


def is_within(path: str, root: str) -> bool:
    """True when `path` is `root` or lies below it, by whole segments."""
    p, r = parse_path(path), parse_path(root)
    return p[: len(r)] == r


def within_any(path: str, roots: list[str] | tuple[str, ...]) -> bool:
    return any(is_within(path, root) for root in roots)


def validate_request_resources(resources: list[str], roots: list[str]) -> list[str]:
    """The resources of a new request: 1 to 20 valid paths, each within a root."""
    if not 1 <= len(resources) <= MAX_RESOURCES_PER_REQUEST:
        raise BadUserInput(
            f"resources must list 1 to {MAX_RESOURCES_PER_REQUEST} paths, got {len(resources)}"
        )
    cleaned: list[str] = []
    for path in resources:
        parse_path(path)
        if not within_any(path, roots):
            raise BadUserInput(f"resource {path!r} is not within any resource root of the tenant")
        if path not in cleaned:
            cleaned.append(path)
    return cleaned

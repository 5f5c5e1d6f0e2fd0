"""What stored text and JSON may contain (contract section 10).

Text that Lockbox stores and shows to others (justifications, reasons,
actions, resources, names) is valid Unicode with no lone surrogates, NUL or
other control or format characters: they break storage (PostgreSQL refuses
NUL), forge log lines and terminal output, or hide what a string says
(U+202E turns text around, zero-width characters make two names look alike).
Free text may keep tabs and line breaks. `detail` is a JSON object or array
of finite numbers, strings, booleans and nulls.
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any

from lockbox.domain.errors import BadUserInput

# Unicode categories refused: controls, format characters, surrogates, and
# the line and paragraph separators (U+2028, U+2029) that end lines elsewhere.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
FREE_TEXT_CONTROLS = frozenset({"\t", "\n"})

MAX_DETAIL_DEPTH = 16


def _refused(text: str, free_text: bool) -> str | None:
    for char in text:
        if free_text and char in FREE_TEXT_CONTROLS:
            continue
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            return char
    return None


def check_text(value: str, what: str, *, free_text: bool = False) -> str:
    """`value` unchanged, or BadUserInput naming the field and the character."""
    char = _refused(value, free_text)
    if char is not None:
        allowed = " (tabs and line breaks are allowed)" if free_text else ""
        raise BadUserInput(
            f"{what} contains the character U+{ord(char):04X}, which is not allowed{allowed}"
        )
    return value


def check_detail(detail: Any, what: str = "detail") -> Any:
    """`detail` unchanged when it is a JSON object or array of finite
    numbers, strings, booleans and nulls; BadUserInput otherwise."""
    if detail is None:
        return None
    if not isinstance(detail, dict | list):
        raise BadUserInput(f"{what} must be a JSON object or array")
    _check_value(detail, what, 0)
    return detail


def _check_value(value: Any, path: str, depth: int) -> None:
    if depth > MAX_DETAIL_DEPTH:
        raise BadUserInput(f"{path} nests deeper than {MAX_DETAIL_DEPTH} levels")
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadUserInput(f"{path} holds {value}, which is not a JSON number")
        return
    if isinstance(value, str):
        check_text(value, f"a string in {path}", free_text=True)
        return
    if isinstance(value, list):
        for item in value:
            _check_value(item, path, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise BadUserInput(f"{path} has a key that is not a string")
            check_text(key, f"a key in {path}")
            _check_value(item, path, depth + 1)
        return
    raise BadUserInput(f"{path} holds a value that is not JSON")

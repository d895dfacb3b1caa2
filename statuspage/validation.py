"""Small, strict validators for JSON and form input (unknown fields and wrong types are errors)."""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .errors import ValidationError
from .timeutil import parse_iso

_CONTROL_RE = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# Ids are 32-bit INTEGER columns: a larger value is "no such row", and PostgreSQL rejects it outright.
MAX_ID = 2**31 - 1
# An optional minus and at most 20 ASCII digits. Not str.isdigit(): it is true for "²", "١" and "５";
# int() refuses the first (a 500 wherever it was trusted) and silently reads the others as 1 and 5.
# No surrounding space, no "+", no "_" (int() accepts all three). 20 digits bound int()'s work.
_ASCII_INT_RE = re.compile(r"-?[0-9]{1,20}")


def ascii_int(text: object) -> int | None:
    """The integer written in `text` with ASCII digits only, or None. The one place text becomes a
    number: paths, query strings, forms, JSON strings, headers and the environment all come here."""
    if isinstance(text, str) and _ASCII_INT_RE.fullmatch(text):
        return int(text)
    return None


def parse_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A JSON integer or a string of ASCII digits, within [minimum, maximum]; else a ValidationError
    that says what is wrong with `name`."""
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    else:
        number = ascii_int(value)
    if number is None:
        raise ValidationError(f"{name} must be a whole number written with the digits 0-9", field=name)
    if minimum is not None and number < minimum:
        raise ValidationError(f"{name} must be at least {minimum}", field=name)
    if maximum is not None and number > maximum:
        raise ValidationError(f"{name} must be at most {maximum}", field=name)
    return number


def parse_id(value: Any, name: str = "id") -> int:
    """A database id (1 .. 2**31-1) from a path, form or JSON value."""
    return parse_int(value, name, minimum=1, maximum=MAX_ID)


def require_object(data: Any, allowed: Iterable[str], *, what: str = "body") -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError(f"{what} must be a JSON object")
    allowed = set(allowed)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationError(
            f"unknown field(s) in {what}: {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}",
            field=unknown[0],
        )
    return data


def string(data: dict, name: str, *, required: bool = False, max_length: int = 300,
           allow_empty: bool = False, default: str | None = None) -> str | None:
    if name not in data or data[name] is None:
        if required:
            raise ValidationError(f"{name} is required", field=name)
        return default
    value = data[name]
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string", field=name)
    value = value.strip()
    if "\x00" in value:
        raise ValidationError(f"{name} must not contain NUL characters", field=name)
    if _CONTROL_RE.search(value):
        # Control characters (other than tab and newlines) are invisible on the page and make the
        # Atom feed invalid XML for every reader.
        raise ValidationError(f"{name} must not contain control characters", field=name)
    if not value and not allow_empty:
        if required:
            raise ValidationError(f"{name} must not be empty", field=name)
        return default
    if len(value) > max_length:
        raise ValidationError(f"{name} must be at most {max_length} characters", field=name)
    return value


def choice(data: dict, name: str, choices: Iterable[str], *, required: bool = False,
           default: str | None = None) -> str | None:
    value = string(data, name, required=required, max_length=64, default=default)
    choices = tuple(choices)
    if value is not None and value not in choices:
        raise ValidationError(f"{name} must be one of: {', '.join(choices)}", field=name)
    return value


def boolean(data: dict, name: str, *, default: bool | None = None) -> bool | None:
    if name not in data or data[name] is None:
        return default
    value = data[name]
    if not isinstance(value, bool):
        raise ValidationError(f"{name} must be true or false", field=name)
    return value


def integer(data: dict, name: str, *, default: int | None = None, minimum: int | None = None,
            maximum: int | None = None, required: bool = False) -> int | None:
    if name not in data or data[name] is None:
        if required:
            raise ValidationError(f"{name} is required", field=name)
        return default
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int):  # JSON: a number, not a string of digits
        raise ValidationError(f"{name} must be an integer", field=name)
    return parse_int(value, name, minimum=minimum, maximum=maximum)


def timestamp(data: dict, name: str, *, required: bool = False) -> datetime | None:
    if name not in data or data[name] is None:
        if required:
            raise ValidationError(f"{name} is required (ISO 8601 timestamp)", field=name)
        return None
    value = data[name]
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be an ISO 8601 timestamp string", field=name)
    try:
        parsed = parse_iso(value)
    except (ValueError, OverflowError):  # e.g. 0001-01-01T00:00+14:00 is before datetime.min in UTC
        raise ValidationError(f"{name} is not a valid ISO 8601 timestamp: {value[:40]!r}", field=name) from None
    if not 1970 <= parsed.year <= 9000:
        raise ValidationError(f"{name} is out of range", field=name)
    return parsed


def id_list(data: dict, name: str, *, max_items: int = 500) -> list[int] | None:
    if name not in data or data[name] is None:
        return None
    value = data[name]
    if not isinstance(value, list):
        raise ValidationError(f"{name} must be a list of ids", field=name)
    if len(value) > max_items:
        raise ValidationError(f"{name} may hold at most {max_items} ids", field=name)
    ids: list[int] = []
    for item in value:
        try:
            item = parse_id(item, name)
        except ValidationError:
            raise ValidationError(f"{name} must contain only positive integer ids (digits 0-9)", field=name) from None
        if item not in ids:
            ids.append(item)
    return ids


def decode_json(raw: bytes | str) -> Any:
    """JSON from a request body (or a form field holding JSON), or a ValidationError that says what is
    wrong with it."""
    if not raw.strip():
        raise ValidationError("request body is empty; send a JSON object")
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise ValidationError("request body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ValidationError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ValidationError("malformed JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python's 4300-digit limit
        raise ValidationError(f"malformed JSON: {str(exc)[:100]}") from None
    reject_unstorable_text(data)
    return data


def reject_unstorable_text(data: Any) -> None:
    """NUL and lone surrogates ("\\ud800" is valid JSON) cannot be stored in PostgreSQL or encoded
    as UTF-8; refuse them here, once, instead of failing deep in the database driver."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                raise ValidationError("strings must not contain NUL (\\u0000) characters")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValidationError("strings must be valid Unicode (no lone surrogates like \\ud800)") from None

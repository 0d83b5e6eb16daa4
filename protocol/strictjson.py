"""JSON as the protocol writes and reads it (docs/protocol.md section 2.2): canonical JSON
for signed and hashed bodies, and the one bounded decoder of JSON that crossed the network."""

from __future__ import annotations

import json
import operator
import re
from itertools import accumulate, count
from typing import Any

from protocol.encoding import MAX_SAFE_INTEGER
from protocol.exceptions import InvalidJson, MalformedMessage

# Arrays and objects nest at most this deep in canonical JSON (section 2.2).
MAX_JSON_DEPTH = 32


def _check_json_value(value: Any, depth: int = 0) -> None:
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if not 0 <= value <= MAX_SAFE_INTEGER:
            raise MalformedMessage(f"expected an integer in 0..2^53-1, got {value}")
        return
    if isinstance(value, (list, dict)) and depth >= MAX_JSON_DEPTH:
        raise MalformedMessage(f"expected JSON nested at most {MAX_JSON_DEPTH} levels deep")
    if isinstance(value, list):
        for item in value:
            _check_json_value(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise MalformedMessage("expected string object keys")
            _check_json_value(item, depth + 1)
        return
    raise MalformedMessage(
        f"expected a JSON string, integer, bool, null, list or object, got {type(value).__name__}"
    )


def canonical_json(value: Any) -> bytes:
    """Canonical JSON (section 2.2): sorted keys, no whitespace, raw UTF-8, integers only,
    nested at most MAX_JSON_DEPTH levels."""
    _check_json_value(value)
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedMessage("expected text without lone surrogates") from exc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedMessage(f"expected unique JSON keys, got {key!r} twice")
        result[key] = value
    return result


def _no_floats(text: str) -> Any:
    raise MalformedMessage(f"expected an integer, got {text}")


def parse_canonical_json(data: bytes) -> Any:
    """Parse canonical JSON and refuse any input that is not in canonical form."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedMessage(f"expected JSON bytes, got {type(data).__name__}")
    data = bytes(data)
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_float=_no_floats,
            parse_constant=_no_floats,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedMessage("expected canonical JSON") from exc
    except RecursionError as exc:  # far deeper than MAX_JSON_DEPTH
        raise MalformedMessage(
            f"expected JSON nested at most {MAX_JSON_DEPTH} levels deep"
        ) from exc
    if canonical_json(value) != data:
        raise MalformedMessage("expected canonical JSON (sorted keys, no whitespace, raw UTF-8)")
    return value


# The reasons of parse_json, in the order they are checked (section 2.2): when a text breaks
# several rules, the first one in this list is reported, in Python and in JS alike.
JSON_REFUSALS = (
    "too_large",
    "not_utf8",
    "too_deep",
    "syntax",
    "not_integer",
    "integer_range",
    "lone_surrogate",
    "duplicate_key",
)
# A string in JSON text from its opening quote to the closing one (or the end of the text).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
# An opener becomes 2 and a closer 0, so the running sum minus the count is the depth.
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
# Outside strings: a fraction or exponent follows a digit; an integer beyond ±(2^53-1) has
# at least 16 digits. Only then do the (slower) number hooks run.
_FRACTION = re.compile(r"\d[.eE]")
_LONG_DIGITS = re.compile(r"\d{16}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _outside_strings(text: str) -> str:
    """The text with every string (quotes included) cut out."""
    if "\\" not in text:  # no escapes: every quote opens or closes a string
        return "".join(text.split('"')[0::2])
    return _JSON_STRING.sub("", text)


def _json_depth(structure: str) -> int:
    """The deepest nesting of brackets in text without strings, found without recursion (or
    a Python loop per character): `[` and `{` count one level up, `]` and `}` one down."""
    steps = _NOT_BRACKETS.sub("", structure).encode("ascii").translate(_BRACKET_STEPS)
    return max(map(operator.sub, accumulate(steps), count(1)), default=0)


def _has_lone_surrogate(value: Any) -> bool:
    """Whether any string or key holds a lone surrogate (a walk, not a recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
    return False


def _json_text(data: Any, max_bytes: int) -> str:
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        if len(raw) > max_bytes:
            raise InvalidJson("too_large", f"expected at most {max_bytes} bytes, got {len(raw)}")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJson(
                "not_utf8", f"expected UTF-8, got a bad byte at {exc.start}"
            ) from None
    if isinstance(data, str):
        if len(data) * 4 > max_bytes:  # only then can the UTF-8 form be too long
            size = len(data.encode("utf-8", "surrogatepass"))
            if size > max_bytes:
                raise InvalidJson("too_large", f"expected at most {max_bytes} bytes, got {size}")
        return data
    raise InvalidJson("syntax", f"expected JSON text, got {type(data).__name__}")


def parse_json(
    data: str | bytes | bytearray | memoryview, *, max_bytes: int, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """The one decoder of JSON that crossed the network (section 2.2): at most `max_bytes`
    UTF-8 bytes, nested at most `max_depth` levels, integers only and within ±(2^53-1), no
    NaN or Infinity, no lone surrogates, no duplicate keys. Raises InvalidJson naming the
    first rule broken, in the order of JSON_REFUSALS."""
    text = _json_text(data, max_bytes)
    structure = _outside_strings(text)
    if structure.count("[") + structure.count("{") > max_depth:
        depth = _json_depth(structure)
        if depth > max_depth:
            raise InvalidJson(
                "too_deep", f"expected JSON nested at most {max_depth} levels deep, got {depth}"
            )
    # Rules a parse cannot report in order are noted, then the first by JSON_REFUSALS wins.
    found: dict[str, str] = {}

    def integer(token: str) -> int:
        if len(token.lstrip("-")) > 16 or abs(int(token)) > MAX_SAFE_INTEGER:
            found.setdefault(
                "integer_range", f"expected integers within ±(2^53-1), got {token[:24]}"
            )
            return 0
        return int(token)

    def fraction(token: str) -> int:
        found.setdefault("not_integer", f"expected integers only, got {token[:24]}")
        return 0

    def constant(token: str) -> Any:
        raise InvalidJson("syntax", f"expected JSON, got {token} (not a JSON number)")

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    found.setdefault(
                        "duplicate_key", f"expected unique keys, got {key[:40]!r} twice"
                    )
                    break
                seen.add(key)
        return result

    hooks: dict[str, Any] = {"parse_constant": constant}
    if structure.count(":") > 1:
        hooks["object_pairs_hook"] = unique
    if _FRACTION.search(structure):
        hooks["parse_float"] = fraction
    if _LONG_DIGITS.search(structure):
        hooks["parse_int"] = integer
    try:
        value = json.loads(text, **hooks)
    except json.JSONDecodeError as exc:
        raise InvalidJson("syntax", f"expected JSON: {exc.msg} at character {exc.pos}") from None
    may_hold_surrogates = bool(_SURROGATE_ESCAPE.search(text)) or not text.isascii()
    if may_hold_surrogates and _has_lone_surrogate(value):
        found.setdefault("lone_surrogate", "expected strings without lone surrogates")
    for reason in JSON_REFUSALS:
        if reason in found:
            raise InvalidJson(reason, found[reason])
    return value

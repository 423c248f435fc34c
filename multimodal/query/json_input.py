"""JSON and base64 from clients, read strictly: what JSON and base64 allow, and nothing a database cannot hold."""
import base64
import binascii
import json

from ..errors import UserInputError

MAX_JSON_INT_DIGITS = 100  # far past any id, count or limit here


def json_parse(raw: str | bytes):
    """``raw`` as JSON, or a ValueError saying why not (nesting too deep, NaN, text that is not Unicode).

    Only what JSON allows gets through: NaN and Infinity (which Python's parser takes) are refused,
    as are lone surrogates (``"\\ud800"``) and NUL characters, which no database column can hold.
    """
    try:
        value = json.loads(raw, parse_constant=_json_constant_refuse, parse_int=_json_int)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    for text in _json_strings(value):
        if "\x00" in text:
            raise ValueError("a string holds a NUL character (\\u0000)")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a string holds a lone surrogate (\\ud800-\\udfff), not Unicode text") from None
    return value


def _json_constant_refuse(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _json_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_JSON_INT_DIGITS:  # Python refuses past 4,300 digits, with advice for programmers
        raise ValueError(f"a number has more than {MAX_JSON_INT_DIGITS} digits")
    return int(digits)


def _json_strings(value):
    """Every key and string in a parsed JSON value, without recursion (the value may be deeply nested)."""
    pending = [value]
    while pending:
        current = pending.pop()
        if isinstance(current, str):
            yield current
        elif isinstance(current, dict):
            pending.extend(current.keys())
            pending.extend(current.values())
        elif isinstance(current, list):
            pending.extend(current)


def base64_decode(value: str, *, where: str) -> bytes:
    """Base64 (a data: URL is fine) to bytes, or a UserInputError naming ``where``."""
    try:
        return base64.b64decode(value.split(",", 1)[-1] if value.startswith("data:") else value, validate=True)
    except (binascii.Error, ValueError):
        raise UserInputError(f"{where}: not valid base64") from None

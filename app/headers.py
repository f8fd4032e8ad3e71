"""Pure helpers for headers every dialect shares: Content-Disposition in and out."""

import re
from urllib.parse import quote, unquote

# A `; name=value` parameter whose value is a quoted string (with backslash escapes) or a token.
_PARAM = re.compile(r';\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Browsers and the openai SDK escape these three characters in a quoted multipart filename.
_FORM_ESCAPES = {"%22": '"', "%0D": "\r", "%0A": "\n", "%0d": "\r", "%0a": "\n"}


def parse_disposition_params(value: str) -> dict[str, str]:
    """Parameters of a multipart part's Content-Disposition, with `filename*` (RFC 5987) decoded.

    `value` must already be decoded from bytes as UTF-8: the openai SDK sends raw UTF-8
    inside `filename="…"`, which a Latin-1 decode would garble.
    """
    params: dict[str, str] = {}
    for key, raw in _PARAM.findall(value):
        key = key.lower()
        raw = raw.strip()
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        if key == "filename*":
            charset, _, encoded = raw.partition("'")
            _language, _, encoded = encoded.partition("'")
            try:
                params["filename"] = unquote(encoded, encoding=charset or "utf-8", errors="replace")
            except LookupError:  # an unknown charset name: fall back to UTF-8
                params["filename"] = unquote(encoded, errors="replace")
            params["filename*"] = raw
        elif key == "filename":
            params.setdefault("filename", re.sub("%22|%0[DdAa]", lambda m: _FORM_ESCAPES[m[0]], raw))
        else:
            params[key] = raw
    return params


def display_filename(raw: str | None, *, default: str = "upload") -> str:
    """The name we store and show: the last path component, without control characters."""
    if raw is None:
        return default
    name = _CONTROL.sub("", re.split(r"[/\\]", raw)[-1]).strip()
    return default if name in ("", ".", "..") else name


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name as RFC 6266 `filename*`."""
    fallback = re.sub(r'[^\x20-\x7e]|["\\]', "_", filename) or "download"
    header = f'attachment; filename="{fallback}"'
    if fallback != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header

"""Pure helpers for headers every dialect shares: Content-Disposition in and out, and the
security headers on every response."""

import re
from urllib.parse import quote, unquote

# A `; name=value` parameter whose value is a quoted string (with backslash escapes) or a token.
_PARAM = re.compile(r';\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
# Browsers and the openai SDK escape these three characters in a quoted multipart filename.
_FORM_ESCAPES = {"%22": '"', "%0D": "\r", "%0A": "\n", "%0d": "\r", "%0a": "\n"}
# On every response: the stored bytes are untrusted, so should a browser ever render one (a
# download opened in a tab, an error page), it may run nothing, load nothing, be framed nowhere
# and is never sniffed into HTML. The API itself serves only JSON and attachments.
# A response may state a policy of its own instead (only the API reference page, `app.http.docs`,
# does: it runs Swagger UI).
CONTENT_SECURITY_POLICY = "content-security-policy"
SECURITY_HEADERS = (
    (CONTENT_SECURITY_POLICY.encode(), b"default-src 'none'; frame-ancestors 'none'; sandbox"),
    (b"x-content-type-options", b"nosniff"),
)


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


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name as RFC 6266 `filename*`."""
    fallback = re.sub(r'[^\x20-\x7e]|["\\]', "_", filename) or "download"
    header = f'attachment; filename="{fallback}"'
    if fallback != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


class MalformedRange(Exception):
    """A Range header we do not serve (bad syntax, another unit, several ranges): send it all.

    RFC 9110 §14.2 lets a server ignore such a header and answer 200 with the whole file.
    """

    def __init__(self, value: str) -> None:
        super().__init__(f"ignored Range header {value!r}")
        self.value = value


class UnsatisfiableRange(Exception):
    """A well-formed Range with no byte inside the file: 416, `Content-Range: bytes */size`."""

    def __init__(self, size: int) -> None:
        super().__init__(f"no byte of the range lies within {size} bytes")
        self.size = size


# One range only: `bytes=a-b`, `bytes=a-` or `bytes=-n`; the unit is case-insensitive.
_SINGLE_BYTE_RANGE = re.compile(r"bytes[ \t]*=[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)", re.IGNORECASE)


def parse_range(value: str, size: int) -> tuple[int, int]:
    """A single byte range of a `size`-byte file as `(start, end_exclusive)` (RFC 9110 §14.1.2).

    The end is clipped to the file. A suffix range of an empty file gives `(0, 0)`: satisfiable
    by the RFC's rule, but with nothing to slice, so callers answer with the whole (empty) file.
    """
    match = _SINGLE_BYTE_RANGE.fullmatch(value.strip())
    if match is None or not (match[1] or match[2]):
        raise MalformedRange(value)
    first, last = match[1], match[2]
    if not first:
        suffix = int(last)
        if suffix == 0:
            raise UnsatisfiableRange(size)
        return max(0, size - suffix), size
    start = int(first)
    if last and int(last) < start:
        raise MalformedRange(value)  # an invalid range-spec: the header is ignored
    if start >= size:
        raise UnsatisfiableRange(size)
    return start, size if not last else min(int(last) + 1, size)


def quoted_etag(sha256: str | None) -> str | None:
    """A strong ETag from the stored content hash: equal tags mean equal bytes. None while the
    hash is not known yet: no validator rather than one that would change."""
    return f'"{sha256}"' if sha256 else None


def if_none_match_hits(header: str, etag: str | None) -> bool:
    """True when If-None-Match names our ETag or `*` (weak comparison, RFC 9110 §13.1.2);
    with no ETag (not known yet) only `*` does."""
    tags = [tag.strip() for tag in header.split(",")]
    return "*" in tags or (etag is not None and any(tag.removeprefix("W/") == etag for tag in tags))


def if_range_allows(header: str, etag: str | None) -> bool:
    """True when If-Range lets the Range through: only our exact strong ETag does; a date never
    does, since we send no Last-Modified, and nothing does while we have no ETag."""
    return etag is not None and header.strip() == etag

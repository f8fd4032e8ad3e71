"""Server-made identifiers. Ids from clients are validated here before they reach SQL or a path."""

import re
import secrets
import string

ALPHABET = string.ascii_letters + string.digits
ID_BODY_LENGTH = 24
_OPENAI_FILE_ID = re.compile(r"file-[A-Za-z0-9]{1,64}")
_UPLOAD_ID = re.compile(r"upload_[A-Za-z0-9]{1,64}")
_PART_ID = re.compile(r"part_[A-Za-z0-9]{1,64}")
_WEBHOOK_ENDPOINT_ID = re.compile(r"we_[A-Za-z0-9]{1,64}")
_BATCH_ID = re.compile(r"batch_[A-Za-z0-9]{1,64}")


_UNBIASED_BELOW = 256 - 256 % len(ALPHABET)  # 248: bytes below it map evenly onto the alphabet


def _random_body() -> str:
    """24 random base62 characters from one read of the system's random source (`secrets.choice`
    per character read it 24 times: a batch makes an id per line). Bytes of 248 and above are
    skipped, so each character stays uniform."""
    chars: list[str] = []
    while len(chars) < ID_BODY_LENGTH:
        for byte in secrets.token_bytes(2 * ID_BODY_LENGTH):
            if byte < _UNBIASED_BELOW and len(chars) < ID_BODY_LENGTH:
                chars.append(ALPHABET[byte % len(ALPHABET)])
    return "".join(chars)


def new_file_id() -> str:
    """`file-` and 24 random base62 characters (~143 bits), as the OpenAI dialect shows them."""
    return "file-" + _random_body()


def is_valid_file_id(value: str) -> bool:
    """True when `value` could be an id we issued; anything else cannot name a file."""
    return _OPENAI_FILE_ID.fullmatch(value) is not None


def new_blob_key() -> str:
    """A fresh blob key: 24 random base62 characters, shared by file and part blobs."""
    return _random_body()


def new_upload_id() -> str:
    """`upload_` and 24 random base62 characters."""
    return "upload_" + _random_body()


_OFFSET_DIGITS = 16


def new_part_id(at_offset: int | None = None) -> str:
    """`part_` and 24 random base62 characters; a piece at an offset (a resumable session's
    chunk) begins with the offset zero-padded, so ordering Parts by id orders them by offset."""
    if at_offset is None:
        return "part_" + _random_body()
    return f"part_{at_offset:0{_OFFSET_DIGITS}d}{_random_body()[:16]}"


def is_valid_upload_id(value: str) -> bool:
    return _UPLOAD_ID.fullmatch(value) is not None


def is_valid_part_id(value: str) -> bool:
    return _PART_ID.fullmatch(value) is not None


def new_webhook_endpoint_id() -> str:
    return "we_" + _random_body()


def is_valid_webhook_endpoint_id(value: str) -> bool:
    return _WEBHOOK_ENDPOINT_ID.fullmatch(value) is not None


def new_event_id() -> str:
    return "evt_" + _random_body()


def new_delivery_id() -> str:
    """The `webhook-id` of one event's delivery to one endpoint, the same on every retry."""
    return "wh_" + _random_body()


def new_batch_id() -> str:
    """`batch_` and 24 random base62 characters."""
    return "batch_" + _random_body()


def is_valid_batch_id(value: str) -> bool:
    return _BATCH_ID.fullmatch(value) is not None


def new_batch_request_id() -> str:
    """The `id` of one line of a batch's output or error file."""
    return "batch_req_" + _random_body()


def new_request_id() -> str:
    """A `request_id` for an answer whose upstream sent none."""
    return "req_" + _random_body()

"""The PHI guard: what a notification may carry, checked when it is queued and again when sent.

Emails leave our control (mail relays, inboxes, phone lock screens), so a message says only
"something happened — sign in to see it". Parameters are counts and links; a link is a path
(or a URL under the public origin) made of known route words and opaque ids, so no name,
email, date or phone number can ride along in a path or a query string. Messages name
parameters and positions, never the refused value: they are logged and shown.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from urllib.parse import urlsplit

from carevault.errors import Invalid

ROUTE_WORDS = frozenset(
    {
        "access",
        "account",
        "accounts",
        "admin",
        "alert",
        "alerts",
        "audit",
        "auth",
        "authorizations",
        "break-glass",
        "confirm",
        "consent",
        "consents",
        "disclosures",
        "email",
        "fhir",
        "id",
        "inbox",
        "message",
        "messages",
        "mfa",
        "notifications",
        "password",
        "password-reset",
        "patient",
        "portal",
        "privacy",
        "provider",
        "request",
        "requests",
        "reset",
        "reset-password",
        "review",
        "rights",
        "security",
        "session",
        "sessions",
        "sign-in",
        "token",
        "unsubscribe",
        "users",
        "verify",
    }
)
"""Words a link may be made of besides opaque ids (path segments and query keys)."""

MAX_LINK = 512
MAX_INT = 1_000_000
_URLSAFE = re.compile(r"^[A-Za-z0-9_-]+$")
_DIGIT = re.compile(r"\d")
_LETTER = re.compile(r"[A-Za-z]")
_DIGIT_RUN = re.compile(r"\d{7}")
_ID_DATE = re.compile(r"(19|20)\d{2}[-_.]?(0[1-9]|1[0-2])[-_.]?(0[1-9]|[12]\d|3[01])")
# Shapes of PHI that must never appear in a message, even inside an id-like string.
_EMAIL = re.compile(r"[^\s@<>]+@[^\s@<>]+\.[A-Za-z]{2,}")
_DATE = re.compile(
    r"\b(19|20)\d{2}[-/.](0?[1-9]|1[0-2])[-/.](0?[1-9]|[12]\d|3[01])\b"
    r"|\b(0?[1-9]|[12]\d|3[01])[-/.](0?[1-9]|[12]\d|3[01])[-/.]((19|20)\d{2}|\d{2})\b"
)
_PHONE = re.compile(r"(?<![\w-])\+?\(?\d{3}\)?[\s.-]\d{3,4}([\s.-]\d{4})?(?![\w-])")
_URL = re.compile(r"https?://[^\s<>\"']+")


def check_params(
    declared: Mapping[str, tuple[str, bool]], params: Mapping[str, object], template: str
) -> None:
    """Refuse missing, extra and wrongly typed parameters. declared: name → (type, required)."""
    extra = sorted(set(params) - set(declared))
    if extra:
        raise Invalid(f"template '{template}' takes no parameter named {', '.join(extra)}")
    for name, (kind, required) in declared.items():
        if name not in params:
            if required:
                raise Invalid(f"template '{template}' needs the parameter '{name}'")
            continue
        value = params[name]
        if kind == "int":
            # bool is an int in Python; a flag is not a count.
            if not isinstance(value, int) or isinstance(value, bool):
                raise Invalid(f"parameter '{name}' of '{template}' must be an integer")
            if not 0 <= value <= MAX_INT:
                raise Invalid(f"parameter '{name}' of '{template}' is out of range")
        elif kind == "link":
            if not isinstance(value, str):
                raise Invalid(f"parameter '{name}' of '{template}' must be a link")
            check_link(value, name)
        else:  # a template file declaring a type we do not know is our bug, not the caller's
            raise Invalid(f"parameter '{name}' of '{template}' has an unknown type")


def check_link(link: str, name: str = "link") -> None:
    """A path or http(s) URL whose segments, query keys and values are route words or ids."""
    if len(link) > MAX_LINK:
        raise Invalid(f"'{name}' is longer than {MAX_LINK} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) > 126 for ch in link):
        raise Invalid(f"'{name}' may not contain spaces, control or non-ASCII characters")
    if "%" in link or "@" in link or "\\" in link:
        raise Invalid(f"'{name}' may not contain encoded characters, '@' or '\\'")
    parts = urlsplit(link)
    if parts.scheme or parts.netloc:
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Invalid(f"'{name}' must be a path or an http(s) URL")
        if parts.username or parts.password:
            raise Invalid(f"'{name}' may not carry credentials")
    elif not link.startswith("/") or link.startswith("//"):
        raise Invalid(f"'{name}' must be a path starting with a single '/' or a URL")
    segments = [s for s in parts.path.split("/") if s]
    for position, segment in enumerate(segments, 1):
        if not _is_word_or_id(segment):
            raise Invalid(
                f"'{name}' path segment {position} is neither a route word nor an opaque id"
            )
    for text, where in ((parts.query, "query"), (parts.fragment, "fragment")):
        if not text:
            continue
        for position, pair in enumerate(text.split("&"), 1):
            key, sep, value = pair.partition("=")
            if key not in ROUTE_WORDS or not sep or not _is_opaque_id(value):
                raise Invalid(
                    f"'{name}' {where} item {position} must be a route word = an opaque id"
                )


def _is_word_or_id(segment: str) -> bool:
    return segment in ROUTE_WORDS or _is_opaque_id(segment)


def _is_opaque_id(value: str) -> bool:
    """A UUID, or a long random-looking token: never a name, a date or a phone number.

    Random tokens (secrets.token_urlsafe) are long; a 16-31 character id must mix letters and
    digits and hold no run of 7 digits, so that run-together names ("aliciamariaquintero"),
    phone numbers and record numbers are not taken for ids.
    """
    try:
        uuid.UUID(value)
        return len(value) in (32, 36)
    except ValueError:
        pass
    if not _URLSAFE.match(value) or not 16 <= len(value) <= 128:
        return False
    if len(value) < 32 and not (
        _DIGIT.search(value) and _LETTER.search(value) and not _DIGIT_RUN.search(value)
    ):
        return False
    return not _ID_DATE.search(value)


def check_rendered(subject: str, text: str, html: str | None, origin: str) -> None:
    """The second look, at the text about to be sent: no PHI shapes, links only to us."""
    if "\r" in subject or "\n" in subject:
        raise Invalid("the subject may not contain line breaks")
    for part, label in ((subject, "subject"), (text, "text"), (html or "", "html")):
        if _EMAIL.search(part):
            raise Invalid(f"the rendered {label} contains an email address")
        if _DATE.search(part):
            raise Invalid(f"the rendered {label} contains a date")
        for url in _URL.findall(part):
            if not (url == origin or url.startswith(origin.rstrip("/") + "/")):
                raise Invalid(f"the rendered {label} links outside the public origin")
        if _PHONE.search(_URL.sub("", part)):
            raise Invalid(f"the rendered {label} contains a phone number")


def check_header(value: str, field: str) -> str:
    """Header injection: a CR or LF in any header value would let it add headers."""
    if "\r" in value or "\n" in value or "\0" in value:
        raise Invalid(f"the {field} header may not contain line breaks")
    return value

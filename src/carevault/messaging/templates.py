"""Notification templates, read once from templates/templates.toml (package data).

Rendering substitutes the tenant's display name and the declared parameters; a link that is a
path is made absolute under the public origin. HTML parts get their values escaped.

A template marked `from_user = true` is sent on behalf of a user: it is queued with the two
reserved parameters of FROM_USER_PARAMS (the user's id and their name, sealed), which never
reach the text; every other template refuses them, so a system notice cannot pass for a user's.
"""

from __future__ import annotations

import html
import re
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template as _Text

from carevault.errors import Invalid
from carevault.messaging import guard

PARAM_TYPES = ("int", "link")
FROM_USER = "from_user"
FROM_NAME = "from_name"
FROM_USER_PARAMS = (FROM_USER, FROM_NAME)
"""Reserved parameters of a `from_user` template: the user's id, and their display name sealed
under the tenant key (base64url), opened only when the message is sent (messaging/service.py)."""
MAX_SEALED_NAME = 1024
_SEALED = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")
_BLANK_RUNS = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    required: bool = True
    line: str | None = None
    """For an optional parameter: the text it adds where its placeholder stands."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


@dataclass(frozen=True)
class NotificationTemplate:
    name: str
    subject: str
    text: str
    html: str | None
    params: tuple[Param, ...]
    from_user: bool = False
    """Sent on behalf of a user: From names them, Sender is the deployment."""

    @property
    def declared(self) -> dict[str, tuple[str, bool]]:
        return {p.name: (p.type, p.required) for p in self.params}

    def check(self, params: Mapping[str, object]) -> None:
        """When queued: the declared parameters, and the reserved ones of a `from_user` template
        (required there: a message for a user that would go out as the tenant's is refused)."""
        if self.from_user:
            check_from_user(params, self.name)
        self._check_content(params)

    def _check_content(self, params: Mapping[str, object]) -> None:
        if self.from_user:
            params = {k: v for k, v in params.items() if k not in FROM_USER_PARAMS}
        guard.check_params(self.declared, params, self.name)

    def render(self, params: Mapping[str, object], *, tenant: str, origin: str) -> Rendered:
        """Check the parameters, fill them in, and check the result again (the PHI guard).

        The reserved parameters of a `from_user` template are not text: they go in the From
        header, opened and checked by the sender."""
        self._check_content(params)
        plain = {"tenant": tenant}
        marked = {"tenant": html.escape(tenant)}
        for param in self.params:
            if param.name not in params:
                plain[param.name] = marked[param.name] = ""
                continue
            value = params[param.name]
            shown = absolute(str(value), origin) if param.type == "link" else str(value)
            if param.line is not None:
                plain[param.name] = _Text(param.line).substitute({param.name: shown})
                marked[param.name] = html.escape(plain[param.name])
            else:
                plain[param.name] = shown
                marked[param.name] = html.escape(shown)
        subject = _Text(self.subject).substitute(plain)
        text = _BLANK_RUNS.sub("\n\n", _Text(self.text).substitute(plain))
        body_html = _Text(self.html).substitute(marked) if self.html else None
        guard.check_rendered(subject, text, body_html, origin)
        return Rendered(subject, text, body_html)


def check_from_user(params: Mapping[str, object], template: str) -> None:
    """Both reserved parameters present: a user id and a sealed name (opaque base64url)."""
    user, name = params.get(FROM_USER), params.get(FROM_NAME)
    if not isinstance(user, str) or not isinstance(name, str):
        raise Invalid(f"template '{template}' is sent for a user: it needs from_user and from_name")
    try:
        uuid.UUID(user)
    except ValueError:
        raise Invalid(f"parameter 'from_user' of '{template}' must be a user id") from None
    if not 0 < len(name) <= MAX_SEALED_NAME or not _SEALED.match(name):
        raise Invalid(f"parameter 'from_name' of '{template}' must be a sealed name")


def absolute(link: str, origin: str) -> str:
    """A path becomes a URL under the public origin; a URL must already be under it."""
    base = origin.rstrip("/")
    if link.startswith("/"):
        return base + link
    if link == base or link.startswith(base + "/"):
        return link
    raise Invalid("the link is not under the public origin")


def template(name: str) -> NotificationTemplate:
    found = load_templates().get(name)
    if found is None:
        raise Invalid(f"there is no notification template named '{name}'")
    return found


@cache
def load_templates() -> dict[str, NotificationTemplate]:
    source = resources.files("carevault.messaging").joinpath("templates/templates.toml")
    data = tomllib.loads(source.read_text(encoding="utf-8"))
    return {name: _parse(name, entry) for name, entry in data.items()}


def _parse(name: str, entry: dict[str, object]) -> NotificationTemplate:
    params = tuple(
        Param(
            pname,
            str(spec["type"]),
            bool(spec.get("required", True)),
            str(spec["line"]) if "line" in spec else None,
        )
        for pname, spec in _table(entry.get("params", {})).items()
    )
    for param in params:
        if param.type not in PARAM_TYPES:
            raise ValueError(f"template {name}: parameter {param.name} has unknown type")
        if not param.required and param.line is None:
            raise ValueError(f"template {name}: optional parameter {param.name} needs a line")
    if any(p.name in FROM_USER_PARAMS for p in params):
        raise ValueError(f"template {name}: from_user and from_name are reserved names")
    from_user = entry.get("from_user", False)
    if not isinstance(from_user, bool):
        raise ValueError(f"template {name}: from_user is true or false")
    html_part = entry.get("html")
    return NotificationTemplate(
        name=name,
        subject=str(entry["subject"]),
        text=str(entry["text"]),
        html=str(html_part) if html_part is not None else None,
        params=params,
        from_user=from_user,
    )


def _table(value: object) -> dict[str, dict[str, object]]:
    if not isinstance(value, dict):
        raise ValueError("template params must be a table")
    return {str(k): dict(v) for k, v in value.items()}

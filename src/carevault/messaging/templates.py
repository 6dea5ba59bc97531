"""Notification templates, read once from templates/templates.toml (package data).

Rendering substitutes the tenant's display name and the declared parameters; a link that is a
path is made absolute under the public origin. HTML parts get their values escaped.
"""

from __future__ import annotations

import html
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template as _Text

from carevault.errors import Invalid
from carevault.messaging import guard

PARAM_TYPES = ("int", "link")
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

    @property
    def declared(self) -> dict[str, tuple[str, bool]]:
        return {p.name: (p.type, p.required) for p in self.params}

    def check(self, params: Mapping[str, object]) -> None:
        guard.check_params(self.declared, params, self.name)

    def render(self, params: Mapping[str, object], *, tenant: str, origin: str) -> Rendered:
        """Check the parameters, fill them in, and check the result again (the PHI guard)."""
        self.check(params)
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
    html_part = entry.get("html")
    return NotificationTemplate(
        name=name,
        subject=str(entry["subject"]),
        text=str(entry["text"]),
        html=str(html_part) if html_part is not None else None,
        params=params,
    )


def _table(value: object) -> dict[str, dict[str, object]]:
    if not isinstance(value, dict):
        raise ValueError("template params must be a table")
    return {str(k): dict(v) for k, v in value.items()}

"""Read a policy file: YAML, then the schema, then the cross-checks; one error lists all."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from carevault.errors import Invalid
from carevault.policy.checks import problems
from carevault.policy.model import PrivacyPolicy
from carevault.policy.schema import Policy

DEFAULT_PROFILE = "default"


class PolicyError(Invalid):
    """The policy file is malformed or contradicts itself; `issues` names each entry."""


def policies_dir() -> Path:
    """$CAREVAULT_POLICY_DIR, else the `policies/` folder of this checkout."""
    configured = os.environ.get("CAREVAULT_POLICY_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "policies"


def profile_names() -> list[str]:
    return sorted(p.stem for p in policies_dir().glob("*.yaml"))


def load_profile(name: str = DEFAULT_PROFILE) -> PrivacyPolicy:
    """One of the shipped profiles (healthsoft, practice-fusion, …), checked once, cached."""
    if name not in profile_names():
        raise PolicyError(f"no policy profile {name!r} (known: {', '.join(profile_names())})")
    return _cached(str(policies_dir() / f"{name}.yaml"))


@cache
def _cached(path: str) -> PrivacyPolicy:
    return load_policy(Path(path))


def load_policy(path: Path) -> PrivacyPolicy:
    return parse_policy(read_policy_text(path), path.name)


def read_policy_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.__class__.__name__
        raise PolicyError(f"{path.name}: cannot read the policy file ({reason})") from None


def parse_policy(text: str, source: str = "policy") -> PrivacyPolicy:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise PolicyError(f"{source}: not valid YAML{where}") from None
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}: the policy must be a mapping of sections")
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        issues = [(_path(error["loc"]), error["msg"]) for error in exc.errors()]
        raise _error(source, issues) from None
    found = problems(policy)
    if found:
        raise _error(source, [tuple(p.split(": ", 1)) for p in found])  # type: ignore[misc]
    return PrivacyPolicy(policy)


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top)"


def _error(source: str, issues: list[tuple[str, str]]) -> PolicyError:
    listed = "; ".join(f"{path}: {message}" for path, message in issues)
    return PolicyError(f"{source}: {len(issues)} problem(s): {listed}", issues=issues)

"""The import contract of DESIGN.md, read from the source with `ast`:

- only `privacy/` (and `records/` itself) imports `records/`: the gate is the one door;
- `web/`, `cli.py` and `deid/` import neither `records/` nor `crypto/`;
- domain packages do not import FastAPI or Starlette.

Every direct import counts: `import a.b`, `from a.b import c`, `from a import b`, relative
imports resolved against the module, imports under `TYPE_CHECKING`, and
`importlib.import_module("...")` / `__import__("...")` with a literal name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import carevault

PACKAGE_ROOT = Path(carevault.__file__).resolve().parent
SRC_ROOT = PACKAGE_ROOT.parent
DOMAIN_PACKAGES = ("identity", "privacy", "records", "crypto", "audit", "deid")
WEB_FRAMEWORKS = ("fastapi", "starlette")


@dataclass(frozen=True)
class SourceModule:
    name: str
    """Dotted module name, e.g. carevault.web.fhir_api.routes."""
    is_package: bool
    source: str
    path: Path | None = None


def module_name(path: Path) -> tuple[str, bool]:
    rel = path.relative_to(SRC_ROOT).with_suffix("")
    parts = list(rel.parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def all_modules() -> list[SourceModule]:
    modules = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        name, is_package = module_name(path)
        modules.append(SourceModule(name, is_package, path.read_text(encoding="utf-8"), path))
    return modules


def _resolve_relative(module: SourceModule, level: int, target: str | None) -> str:
    """The absolute name of `from .{level} target import ...` written in `module`."""
    package = module.name.split(".")
    if not module.is_package:
        package = package[:-1]
    if level - 1 > len(package):
        raise ImportError(f"relative import beyond the top package in {module.name}")
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, *([target] if target else [])])


def _literal_dynamic_import(node: ast.Call) -> str | None:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def imported_names(module: SourceModule) -> Iterator[str]:
    """Every absolute module name the source imports directly.

    For `from X import a` both `X` and `X.a` are yielded: `a` may be a submodule
    (`from carevault import records`), and a false `X.a` cannot match a package prefix
    unless `a` really is that package.
    """
    for node in ast.walk(ast.parse(module.source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(module, node.level, node.module)
            else:
                base = node.module or ""
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and (name := _literal_dynamic_import(node)):
            yield name


def _is_within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(
    modules: list[SourceModule], forbidden: str, *, allowed_in: tuple[str, ...] = ()
) -> list[str]:
    """'module -> import' for each module outside `allowed_in` that imports `forbidden`."""
    found = []
    for module in modules:
        if any(_is_within(module.name, allowed) for allowed in allowed_in):
            continue
        for name in sorted(set(imported_names(module))):
            if _is_within(name, forbidden):
                found.append(f"{module.name} -> {name}")
    return found


def _faces(modules: list[SourceModule]) -> list[SourceModule]:
    """The web API, the command line and the file formats it reads and writes."""
    return [
        m
        for m in modules
        if any(_is_within(m.name, f"carevault.{face}") for face in ("web", "transfer", "deid"))
        or m.name == "carevault.cli"
    ]


# -- the contract, on the real source ---------------------------------------------------------


@pytest.fixture(scope="module")
def modules() -> list[SourceModule]:
    found = all_modules()
    names = {m.name for m in found}
    # A walk that found nothing would pass every rule: make sure it saw the packages.
    assert {"carevault.cli", "carevault.privacy.gate", "carevault.records.store"} <= names
    assert any(_is_within(n, "carevault.web") for n in names)
    return found


def test_the_gate_package_does_import_records(modules: list[SourceModule]) -> None:
    """The checker sees the real imports (else the rules below would pass vacuously)."""
    gate_imports = violations(
        [m for m in modules if m.name == "carevault.privacy.gate"], "carevault.records"
    )
    assert gate_imports


def test_only_privacy_imports_records(modules: list[SourceModule]) -> None:
    bad = violations(
        modules, "carevault.records", allowed_in=("carevault.privacy", "carevault.records")
    )
    assert bad == [], "records/ is reachable only through the gate"


@pytest.mark.parametrize("forbidden", ["carevault.records", "carevault.crypto"])
def test_web_and_cli_import_neither_records_nor_crypto(
    modules: list[SourceModule], forbidden: str
) -> None:
    faces = _faces(modules)
    assert any(m.name == "carevault.cli" for m in faces)
    assert any(m.name == "carevault.transfer.import_command" for m in faces)
    assert violations(faces, forbidden) == []


@pytest.mark.parametrize("framework", WEB_FRAMEWORKS)
def test_domain_packages_do_not_import_web_frameworks(
    modules: list[SourceModule], framework: str
) -> None:
    domain = [
        m for m in modules if any(_is_within(m.name, f"carevault.{p}") for p in DOMAIN_PACKAGES)
    ]
    assert {m.name.split(".")[1] for m in domain} == set(DOMAIN_PACKAGES)
    assert violations(domain, framework) == []


# -- the checker catches what it should -------------------------------------------------------


def _fake(name: str, source: str, *, is_package: bool = False) -> SourceModule:
    return SourceModule(name, is_package, source)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("carevault.web.fhir_api.routes", "import carevault.records.store\n"),
        ("carevault.web.fhir_api.routes", "from carevault.records.store import RecordStore\n"),
        ("carevault.web.fhir_api.routes", "from carevault import records\n"),
        ("carevault.web.fhir_api.routes", "from ...records import store\n"),
        ("carevault.web.fhir_api.routes", "from ... import records as r\n"),
        ("carevault.web", "from ..records.params import SEARCH_PARAMS\n"),
        ("carevault.cli", "from .records import validation\n"),
        ("carevault.cli", "import importlib\nimportlib.import_module('carevault.records')\n"),
        (
            "carevault.cli",
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from carevault.records.store import Version\n",
        ),
        ("carevault.identity.service", "def f():\n    import carevault.records.models\n"),
    ],
)
def test_checker_catches_an_import_of_records(module: str, source: str) -> None:
    fake = _fake(module, source, is_package=module == "carevault.web")
    assert violations([fake], "carevault.records", allowed_in=("carevault.privacy",))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from carevault.crypto.vault import Vault\n", "carevault.crypto.vault"),
        ("from ..crypto import master\n", "carevault.crypto.master"),
        ("import carevault.crypto\n", "carevault.crypto"),
    ],
)
def test_checker_catches_an_import_of_crypto_from_the_web(source: str, expected: str) -> None:
    fake = _fake("carevault.web.outcome", source)
    assert f"carevault.web.outcome -> {expected}" in violations(_faces([fake]), "carevault.crypto")


def test_checker_catches_fastapi_in_a_domain_package() -> None:
    fake = _fake("carevault.audit.recorder", "from starlette.requests import Request\n")
    assert "carevault.audit.recorder -> starlette.requests" in violations([fake], "starlette")


@pytest.mark.parametrize(
    ("module", "source"),
    [
        # Names that merely start like the package are not the package.
        ("carevault.web.outcome", "import carevault.records_extra\n"),
        ("carevault.web.outcome", "from carevault.privacy.gate import Gate\n"),
        ("carevault.web.outcome", "from . import records\n"),  # carevault.web.records
        # privacy/ is the one door: allowed.
        ("carevault.privacy.gate", "from ..records import store\n"),
    ],
)
def test_checker_allows_what_the_contract_allows(module: str, source: str) -> None:
    fake = _fake(module, source)
    assert violations([fake], "carevault.records", allowed_in=("carevault.privacy",)) == []


@pytest.mark.parametrize(
    ("module", "is_package", "level", "target", "expected"),
    [
        ("carevault.web.fhir_api.routes", False, 1, "deps", "carevault.web.fhir_api.deps"),
        ("carevault.web.fhir_api.routes", False, 2, None, "carevault.web"),
        ("carevault.web.fhir_api", True, 1, "routes", "carevault.web.fhir_api.routes"),
        ("carevault.web.fhir_api", True, 2, "outcome", "carevault.web.outcome"),
        ("carevault.cli", False, 1, "records", "carevault.records"),
    ],
)
def test_relative_imports_resolve_like_python(
    module: str, is_package: bool, level: int, target: str | None, expected: str
) -> None:
    assert _resolve_relative(_fake(module, "", is_package=is_package), level, target) == expected


def test_module_names_come_from_paths() -> None:
    assert module_name(PACKAGE_ROOT / "web" / "__init__.py") == ("carevault.web", True)
    assert module_name(PACKAGE_ROOT / "cli.py") == ("carevault.cli", False)

"""The `carevault` command, run as a real process against a SQLite data folder: init, tenants,
users, tokens, audit verification, key escrow; clear messages and non-zero exits on bad
arguments, never a traceback."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from carevault.app import create_app
from carevault.crypto.master import EscrowError, FileMasterKey
from carevault.runtime import Runtime
from carevault.settings import Settings

ROLES = (
    "practitioner",
    "staff",
    "practice-admin",
    "patient",
    "representative",
    "privacy-officer",
    "vendor-operator",
)
PASSPHRASE = "correct horse battery staple"


def carevault_executable() -> str:
    found = Path(sys.executable).parent / "carevault"
    if found.exists():
        return str(found)
    which = shutil.which("carevault")
    assert which is not None, "the carevault console script is not installed"
    return which


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        """Both streams, with rich's line wrapping undone."""
        return " ".join((self.out + " " + self.err).split())


@dataclass
class Cli:
    home: Path

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Result:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("CAREVAULT_")}
        environ |= {"CAREVAULT_HOME": str(self.home), "COLUMNS": "200", "NO_COLOR": "1"}
        # Servers under test skip the half-minute load of the strict $validate models.
        environ |= {"CAREVAULT_WARM_STRICT_VALIDATION": "false"}
        environ |= env or {}
        done = subprocess.run(
            [carevault_executable(), *args],
            env=environ,
            cwd=self.home.parent,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        result = Result(done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in done.stdout + done.stderr, result
        return result

    def ok(self, *args: str, env: dict[str, str] | None = None) -> Result:
        result = self(*args, env=env)
        assert result.code == 0, result
        return result

    def refused(self, *args: str, env: dict[str, str] | None = None) -> Result:
        result = self(*args, env=env)
        assert result.code != 0, result
        assert result.err.strip(), "a refusal explains itself on stderr"
        return result

    @property
    def database(self) -> Path:
        return self.home / "carevault.db"

    @property
    def master_key(self) -> Path:
        return self.home / "keys" / "master.key"


@pytest.fixture
def fresh(tmp_path: Path) -> Cli:
    """A command pointed at a data folder that does not exist yet."""
    return Cli(tmp_path / "data")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """An initialized folder with tenant 'acme' and a user per role (shared: tests only add)."""
    cli = Cli(tmp_path_factory.mktemp("cli") / "data")
    cli.ok("init")
    cli.ok("tenant", "create", "--slug", "acme", "--name", "Acme Family Practice")
    for role in ROLES:
        cli.ok("user", "create", "--tenant", "acme", "--email", f"{role}@acme.example.org",
               "--role", role)  # fmt: skip
    return cli


def token_for(cli: Cli, role: str, *extra: str) -> str:
    result = cli.ok(
        "token", "create", "--tenant", "acme", "--user", f"{role}@acme.example.org", *extra
    )
    return result.out.strip()


@pytest.fixture
def app_client(site: Cli) -> Iterator[TestClient]:
    """The API over the folder the command wrote (the command has exited by now)."""
    runtime = Runtime(Settings(home=site.home))
    try:
        with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
            yield client
    finally:
        runtime.close()


# -- init -------------------------------------------------------------------------------------


def test_init_warns_about_the_master_key_and_a_second_init_keeps_it(fresh: Cli) -> None:
    first = fresh.ok("init")
    text = first.text.lower()
    assert "master key" in text
    assert "lost" in text
    assert "carevault keys escrow" in text
    assert fresh.master_key.exists()
    # The folder holds the key store: nobody but its owner may read any of it.
    for path in (fresh.home, fresh.master_key, fresh.home / "keys" / "keystore.db"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    assert fresh.database.exists()
    key = fresh.master_key.read_bytes()
    keystore = (fresh.home / "keys" / "keystore.db").read_bytes()

    second = fresh.ok("init")
    assert "kept" in second.text
    assert "new master key" not in second.text.lower()
    assert fresh.master_key.read_bytes() == key
    assert (fresh.home / "keys" / "keystore.db").read_bytes() == keystore


@pytest.mark.parametrize(
    "args",
    [
        ("tenant", "list"),
        ("tenant", "create", "--slug", "acme", "--name", "Acme"),
        ("audit", "verify"),
        ("token", "create", "--tenant", "acme", "--user", "a@acme.example.org"),
        ("keys", "escrow", "--out", "escrow.json", "--passphrase-env", "CV_PASS"),
        ("serve", "--port", "1"),
    ],
    ids=lambda a: "-".join(a[:2]),
)
def test_a_command_before_init_says_to_run_init(fresh: Cli, args: tuple[str, ...]) -> None:
    result = fresh.refused(*args, env={"CV_PASS": PASSPHRASE})
    assert "carevault init" in result.text
    assert not fresh.master_key.exists()


# -- tenants ----------------------------------------------------------------------------------


def test_a_tenant_is_created_and_listed(site: Cli) -> None:
    created = site.ok(
        "tenant", "create", "--slug", "lab-2", "--name", "Second Lab", "--kind", "laboratory"
    )
    assert "lab-2" in created.out
    assert "laboratory" in created.out
    listed = site.ok("tenant", "list")
    rows = [" ".join(line.split()) for line in listed.out.splitlines()]
    assert "lab-2 laboratory Second Lab" in rows
    assert "acme practice Acme Family Practice" in rows


@pytest.mark.parametrize("slug", ["Bad Slug", "-leading-dash", "x", "under_score", "a" * 64])
def test_a_bad_slug_is_refused_clearly(site: Cli, slug: str) -> None:
    result = site.refused("tenant", "create", "--slug", slug, "--name", "Whatever")
    assert "slug" in result.text
    assert slug not in site.ok("tenant", "list").out


def test_a_duplicate_slug_or_unknown_kind_is_refused(site: Cli) -> None:
    assert "exists" in site.refused("tenant", "create", "--slug", "acme", "--name", "Again").text
    result = site.refused("tenant", "create", "--slug", "zoo", "--name", "Zoo", "--kind", "zoo")
    assert "--kind" in result.text
    assert "practice" in result.text  # names the kinds there are


# -- users ------------------------------------------------------------------------------------


def test_a_user_of_each_role_was_created(site: Cli) -> None:
    """The module fixture created one per role; each can be given a token."""
    for role in ROLES:
        assert token_for(site, role).startswith("cv1.")


def test_a_bad_role_is_refused_with_the_roles_there_are(site: Cli) -> None:
    result = site.refused(
        "user", "create", "--tenant", "acme", "--email", "d@acme.example.org", "--role", "doctor"
    )
    assert "--role" in result.text
    assert "doctor" in result.text
    for role in ROLES:
        assert f"'{role}'" in result.text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tenant", "acme", "--email", "not-an-email", "--role", "staff"), "email"),
        (("--tenant", "nowhere", "--email", "x@acme.example.org", "--role", "staff"), "tenant"),
        (("--tenant", "acme", "--email", "staff@acme.example.org", "--role", "staff"), "exists"),
        (("--tenant", "acme", "--email", "y@acme.example.org", "--role", "staff",
          "--password", "short"), "characters"),
    ],
    ids=["email", "tenant", "duplicate", "password"],
)  # fmt: skip
def test_a_bad_user_is_refused_clearly(site: Cli, args: tuple[str, ...], message: str) -> None:
    assert message in site.refused("user", "create", *args).text


# -- tokens -----------------------------------------------------------------------------------


def test_token_create_prints_only_the_token_and_it_works(site: Cli, app_client: TestClient) -> None:
    result = site.ok("token", "create", "--tenant", "acme", "--user", "staff@acme.example.org")
    lines = result.out.splitlines()
    assert len(lines) == 1
    token = lines[0]
    assert result.out == token + "\n"
    assert re.fullmatch(r"cv1\.[0-9a-f-]{36}\.[A-Za-z0-9_-]{20,}", token)
    assert token not in result.err  # the token id and expiry go to stderr, the secret does not

    headers = {"Authorization": f"Bearer {token}"}
    assert app_client.get("/fhir/Patient", headers=headers).status_code == 200
    assert (
        app_client.get("/fhir/Patient", headers={"Authorization": "Bearer cv1.x.y"}).status_code
        == 401
    )


def test_a_revoked_token_stops_working(site: Cli, app_client: TestClient) -> None:
    created = site.ok("token", "create", "--tenant", "acme", "--user", "staff@acme.example.org")
    token_id = re.search(r"token id ([0-9a-f-]{36})", created.err)
    assert token_id is not None, created.err
    headers = {"Authorization": f"Bearer {created.out.strip()}"}
    assert app_client.get("/fhir/Patient", headers=headers).status_code == 200
    site.ok("token", "revoke", "--tenant", "acme", "--token-id", token_id[1])
    assert app_client.get("/fhir/Patient", headers=headers).status_code == 401
    assert "live token" in site.refused("token", "revoke", "--tenant", "acme",
                                        "--token-id", token_id[1]).text  # fmt: skip


def test_a_token_carries_an_allowed_purpose(site: Cli) -> None:
    assert token_for(site, "staff", "--purpose", "HPAYMT").startswith("cv1.")


@pytest.mark.parametrize(
    ("role", "purpose"),
    [("practitioner", "PATRQT"), ("patient", "TREAT"), ("practitioner", "ETREAT")],
)
def test_a_purpose_the_role_may_not_claim_is_refused(site: Cli, role: str, purpose: str) -> None:
    result = site.refused(
        "token", "create", "--tenant", "acme", "--user", f"{role}@acme.example.org",
        "--purpose", purpose,
    )  # fmt: skip
    assert "purposes of use" in result.text
    assert result.out == ""


def test_an_unknown_purpose_is_refused(site: Cli) -> None:
    result = site.refused(
        "token", "create", "--tenant", "acme", "--user", "staff@acme.example.org",
        "--purpose", "SNOOP",
    )  # fmt: skip
    assert "--purpose" in result.text
    assert result.out == ""


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        ("nonsense", "90m, 12h, 30d"),
        ("2y", "90m, 12h, 30d"),
        ("2000-01-01T00:00:00+00:00", "future"),
        ("2030-01-01T00:00:00", "timezone"),
        ("400d", "at most a year"),
    ],
)
def test_a_bad_expiry_is_refused_clearly(site: Cli, expires: str, message: str) -> None:
    result = site.refused(
        "token", "create", "--tenant", "acme", "--user", "staff@acme.example.org",
        "--expires", expires,
    )  # fmt: skip
    assert message in result.text
    assert result.out == ""


def test_a_token_for_an_unknown_user_is_refused(site: Cli) -> None:
    result = site.refused("token", "create", "--tenant", "acme", "--user", "ghost@acme.example.org")
    assert "no user" in result.text
    assert result.out == ""


# -- audit verify -----------------------------------------------------------------------------


def _verified_counts(text: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"(\S+): (\d+) entries verified", text)}


def _chain_sizes(database: Path, tenant_ids: dict[str, str]) -> dict[str, int]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return {
            label: conn.execute(
                "SELECT count(*) FROM audit_entries WHERE tenant_id = ?", (tenant_id,)
            ).fetchone()[0]
            for label, tenant_id in tenant_ids.items()
        }


def test_audit_verify_counts_then_names_a_tampered_entry(fresh: Cli) -> None:
    fresh.ok("init")
    created = fresh.ok("tenant", "create", "--slug", "acme", "--name", "Acme")
    tenant_id = re.search(r"id ([0-9a-f-]{36})", created.out)
    assert tenant_id is not None
    fresh.ok("user", "create", "--tenant", "acme", "--email", "s@acme.example.org",
             "--role", "staff")  # fmt: skip
    fresh.ok("token", "create", "--tenant", "acme", "--user", "s@acme.example.org")

    sound = fresh.ok("audit", "verify")
    counts = _verified_counts(sound.text)
    assert counts == _chain_sizes(fresh.database, {"vendor": "_vendor", "acme": tenant_id[1]})
    assert counts["acme"] >= 3  # tenant, user, token
    assert _verified_counts(fresh.ok("audit", "verify", "--tenant", "acme").text) == {
        "acme": counts["acme"]
    }

    acme = tenant_id[1]
    with sqlite3.connect(f"file:{fresh.database}?mode=ro", uri=True) as conn:
        (original,) = conn.execute(
            "SELECT detail FROM audit_entries WHERE tenant_id = ? AND seq = 2", (acme,)
        ).fetchone()
    conn.close()
    edit = "UPDATE audit_entries SET detail = ? WHERE tenant_id = ? AND seq = 2"
    _tamper(fresh.database, edit, ("nothing happened", acme))
    broken = fresh("audit", "verify")
    assert broken.code == 1, broken
    assert "acme: BROKEN" in broken.text
    assert "entry 2 was altered" in broken.text
    assert _verified_counts(broken.text) == {"vendor": counts["vendor"]}  # the others are sound
    assert fresh("audit", "verify", "--tenant", "acme").code == 1

    # Put the entry back as it was: the chain verifies again (nothing is remembered).
    _tamper(fresh.database, edit, (original, acme))
    assert _verified_counts(fresh.ok("audit", "verify").text) == counts

    _tamper(fresh.database, "DELETE FROM audit_entries WHERE tenant_id = ? AND seq = 2", (acme,))
    deleted = fresh("audit", "verify", "--tenant", "acme")
    assert deleted.code == 1
    assert "entry 2 is missing" in deleted.text

    _tamper(fresh.database, "DELETE FROM audit_entries WHERE tenant_id = '_vendor'", ())
    truncated = fresh("audit", "verify")
    assert truncated.code == 1
    assert "vendor: BROKEN" in truncated.text
    assert "removed" in truncated.text


def _tamper(database: Path, sql: str, params: tuple[str, ...]) -> None:
    """Edit the database as someone with the file but not the key store would."""
    with sqlite3.connect(database) as conn:
        changed = conn.execute(sql, params).rowcount
    conn.close()
    assert changed >= 1


def test_audit_verify_of_an_unknown_tenant_is_refused(site: Cli) -> None:
    assert "no tenant" in site.refused("audit", "verify", "--tenant", "nowhere").text


# -- keys escrow ------------------------------------------------------------------------------


def test_keys_escrow_writes_a_file_that_opens_to_the_master_key(site: Cli) -> None:
    out = site.home.parent / "escrow.json"
    result = site.ok(
        "keys", "escrow", "--out", str(out), "--passphrase-env", "CV_ESCROW",
        env={"CV_ESCROW": PASSPHRASE},
    )  # fmt: skip
    assert str(out) in result.text
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    document = out.read_bytes()
    assert site.master_key.read_bytes() not in document

    recovered = FileMasterKey.from_escrow(document, PASSPHRASE)
    copy = site.home.parent / "recovered.key"
    recovered.write_to(copy)
    assert copy.read_bytes() == site.master_key.read_bytes()
    with pytest.raises(EscrowError):
        FileMasterKey.from_escrow(document, "not the passphrase at all")

    again = site.refused(
        "keys", "escrow", "--out", str(out), "--passphrase-env", "CV_ESCROW",
        env={"CV_ESCROW": "another long passphrase"},
    )  # fmt: skip
    assert "exists" in again.text
    assert out.read_bytes() == document


@pytest.mark.parametrize(
    ("value", "message"), [("short", "12 characters"), (None, "12 characters")]
)
def test_keys_escrow_refuses_a_weak_or_missing_passphrase(
    site: Cli, value: str | None, message: str
) -> None:
    out = site.home.parent / f"weak-{value}.json"
    env = {"CV_WEAK": value} if value is not None else {}
    result = site.refused("keys", "escrow", "--out", str(out), "--passphrase-env", "CV_WEAK",
                          env=env)  # fmt: skip
    assert message in result.text
    assert not out.exists()

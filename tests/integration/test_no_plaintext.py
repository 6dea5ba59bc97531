"""The whole data folder holds no demo patient's identifiers in clear.

Seeds the demo clinic with the real command, serves it and runs the searches a
user would (identifiers and names in query strings and POST bodies, a rejected
body full of PHI), stops the server, then scans EVERY file under the data
folder — database, WAL, key store, logs — for each patient's names, full birth
date, phone, email, street and MRN: as written, lowercased, uppercased and
base64-encoded.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from carevault.demo.generator import DEFAULT_SEED, generate

PATIENTS_PER_TENANT = 30  # the demo's default: 60 patients in all
CARVEVAULT = str(Path(sys.executable).parent / "carevault")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [CARVEVAULT, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _forms(value: str) -> set[bytes]:
    forms = {value, value.lower(), value.upper()}
    encoded = {base64.b64encode(f.encode()).decode() for f in forms}
    return {f.encode() for f in forms | encoded}


@pytest.fixture(scope="module")
def served_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("scan") / "data"
    env = {**os.environ, "CAREVAULT_HOME": str(home), "CAREVAULT_WARM_STRICT_VALIDATION": "false"}
    env.pop("CAREVAULT_DATABASE_URL", None)
    _run(env, "demo", "--seed-only", "--patients", str(PATIENTS_PER_TENANT))
    _run(env, "user", "create", "--tenant", "riverside", "--email", "scan@example.org",
         "--role", "practitioner")  # fmt: skip
    token = _run(env, "token", "create", "--tenant", "riverside", "--user", "scan@example.org")
    port = _free_port()
    server = subprocess.Popen(
        [CARVEVAULT, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _exercise(f"http://127.0.0.1:{port}", token.strip())
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    return home


def _wait_until_up(http: httpx.Client) -> None:
    # Waiting for a process to start listening; no behaviour under test depends on time.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if http.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail("the server did not start")


def _exercise(base: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        _wait_until_up(http)
        people = [p for t in generate(DEFAULT_SEED, PATIENTS_PER_TENANT).tenants[:1]
                  for p in t.patients][:5]  # fmt: skip
        for patient in people:
            ident = patient.identity
            found = http.get(
                "/fhir/Patient", params={"family": ident.family, "given": ident.given[0]}
            )
            assert found.status_code == 200
            assert found.json()["total"] >= 1
            posted = http.post(
                "/fhir/Patient/_search",
                data={
                    "identifier": f"{ident.mrn_system}|{ident.mrn}",
                    "birthdate": ident.birth_date,
                },
            )
            assert posted.status_code == 200
            assert posted.json()["total"] == 1
            http.get("/fhir/Patient", params={"email": ident.email, "phone": ident.phone})
            bad = http.post(
                "/fhir/Patient",
                json={"resourceType": "Patient", "birthDate": f"{ident.family} {ident.phone}"},
            )
            assert bad.status_code == 422
            assert ident.family not in bad.text
            assert ident.phone not in bad.text


def test_demo_identifiers_appear_nowhere_under_the_data_folder(served_home: Path) -> None:
    identities = list(generate(DEFAULT_SEED, PATIENTS_PER_TENANT).patients())
    assert len(identities) >= 50
    needles: dict[bytes, str] = {}
    for ident in identities:
        for value in ident.identifying_values():
            assert len(value) >= 5, "short values would match random ciphertext by chance"
            for form in _forms(value):
                needles[form] = value
    files = [p for p in served_home.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"carevault.db", "keystore.db", "master.key", "carevault.log"} <= names
    hits = []
    for path in files:
        content = path.read_bytes()
        hits += [(path.name, needles[n]) for n in needles if n in content]
    assert hits == [], f"identifiers found in clear: {len(hits)} (first file: {hits[:1]})"


def test_the_scan_would_see_plaintext(served_home: Path, tmp_path: Path) -> None:
    """The scanner is not blind: the same check finds a value in a copied, doctored file."""
    ident = next(generate(DEFAULT_SEED, PATIENTS_PER_TENANT).patients())
    doctored = tmp_path / "copy.db"
    shutil.copy(served_home / "carevault.db", doctored)
    with doctored.open("ab") as fh:
        fh.write(base64.b64encode(ident.email.upper().encode()))
    content = doctored.read_bytes()
    assert any(form in content for form in _forms(ident.email))

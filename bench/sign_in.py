"""Sign-in speed: one Argon2id verification, and a full sign-in over real HTTP.

    python bench/sign_in.py [--rounds 15] [--backend sqlite|postgres --pg-url URL]

1. The median time of one verification with the production parameters
   (identity/passwords.py), and its ratio to the 50-250 ms target band.
2. The median time of a full sign-in (POST /auth/sign-in, then POST /auth/second-factor
   with a TOTP code) against a live uvicorn server on 127.0.0.1, for a practitioner who
   has enrolled an authenticator app. The runtime's clock is a ManualClock moved 31 s
   before each sign-in, so each one has a fresh TOTP step (a code is usable once) without
   sleeping; time is measured with the wall clock.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn

from carevault.app import create_app
from carevault.clock import ManualClock
from carevault.identity import passwords
from carevault.identity.models import TenantKind
from carevault.identity.permissions import Role
from carevault.identity.totp import code_at
from carevault.runtime import Runtime, initialize
from carevault.settings import Settings

BAND = (50.0, 250.0)
PASSWORD = "violet kestrel harbour 42"  # noqa: S105 (the bench user's made-up password)
EMAIL = "practitioner@bench.example.org"


def argon2_ms(rounds: int) -> list[float]:
    hasher = passwords.production_hasher()
    stored = hasher.hash(PASSWORD)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        hasher.verify(stored, PASSWORD)
        times.append((time.perf_counter() - start) * 1000)
    return times


def serve(app: object) -> tuple[str, uvicorn.Server, threading.Thread, socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread, sock


def full_sign_in_ms(settings: Settings, rounds: int) -> list[float]:
    initialize(settings)
    clock = ManualClock(datetime.now(UTC))
    runtime = Runtime(settings, clock=clock)
    tenant = runtime.identity.create_tenant("bench", "Bench Clinic", TenantKind.PRACTICE)
    runtime.identity.create_user(tenant, EMAIL, Role.PRACTITIONER, password=PASSWORD)
    base, server, thread, sock = serve(create_app(runtime))
    body = {"tenant": "bench", "email": EMAIL, "password": PASSWORD, "delivery": "bearer"}
    times = []
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            pending = http.post("/auth/sign-in", json=body).json()["token"]
            auth = {"Authorization": f"Bearer {pending}"}
            uri = http.post("/auth/totp/enrol", headers=auth).json()["otpauth_uri"]
            secret = parse_qs(urlsplit(uri).query)["secret"][0]
            code = code_at(secret, clock.now())
            http.post("/auth/totp/confirm", headers=auth, json={"code": code}).raise_for_status()
            for _ in range(rounds):
                clock.advance(timedelta(seconds=31))
                start = time.perf_counter()
                first = http.post("/auth/sign-in", json=body)
                first.raise_for_status()
                auth = {"Authorization": f"Bearer {first.json()['token']}"}
                code = code_at(secret, clock.now())
                done = http.post("/auth/second-factor", headers=auth, json={"code": code})
                done.raise_for_status()
                times.append((time.perf_counter() - start) * 1000)
                assert done.json()["stage"] == "active"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        runtime.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-url", help="an empty PostgreSQL database, for --backend postgres")
    args = parser.parse_args()
    verify = statistics.median(argon2_ms(args.rounds))
    print(
        f"Argon2id t={passwords.TIME_COST}, m={passwords.MEMORY_COST_KIB // 1024} MiB, "
        f"p={passwords.PARALLELISM}: median verification {verify:.1f} ms"
    )
    low, high = BAND
    inside = "inside" if low <= verify <= high else "OUTSIDE"
    print(
        f"  {inside} the {low:.0f}-{high:.0f} ms band: {verify / low:.2f}x the floor, "
        f"{verify / high:.2f}x the ceiling"
    )
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), database_url=args.pg_url)
        full = statistics.median(full_sign_in_ms(settings, args.rounds))
    print(
        f"full sign-in over HTTP ({args.backend}; password + TOTP, 2 requests): "
        f"median {full:.1f} ms = {full / verify:.2f}x one verification"
    )


if __name__ == "__main__":
    main()

"""Every rights route, as every role, with no token and a garbage one, and with bodies good,
empty and malformed: never a 5xx, every refusal a problem document, nothing of another
patient or tenant in any answer."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from carevault.identity.permissions import Role
from carevault.runtime import Runtime
from tests.conftest import Clinic
from tests.rights_helpers import ACCESS, wire

ROUTES = (
    ("POST", "/rights/requests"),
    ("GET", "/rights/requests/{id}"),
    ("GET", "/rights/requests/{id}/copy?form=pdf"),
    ("GET", "/rights/requests/{id}/copy?form=../../x"),
    ("POST", "/rights/requests/{id}/statements"),
    ("GET", "/admin/rights/queue"),
    ("GET", "/admin/rights/queue?due_before=2026-13-45"),
    ("GET", "/admin/rights/queue?due_before=2027-01-01&x=1"),
    ("POST", "/admin/rights/requests/{id}/extend"),
    ("POST", "/admin/rights/requests/{id}/decide"),
    ("POST", "/admin/rights/requests/{id}/fulfil"),
    ("POST", "/admin/rights/requests/{id}/rebuttal"),
)
BODIES: tuple[object, ...] = (
    None, b"{oops", b"[]", b'"text"', {}, {"decision": "deny", "basis": "other"},
    {"reason": 42}, {"statement": ["a"]}, {"amended": "x"}, {**ACCESS, "patient": {"a": 1}},
)  # fmt: skip


@pytest.mark.parametrize("role", [*(r.value for r in Role), "none", "garbage"])
def test_no_route_answers_5xx_or_leaks(
    client: TestClient, runtime: Runtime, clinic: Clinic, role: str
) -> None:
    wire(runtime)
    north, south = clinic.north, clinic.south
    made = client.post("/rights/requests", json=ACCESS, headers=south.headers("patient"))
    rid = made.json()["request"]["request_id"]  # south's case: nobody in north may touch it
    headers = {} if role == "none" else (
        {"Authorization": "Bearer cv1.nope.nope"} if role == "garbage" else north.headers(role)
    )  # fmt: skip
    for method, path in ROUTES:
        url = path.replace("{id}", rid)
        for body in BODIES if method == "POST" else (None,):
            kwargs: dict[str, object] = {"headers": headers}
            if isinstance(body, bytes):
                kwargs["content"] = body
            elif body is not None:
                kwargs["json"] = body
            answer = client.request(method, url, **kwargs)  # type: ignore[arg-type]
            where = f"{method} {path} {body!r} as {role}"
            assert answer.status_code < 500, where
            if answer.status_code >= 400:
                assert answer.headers["content-type"] == "application/problem+json", where
            text = answer.text
            assert south.patient_id not in text, where
            assert "Quintero" not in text, where
            assert "Okafor" not in text, where
    # south's case is untouched by all of it
    view = client.get(f"/rights/requests/{rid}", headers=south.headers("patient")).json()
    assert view["status"] == "open"
    assert view["extended_at"] is None

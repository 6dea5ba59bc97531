"""Bad input over HTTP: each refusal is a clear OperationOutcome 4xx, writes nothing but its audit
entry, and echoes none of the submitted values back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from carevault.audit.models import audit_entries
from carevault.clock import ManualClock
from carevault.runtime import Runtime
from tests.conftest import PATIENT_ALICE, Clinic

TYPES = (
    "Patient", "Practitioner", "Organization", "Encounter", "Condition", "Observation",
    "DocumentReference",
)  # fmt: skip
FHIR_JSON = {"content-type": "application/fhir+json"}
# Made-up identifying values: none may come back in a response or land in an audit entry.
PHI = ("Quintanilla", "Janette", "Jane", "MRN-Q-77", "555-0199")


def patient(**changes: Any) -> dict[str, Any]:
    """A new patient carrying the made-up identifying values above."""
    body: dict[str, Any] = {
        "resourceType": "Patient", "name": [{"family": "Quintanilla", "given": ["Janette"]}],
        "identifier": [{"system": "urn:mrn", "value": "MRN-Q-77"}],
        "telecom": [{"system": "phone", "value": "555-0199"}],
    }  # fmt: skip
    return {**body, **changes}


def observation(subject: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "status": "final", "code": {"text": "Janette's pulse"},
        "subject": {"reference": subject}, "note": [{"text": "Quintanilla"}],
    }  # fmt: skip


def assert_outcome(response: Response, status: int | tuple[int, ...]) -> dict[str, Any]:
    """A FHIR OperationOutcome with the status, no stack trace and no submitted PHI."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"]
    for issue in body["issue"]:
        assert issue["severity"] in ("error", "fatal")
        assert issue["code"]
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    for value in PHI:
        assert value not in response.text
    return body


def snapshot(client: TestClient, clinic: Clinic) -> dict[str, int]:
    """How many resources of each type, and versions of the north patient, exist now."""
    counts = {}
    for rtype in TYPES:
        role = "practice-admin" if rtype in ("Practitioner", "Organization") else "practitioner"
        bundle = client.get(
            f"/fhir/{rtype}", params={"_count": "0"}, headers=clinic.north.headers(role)
        ).json()
        counts[rtype] = bundle["total"]
    history = client.get(
        f"/fhir/Patient/{clinic.north.patient_id}/_history", headers=clinic.north.headers()
    ).json()
    counts["versions of the north patient"] = history["total"]
    return counts


def audit_of(runtime: Runtime, response: Response) -> list[Any]:
    """The audit entries written for this request, found by the request id it answered with."""
    request_id = response.headers["x-request-id"]
    with runtime.reader.connect() as conn:
        return list(
            conn.execute(select(audit_entries).where(audit_entries.c.request_id == request_id))
        )


# -- the table of bad requests -------------------------------------------------------------

Send = Callable[[TestClient, Clinic], Response]


@dataclass(frozen=True)
class Bad:
    name: str
    send: Send
    status: int | tuple[int, ...]
    names: tuple[str, ...] = ()
    """Words the diagnostics must contain (element or parameter names)."""


def _post(rtype: str, body: Any) -> Send:
    return lambda client, clinic: client.post(
        f"/fhir/{rtype}", json=body, headers=clinic.north.headers()
    )


def _post_raw(content: bytes, content_type: str) -> Send:
    return lambda client, clinic: client.post(
        "/fhir/Patient",
        content=content,
        headers=clinic.north.headers(**{"content-type": content_type}),
    )


def _put_alice(body: dict[str, Any], **headers: str) -> Send:
    def send(client: TestClient, clinic: Clinic) -> Response:
        rid = clinic.north.patient_id
        response: Response = client.put(
            f"/fhir/Patient/{rid}",
            json={**body, "id": rid},
            headers=clinic.north.headers(**headers),
        )
        return response

    return send


def _observation_about(subject: Callable[[Clinic], str]) -> Send:
    return lambda client, clinic: client.post(
        "/fhir/Observation", json=observation(subject(clinic)), headers=clinic.north.headers()
    )


def _post_streamed(total: int) -> Send:
    """A body sent in chunks with no Content-Length, so only the running count can stop it."""

    def chunks() -> Iterator[bytes]:
        yield b'{"resourceType": "Patient", "name": [{"family": "Quintanilla", "text": "'
        for _ in range(total // 65536 + 1):
            yield b"x" * 65536
        yield b'"}]}'

    return lambda client, clinic: client.post(
        "/fhir/Patient", content=chunks(), headers=clinic.north.headers(**FHIR_JSON)
    )


FIVE_MIB = 5 * 1024 * 1024

BAD = [
    Bad("malformed JSON", _post_raw(b'{"resourceType": "Patient", "name": [{"family": '
                                    b'"Quintanilla"', "application/fhir+json"), 400),
    Bad("not JSON at all", _post_raw(b"family=Quintanilla", "application/fhir+json"), 400),
    Bad("a JSON array", _post("Patient", [patient()]), 400),
    Bad("wrong resourceType for the URL", _post("Observation", patient()), 400, ("resourceType",)),
    Bad("unknown resourceType in the body", _post("Patient", patient(resourceType="Janette")),
        400, ("resourceType",)),
    Bad("unknown resourceType in the URL", _post("Spaceship", patient(resourceType="Spaceship")),
        404),
    Bad("invalid birthDate", _post("Patient", patient(birthDate="Jane Doe 1980")), 422,
        ("birthDate",)),
    Bad("invalid element type", _post("Patient", patient(active="Janette")), 422, ("active",)),
    Bad("unknown element", _post("Patient", patient(nickname="Janette")), 422, ("nickname",)),
    Bad("reference to a missing patient",
        _observation_about(lambda c: "Patient/no-such-patient"), 422),
    Bad("reference to another tenant's patient",
        _observation_about(lambda c: f"Patient/{c.south.patient_id}"), 422),
    Bad("body over the size limit",
        _post_raw(b'{"resourceType": "Patient", "text": "' + b"Quintanilla" * (FIVE_MIB // 11)
                  + b'"}', "application/fhir+json"), 413),
    Bad("streamed body over the size limit",
        _post_streamed(FIVE_MIB), 413),
    Bad("non-JSON content type", _post_raw(b"family=Quintanilla", "text/plain"), (400, 415)),
    Bad("version conflict", _put_alice(patient(), **{"If-Match": 'W/"7"'}), 412),
    Bad("malformed If-Match", _put_alice(patient(), **{"If-Match": "Janette"}), 400,
        ("If-Match",)),
    Bad("invalid element on update", _put_alice(patient(birthDate="Jane Doe 1980")), 422,
        ("birthDate",)),
    Bad("invalid id on update", lambda client, clinic: client.put(
        "/fhir/Patient/bad%20id!", json=patient(id="bad id!"), headers=clinic.north.headers()
    ), (400, 422), ("id",)),
    Bad("unknown search parameter", lambda client, clinic: client.post(
        "/fhir/Patient/_search", data={"nickname": "Janette"}, headers=clinic.north.headers()
    ), 400, ("nickname",)),
    Bad("birthdate finer than a year", lambda client, clinic: client.post(
        "/fhir/Patient/_search", data={"birthdate": "lt1980-05-01"},
        headers=clinic.north.headers(),
    ), 400, ("birthdate",)),
]  # fmt: skip

UNAUDITED = {
    "malformed JSON", "not JSON at all", "body over the size limit",
    "streamed body over the size limit", "non-JSON content type", "malformed If-Match",
}  # fmt: skip
"""Refused by the web layer before the gate is reached, and audited there."""


def test_bad_input_is_a_clear_refusal_that_writes_nothing(
    client: TestClient, clinic: Clinic, subtests: pytest.Subtests
) -> None:
    for bad in BAD:
        with subtests.test(msg=bad.name):
            before = snapshot(client, clinic)
            body = assert_outcome(bad.send(client, clinic), bad.status)
            diagnostics = " ".join(
                f"{i.get('diagnostics', '')} {' '.join(i.get('expression', []))}"
                for i in body["issue"]
            )
            for name in bad.names:
                assert name in diagnostics
            assert snapshot(client, clinic) == before


def _audit_problem(runtime: Runtime, response: Response) -> str | None:
    """Why this refusal's audit entry is missing or wrong, or None if it is right."""
    entries = audit_of(runtime, response)
    if len(entries) != 1:
        return f"{len(entries)} audit entries"
    entry = entries[0]
    if entry.outcome == "success" or entry.status != response.status_code:
        return f"audited as {entry.outcome}/{entry.status}"
    leaked = [value for value in PHI if value in str(tuple(entry))]
    return f"audit entry holds {leaked}" if leaked else None


def test_each_refusal_at_the_gate_is_audited_without_phi(
    client: TestClient, clinic: Clinic, runtime: Runtime, subtests: pytest.Subtests
) -> None:
    for bad in BAD:
        if bad.name in UNAUDITED:
            continue
        with subtests.test(msg=bad.name):
            response = bad.send(client, clinic)
            assert 400 <= response.status_code < 500
            assert _audit_problem(runtime, response) is None


def test_each_refusal_before_the_gate_is_audited_too(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    problems = {}
    for bad in BAD:
        if bad.name in UNAUDITED:
            response = bad.send(client, clinic)
            assert 400 <= response.status_code < 500
            if (problem := _audit_problem(runtime, response)) is not None:
                problems[bad.name] = problem
    assert problems == {}


def test_non_json_content_type_is_unsupported_media_type(
    client: TestClient, clinic: Clinic
) -> None:
    response = _post_raw(b"family=Quintanilla", "text/plain")(client, clinic)
    assert_outcome(response, 415)


def test_a_code_outside_a_required_value_set_is_refused(client: TestClient, clinic: Clinic) -> None:
    before = snapshot(client, clinic)
    body = assert_outcome(_post("Patient", patient(gender="Janette"))(client, clinic), 422)
    assert "gender" in str(body)
    assert snapshot(client, clinic) == before


def test_validation_names_the_element_not_the_value(client: TestClient, clinic: Clinic) -> None:
    response = _post("Patient", {**PATIENT_ALICE, "birthDate": "Jane Doe 1980"})(client, clinic)
    body = assert_outcome(response, 422)
    assert "birthDate" in response.text
    assert any("Patient.birthDate" in i.get("expression", []) for i in body["issue"])
    for value in ("Quintero", "Alicia", "MRN-ALICE-1", "1980"):
        assert value not in response.text


def test_refused_references_look_alike(client: TestClient, clinic: Clinic) -> None:
    """A reference to another tenant's patient is refused exactly like one to no patient."""
    missing = _observation_about(lambda c: "Patient/no-such-patient")(client, clinic)
    foreign = _observation_about(lambda c: f"Patient/{c.south.patient_id}")(client, clinic)
    assert missing.status_code == foreign.status_code
    assert missing.json() == foreign.json()


def test_unsupported_method_and_path_are_outcomes(client: TestClient, clinic: Clinic) -> None:
    rid = clinic.north.patient_id
    assert_outcome(client.patch(f"/fhir/Patient/{rid}", json={}, headers=clinic.north.headers()),
                   405)  # fmt: skip
    assert_outcome(client.get("/fhir/Patient/a/b/c/d", headers=clinic.north.headers()), 404)


# -- tokens ----------------------------------------------------------------------------------


def _attempt(client: TestClient, authorization: str | None) -> Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response: Response = client.post("/fhir/Patient", json=patient(), headers=headers)
    return response


def _assert_token_refused(
    client: TestClient, clinic: Clinic, runtime: Runtime, authorization: str | None
) -> None:
    before = snapshot(client, clinic)
    response = _attempt(client, authorization)
    assert_outcome(response, 401)
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert snapshot(client, clinic) == before
    entries = audit_of(runtime, response)
    assert len(entries) == 1
    assert entries[0].outcome == "denied"
    assert entries[0].status == 401
    _, _, secret = (authorization or "").partition(" ")
    if secret:
        assert secret not in str(tuple(entries[0]))


BAD_AUTHORIZATION = {
    "missing": None, "empty": "", "scheme only": "Bearer", "malformed": "Bearer not-a-token",
    "basic auth": "Basic dXNlcjpwYXNz", "unknown tenant": "Bearer cv1.x.y",
    "unknown token": "Bearer cv1.00000000-0000-0000-0000-000000000000.abc",
}  # fmt: skip


def test_missing_or_malformed_token(
    client: TestClient, clinic: Clinic, runtime: Runtime, subtests: pytest.Subtests
) -> None:
    for name, authorization in BAD_AUTHORIZATION.items():
        with subtests.test(msg=name):
            _assert_token_refused(client, clinic, runtime, authorization)


def test_a_token_spliced_onto_another_tenant_is_refused(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    prefix, _, secret = clinic.north.tokens["practitioner"].split(".")
    spliced = f"{prefix}.{clinic.south.tenant_id}.{secret}"
    _assert_token_refused(client, clinic, runtime, f"Bearer {spliced}")


def _practitioner_token(runtime: Runtime, expires: str = "30d") -> tuple[str, str]:
    tenant = runtime.identity.tenant_by_slug("north")
    user_id = runtime.identity.user_id_by_email(tenant, "practitioner@north.example.org")
    issued = runtime.identity.create_token(tenant, user_id, expires=expires)
    return issued.token, issued.token_id


def test_expired_token(
    client: TestClient, clinic: Clinic, runtime: Runtime, clock: ManualClock
) -> None:
    token, _ = _practitioner_token(runtime, expires="1h")
    read = client.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
    assert read.status_code == 200
    clock.advance(timedelta(hours=2))
    _assert_token_refused(client, clinic, runtime, f"Bearer {token}")


def test_revoked_token(client: TestClient, clinic: Clinic, runtime: Runtime) -> None:
    token, token_id = _practitioner_token(runtime)
    assert client.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"}).is_success
    runtime.identity.revoke_token(runtime.identity.tenant_by_slug("north"), token_id)
    _assert_token_refused(client, clinic, runtime, f"Bearer {token}")
    read = client.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
    assert_outcome(read, 401)

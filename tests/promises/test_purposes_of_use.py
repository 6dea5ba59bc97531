"""The policy's purposes are the only uses of PHI: the gate refuses the workforce a patient's
record under a purpose of use the deployment's policy does not list (the patient's own access,
their representative's and the privacy officer's oversight are not "uses" and always pass)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from carevault.identity.permissions import Purpose
from tests.audit_rows import audit_of
from tests.promises.conftest import Deployment


def _bearer(dep: Deployment, email: str, purpose: Purpose) -> dict[str, str]:
    tenant = dep.runtime.identity.tenant_by_slug("north")
    user = dep.runtime.identity.user_id_by_email(tenant, email)
    token = dep.runtime.identity.create_token(tenant, user, purpose=purpose).token
    return {"Authorization": f"Bearer {token}"}


def _read(dep: Deployment, headers: dict[str, str]) -> tuple[int, str]:
    answer = dep.client.get(f"/fhir/Patient/{dep.clinic.north.patient_id}", headers=headers)
    if answer.status_code == 403:  # every refusal is audited as one
        entries = audit_of(dep.runtime, answer)
        assert entries, answer.text
        assert all(e["outcome"] != "success" for e in entries)
    return answer.status_code, answer.text


@pytest.mark.promise("LI-16")
def test_lifeimage_uses_phi_only_for_its_listed_purposes(
    profiled: Callable[[str], Deployment],
) -> None:
    dep = profiled("lifeimage")
    staff = "staff@north.example.org"
    assert _read(dep, _bearer(dep, staff, Purpose.TREAT))[0] == 200  # providing the service
    for purpose in (Purpose.HPAYMT, Purpose.HOPERAT):
        status, text = _read(dep, _bearer(dep, staff, purpose))
        assert status == 403, text
        assert f"not for {purpose.value}" in text
    searched = dep.client.get("/fhir/Observation", headers=_bearer(dep, staff, Purpose.HPAYMT))
    assert searched.status_code == 403
    # the directory is not PHI, and the individual's own access is a right, not a use
    directory = dep.client.get("/fhir/Practitioner", headers=_bearer(dep, staff, Purpose.HOPERAT))
    assert directory.status_code == 200
    assert _read(dep, dep.clinic.north.headers("patient"))[0] == 200
    assert dep.runtime.audit_verification(dep.clinic.north.tenant_id).ok


@pytest.mark.promise("AM-04")
def test_allmeds_uses_client_information_only_to_provide_the_service_and_bill(
    profiled: Callable[[str], Deployment],
) -> None:
    dep = profiled("allmeds")
    staff = "staff@north.example.org"
    assert _read(dep, _bearer(dep, staff, Purpose.TREAT))[0] == 200
    assert _read(dep, _bearer(dep, staff, Purpose.HPAYMT))[0] == 200  # billing is listed
    status, text = _read(dep, _bearer(dep, staff, Purpose.HOPERAT))
    assert status == 403, text
    assert "privacy policy uses health information only for HPAYMT, TREAT" in text


def test_the_default_policy_keeps_hipaa_payment_and_operations(
    profiled: Callable[[str], Deployment],
) -> None:
    dep = profiled("default")
    for purpose in (Purpose.TREAT, Purpose.HPAYMT, Purpose.HOPERAT):
        assert _read(dep, _bearer(dep, "staff@north.example.org", purpose))[0] == 200

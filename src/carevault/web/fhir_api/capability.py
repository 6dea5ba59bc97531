"""The CapabilityStatement, generated from the same tables that drive search: it tells the truth."""

from __future__ import annotations

from typing import Any

from carevault import __version__
from carevault.privacy.catalog import (
    SEARCH_NOTES,
    SERVED_TYPES,
    search_includes,
    search_params,
    search_revincludes,
    sort_keys,
)

INTERACTIONS = (
    "read", "vread", "update", "delete", "history-instance", "history-type", "create",
    "search-type",
)  # fmt: skip


def capability_statement(base: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "kind": "instance",
        "software": {"name": "CareVault", "version": __version__},
        "implementation": {"description": "CareVault FHIR API", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "Bearer tokens (carevault token create), scoped with SMART "
                    "scopes, each carrying an HL7 PurposeOfUse. Every access is audited.",
                },
                "documentation": SEARCH_NOTES,
                "resource": [_resource(t) for t in SERVED_TYPES],
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
                "operation": [
                    {
                        "name": "export",
                        "definition": f"{_BULK}/export",
                    }
                ],
            }
        ],
    }


def _resource(rtype: str) -> dict[str, Any]:
    return {
        "type": rtype,
        "interaction": [{"code": code} for code in INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalUpdate": True,
        "conditionalDelete": "single",
        "operation": _type_operations(rtype),
        "documentation": "Sortable with _sort: " + ", ".join(sort_keys(rtype)) + ".",
        "searchInclude": list(search_includes(rtype)),
        "searchRevInclude": list(search_revincludes(rtype)),
        "searchParam": [
            {"name": p.name, "type": p.type, "documentation": p.documentation}
            for p in search_params(rtype)
        ],
    }


def _type_operations(rtype: str) -> list[dict[str, str]]:
    """$validate on every type; $everything on Patient (web/fhir_api/operations.py); the
    patient- and group-level Bulk Data $export (web/fhir_api/bulk_export.py)."""
    found = [{"name": "validate", "definition": f"{_OPS}/Resource-validate"}]
    if rtype == "Patient":
        found.append({"name": "everything", "definition": f"{_OPS}/Patient-everything"})
        found.append({"name": "export", "definition": f"{_BULK}/patient-export"})
    if rtype == "Group":
        found.append({"name": "export", "definition": f"{_BULK}/group-export"})
    return found


_OPS = "http://hl7.org/fhir/OperationDefinition"
_BULK = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition"

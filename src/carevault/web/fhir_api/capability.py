"""The CapabilityStatement, generated from the same tables that drive search: it tells the truth."""

from __future__ import annotations

from typing import Any

from carevault import __version__
from carevault.privacy.catalog import SERVED_TYPES, search_params

INTERACTIONS = ("read", "vread", "update", "delete", "history-instance", "create", "search-type")


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
                "resource": [_resource(t) for t in SERVED_TYPES],
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
        "conditionalCreate": False,
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": [
            {"name": p.name, "type": p.type, "documentation": p.documentation}
            for p in search_params(rtype)
        ],
    }

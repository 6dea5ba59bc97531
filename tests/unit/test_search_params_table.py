"""The search table names real elements: every path resolves, step by step, in the
fhir.resources R4B model of its type, and ends on an element of a type its kind can index."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from carevault.records.params import SEARCH_PARAMS, Kind
from carevault.records.quantities import implicit_range, parse_number, parse_query
from carevault.records.shaping import includes, revincludes, sortable

# The element types each kind can index (R4B names; primitives by their annotation text).
LEAF_TYPES: dict[Kind, tuple[str, ...]] = {
    Kind.TOKEN: ("CodeableConcept", "Coding", "Code", "bool", "Canonical", "Identifier"),
    Kind.IDENTIFIER: ("Identifier", "Oid", "Uri", "String", "str"),
    Kind.TELECOM: ("ContactPoint",),
    Kind.STRING: ("String", "str", "HumanName"),
    Kind.DATE: ("DateTime", "Date", "Instant", "Period"),
    Kind.BIRTHDATE: ("Date",),
    Kind.REFERENCE: ("Reference",),
    Kind.QUANTITY: ("Quantity", "Money"),
}


def _fields(model: Any) -> dict[str, Any]:
    return {field.alias or name: field for name, field in model.model_fields.items()}


def _complex_types(annotation: Any) -> list[str]:
    """Complex element types in an annotation such as Optional[List[abc.ReferenceType]]."""
    return re.findall(r"abc\.(\w+)Type\b", str(annotation))


def resolve(rtype: str, path: str) -> str | None:
    """The annotation text of the element a dotted path names, or None if a step is unknown."""
    model = get_fhir_model_class(rtype)
    steps = path.split(".")
    for i, step in enumerate(steps):
        field = _fields(model).get(step)
        if field is None:
            return None
        if i == len(steps) - 1:
            return str(field.annotation)
        names = _complex_types(field.annotation)
        if not names:
            return None
        model = get_fhir_model_class(names[0])
    return None


PATHS = sorted(
    {
        (rtype, sp.name, sp.kind, path)
        for rtype, t in SEARCH_PARAMS.items()
        for sp in t
        for path in sp.paths
    }
)


@pytest.mark.parametrize(("rtype", "name", "kind", "path"), PATHS)
def test_every_path_names_a_real_element(rtype: str, name: str, kind: Kind, path: str) -> None:
    annotation = resolve(rtype, path)
    assert annotation is not None, f"{rtype}.{path} (search parameter {name}) is not an element"
    assert any(t in annotation for t in LEAF_TYPES[kind]), (rtype, name, path, annotation)


def test_the_check_can_fail() -> None:
    assert resolve("Observation", "valueQuantity") is not None
    assert resolve("Observation", "valueQuantty") is None
    assert resolve("Encounter", "participant.individual") is not None
    assert resolve("Encounter", "participant.actor") is None
    assert resolve("Patient", "name.family.x") is None


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [("5.4", 5.35, 5.45), ("100", 99.5, 100.5), ("0.001", 0.0005, 0.0015), ("-2", -2.5, -1.5)],
)
def test_implicit_precision(text: str, low: float, high: float) -> None:
    number = parse_number(text)
    assert number is not None
    bounds = implicit_range(number)
    assert (bounds.low, bounds.high) == pytest.approx((low, high))


def test_quantity_queries() -> None:
    query = parse_query("ge5.4|http://unitsofmeasure.org|mg")
    assert (query.prefix, query.system, query.code) == ("ge", "http://unitsofmeasure.org", "mg")
    assert parse_query("5.4||mg").system is None
    assert parse_query("5.4").code is None
    for bad in (
        "five",
        "5.4|mg",
        "zz5",
        "5.4|a|b|c",
        "",
        "1e",
        "nan",
        "1e999999",
        "1e-99999999999",
    ):
        with pytest.raises(ValueError, match="number"):
            parse_query(bad)


def test_sortable_includes_and_revincludes_come_from_the_table() -> None:
    assert "date" in sortable("Observation")
    assert "value-quantity" in sortable("Observation")
    assert "name" not in sortable("Patient")
    assert "birthdate" not in sortable("Patient")
    assert "Observation:patient" in includes("Observation")
    assert "Observation:subject" in revincludes("Patient")
    assert "Observation:encounter" not in revincludes("Patient")

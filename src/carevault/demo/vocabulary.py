"""What the demo generator draws from: made-up names and places, a few codes, note phrasing.

Names are at least five letters long and unlike common words, so a byte scan of the
data folder for them cannot match by accident.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
CLIA_SYSTEM = "urn:oid:2.16.840.1.113883.4.7"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
NOTE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"

GIVEN_FEMALE = (
    "Adaeze", "Beatriz", "Camille", "Delphine", "Esperanza", "Fiona", "Gabriela", "Harriet",
    "Imogen", "Josefina", "Katarina", "Leilani", "Marisol", "Noemi", "Ottilie", "Priyanka",
    "Rosalind", "Saoirse", "Tatiana", "Ursula", "Valentina", "Winifred", "Ximena", "Yolanda",
    "Zainab", "Annika", "Bronwyn", "Consuelo", "Dagny", "Eloise", "Farida", "Giselle",
    "Hyacinth", "Ingrid", "Jovana", "Kalinda", "Lucinda", "Mireille", "Nadira", "Odalys",
    "Philippa", "Renata", "Svetlana", "Thandiwe", "Vivienne",
)  # fmt: skip
GIVEN_MALE = (
    "Abelardo", "Barnaby", "Cormac", "Desmond", "Emeka", "Fabian", "Gideon", "Horatio",
    "Ignatius", "Jaroslav", "Kwabena", "Leopold", "Mateus", "Nikolai", "Octavio", "Percival",
    "Quentin", "Rafferty", "Soren", "Thaddeus", "Ulrich", "Vikram", "Wendell", "Xavier",
    "Yusuf", "Zebulon", "Anselm", "Casimir", "Dashiell", "Evander", "Florian", "Gustavo",
    "Hamish", "Ishaan", "Joaquin", "Lorcan", "Malachi", "Nnamdi", "Oswin", "Lysander",
    "Rowland", "Stellan", "Tobias", "Valerio",
)  # fmt: skip
FAMILY = (
    "Abernathy", "Balogun", "Castellanos", "Dimitriou", "Eriksson", "Fairweather",
    "Gallagher", "Hakimi", "Ishikawa", "Jablonski", "Kowalczyk", "Lindqvist", "Mbeki",
    "Nakashima", "Okonkwo", "Pellegrino", "Quintanilla", "Rasmussen", "Szymanski",
    "Thistlewood", "Umberger", "Valderrama", "Whitcombe", "Yamamoto", "Zielinski",
    "Achterberg", "Bianchini", "Chakraborty", "Delacroix", "Esposito", "Fitzgerald",
    "Grabowski", "Hernandez", "Iwasaki", "Jankowski", "Kapoor", "Lombardi", "Marchetti",
    "Nwachukwu", "Oyelaran", "Petrakis", "Rosenthal", "Sandoval", "Takahashi", "Underhill",
    "Vasquez", "Wojcik", "Yilmaz", "Zamora",
)  # fmt: skip
STREETS = (
    "Maple", "Lantern", "Juniper", "Harbor", "Orchard", "Willow", "Chestnut", "Beacon",
    "Larkspur", "Quarry", "Foxglove", "Millbrook", "Sycamore", "Tamarack", "Heron", "Bramble",
)  # fmt: skip
STREET_KINDS = ("Street", "Avenue", "Road", "Lane", "Court", "Drive", "Terrace")
CITIES = (  # city, state, ZIP prefix, area code
    ("Springfield", "MA", "011", "413"), ("Worcester", "MA", "016", "508"),
    ("Lowell", "MA", "018", "978"), ("Hartford", "CT", "061", "860"),
    ("Providence", "RI", "029", "401"), ("Burlington", "VT", "054", "802"),
    ("Portland", "ME", "041", "207"), ("Nashua", "NH", "030", "603"),
    ("Albany", "NY", "122", "518"),
)  # fmt: skip
EMAIL_DOMAINS = ("example.org", "example.net", "example.com")

PRACTICE_VISITS = (
    ("185349003", "Encounter for check up"),
    ("185345009", "Encounter for symptom"),
    ("390906007", "Follow-up encounter"),
)
LAB_VISITS = (("108252007", "Laboratory procedure"), ("396550006", "Blood test"))

DIABETES, HYPERTENSION, HYPERLIPIDEMIA, OBESITY = "44054006", "38341003", "55822004", "414916001"
CONDITIONS = (  # SNOMED code, display, chronic, youngest age it is given at
    (DIABETES, "Diabetes mellitus type 2", True, 25),
    (HYPERTENSION, "Hypertensive disorder", True, 25),
    (HYPERLIPIDEMIA, "Hyperlipidemia", True, 25),
    ("195967001", "Asthma", True, 3),
    (OBESITY, "Obesity", True, 6),
    ("35489007", "Depressive disorder", True, 14),
    ("197480006", "Anxiety disorder", True, 10),
    ("40930008", "Hypothyroidism", True, 18),
    ("396275006", "Osteoarthritis", True, 45),
    ("49436004", "Atrial fibrillation", True, 55),
    ("13645005", "Chronic obstructive lung disease", True, 45),
    ("37796009", "Migraine", True, 10),
)
ACUTE_CONDITIONS = (
    ("444814009", "Viral sinusitis", False, 0),
    ("10509002", "Acute bronchitis", False, 0),
    ("65363002", "Otitis media", False, 0),
    ("68566005", "Urinary tract infectious disease", False, 0),
    ("43878008", "Streptococcal sore throat", False, 0),
)


@dataclass(frozen=True)
class Measure:
    label: str
    loinc: str
    display: str
    ucum: str
    shown_unit: str
    laboratory: bool = False


HEART_RATE = Measure("HR", "8867-4", "Heart rate", "/min", "/min")
SYSTOLIC = Measure("BP systolic", "8480-6", "Systolic blood pressure", "mm[Hg]", "mmHg")
DIASTOLIC = Measure("BP diastolic", "8462-4", "Diastolic blood pressure", "mm[Hg]", "mmHg")
WEIGHT = Measure("weight", "29463-7", "Body weight", "kg", "kg")
HBA1C = Measure("HbA1c", "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", "%", True)
GLUCOSE = Measure("glucose", "2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL",
                  "mg/dL", True)  # fmt: skip
CHOLESTEROL = Measure(
    "total cholesterol", "2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL",
    "mg/dL", True,
)  # fmt: skip
HEMOGLOBIN = Measure("hemoglobin", "718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", "g/dL",
                     True)  # fmt: skip


def measurements(
    rng: random.Random, age: int, diagnosed: set[str], *, lab: bool
) -> list[tuple[Measure, float]]:
    """Plausible results for one visit: vital signs at the practice, a panel at the lab."""
    diabetic = DIABETES in diagnosed
    found: list[tuple[Measure, float]] = []
    if lab:
        found.append((HEMOGLOBIN, round(rng.uniform(11.5, 16.5), 1)))
        found.append((GLUCOSE, rng.randrange(130, 221) if diabetic else rng.randrange(72, 106)))
        if age >= 18:
            found.append((HBA1C, round(rng.uniform(6.5, 9.6) if diabetic else
                                       rng.uniform(4.8, 5.9), 1)))  # fmt: skip
            high = HYPERLIPIDEMIA in diagnosed
            found.append(
                (CHOLESTEROL, rng.randrange(220, 291) if high else rng.randrange(140, 211))
            )
        return found
    found.append((HEART_RATE, _heart_rate(rng, age)))
    if age >= 3:  # blood pressure is not routine in infants
        systolic = _systolic(rng, age, HYPERTENSION in diagnosed)
        found.append((SYSTOLIC, systolic))
        found.append((DIASTOLIC, round(systolic * rng.uniform(0.58, 0.68))))
    found.append((WEIGHT, _weight(rng, age, OBESITY in diagnosed)))
    if age >= 18 and (diabetic or rng.random() < 0.25):
        found.append((HBA1C, round(rng.uniform(6.5, 9.6) if diabetic else
                                   rng.uniform(4.8, 5.9), 1)))  # fmt: skip
    return found


def _heart_rate(rng: random.Random, age: int) -> int:
    low, high = (
        (110, 150) if age < 1 else (85, 120) if age < 6 else (70, 110) if age < 13 else (55, 95)
    )
    return rng.randrange(low, high + 1)


def _systolic(rng: random.Random, age: int, hypertensive: bool) -> int:
    if age < 13:
        return rng.randrange(90, 111)
    if age < 18:
        return rng.randrange(100, 121)
    return rng.randrange(135, 166) if hypertensive else rng.randrange(105, 133)


def _weight(rng: random.Random, age: int, obese: bool) -> float:
    if age < 1:
        return round(rng.uniform(4.0, 10.0), 1)
    if age < 13:
        typical = 8.0 + 3.0 * age
        return round(rng.uniform(typical * 0.85, typical * (1.4 if obese else 1.15)), 1)
    if age < 18:
        return round(rng.uniform(45.0, 95.0 if obese else 75.0), 1)
    return round(rng.uniform(95.0, 140.0) if obese else rng.uniform(52.0, 98.0), 1)


COMPLAINTS = (
    "Reports feeling well overall.",
    "Reports intermittent fatigue over the past month.",
    "Notes better sleep since the last visit.",
    "Describes a mild cough for one week, no fever.",
    "Reports occasional headaches, relieved by rest.",
    "Denies chest pain or shortness of breath.",
)
PLANS = (
    "Continue current medications",
    "Counselling on diet and physical activity given",
    "HbA1c and lipid panel ordered",
    "Home blood pressure log requested",
    "Supportive care: fluids and rest",
    "Physical therapy referral discussed",
)
LAB_COMMENTS = (
    "Specimen received in good condition; no interference noted.",
    "Results reviewed and released to the ordering clinician.",
    "Fasting status confirmed at collection.",
)


class Person(Protocol):
    @property
    def family(self) -> str: ...
    @property
    def given(self) -> tuple[str, ...]: ...
    @property
    def mrn(self) -> str: ...


def note_text(
    rng: random.Random,
    title: str,
    who: Person,
    when: datetime,
    age: int,
    gender: str,
    clinician: str,
    findings: Sequence[str],
    diagnoses: Sequence[str],
) -> str:
    """A short clinical note in plain text, as a clinician would write it about this visit."""
    name = " ".join((*who.given, who.family))
    header = [f"{title}, {when:%Y-%m-%d %H:%M}",
              f"Patient: {name} (MRN {who.mrn}), {_describe(age, gender)}"]  # fmt: skip
    results = "; ".join(findings) or "none recorded"
    assessment = ", ".join(diagnoses) or "no new diagnosis"
    if title == "Laboratory report":
        body = [f"Reviewed by: {clinician}", f"Results: {results}.",
                f"Clinical information: {assessment}.", rng.choice(LAB_COMMENTS)]  # fmt: skip
    else:
        body = [
            f"Clinician: {clinician}",
            f"Subjective: {who.given[0]} {who.family} presents today. {rng.choice(COMPLAINTS)}",
            f"Objective: {results}.",
            f"Assessment: {assessment}.",
            f"Plan: {rng.choice(PLANS)}. Return in {rng.choice((2, 4, 6, 12))} weeks, "
            "sooner if symptoms worsen.",
        ]
    return "\n".join([*header, "", *body]) + "\n"


def _describe(age: int, gender: str) -> str:
    if age < 1:
        return "infant"
    child = age < 18
    noun = {"female": "girl" if child else "woman", "male": "boy" if child else "man"}.get(
        gender, "child" if child else "adult"
    )
    return f"{age}-year-old {noun}"


RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
APPOINTMENT_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0276"

TREATMENTS = {  # chronic condition → (RxNorm code, display, dosage text)
    DIABETES: ("860975", "Metformin 500 MG Oral Tablet", "500 mg twice daily with meals"),
    HYPERTENSION: ("314076", "Lisinopril 10 MG Oral Tablet", "10 mg once daily"),
    HYPERLIPIDEMIA: ("617312", "Atorvastatin 20 MG Oral Tablet", "20 mg once daily at night"),
    "195967001": ("745679", "Albuterol 0.09 MG/ACTUAT Inhaler", "2 puffs every 4-6 h as needed"),
    "40930008": ("966247", "Levothyroxine 0.05 MG Oral Tablet", "50 mcg once daily"),
}
ALLERGIES = (  # SNOMED code, display, category, criticality
    ("91936005", "Allergy to penicillin", "medication", "high"),
    ("300913006", "Shellfish allergy", "food", "high"),
    ("418689008", "Allergy to grass pollen", "environment", "low"),
    ("232347008", "Dander (animal) allergy", "environment", "low"),
)
VACCINES = (  # CVX code, display
    ("140", "Influenza, seasonal, injectable, preservative free"),
    ("208", "SARS-COV-2 (COVID-19) vaccine, mRNA, 30 mcg/0.3mL dose"),
    ("115", "Tdap"),
)

"""Unit tests of de-identification (FHIR, free text, DICOM)."""

"""The FHIR store: encrypted versions, search index, validation. Reached only through privacy/."""

"""Reading and writing FHIR files (NDJSON, Bundles): formats only, no records and no keys."""

"""HTTP faces: the FHIR API (and later the portals and admin API). No domain logic here."""

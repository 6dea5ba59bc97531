"""De-identification: Safe Harbor for FHIR resources, free text and DICOM."""

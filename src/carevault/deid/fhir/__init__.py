"""Safe Harbor and limited data sets on FHIR resources: profiles of rules (data) applied by
one engine, a residual scan as proof, and the `carevault deid export` job."""

"""The gate: the one door to PHI. See README.md in this folder for the flow."""

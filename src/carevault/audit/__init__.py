"""The hash-chained audit trail: one chain per tenant, one for vendor-level events."""

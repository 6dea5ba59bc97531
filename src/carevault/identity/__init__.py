"""Tenants, users, roles, permissions, purposes of use and bearer tokens."""

"""Oversight: the snooping sentinel, restricted records and the privacy officer's alerts.

The sentinel reads the audit chain after the fact, so the gate's read path pays nothing.
"""

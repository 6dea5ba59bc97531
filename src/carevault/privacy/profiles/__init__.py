"""Minimum-necessary (and, with the consent issue, purpose-of-disclosure) profiles: data."""

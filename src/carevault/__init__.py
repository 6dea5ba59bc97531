"""CareVault: a health-records service where every privacy promise is code."""

__version__ = "0.1.0"

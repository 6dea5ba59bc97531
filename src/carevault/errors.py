"""Errors every domain raises and every face maps: HTTP status, FHIR issue code, safe message.

Messages name elements and parameters, never values: they may be shown to the caller and
logged, so they must not carry PHI.
"""

from __future__ import annotations


class CareVaultError(Exception):
    status = 400
    code = "invalid"  # FHIR IssueType

    def __init__(self, message: str, *, issues: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.issues = issues or []
        """(expression, message) pairs, e.g. ("Patient.birthDate", "invalid date")."""


class Invalid(CareVaultError):
    status, code = 400, "invalid"


class Unprocessable(CareVaultError):
    status, code = 422, "invalid"


class Unauthorized(CareVaultError):
    status, code = 401, "login"


class Forbidden(CareVaultError):
    status, code = 403, "forbidden"


class NotFound(CareVaultError):
    status, code = 404, "not-found"


class Gone(CareVaultError):
    status, code = 410, "deleted"


class Conflict(CareVaultError):
    status, code = 409, "conflict"


class PreconditionFailed(CareVaultError):
    status, code = 412, "conflict"


class UnsupportedMediaType(CareVaultError):
    status, code = 415, "not-supported"


class NotAcceptable(CareVaultError):
    status, code = 406, "not-supported"


class TooLarge(CareVaultError):
    status, code = 413, "too-costly"

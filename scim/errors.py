"""SCIM errors: raised by services and views, answered in the RFC 7644 §3.12 error schema."""

from __future__ import annotations

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    """A refusal answered as a SCIM error with ``status`` and, where RFC 7644 names one, a
    ``scim_type`` (``uniqueness``, ``invalidFilter``, ``invalidValue``, ``noTarget``,
    ``invalidSyntax``, ``invalidPath``, ``mutability``)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        scim_type: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = headers or {}

    def body(self) -> dict[str, str | list[str]]:
        body: dict[str, str | list[str]] = {
            "schemas": [ERROR_SCHEMA],
            "status": str(self.status),
            "detail": self.detail,
        }
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


def not_found(kind: str, resource_id: str) -> ScimError:
    return ScimError(404, f"{kind} {resource_id!r} not found.")


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, scim_type="invalidValue")


def invalid_syntax(detail: str) -> ScimError:
    return ScimError(400, detail, scim_type="invalidSyntax")


def invalid_path(detail: str) -> ScimError:
    return ScimError(400, detail, scim_type="invalidPath")


def uniqueness(detail: str) -> ScimError:
    return ScimError(409, detail, scim_type="uniqueness")

"""Errors the service layer raises; views turn them into 4xx JSON or form messages."""
from __future__ import annotations


class ServiceError(Exception):
    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if status_code is not None:
            self.status_code = status_code

    def to_dict(self) -> dict:
        data: dict = {"error": self.message}
        if self.field:
            data["field"] = self.field
        return data


class ValidationError(ServiceError):
    status_code = 400


class NotFoundError(ServiceError):
    status_code = 404


class ConflictError(ServiceError):
    status_code = 409

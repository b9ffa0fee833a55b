"""Error pages and JSON errors: a user never sees a traceback, an API client always gets JSON."""
from __future__ import annotations

from flask import jsonify, request
from werkzeug.exceptions import HTTPException


class APIError(Exception):
    """A client error with a message, returned as JSON ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400, **extra):
        super().__init__(message)
        self.message = message
        self.status = status
        self.extra = extra


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/open311/"))


def register(app) -> None:
    @app.errorhandler(APIError)
    def _api_error(e: APIError):
        return jsonify({"error": e.message, **e.extra}), e.status

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        if _wants_json():
            return jsonify({"error": e.description or e.name}), e.code
        return e

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        app.logger.exception("unhandled error on %s", request.path)
        if _wants_json():
            return jsonify({"error": "internal error; it has been logged"}), 500
        return "服务器内部错误，已记录。Internal error; it has been logged.", 500

"""Error pages and JSON errors: a user never sees a traceback, an API client always gets JSON."""
from __future__ import annotations

from flask import current_app, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge


class APIError(Exception):
    """A client error with a message, returned as JSON ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400, **extra):
        super().__init__(message)
        self.message = message
        self.status = status
        self.extra = extra


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/open311/"))


def body_limit() -> int:
    """The largest body this request may send (JSON bodies have the smaller limit)."""
    return int(request.max_content_length or current_app.config["MAX_CONTENT_LENGTH"])


def too_large_message() -> str:
    limit = body_limit()
    which = "GRIDMAP_MAX_JSON_BYTES" if limit == current_app.config.get("GRIDMAP_MAX_JSON_BYTES") \
        else "GRIDMAP_MAX_REQUEST_BYTES"
    return f"the request body is larger than {limit // 1024:,} KB ({which}): send less, or a smaller photo"


def register(app) -> None:
    """Error answers and the request-size limits: ``MAX_CONTENT_LENGTH`` (every endpoint) from
    ``GRIDMAP_MAX_REQUEST_BYTES``, and a JSON body (anything but a form or an upload) at most
    ``GRIDMAP_MAX_JSON_BYTES``; a larger body is a 413 that says the limit, before it is read."""
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default is None: no limit at all
        app.config["MAX_CONTENT_LENGTH"] = int(app.config.get("GRIDMAP_MAX_REQUEST_BYTES") or 12 * 1024 * 1024)
    json_limit = int(app.config.get("GRIDMAP_MAX_JSON_BYTES") or 4 * 1024 * 1024)

    @app.before_request
    def _json_limit():
        if request.mimetype not in ("multipart/form-data", "application/x-www-form-urlencoded"):
            request.max_content_length = min(json_limit, int(app.config["MAX_CONTENT_LENGTH"]))
        if request.content_length is not None and request.content_length > body_limit():
            raise RequestEntityTooLarge()

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(e):
        if _wants_json():
            return jsonify({"error": too_large_message(), "limit_bytes": body_limit()}), 413
        from flask import render_template

        from gridmap.web.i18n import gettext as _

        return render_template("error.html", title=_("请求过大（413）"),
                               message=_("上传的内容超过 {kb} KB 的上限。", kb=f"{body_limit() // 1024:,}"),
                               code=413), 413

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

"""gridmap: geospatial grid management (网格化管理) for community governance.

Owns: the Flask application factory. It reads the config, opens the database (PostGIS or the
embedded SpatiaLite file), registers one blueprint per domain and the CLI groups.
"""
from __future__ import annotations

import os

from flask import Flask, g

__version__ = "0.1.0"


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    from gridmap.config import load_config

    instance = (config or {}).get("INSTANCE_PATH") or os.environ.get("GRIDMAP_INSTANCE_PATH") or app.instance_path
    app.instance_path = os.path.abspath(instance)
    app.config.update(load_config(app.instance_path, config))
    from gridmap.web.jsonbody import CheckedJSONProvider
    from gridmap.web.params import install_converters

    app.json = CheckedJSONProvider(app)  # every request body's JSON is checked (depth, ids, surrogates)
    install_converters(app)  # before any route: <int:…> is ASCII digits up to MAX_ID

    from gridmap.db import make_engine, make_sessionmaker

    engine = make_engine(app.config["GRIDMAP_DATABASE_URL"])
    app.extensions["gridmap.engine"] = engine
    app.extensions["gridmap.sessionmaker"] = make_sessionmaker(engine)

    @app.teardown_appcontext
    def _close_session(_exc):
        s = g.pop("db_session", None)
        if s is not None:
            s.close()

    from gridmap.web import errors, pages
    from gridmap.web.analysis_api import bp as analysis_bp
    from gridmap.web.api import bp as api_bp
    from gridmap.web.boundaries_api import bp as boundaries_bp
    from gridmap.web.cases_api import bp as cases_bp
    from gridmap.web.fieldwork_api import bp as fieldwork_bp
    from gridmap.web.geo_api import bp as geo_bp
    from gridmap.web.hazards_api import bp as hazards_bp
    from gridmap.web.metrics_api import bp as metrics_bp
    from gridmap.web.open311 import bp as open311_bp
    from gridmap.web.registry_api import bp as registry_bp

    for bp in (api_bp, cases_bp, metrics_bp, open311_bp, geo_bp, boundaries_bp, hazards_bp, analysis_bp,
               registry_bp, fieldwork_bp):
        app.register_blueprint(bp)
    errors.register(app)
    pages.init_web(app)  # pages, CSRF, i18n, cookie settings: after every API blueprint
    from gridmap.web import compress, headers

    headers.register(app)  # CSP, nosniff, frame-ancestors, no-store on every response

    compress.register(app)

    from gridmap.cli import register_commands

    register_commands(app)
    return app


def get_session():
    """The request's (or CLI command's) database session, closed when the app context ends."""
    from flask import current_app

    if "db_session" not in g:
        g.db_session = current_app.extensions["gridmap.sessionmaker"]()
    return g.db_session


def get_engine():
    from flask import current_app

    return current_app.extensions["gridmap.engine"]

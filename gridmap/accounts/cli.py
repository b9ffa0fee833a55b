"""`gridmap users …` and `gridmap tokens …`: thin commands over gridmap.accounts.service."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from gridmap.accounts.models import ROLES


@click.group("users", help="User accounts (roles: " + ", ".join(ROLES) + ").")
def users_group():
    pass


@users_group.command("create", help="Create a user. Without --password one is generated and printed.")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--area", "area_code", help="Code of the community/street/district the user belongs to.")
@click.option("--worker", "worker_code", help="Code of the worker this user is (role worker).")
@click.option("--department", "department_code", help="Code of the department (role department).")
@click.option("--password", help="Password (at least 8 characters). Prefer the prompt or GRIDMAP_NEW_PASSWORD.",
              envvar="GRIDMAP_NEW_PASSWORD")
@click.option("--display-name")
@click.option("--language", default="zh_CN", type=click.Choice(["zh_CN", "en"]), show_default=True)
@with_appcontext
def users_create(name, role, area_code, worker_code, department_code, password, display_name, language):
    import secrets

    from gridmap.accounts.service import AccountError, create_user
    from gridmap.db import transaction

    generated = None
    if not password:
        generated = password = secrets.token_urlsafe(12)
    try:
        with transaction(current_app.extensions["gridmap.sessionmaker"]) as s:
            u = create_user(s, name, role, password=password, area_code=area_code, worker_code=worker_code,
                            department_code=department_code, display_name=display_name, language=language)
            uid = u.id
    except AccountError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"created user {name} (id {uid}, role {role})")
    if generated:
        click.echo(f"password: {generated}")


@users_group.command("list")
@with_appcontext
def users_list():
    from sqlalchemy import select

    from gridmap.accounts.models import User
    from gridmap.boundaries.models import Area

    with current_app.extensions["gridmap.sessionmaker"]() as s:
        for u, code in s.execute(select(User, Area.code).outerjoin(Area, Area.id == User.area_id).order_by(User.username)):
            click.echo(f"{u.username}\t{u.role}\t{code or '-'}\t{'active' if u.active else 'disabled'}")


@click.group("tokens", help="API tokens (send as 'Authorization: Bearer <token>').")
def tokens_group():
    pass


@tokens_group.command("create", help="Create an API token for user NAME; the token is printed on the last line.")
@click.argument("name")
@click.option("--label", help="What the token is for.")
@with_appcontext
def tokens_create(name, label):
    from gridmap.accounts.service import AccountError, create_token
    from gridmap.db import transaction

    try:
        with transaction(current_app.extensions["gridmap.sessionmaker"]) as s:
            token = create_token(s, name, label)
    except AccountError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"token for {name} (shown once; only its hash is stored):")
    click.echo(token)

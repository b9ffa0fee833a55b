"""`gridmap users …` and `gridmap tokens …`: thin commands over gridmap.accounts.service.

users create | list | disable | enable | passwd; tokens create (--days) | list | revoke. Every
change is audited under the operator's login name (``cli:<name>``).
"""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from gridmap.accounts.models import ROLES
from gridmap.cliutil import operator_name


def _run(fn, *args, **kw):
    """Run an accounts service function in a transaction; AccountError → a one-line message."""
    from gridmap.accounts.service import AccountError
    from gridmap.db import transaction

    try:
        with transaction(current_app.extensions["gridmap.sessionmaker"]) as s:
            return fn(s, *args, **kw)
    except AccountError as e:
        raise click.ClickException(str(e)) from None


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
                            department_code=department_code, display_name=display_name, language=language,
                            operator=operator_name())
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


@users_group.command("disable", help="Disable user NAME: their sessions end, their logins and tokens are refused.")
@click.argument("name")
@with_appcontext
def users_disable(name):
    from gridmap.accounts.service import set_active

    _run(set_active, name, False, operator=operator_name())
    click.echo(f"user {name} disabled")


@users_group.command("enable", help="Enable user NAME again.")
@click.argument("name")
@with_appcontext
def users_enable(name):
    from gridmap.accounts.service import set_active

    _run(set_active, name, True, operator=operator_name())
    click.echo(f"user {name} enabled")


@users_group.command("passwd", help="Give user NAME a new password (asked twice, or GRIDMAP_NEW_PASSWORD, or "
                                    "--generate). Every session of theirs ends.")
@click.argument("name")
@click.option("--generate", is_flag=True, help="Generate a password and print it.")
@click.password_option("--password", envvar="GRIDMAP_NEW_PASSWORD", prompt_required=False,
                       help="The new password (at least 8 characters); prompted for when missing.")
@with_appcontext
def users_passwd(name, generate, password):
    import secrets

    from gridmap.accounts.service import set_password

    if generate:
        password = secrets.token_urlsafe(12)
    elif not password:
        password = click.prompt("new password", hide_input=True, confirmation_prompt=True)
    _run(set_password, name, password, operator=operator_name())
    click.echo(f"password of {name} changed; their sessions ended")
    if generate:
        click.echo(f"password: {password}")


@click.group("tokens", help="API tokens (send as 'Authorization: Bearer <token>').")
def tokens_group():
    pass


@tokens_group.command("create", help="Create an API token for user NAME; the token is printed on the last line.")
@click.argument("name")
@click.option("--label", help="What the token is for.")
@click.option("--days", type=click.IntRange(1, 3650), default=90, show_default=True,
              help="Days until the token expires (an expired token answers 401).")
@with_appcontext
def tokens_create(name, label, days):
    from gridmap.accounts.service import create_token

    token = _run(create_token, name, label, days=days, operator=operator_name())
    click.echo(f"token for {name}, valid {days} days (shown once; only its hash is stored):")
    click.echo(token)


@tokens_group.command("list", help="List API tokens (never their values): id, user, label, created, last used, "
                                   "expires, status.")
@click.option("--user", "username", help="Only the tokens of this user.")
@click.option("--all", "include_ended", is_flag=True, help="Also revoked and expired tokens.")
@with_appcontext
def tokens_list(username, include_ended):
    from gridmap.accounts.service import list_tokens

    def day(t):
        return t.strftime("%Y-%m-%d %H:%M") if t else "-"

    rows = _run(list_tokens, username, include_ended=include_ended)
    click.echo("id\tuser\tlabel\tcreated\tlast used\texpires\tstatus")
    for t in rows:
        click.echo(f"{t.id}\t{t.username}\t{t.label or '-'}\t{day(t.created_at)}\t{day(t.last_used_at)}\t"
                   f"{day(t.expires_at)}\t{t.status}")


@tokens_group.command("revoke", help="Revoke the token with this id (see `gridmap tokens list`); it answers 401 "
                                     "from now on.")
@click.argument("token_id", type=click.IntRange(1, 2**31 - 1))
@with_appcontext
def tokens_revoke(token_id):
    from gridmap.accounts.service import revoke_token

    row = _run(revoke_token, token_id, operator=operator_name())
    click.echo(f"token {token_id} of user id {row.user_id} revoked")

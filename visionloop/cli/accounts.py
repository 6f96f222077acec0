"""``visionloop user`` and ``visionloop reviewer``: the accounts of the people who use the web pages."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from visionloop.cli.app import Context, cli, console, emit, pass_ctx
from visionloop.core.accounts import Accounts


@cli.group()
def user() -> None:
    """Accounts of the people who use the web pages: operators (the console at /console/ and the review
    pages) and reviewers (the review pages at /review/ only)."""


@cli.group()
def reviewer() -> None:
    """Accounts of the people who answer human-review items in the browser (/review/); the same accounts
    as `visionloop user` (add --role operator for the web console)."""


def _accounts(ctx: Context) -> Accounts:
    from visionloop.bootstrap import build_accounts

    return build_accounts(ctx.services, ctx.settings)


def _read_password(password_stdin: bool) -> str:
    """From standard input (its first line) or an interactive prompt typed twice; checked for length."""
    from visionloop.core.accounts import check_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return check_password(password)


ROLE_CHOICE = click.Choice(["operator", "reviewer"], case_sensitive=False)
SIGN_IN_AT = {"operator": "/console/", "reviewer": "/review/"}


@click.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=ROLE_CHOICE,
    default="reviewer",
    show_default=True,
    help="operator: the web console and the review pages; reviewer: the review pages only.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_ctx
def account_add(ctx: Context, name: str, role: str, password_stdin: bool) -> None:
    """Create an account (asks for the password twice)."""
    from visionloop.core.accounts import add_reviewer, check_name

    accounts = _accounts(ctx)
    check_name(name)  # before asking for a password
    r = add_reviewer(accounts, name, _read_password(password_stdin), role)
    console.print(f"created {r.role.value} [bold]{r.name}[/]: they sign in at {SIGN_IN_AT[r.role.value]}")


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def account_list(ctx: Context, as_json: bool) -> None:
    """List the accounts with their roles."""
    from visionloop.core.accounts import list_reviewers

    items = list_reviewers(_accounts(ctx))
    data = [
        {
            "name": r.name,
            "role": r.role.value,
            "created_at": r.created_at.isoformat(),
            "password_changed_at": r.password_changed_at.isoformat(),
        }
        for r in items
    ]

    def render() -> None:
        table = Table("name", "role", "created", "password changed")
        for r in items:
            table.add_row(
                r.name,
                r.role.value,
                r.created_at.strftime("%Y-%m-%d %H:%M"),
                r.password_changed_at.strftime("%Y-%m-%d %H:%M"),
            )
        console.print(table)

    emit(data, as_json, render)


@click.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def account_remove(ctx: Context, name: str, yes: bool) -> None:
    """Remove an account; its signed-in sessions end at once."""
    from visionloop.core.accounts import normalize_name, remove_reviewer

    accounts = _accounts(ctx)
    found = accounts.store.get_reviewer(normalize_name(name))
    if not yes and not click.confirm(f"Remove {found.role.value} {found.name!r}?", default=False):
        raise click.Abort()
    r = remove_reviewer(accounts, name)
    console.print(f"removed {found.role.value} {r.name}")


@click.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@pass_ctx
def account_passwd(ctx: Context, name: str, password_stdin: bool) -> None:
    """Set an account's password; its signed-in sessions end."""
    from visionloop.core.accounts import change_password, normalize_name

    accounts = _accounts(ctx)
    accounts.store.get_reviewer(normalize_name(name))  # before asking for a password
    r = change_password(accounts, name, _read_password(password_stdin))
    console.print(f"changed the password of {r.name}; their sessions have ended")


@user.command("role")
@click.argument("name")
@click.argument("role", type=ROLE_CHOICE)
@pass_ctx
def user_role(ctx: Context, name: str, role: str) -> None:
    """Make an account an operator or a reviewer (its sessions carry the new role at once)."""
    from visionloop.core.accounts import set_role

    r = set_role(_accounts(ctx), name, role)
    console.print(f"{r.name} is now {'an' if r.role.value == 'operator' else 'a'} {r.role.value}")


for _group in (user, reviewer):  # the same commands under both names
    for _command in (account_add, account_list, account_passwd, account_remove):
        _group.add_command(_command)

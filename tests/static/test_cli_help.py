"""Every operator command and option has help text (the app built with its dev defaults: no service needed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click
import pytest

from coupon import create_app


@pytest.fixture(scope="module")
def app() -> Iterator[Any]:
    application = create_app({"APP_ENV": "test"})
    with application.app_context():
        yield application


FLASK_BUILTINS = {"run", "shell", "routes", "db"}


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    out = []
    for name, command in group.commands.items():
        if not prefix and name in FLASK_BUILTINS:
            continue
        out.append(((*prefix, name), command))
        if isinstance(command, click.Group):
            out.extend(_commands(command, (*prefix, name)))
    return out


def test_every_command_has_help_text(app: Any) -> None:
    commands = _commands(app.cli)
    names = {" ".join(path) for path, _ in commands}
    assert names >= {
        "create-admin",
        "create-coupon",
        "seed",
        "mint-users",
        "rebuild-gate",
        "reconcile",
        "create-topics",
        "failures",
        "failures list",
        "failures counts",
        "failures retry",
        "coupons",
        "coupons list",
        "coupons disable",
        "coupons enable",
        "coupons close",
        "coupons set",
        "export-issued",
    }
    runner = app.test_cli_runner()
    for path, command in commands:
        result = runner.invoke(args=[*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        first_line = " ".join(command.help.strip().splitlines()[0].split()) if command.help else ""
        assert first_line and first_line in " ".join(result.output.split()), path
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "help":
                assert param.help, f"{' '.join(path)} {param.opts[0]} has no help text"

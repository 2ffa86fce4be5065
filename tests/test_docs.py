"""The documentation covers every command and every route (sqlite-utils checks its CLI
reference the same way): a new command or route without a word in the docs fails here."""

from __future__ import annotations

import re

import click
import pytest
from helpers import ROOT

import cli as predict_cli
import utilscli
from app import create_app

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documentation() -> str:
    """Return the README and docs/ as one text, with "a[/b]" spelled both ways."""
    text = "\n".join(path.read_text(encoding="utf-8") for path in DOCS)
    # A route written once with an optional part, `/v2/models/{name}[/versions/{version}]/ready`,
    # documents both routes.
    for written in set(re.findall(r"`([^`\s]*\[[^`\s]*\][^`\s]*)`", text)):
        text += "\n`" + re.sub(r"\[[^\]]*\]", "", written) + "`"
        text += "\n`" + re.sub(r"\[([^\]]*)\]", r"\1", written) + "`"
    return text


def command_paths(group: click.Group, prefix: str = "") -> list[str]:
    """Return every command of *group* as typed: ``models list``, ``retrain``, ..."""
    paths = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            paths += command_paths(command, f"{path} ")
        else:
            paths.append(path)
    return paths


@pytest.mark.parametrize("command", command_paths(utilscli.cli))
def test_every_utilscli_command_is_documented(command):
    assert f"utilscli.py {command}" in documentation(), f"utilscli.py {command}"


CLI_OPTIONS = [p.opts[-1] for p in predict_cli.predictcli.params if isinstance(p, click.Option)]


@pytest.mark.parametrize("option", CLI_OPTIONS)
def test_every_cli_option_is_documented(option):
    text = documentation()
    # In a table of options (`--chunk-rows N`) or on a command line of cli.py.
    assert f"`{option}" in text or re.search(rf"cli\.py[^\n]* {re.escape(option)}\b", text)


def test_every_route_is_documented(trained_model):
    app = create_app({"MODEL_PATH": str(trained_model), "TESTING": True, "ADMIN_TOKEN": "t"})
    text = documentation()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        assert f"`{path}`" in text, path

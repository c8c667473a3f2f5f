"""The short way in (``entry.py``): plain ``verify`` and ``hook`` arguments skip typer, and get
exactly what typer would have given; anything else is still typer's to parse and to refuse."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from conftest import BIN, EXAMPLES, run_cli
from shipyard import cli_verify, entry
from shipyard.cli import app


def verify_command() -> Any:
    """typer's own command (typer carries its own click): what ``shipyard verify`` parses with."""
    return typer.main.get_command(app).commands["verify"]  # type: ignore[attr-defined]


def test_the_short_way_knows_exactly_the_options_of_shipyard_verify() -> None:
    values: dict[str, str] = {}
    flags: dict[str, str] = {}
    for param in verify_command().params:
        if param.param_type_name != "option" or param.name == "help":
            continue
        assert param.name is not None and not param.multiple and not param.secondary_opts
        for opt in param.opts:
            (flags if param.is_flag else values)[opt] = param.name
    assert values == entry.VERIFY_VALUES and flags == entry.VERIFY_FLAGS


def through_typer(args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    seen: list[tuple[Any, ...]] = []

    def run(*a: Any, use_cache: bool, html: bool) -> None:
        seen.append((*a, use_cache, html))

    monkeypatch.setattr(cli_verify, "run", run)
    verify_command().main(args=args, prog_name="shipyard verify", standalone_mode=False)
    assert len(seen) == 1
    return seen[0]


def the_short_way(args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...] | None:
    body = entry.direct(["verify", *args])
    if body is None:
        return None
    seen: list[tuple[Any, ...]] = []

    def run(*a: Any, use_cache: bool, html: bool) -> None:
        seen.append((*a, use_cache, html))

    monkeypatch.setattr(cli_verify, "run", run)
    body()
    assert len(seen) == 1
    return seen[0]


PLAIN = [
    [],
    ["--json"],
    ["--no-cache", "--html", "--json", "--json"],
    ["--spec", "s.yaml", "--base", "HEAD~1"],
    ["--spec=s.yaml", "--base=main", "--format=github"],
    ["-C", "proj", "--junit", "out/checks.xml", "--progress", "p.jsonl"],
    ["--project", "a", "--project", "b", "--spec", "x.yaml", "--spec", "y.yaml"],
    ["--format", "text", "--project=sub dir"],
]


@pytest.mark.parametrize("args", PLAIN, ids=lambda a: " ".join(a) or "none")
def test_plain_arguments_get_what_typer_gives(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    short = the_short_way(args, monkeypatch)
    assert short is not None, f"{args} should take the short way"
    assert short == through_typer(args, monkeypatch)


NOT_PLAIN = [
    ["--help"],
    ["-h"],
    ["--proj", "x"],
    ["--spec"],
    ["extra"],
    ["--json=1"],
    ["-Cx"],
    ["-C=x"],
    ["--spec", "-x"],
    ["--spec="],
    ["--", "--json"],
    ["--base", "--json"],
]


@pytest.mark.parametrize("args", NOT_PLAIN, ids=lambda a: " ".join(a))
def test_anything_else_is_left_to_typer(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert the_short_way(args, monkeypatch) is None


def test_a_project_that_is_a_file_is_refused_by_typer(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert entry.plain_verify(["--project", str(tmp_path / "f")]) is None
    result = run_cli("verify", "--project", str(tmp_path / "f"), cwd=tmp_path)
    assert result.code == 2 and "is a file" in result.stderr


def test_a_hook_takes_the_short_way_only_with_one_plain_agent() -> None:
    assert entry.direct(["hook", "claude"]) is not None
    for args in (["hook"], ["hook", "--help"], ["hook", "claude", "extra"], ["hook", ""]):
        assert entry.direct(args) is None, args
    assert entry.direct(["run", "task"]) is None and entry.direct([]) is None


IMPORTED = (
    "import sys\n"
    "from shipyard.entry import main\n"
    "sys.argv = ['shipyard', *sys.argv[1:]]\n"
    "try:\n    main()\n"
    "except SystemExit as e:\n"
    "    print(json.dumps({'code': e.code, 'typer': 'typer' in sys.modules}), file=sys.stderr)\n"
)


def test_a_plain_verify_runs_without_typer_and_a_bad_option_still_gets_its_message(
    tmp_path: Path,
) -> None:
    project = tmp_path / "pycalc"
    shutil.copytree(EXAMPLES / "pycalc", project)
    code = "import json\n" + IMPORTED
    argv = [sys.executable, "-c", code, "verify", "--project", str(project), "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    last = json.loads(proc.stderr.strip().splitlines()[-1])
    assert last == {"code": 0, "typer": False}, proc.stderr
    assert json.loads(proc.stdout)["verdict"] == "passed"
    bad = subprocess.run(
        [str(BIN / "shipyard"), "verify", "--project", str(project), "--jsn"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "No such option: --jsn" in bad.stderr and not bad.stdout

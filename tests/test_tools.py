"""The agent tools: every tool's answers, confinement to the worktree, bad model input, `run`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psutil
import pytest

from conftest import Project, git
from shipyard.agents.tools import Toolbox, ToolOutcome

ALL = ["list", "read", "search", "write", "edit", "run", "submit"]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("TOPSECRET\n")
    return folder


@pytest.fixture
def root(tmp_path: Path, outside: Path) -> Path:
    """A worktree with files, skipped folders and symlinks in and out of it."""
    root = tmp_path / "wt"
    files = {
        "a.txt": "alpha\nbeta\ngamma\n",
        "src/pkg/mod.py": "def add(a, b):\n    return a - b\n",
        "src/pkg/other.py": "x = 1\n",
        "docs/deep/deeper/note.md": "TOPSECRET is not here, only its name\n",
        "node_modules/lib/index.js": "alpha\n",
        "__pycache__/mod.cpython.pyc": "alpha\n",
        ".git/config": "[core]\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "blob.bin").write_bytes(b"alpha\0\x01\x02")
    (root / "file_out").symlink_to(outside / "secret.txt")
    (root / "dir_out").symlink_to(outside)
    (root / "dangling_out").symlink_to(outside / "new.txt")
    (root / "link_in").symlink_to(root / "a.txt")
    (root / "git_link").symlink_to(root / ".git")
    return root


def call(box: Toolbox, name: str, args: object = None) -> ToolOutcome:
    outcome = box.call(name, args)  # type: ignore[arg-type]
    assert isinstance(outcome, ToolOutcome)
    assert len(outcome.text) <= box.output_cap
    return outcome


# ---- list, read, search ------------------------------------------------------------------------


def test_list_is_sorted_marks_folders_and_skips_noise(root: Path) -> None:
    out = call(Toolbox(root), "list", {})
    assert out.ok and not out.changed
    lines = out.text.splitlines()
    assert lines == [
        "a.txt",
        "blob.bin",
        "dangling_out -> (outside the worktree) (symlink)",
        "dir_out -> (outside the worktree) (symlink)",  # not followed: secret.txt is not listed
        "docs/",
        "docs/deep/",
        "file_out -> (outside the worktree) (symlink)",
        "git_link -> .git (symlink)",
        "link_in -> a.txt (symlink)",
        "src/",
        "src/pkg/",
    ]
    deep = call(Toolbox(root), "list", json.dumps({"path": "src", "depth": 5}))
    assert deep.text.splitlines() == ["src/pkg/", "src/pkg/mod.py", "src/pkg/other.py"]


def test_list_caps_entries_and_output(root: Path) -> None:
    for i in range(620):
        (root / "many" / f"f{i:04}.txt").parent.mkdir(exist_ok=True)
        (root / "many" / f"f{i:04}.txt").write_text("")
    out = call(Toolbox(root), "list", {"path": "many"})
    assert out.ok and out.text.endswith("[120 more entries left out]")
    assert out.text.count("\n") == 500
    small = call(Toolbox(root, output_cap=300), "list", {"path": "many"})
    assert small.ok and "[output cut here:" in small.text and "characters left out]" in small.text


def test_read_numbers_lines_and_ranges(root: Path) -> None:
    box = Toolbox(root)
    out = call(box, "read", {"path": "a.txt"})
    assert out.ok and out.text == "   1| alpha\n   2| beta\n   3| gamma\n[lines 1-3 of 3]"
    part = call(box, "read", {"path": "src/../a.txt", "start": 2, "end": 2})
    assert part.text == "   2| beta\n[lines 2-2 of 3]"
    assert call(box, "read", {"path": "link_in"}).text.startswith("   1| alpha")
    backwards = call(box, "read", {"path": "a.txt", "start": 3, "end": 2})
    assert not backwards.ok and backwards.text == "end=2 is before start=3"
    past = call(box, "read", {"path": "a.txt", "start": 9})
    assert not past.ok and "a.txt has 3 lines; start=9 is past the end" in past.text


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("src", "src is a folder, not a file; use list"),
        ("blob.bin", "blob.bin is a binary file"),
        ("nope.txt", "nope.txt does not exist"),
    ],
)
def test_read_refuses_folders_binaries_and_missing_files(
    root: Path, path: str, message: str
) -> None:
    out = call(Toolbox(root), "read", {"path": path})
    assert not out.ok and message in out.text


def test_read_cap_says_where_to_read_on(root: Path) -> None:
    (root / "long.txt").write_text("".join(f"line {i}\n" for i in range(1, 1001)))
    box = Toolbox(root, output_cap=400)
    out = call(box, "read", {"path": "long.txt"})
    assert out.ok and "   1| line 1\n" in out.text
    cut = int(out.text.rsplit("start=", 1)[1].rstrip("]"))
    assert f"[output cut before line {cut} of 1000; read on with start={cut}]" in out.text
    assert f"| line {cut - 1}\n" in out.text and f"| line {cut}\n" not in out.text
    more = call(box, "read", {"path": "long.txt", "start": cut})
    assert more.text.startswith(f"{cut:>4}| line {cut}\n")


def test_search_fixed_and_regex(root: Path) -> None:
    box = Toolbox(root)
    out = call(box, "search", {"pattern": "alpha"})
    assert out.ok and out.text == "a.txt:1: alpha"  # not node_modules, __pycache__, the binary
    rx = call(box, "search", {"pattern": r"return a [-+] b", "regex": True, "path": "src"})
    assert rx.text == "src/pkg/mod.py:2: return a - b"
    literal = call(box, "search", {"pattern": "a [-+] b"})
    assert literal.ok and literal.text == "no matches for 'a [-+] b' in ."
    one = call(box, "search", {"pattern": "x", "path": "src/pkg/other.py"})
    assert one.text == "src/pkg/other.py:1: x = 1"
    bad = call(box, "search", {"pattern": "(unclosed", "regex": True})
    assert not bad.ok and "bad regular expression '(unclosed'" in bad.text
    assert "missing )" in bad.text


def test_search_does_not_follow_symlinks_out_and_caps_hits(root: Path) -> None:
    box = Toolbox(root)
    out = call(box, "search", {"pattern": "TOPSECRET"})
    assert out.text == "docs/deep/deeper/note.md:1: TOPSECRET is not here, only its name"
    (root / "hits.txt").write_text("hit\n" * 250)
    capped = call(box, "search", {"pattern": "hit", "path": "hits.txt"})
    assert capped.text.count("\n") == 200
    assert capped.text.endswith("[stopped after 200 matches; narrow the pattern or the path]")


# ---- write, edit -------------------------------------------------------------------------------


def test_write_creates_folders_and_reports_no_change(root: Path) -> None:
    box = Toolbox(root)
    out = call(box, "write", {"path": "new/deep/f.py", "content": "print('hi')\n"})
    assert out.ok and out.changed and out.text == "created new/deep/f.py (12 bytes)"
    assert (root / "new/deep/f.py").read_text() == "print('hi')\n"
    same = call(box, "write", {"path": "new/deep/f.py", "content": "print('hi')\n"})
    assert same.ok and not same.changed and "already has this content" in same.text
    over = call(box, "write", {"path": "link_in", "content": "ALPHA\n"})  # a link inside
    assert over.changed and (root / "a.txt").read_text() == "ALPHA\n"
    assert (root / "link_in").is_symlink()


def test_edit_replaces_exactly_one_occurrence(root: Path) -> None:
    box = Toolbox(root)
    args = {"path": "src/pkg/mod.py", "search": "return a - b", "replace": "return a + b"}
    out = call(box, "edit", args)
    assert out.ok and out.changed and out.text == "edited src/pkg/mod.py"
    assert (root / "src/pkg/mod.py").read_text() == "def add(a, b):\n    return a + b\n"
    again = call(box, "edit", json.dumps(args))  # a crash after the edit, replayed
    assert not again.ok and not again.changed
    assert "search text not found" in again.text and "may have been applied before" in again.text


def test_edit_not_found_shows_the_closest_lines(root: Path) -> None:
    out = call(
        Toolbox(root), "edit", {"path": "src/pkg/mod.py", "search": "  return a-b", "replace": "x"}
    )
    assert not out.ok and not out.changed
    assert "search text not found in src/pkg/mod.py; it must match exactly" in out.text
    assert out.text.endswith("the closest lines:\n   2|     return a - b")
    gone = call(Toolbox(root), "edit", {"path": "gone.py", "search": "a", "replace": "b"})
    assert not gone.ok and gone.text == "gone.py does not exist; use write to create it"


def test_edit_not_unique_gives_count_and_lines(root: Path) -> None:
    (root / "dup.py").write_text("x = 1\ny = 2\nx = 1\nx = 1\n")
    out = call(Toolbox(root), "edit", {"path": "dup.py", "search": "x = 1", "replace": "x = 3"})
    assert not out.ok and not out.changed
    assert "search text found 3 times in dup.py (lines 1, 3, 4)" in out.text
    assert "include more surrounding lines" in out.text
    assert (root / "dup.py").read_text() == "x = 1\ny = 2\nx = 1\nx = 1\n"


def test_edit_keeps_crlf_line_endings(root: Path) -> None:
    (root / "win.txt").write_bytes(b"one\r\ntwo\r\n")
    out = call(Toolbox(root), "edit", {"path": "win.txt", "search": "one\ntwo", "replace": "1\n2"})
    assert out.ok and out.changed and (root / "win.txt").read_bytes() == b"1\r\n2\r\n"


# ---- confinement -------------------------------------------------------------------------------

ESCAPES = [
    pytest.param("/etc/hostname", "absolute paths are refused", id="absolute"),
    pytest.param("../outside/secret.txt", "is outside the worktree", id="dotdot"),
    pytest.param("src/../../outside/secret.txt", "is outside the worktree", id="dotdot-deep"),
    pytest.param("file_out", "is outside the worktree (through a symlink)", id="symlink-file"),
    pytest.param("dir_out/secret.txt", "is outside the worktree (through a symlink)", id="sym-dir"),
    pytest.param("dangling_out", "is outside the worktree (through a symlink)", id="dangling"),
    pytest.param("dir_out/new.txt", "is outside the worktree (through a symlink)", id="new-in-out"),
    pytest.param(".git/config", "is inside .git, which the tools do not touch", id="git"),
    pytest.param("git_link/config", "is inside .git", id="git-via-link"),
]


@pytest.mark.parametrize(("path", "message"), ESCAPES)
@pytest.mark.parametrize("tool", ["read", "write", "edit", "list", "search"])
def test_no_tool_leaves_the_worktree(
    root: Path, outside: Path, tool: str, path: str, message: str
) -> None:
    args = {
        "read": {"path": path},
        "write": {"path": path, "content": "PWNED\n"},
        "edit": {"path": path, "search": "TOPSECRET", "replace": "PWNED"},
        "list": {"path": path},
        "search": {"pattern": "TOPSECRET", "path": path},
    }[tool]
    out = call(Toolbox(root), tool, args)
    assert not out.ok and not out.changed
    assert message in out.text and repr(path) in out.text
    assert "TOPSECRET" not in out.text.replace(repr(args.get("pattern")), "")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]  # dangling target not made
    assert (outside / "secret.txt").read_text() == "TOPSECRET\n"
    assert (root / ".git/config").read_text() == "[core]\n"


def test_inside_paths_with_dotdot_are_fine(root: Path) -> None:
    out = call(Toolbox(root), "write", {"path": "src/pkg/../../b.txt", "content": "b\n"})
    assert out.ok and (root / "b.txt").read_text() == "b\n"


# ---- bad model input ---------------------------------------------------------------------------


def test_malformed_json_arguments(root: Path) -> None:
    out = call(Toolbox(root), "read", '{"path": "a.txt"')
    assert not out.ok and out.text.startswith("the arguments are not valid JSON (")
    assert "expected arguments of read: path: str (required), start: int = 1" in out.text
    listed = call(Toolbox(root), "read", '["a.txt"]')
    assert not listed.ok and "the arguments must be a JSON object, got ['a.txt']" in listed.text


@pytest.mark.parametrize(
    ("tool", "args", "message"),
    [
        ("read", {"path": 5}, "path: Input should be a valid string (got 5)"),
        ("list", {"depth": "deep"}, "depth: Input should be a valid integer"),
        ("list", {"depth": 0}, "depth: Input should be greater than or equal to 1"),
        ("read", {}, "missing required argument 'path'"),
        ("read", None, "missing required argument 'path'"),
        ("write", {"path": "x", "content": "y", "mode": 7}, "unknown argument 'mode'"),
        ("edit", {"path": "a.txt", "search": "", "replace": "x"}, "search: String should have"),
        ("run", {"command": "true", "timeout": -1}, "timeout: Input should be greater than 0"),
    ],
)
def test_arguments_failing_validation(root: Path, tool: str, args: object, message: str) -> None:
    out = call(Toolbox(root), tool, args)
    assert not out.ok and f"invalid arguments for {tool}: " in out.text and message in out.text
    assert f"expected arguments of {tool}: " in out.text
    assert not (root / "x").exists()


def test_unknown_tool_names_the_known_ones(root: Path) -> None:
    out = call(Toolbox(root), "delete", {"path": "a.txt"})
    assert not out.ok
    assert out.text == f"unknown tool 'delete'; available tools: {', '.join(ALL)}"


def test_read_only_toolbox(root: Path) -> None:
    box = Toolbox(root, read_only=True)
    assert [spec.name for spec in box.specs()] == ["list", "read", "search"]
    for tool in ("write", "edit", "run", "submit"):
        out = call(box, tool, {"path": "z.txt", "content": "z", "command": "touch z.txt"})
        assert not out.ok and out.text == (
            f"unknown tool {tool!r} (this toolbox is read-only); "
            "available tools: list, read, search"
        )
    assert not (root / "z.txt").exists()
    assert call(box, "read", {"path": "a.txt"}).ok


def test_specs_describe_every_tool(root: Path) -> None:
    specs = Toolbox(root).specs()
    assert [spec.name for spec in specs] == ALL
    for spec in specs:
        assert spec.description.endswith(".") and len(spec.description) > 40
        assert spec.schema["type"] == "object" and spec.schema["additionalProperties"] is False
    edit = next(spec for spec in specs if spec.name == "edit")
    assert edit.schema["required"] == ["path", "search", "replace"]
    assert "Exact text to replace" in edit.schema["properties"]["search"]["description"]


def test_submit(root: Path) -> None:
    out = call(Toolbox(root), "submit", '{"summary": "add() fixed; tests pass"}')
    assert out.ok and out.submitted == "add() fixed; tests pass" and not out.changed


# ---- run ---------------------------------------------------------------------------------------


def test_run_reports_exit_code_duration_and_output(root: Path) -> None:
    box = Toolbox(root)
    out = call(box, "run", {"command": "echo hello; echo oops >&2"})
    assert out.ok and out.text.startswith("exit 0 after ") and " s\nhello\noops" in out.text
    bad = call(box, "run", {"command": "sh -c 'exit 3'"})
    assert not bad.ok and bad.text.startswith("exit 3 after ") and "(no output)" in bad.text


def test_run_changed_follows_the_worktree(tmp_path: Path) -> None:
    project = Project(tmp_path / "repo").write({"calc.py": "x = 1\n"})
    project.commit()
    box = Toolbox(project.path)
    assert not call(box, "run", {"command": "cat calc.py"}).changed
    assert call(box, "run", {"command": "echo y = 2 > new.py"}).changed
    assert call(box, "run", {"command": "echo z = 3 >> new.py"}).changed  # status unchanged
    assert not call(box, "run", {"command": "git status --short"}).changed
    assert call(box, "run", {"command": "git add -A && git commit -qm x"}).changed
    assert git(project.path, "status", "--porcelain") == ""


def test_run_timeout_kills_the_process_group(root: Path) -> None:
    box = Toolbox(root, run_timeout=1)
    started = time.monotonic()
    out = call(box, "run", {"command": "sleep 30 & echo $! > child.pid; sleep 30", "timeout": 60})
    assert time.monotonic() - started < 5
    assert not out.ok and out.text.startswith("timed out after 1 s: the command and its children")
    child = int((root / "child.pid").read_text())
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"


def test_run_missing_program(root: Path) -> None:
    box = Toolbox(root)
    out = call(box, "run", {"command": "no-such-program-xyz --help"})
    assert not out.ok and out.text.startswith("command not found: ")
    assert "'no-such-program-xyz' was not found on PATH" in out.text
    shell = call(box, "run", {"command": "no-such-program-xyz && echo after"})
    assert not shell.ok and shell.text.startswith("command not found: ")


def test_run_environment_has_no_secrets(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(root),
        "SHIPYARD_TEST_MARK": os.environ["SHIPYARD_TEST_MARK"],
        "KEEP_ME": "kept",
        "FAKE_API_KEY": "sekrit-1",
        "GH_TOKEN": "sekrit-2",
        "db_password": "sekrit-3",
        "OPENAI_BASE_URL": "sekrit-4",
        "AWS_REGION": "sekrit-5",
        "SESSION_COOKIE": "sekrit-6",
    }
    out = call(Toolbox(root, env=env), "run", {"command": "env"})
    assert out.ok and f"PATH={os.environ['PATH']}" in out.text and f"HOME={root}" in out.text
    assert "sekrit" not in out.text and "FAKE_API_KEY" not in out.text
    assert "KEEP_ME" not in out.text, "an allow-list: a name nobody passed is not passed"
    assert "LC_CTYPE" not in out.text, "the launcher's locale coercion leaked into the command"
    monkeypatch.setenv("FAKE_API_KEY", "sekrit-7")
    monkeypatch.setenv("ANTHROPIC_MODEL", "sekrit-8")
    default = call(Toolbox(root), "run", {"command": "env"})
    assert default.ok and "PATH=" in default.text and "sekrit" not in default.text


def test_run_output_is_capped_to_its_tail(root: Path) -> None:
    out = call(Toolbox(root, output_cap=300), "run", {"command": "seq 1 5000"})
    assert out.ok and out.text.startswith("exit 0 after ")
    assert "of 23893 bytes of output)" in out.text and "[output cut here: " in out.text
    assert out.text.endswith("\n4999\n5000") and len(out.text) <= 300


def test_secrets_in_any_usual_form_stay_out_of_commands(root: Path) -> None:
    env = {
        "PATH": os.environ["PATH"], "LD_LIBRARY_PATH": "/opt/lib", "DB_PASS": "p1",
        "GITHUB_PAT": "p2", "SMTP_PWD": "p3", "MY_API_CREDS": "p4", "SENTRY_DSN": "p5",
        "DATABASE_URL": "postgres://app:p6@db/app",
        "REDIS_URL": "redis://:p7@cache:6379/0", "PLAIN_URL": "https://example.com/x",
    }  # fmt: skip
    out = Toolbox(root, env=env).call("run", {"command": "env"})
    assert out.ok, out.text
    for secret in ("p1", "p2", "p3", "p4", "p5", "p6", "p7"):
        assert f"={secret}" not in out.text and f":{secret}@" not in out.text
    assert "LD_LIBRARY_PATH" not in out.text and "PLAIN_URL" not in out.text


def test_a_path_no_file_system_can_hold_is_an_error_not_a_crash(root: Path) -> None:
    out = Toolbox(root).call("read", '{"path": "\\ud800"}')
    assert not out.ok and "read failed" in out.text

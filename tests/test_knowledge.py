"""The project's knowledge store: merging, superseding and promoting entries, what a role is
handed within its budget, known pitfalls, ``shipyard memory`` end to end, the project's
instruction files read as conventions, and several processes writing at once.

Real SQLite files in tmp_path, the real CLI in a subprocess, real concurrent processes.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import BIN, CliRun, run_cli
from shipyard.store import knowledge
from shipyard.store.db import open_db
from shipyard.store.knowledge import Entry, Written, line, normalised, tokens
from shipyard.store.knowledge_md import export as to_markdown

AGENTS = """
# Rules for this project

- Format with ruff before committing.
- Never call the network in tests.

## Layout

Keep each module under 500 lines.
"""
RULES = [
    ("Format with ruff before committing.", "AGENTS.md:3"),
    ("Never call the network in tests.", "AGENTS.md:4"),
    ("Layout: Keep each module under 500 lines.", "AGENTS.md:8"),
]


# -- helpers ----------------------------------------------------------------------------------


def _open(tmp_path: Path) -> sqlite3.Connection:
    return open_db(tmp_path / "shipyard.db")


def _write(conn: sqlite3.Connection, *entries: Entry, **options: Any) -> list[Written]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        written = knowledge.write(conn, entries, **options)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return written


def _rows(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM knowledge").fetchone()[0]


def _pitfall(fingerprint: str, check: str, message: str, cause: str, fix: str) -> Entry:
    return Entry(
        kind="pitfall", key=fingerprint, role="diagnoser", run_id="r-1",
        text=f"When tests {check} fails (assertion): {message}\nCause: {cause}\n"
        f"Fix that then passed: {fix}",
        topic=f"tests|{check}|assertion",
        data={"message": message, "gate": "tests", "check": check, "kind": "assertion"},
    )  # fmt: skip


def _folder(path: Path, agents: str | None = AGENTS) -> Path:
    """A project: a plain folder, with an AGENTS.md (no shipyard.toml, no .shipyard/)."""
    path.mkdir(parents=True)
    if agents is not None:
        (path / "AGENTS.md").write_text(textwrap.dedent(agents).lstrip("\n"))
    return path


def memory(project: Path, *args: str) -> CliRun:
    return run_cli("memory", *args, cwd=project, timeout=60)


def _listed(project: Path, *extra: str) -> list[dict[str, Any]]:
    listed = memory(project, "list", "--json", *extra)
    assert listed.code == 0, listed.stderr
    assert listed.json["schema"] == "shipyard.memory/1"
    return listed.json["entries"]


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# -- writing: merge, supersede, promote ---------------------------------------------------------


def test_a_duplicate_is_merged_into_the_entry_and_counted(tmp_path: Path) -> None:
    conn = _open(tmp_path)
    first = _write(conn, Entry(kind="fact", text="The API is versioned under /v2", run_id="r-1"))
    again = _write(
        conn,
        Entry(
            kind="fact", text="  the API is VERSIONED\n under /v2.  ", run_id="r-2", evidence="e"
        ),
        Entry(kind="fact", text="The API is versioned under /v2", run_id="r-3"),
    )
    assert [w.outcome for w in first + again] == ["added", "merged", "merged"]
    assert {w.id for w in again} == {first[0].id}
    assert _rows(conn) == 1
    stored = knowledge.get(conn, first[0].id)
    assert stored is not None
    assert (stored.seen, stored.run_id, stored.evidence) == (3, "r-3", "e")
    assert stored.text == "The API is versioned under /v2"  # the first wording is kept

    other_kind = _write(conn, Entry(kind="decision", text="The API is versioned under /v2"))[0]
    assert other_kind.outcome == "added" and other_kind.id != first[0].id
    assert _rows(conn) == 2


def test_a_contradicting_entry_supersedes_the_old_one_which_is_kept(tmp_path: Path) -> None:
    conn = _open(tmp_path)
    mysql = "The database is MySQL 5.7 on db.internal"
    old = _write(conn, Entry(kind="fact", key="database", text=mysql))[0]
    new = _write(conn, Entry(kind="fact", key="database", text="The database is SQLite"))[0]
    assert (new.outcome, new.replaced) == ("superseded", old.id)
    assert new.id != old.id
    kept = knowledge.get(conn, old.id)
    assert kept is not None and (kept.text, kept.superseded_by) == (mysql, new.id)

    assert [e.id for e in knowledge.entries(conn)] == [new.id]
    assert [e.id for e in knowledge.entries(conn, superseded=True)] == [old.id, new.id]
    handed = knowledge.relevant(conn, "MySQL 5.7 database on db.internal", 10_000)
    assert [e.id for e in handed] == [new.id]  # "database" matches the new one; the old: never
    assert knowledge.search(conn, "MySQL internal") == []

    # the old text once more: it supersedes the current entry, nothing merges into the old row
    back = _write(conn, Entry(kind="fact", key="database", text=mysql))[0]
    assert (back.outcome, back.replaced) == ("superseded", new.id)
    assert back.id not in (old.id, new.id)
    assert [e.id for e in knowledge.entries(conn)] == [back.id]
    assert knowledge.get(conn, old.id).seen == 1  # type: ignore[union-attr]


def test_a_finding_becomes_a_convention_only_when_another_run_repeats_it(tmp_path: Path) -> None:
    conn = _open(tmp_path)
    orders = "The handler for /orders swallows the exception from save_order"
    query = "handler swallows the exception from save_order"

    def finding(text: str, run_id: str) -> Written:
        return _write(conn, Entry(kind="finding", role="reviewer", run_id=run_id, text=text))[0]

    first = finding(orders, "r-1")
    assert first.outcome == "added"
    assert knowledge.relevant(conn, query, 10_000) == []  # a finding is never handed out
    assert [e.id for e in knowledge.search(conn, query)] == [first.id]  # but it is stored

    same_run = finding(orders + " again", "r-1")
    assert (same_run.outcome, same_run.id) == ("ignored", first.id)
    other = finding("Magic number 86400 in the scheduler should be a named constant", "r-2")
    assert other.outcome == "added"
    assert {e.kind for e in knowledge.entries(conn)} == {"finding"}
    assert knowledge.relevant(conn, query + " scheduler magic number", 10_000) == []

    recurred = finding("The handler for /invoices swallows the exception from save_invoice", "r-2")
    assert (recurred.outcome, recurred.id) == ("promoted", first.id)
    promoted = knowledge.get(conn, first.id)
    assert promoted is not None
    assert (promoted.kind, promoted.seen, promoted.run_id) == ("convention", 2, "r-2")
    assert [e.id for e in knowledge.relevant(conn, query, 10_000)] == [first.id]
    assert knowledge.get(conn, other.id).kind == "finding"  # type: ignore[union-attr]

    third = finding("The handler for /users swallows the exception from save_user", "r-3")
    assert (third.outcome, third.id) == ("merged", first.id)
    assert knowledge.get(conn, first.id).seen == 3  # type: ignore[union-attr]
    assert _rows(conn) == 2


def test_a_recurring_finding_that_repeats_a_hand_added_convention_does_not_break_the_write(
    tmp_path: Path,
) -> None:
    conn = _open(tmp_path)
    text = "Never log request bodies; they hold secrets"
    _write(conn, Entry(kind="convention", text=text, role="user"))
    _write(conn, Entry(kind="finding", text=text, role="reviewer", run_id="r-1"))
    _write(conn, Entry(kind="finding", text=text, role="reviewer", run_id="r-2"))
    same = [e for e in knowledge.entries(conn) if normalised(e.text) == normalised(text)]
    assert [e.kind for e in same] == ["convention"]


# -- reading: what a role is handed --------------------------------------------------------------

QUERY = "add divide to calc and register it in OPERATIONS"
REGISTRY_CHECK = "tests/test_registry.py::test_every_operation_is_registered"


def _handed_store(conn: sqlite3.Connection) -> dict[str, int]:
    entries = {
        "test": Entry(kind="command", key="test", text="python -m pytest -q", role="gates",
                      evidence=".shipyard/runs/v-1"),
        "lint": Entry(kind="command", key="lint", text="ruff check .", role="gates"),
        "ruff": Entry(kind="convention", key="AGENTS.md:a", text="Format with ruff.",
                      role="docs", evidence="AGENTS.md:3"),
        "network": Entry(kind="convention", key="AGENTS.md:b",
                         text="Never call the network in tests.", role="docs"),
        "rule": Entry(kind="convention", key="AGENTS.md:c", role="docs",
                      text="Every operation of calc is listed in calc.OPERATIONS."),
        "registry": _pitfall(
            "fp-registry", REGISTRY_CHECK, "multiply is not registered in calc.OPERATIONS",
            "every public function of calc must be listed in the OPERATIONS registry",
            "register the new operation in calc.OPERATIONS",
        ),
        "locale": _pitfall(
            "fp-locale", "tests/test_format.py::test_money", "calc prints 1,5 for 1.5",
            "the locale", "set LC_ALL=C",
        ),
        "deploy": Entry(kind="fact", text="Deployments go through staging.example.test"),
        "old-ops": Entry(kind="fact", key="ops", text="Register operations in calc.OPERATIONS"
                         " with the @operation decorator"),
        "ops": Entry(kind="fact", key="ops", text="Operations are listed by hand"),
        "old-test": Entry(kind="command", key="test", text="pytest", role="gates"),
    }  # fmt: skip
    ids = {}
    for name in ("old-ops", "ops", "old-test", "test", "lint", "rule", "ruff", "network"):
        ids[name] = _write(conn, entries[name])[0].id
    for name in ("registry", "locale", "deploy"):
        ids[name] = _write(conn, entries[name])[0].id
    return ids


def _cost(conn: sqlite3.Connection, ids: list[int]) -> int:
    return sum(tokens(line(knowledge.get(conn, i))) for i in ids)  # type: ignore[arg-type]


def test_relevant_hands_commands_and_conventions_first_and_never_exceeds_the_budget(
    tmp_path: Path,
) -> None:
    conn = _open(tmp_path)
    ids = _handed_store(conn)
    always = {ids[n] for n in ("test", "lint", "ruff", "network", "rule")}
    everything = knowledge.relevant(conn, QUERY, 100_000)
    got = [e.id for e in everything]
    kinds = [e.kind for e in everything]
    # commands, then conventions (the one matching the task first), whatever the task; the
    # unrelated fact and the superseded entries never; the task's pitfall before a related one
    assert set(got[:5]) == always
    assert kinds[:5] == ["command", "command", "convention", "convention", "convention"]
    assert got[2] == ids["rule"]
    assert ids["deploy"] not in got
    assert ids["old-ops"] not in got and ids["old-test"] not in got
    assert got.index(ids["registry"]) < got.index(ids["locale"])
    total = _cost(conn, got)

    order = {"command": 0, "convention": 1}
    for budget in range(total + 2):
        handed = knowledge.relevant(conn, QUERY, budget)
        spent = _cost(conn, [e.id for e in handed])
        assert spent <= budget, f"budget {budget}: {spent} tokens handed"
        ranks = [order.get(e.kind, 2) for e in handed]
        assert ranks == sorted(ranks), f"budget {budget}: {[e.kind for e in handed]}"
        left_out = always - {e.id for e in handed}
        for entry_id in left_out:  # left out only because it did not fit
            assert spent + _cost(conn, [entry_id]) > budget, f"budget {budget}: #{entry_id}"
        assert ids["old-ops"] not in [e.id for e in handed]
    assert [e.id for e in knowledge.relevant(conn, QUERY, total)] == got
    assert knowledge.relevant(conn, QUERY, 0) == []


def test_a_pitfall_of_the_task_is_ranked_above_an_unrelated_one(tmp_path: Path) -> None:
    conn = _open(tmp_path)
    ids = _handed_store(conn)
    registry, locale = (knowledge.get(conn, ids[n]) for n in ("registry", "locale"))
    assert registry is not None and locale is not None
    # the unrelated pitfall is the cheaper: handed first, it would fit where the other did not
    assert tokens(line(locale)) <= tokens(line(registry))
    always = _cost(conn, [ids[n] for n in ("test", "lint", "ruff", "network", "rule")])
    handed = knowledge.relevant(conn, QUERY, always + tokens(line(registry)))
    assert [e.kind for e in handed][-1:] == ["pitfall"]
    assert handed[-1].id == ids["registry"]
    assert ids["locale"] not in [e.id for e in handed]
    text = knowledge.section(handed)
    assert "Fix that then passed: register the new operation in calc.OPERATIONS" in text
    assert "- [command] test: `python -m pytest -q` (verified: .shipyard/runs/v-1)" in text
    assert "- [convention · AGENTS.md:3] Format with ruff." in text


def test_pitfall_for_finds_the_fingerprint_then_a_similar_failure_of_the_same_check(
    tmp_path: Path,
) -> None:
    conn = _open(tmp_path)

    def message(name: str) -> str:
        return f"{name} is not registered in calc.OPERATIONS (assert '{name}' in {{'add': add}})"

    known = _write(
        conn,
        _pitfall("fp-multiply", REGISTRY_CHECK, message("multiply"), "the registry", "register"),
        _pitfall("fp-empty", REGISTRY_CHECK, "the table of calc is empty", "no table", "fill it"),
        _pitfall("fp-money", "tests/test_format.py::test_money", message("money"), "x", "y"),
    )
    multiply, money = known[0].id, known[2].id
    topic = f"tests|{REGISTRY_CHECK}|assertion"

    exact = knowledge.pitfall_for(conn, "fp-multiply", "other|check|kind", "unrelated words")
    assert exact is not None and exact.id == multiply
    near = knowledge.pitfall_for(conn, "fp-divide", topic, message("divide"))
    assert near is not None and near.id == multiply
    assert knowledge.pitfall_for(conn, "fp-import", topic, "No module named 'numpy'") is None
    other_check = "tests|tests/test_cli.py::test_main|assertion"
    assert knowledge.pitfall_for(conn, "fp-cli", other_check, message("divide")) is None
    money_near = knowledge.pitfall_for(
        conn, "fp-x", "tests|tests/test_format.py::test_money|assertion", message("cents")
    )
    assert money_near is not None and money_near.id == money

    # the same failure, a new fix: the new pitfall is found, by fingerprint and by similarity,
    # though the old one's message is the closer
    reworded = message("multiply") + " after the refactor of calc"
    newer = _write(conn, _pitfall("fp-multiply", REGISTRY_CHECK, reworded, "the registry", "v2"))[0]
    assert newer.outcome == "superseded"
    assert knowledge.pitfall_for(conn, "fp-multiply", topic, "x").id == newer.id  # type: ignore[union-attr]
    assert knowledge.pitfall_for(conn, "fp-divide", topic, message("divide")).id == newer.id  # type: ignore[union-attr]


def test_an_entry_is_counted_used_once_per_run_and_helped_when_the_run_ships(
    tmp_path: Path,
) -> None:
    conn = _open(tmp_path)
    a, b, unused = (
        w.id for w in _write(conn, *(Entry(kind="fact", text=f"fact {n}") for n in "abc"))
    )
    conn.execute("BEGIN IMMEDIATE")
    knowledge.mark_used(conn, "r-1", "planner", [a], 100.0)
    knowledge.mark_used(conn, "r-1", "implementer", [a, b], 101.0)
    knowledge.mark_used(conn, "r-1", "planner", [a], 102.0)
    conn.execute("COMMIT")
    got = {i: knowledge.get(conn, i) for i in (a, b, unused)}
    assert [(e.used, e.last_used) for e in got.values()] == [(1, 102.0), (1, 101.0), (0, None)]  # type: ignore[union-attr]
    conn.execute("BEGIN IMMEDIATE")
    knowledge.mark_used(conn, "r-2", "planner", [a], 103.0)
    knowledge.mark_helped(conn, "r-1")
    knowledge.mark_helped(conn, "r-3")  # a run given nothing
    conn.execute("COMMIT")
    got = {i: knowledge.get(conn, i) for i in (a, b, unused)}
    assert [(e.used, e.helped) for e in got.values()] == [(2, 1), (1, 1), (0, 0)]  # type: ignore[union-attr]


# -- shipyard memory, end to end -----------------------------------------------------------------


def test_memory_list_without_a_store_shows_the_instruction_rules_and_creates_nothing(
    tmp_path: Path,
) -> None:
    project = _folder(tmp_path / "proj")
    before = _files(tmp_path)
    listed = memory(project, "list")
    assert listed.code == 0, listed.stderr
    for text, evidence in RULES:
        assert text in listed.stdout
        assert f"docs · {evidence} · seen 1 · used 0 · helped 0" in listed.stdout
    entries = _listed(project)
    assert [(e["kind"], e["text"], e["evidence"], e["role"]) for e in entries] == [
        ("convention", text, evidence, "docs") for text, evidence in RULES
    ]
    searched = memory(project, "search", "ruff", "--json")
    assert searched.code == 0, searched.stderr
    assert [e["text"] for e in searched.json["entries"]] == [RULES[0][0]]
    exported = memory(project, "export")
    assert exported.code == 0 and exported.stdout.count("\n### convention · ") == 3
    assert _files(tmp_path) == before  # no .shipyard/, no database file anywhere

    empty = _folder(tmp_path / "empty", agents=None)
    nothing = memory(empty, "list")
    assert nothing.code == 0, nothing.stderr
    assert nothing.stdout.startswith("no knowledge yet")
    assert _files(empty) == []


def test_memory_add_then_list_and_search(tmp_path: Path) -> None:
    project = _folder(tmp_path / "proj")
    added = memory(project, "add", "The staging server is staging.example.test", "--json")
    assert added.code == 0, added.stderr
    assert (added.json["outcome"], added.json["replaced"]) == ("added", None)
    fact = added.json["entry"]
    assert (fact["kind"], fact["role"], fact["evidence"], fact["seen"]) == (
        "fact", "user", "added by hand", 1
    )  # fmt: skip
    assert (project / ".shipyard" / "shipyard.db").is_file()
    entries = _listed(project)
    assert [e["text"] for e in entries] == [r[0] for r in RULES] + [fact["text"]]
    assert [e for e in entries if e["id"] == fact["id"]] == [fact]

    again = memory(project, "add", "the staging server is  staging.example.test.", "--json")
    assert (again.json["outcome"], again.json["entry"]["id"]) == ("merged", fact["id"])
    assert again.json["entry"]["seen"] == 2

    sqlite_db = memory(project, "add", "Use SQLite", "--kind", "decision", "--key", "db")
    assert sqlite_db.code == 0 and sqlite_db.stdout.startswith("added #")
    postgres = memory(project, "add", "Use Postgres", "--kind", "decision", "--key", "db")
    old_id = int(sqlite_db.stdout.split("#")[1].split(":")[0])
    assert postgres.code == 0, postgres.stderr
    assert f"(supersedes #{old_id}): Use Postgres" in postgres.stdout
    assert [e["text"] for e in _listed(project, "--kind", "decision")] == ["Use Postgres"]
    every = _listed(project, "--kind", "decision", "--all")
    assert [(e["text"], e["superseded_by"] is None) for e in every] == [
        ("Use SQLite", False), ("Use Postgres", True)
    ]  # fmt: skip
    shown = memory(project, "list", "--all")
    assert f"superseded by #{every[1]['id']}" in shown.stdout

    found = memory(project, "search", "staging server", "--json")
    assert found.code == 0, found.stderr
    assert found.json["query"] == "staging server"
    assert [(e["id"], e["seen"]) for e in found.json["entries"]] == [(fact["id"], 2)]
    nothing = memory(project, "search", "SQLite")
    assert (nothing.code, nothing.stdout.strip()) == (0, "nothing matches 'SQLite'")
    no_words = memory(project, "search", "the and")
    assert no_words.code == 2 and "QUERY" in no_words.stderr
    assert "has no word to search for" in no_words.stderr

    forgot = memory(project, "forget", str(fact["id"]), "--json")
    assert forgot.code == 0, forgot.stderr
    assert forgot.json["forgotten"]["text"] == fact["text"]
    assert fact["id"] not in [e["id"] for e in _listed(project, "--all")]


def test_memory_refuses_a_command_by_hand_and_an_unknown_id(tmp_path: Path) -> None:
    project = _folder(tmp_path / "proj")
    command = memory(project, "add", "pytest -q", "--kind", "command")
    assert command.code == 2
    assert "--kind" in command.stderr and "commands come from gates that ran them" in command.stderr
    assert "add one of fact, convention, decision" in command.stderr
    pitfall = memory(project, "add", "beware", "--kind", "pitfall")
    assert pitfall.code == 2 and "--kind: cannot add a 'pitfall'" in pitfall.stderr
    kind = memory(project, "list", "--kind", "rumour")
    assert kind.code == 2 and "--kind: unknown kind 'rumour'" in kind.stderr
    assert not (project / ".shipyard").exists()

    assert memory(project, "add", "something to keep").code == 0
    unknown = memory(project, "forget", "999")
    assert unknown.code == 2
    assert "ID: no knowledge entry #999" in unknown.stderr
    assert [e["text"] for e in _listed(project)][-1] == "something to keep"


def test_forget_sticks_in_a_project_without_a_store(tmp_path: Path) -> None:
    project = _folder(tmp_path / "proj")
    rule = _listed(project)[1]
    forgot = memory(project, "forget", str(rule["id"]))
    assert forgot.code == 0, forgot.stderr
    assert forgot.stdout.startswith(f"forgot #{rule['id']}: Never call the network in tests.")
    assert rule["text"] not in [e["text"] for e in _listed(project)]  # said forgotten: it is


def test_forget_removes_every_entry_the_forgotten_one_superseded(tmp_path: Path) -> None:
    project = _folder(tmp_path / "proj")
    for text in ("Deploy with fabric", "Deploy with ansible", "Deploy with the CI job"):
        assert memory(project, "add", text, "--key", "deploy").code == 0
    current = [e for e in _listed(project) if e["key"] == "deploy"]
    assert [e["text"] for e in current] == ["Deploy with the CI job"]
    assert memory(project, "forget", str(current[0]["id"])).code == 0
    left = [(e["id"], e["text"], e["superseded_by"]) for e in _listed(project, "--all")]
    assert [e for e in left if "Deploy" in e[1]] == []


def _project_with_knowledge(tmp_path: Path) -> tuple[Path, Path, int]:
    """Project ``a``: AGENTS.md rules, a fact added by hand, and what runs learn (written with
    the library into its database); exported to ``a.md``. Returns the folder, the file and
    the number of entries in it."""
    a = _folder(tmp_path / "a")
    assert memory(a, "add", "The API is versioned under /v2", "--key", "api").code == 0
    conn = open_db(a / ".shipyard" / "shipyard.db")
    command = Entry(kind="command", key="test", text="python -m pytest -q", role="gates",
                    run_id="r-1", evidence=".shipyard/runs/r-1/verify-1")  # fmt: skip
    written = _write(
        conn,
        command,
        _pitfall("fp-registry", REGISTRY_CHECK, "multiply is not registered in calc.OPERATIONS",
                 "a registry test: every public function must be in OPERATIONS",
                 "add it to OPERATIONS"),
        Entry(kind="decision", key="storage", role="planner", run_id="r-1",
              text="Keep state in SQLite (WAL)\n\nnot in JSON files: \"atomic\" writes"),
        Entry(kind="finding", role="reviewer", run_id="r-1",
              text="save_order swallows exceptions"),
    )  # fmt: skip
    conn.execute("BEGIN IMMEDIATE")
    knowledge.mark_used(conn, "r-1", "implementer", [written[0].id, written[1].id], time.time())
    knowledge.mark_helped(conn, "r-1")
    conn.execute("COMMIT")
    conn.close()
    path = tmp_path / "a.md"
    exported = memory(a, "export", "-o", str(path))
    assert exported.code == 0, exported.stderr
    assert f"wrote {path} (8 entries)" in exported.stderr
    return a, path, 8


def test_an_export_imported_into_another_project_exports_the_same(tmp_path: Path) -> None:
    _, path, count = _project_with_knowledge(tmp_path)
    text = path.read_text()
    assert text.count("\n### ") == count
    for expected in (
        '### command · "test"\n> python -m pytest -q\n',
        "- counts: seen 1 · used 1 · helped 1",
        '- data: {"check": "tests/test_registry.py::test_every_operation_is_registered"',
        f"- topic: tests|{REGISTRY_CHECK}|assertion",
        '> Keep state in SQLite (WAL)\n>\n> not in JSON files: "atomic" writes\n',
        "## Review findings (seen once) (1)",
        "- evidence: AGENTS.md:4",
    ):
        assert expected in text
    assert "last used: -\n- counts: seen 1 · used 1" not in text  # last used is written

    b = _folder(tmp_path / "b", agents=None)
    imported = memory(b, "import", str(path), "--json")
    assert imported.code == 0, imported.stderr
    counts = ("entries", "added", "merged", "superseded", "ignored")
    assert {k: imported.json[k] for k in counts} == {
        "entries": count, "added": count, "merged": 0, "superseded": 0, "ignored": 0
    }  # fmt: skip
    again = memory(b, "export")
    assert again.code == 0, again.stderr
    assert again.stdout == text
    assert [e["kind"] for e in _listed(b) if e["kind"] == "finding"] == ["finding"]


def test_importing_the_same_file_twice_changes_nothing(tmp_path: Path) -> None:
    _, path, count = _project_with_knowledge(tmp_path)
    b = _folder(tmp_path / "b", agents=None)
    first = memory(b, "import", str(path), "--json")
    assert (first.code, first.json["added"]) == (0, count), first.stderr
    before, before_all = _listed(b), _listed(b, "--all")
    second = memory(b, "import", str(path))
    assert second.code == 0, second.stderr
    assert second.stdout.strip() == (
        f"imported {count} entries from {path}: 0 added, {count} merged, 0 superseded, 0 ignored"
    )
    after, after_all = _listed(b), _listed(b, "--all")
    assert len(after_all) == len(before_all) == count

    def counts(found: list[dict[str, Any]]) -> list[tuple]:
        fields = ("id", "kind", "key", "text", "seen", "used", "helped", "superseded_by")
        return [tuple(e[f] for f in fields) for e in found]

    assert counts(after) == counts(before)
    assert after == before  # every field, the times too
    assert memory(b, "export").stdout == path.read_text()


def test_an_entry_edited_in_the_export_supersedes_on_import(tmp_path: Path) -> None:
    a, path, count = _project_with_knowledge(tmp_path)
    old = next(e for e in _listed(a) if e["key"] == "api")
    edited = path.read_text().replace("> The API is versioned under /v2", "> The API is /v3")
    assert edited != path.read_text()
    path.write_text(edited)
    imported = memory(a, "import", str(path), "--json")
    assert imported.code == 0, imported.stderr
    assert {k: imported.json[k] for k in ("added", "merged", "superseded", "ignored")} == {
        "added": 0, "merged": count - 1, "superseded": 1, "ignored": 0
    }  # fmt: skip
    current = [e for e in _listed(a) if e["key"] == "api"]
    assert [e["text"] for e in current] == ["The API is /v3"]
    every = {e["id"]: e for e in _listed(a, "--all") if e["key"] == "api"}
    assert every[old["id"]]["superseded_by"] == current[0]["id"]
    assert every[old["id"]]["text"] == "The API is versioned under /v2"
    found = memory(a, "search", "API versioned", "--json")
    assert [e["id"] for e in found.json["entries"]] == [current[0]["id"]]


GOOD_ENTRY = '### fact · "ok"\n> A good entry.\n\n- role: user\n\n'


@pytest.mark.parametrize(
    ("broken", "line", "field", "message"),
    [
        ('### rumour · "x"\n> heard somewhere\n', 8, "kind", "unknown kind 'rumour'"),
        ("### fact · not-json\n> text\n", 8, "key", "the key is not a JSON string"),
        ('### fact · ["a"]\n> text\n', 8, "key", "the key must be a JSON string"),
        ('### fact · "empty"\n\n- role: user\n', 8, "text", "an entry with no text"),
        ('### fact · "d"\n> text\n\n- data: {"a": \n', 11, "data", "not JSON"),
    ],
)
def test_a_malformed_export_is_refused_naming_the_file_and_line(
    tmp_path: Path, broken: str, line: int, field: str, message: str
) -> None:
    path = tmp_path / "knowledge.md"
    path.write_text("# Project knowledge\n\n" + GOOD_ENTRY + broken)
    project = _folder(tmp_path / "proj")
    refused = memory(project, "import", str(path))
    assert refused.code == 2
    assert f"shipyard: bad input: {path}:{line}: {field}: {message}" in refused.stderr
    assert refused.stdout == ""
    assert not (project / ".shipyard").exists()  # nothing imported, not even the good entry


# -- the project's instruction files -------------------------------------------------------------


def test_editing_agents_md_removes_keeps_and_adds_rules(tmp_path: Path) -> None:
    project = _folder(tmp_path / "proj")
    assert memory(project, "add", "The staging server is staging.example.test").code == 0
    before = {e["text"]: e for e in _listed(project)}
    assert [before[t]["evidence"] for t, _ in RULES] == [e for _, e in RULES]

    (project / "AGENTS.md").write_text(
        "# Rules for this project\n\nRead docs/design.md first.\n\n"
        "- Format with ruff before committing.\n- Name tests after the behaviour they check.\n\n"
        "## Layout\n\nKeep each module under 500 lines.\n"
    )
    after = {e["text"]: e for e in _listed(project)}
    assert sorted(after) == sorted([
        "Read docs/design.md first.", "Format with ruff before committing.",
        "Name tests after the behaviour they check.", "Layout: Keep each module under 500 lines.",
        "The staging server is staging.example.test",
    ])  # fmt: skip
    for kept, evidence in (
        ("Format with ruff before committing.", "AGENTS.md:5"),
        ("Layout: Keep each module under 500 lines.", "AGENTS.md:10"),
    ):
        assert after[kept]["id"] == before[kept]["id"]
        assert after[kept]["evidence"] == evidence  # moved down: its line follows
    new_ids = {after[t]["id"] for t in after if t not in before}
    assert len(new_ids) == 2 and min(new_ids) > max(e["id"] for e in before.values())
    assert after["Read docs/design.md first."]["evidence"] == "AGENTS.md:3"
    every = [e["text"] for e in _listed(project, "--all")]
    assert "Never call the network in tests." not in every  # removed, not merely superseded
    fact = "The staging server is staging.example.test"
    assert after[fact] == before[fact]

    (project / "AGENTS.md").unlink()
    assert [e["text"] for e in _listed(project, "--all")] == [fact]


def test_a_rule_also_added_by_hand_is_kept_apart_and_not_counted_again_on_every_edit(
    tmp_path: Path,
) -> None:
    project = _folder(tmp_path / "proj", agents=None)
    added = memory(project, "add", "Keep functions short.", "--kind", "convention", "--json")
    assert added.code == 0, added.stderr
    agents = project / "AGENTS.md"
    agents.write_text("- Keep functions short.\n")
    first = [e for e in _listed(project) if e["text"] == "Keep functions short."]
    # one entry per source: the file's goes when the file drops the rule, the person's stays
    assert sorted((e["role"], e["seen"], e["evidence"]) for e in first) == [
        ("docs", 1, "AGENTS.md:1"),
        ("user", 1, "added by hand"),
    ]
    for extra in ("- Another rule.\n", "- Another rule.\n- A third rule.\n"):
        agents.write_text("- Keep functions short.\n" + extra)
        again = [e for e in _listed(project) if e["text"] == "Keep functions short."]
        assert sorted((e["id"], e["seen"]) for e in again) == sorted(
            (e["id"], e["seen"]) for e in first
        )
    # a role is given the rule once
    conn = open_db(project / ".shipyard" / "shipyard.db")
    handed = [e.text for e in knowledge.relevant(conn, "functions", 2000)]
    assert handed.count("Keep functions short.") == 1
    agents.write_text("- Another rule.\n")
    left = [e for e in _listed(project) if e["text"] == "Keep functions short."]
    assert [e["role"] for e in left] == ["user"]


def test_an_old_export_never_undoes_newer_knowledge(tmp_path: Path) -> None:
    project = _folder(tmp_path / "proj", agents=None)
    assert memory(project, "add", "The port is 8080", "--key", "port").code == 0
    old = tmp_path / "old.md"
    assert memory(project, "export", "-o", str(old)).code == 0
    # exports are to the second: the newer entry must be at least a second younger
    conn = open_db(project / ".shipyard" / "shipyard.db")
    conn.execute("UPDATE knowledge SET updated_at = updated_at - 5, created_at = created_at - 5")
    conn.close()
    old.write_text(memory(project, "export").stdout)
    assert memory(project, "add", "The port is 9090", "--key", "port").code == 0
    imported = memory(project, "import", str(old), "--json")
    assert imported.code == 0, imported.stderr
    assert imported.json["ignored"] == 1 and imported.json["superseded"] == 0
    assert [e["text"] for e in _listed(project) if e["key"] == "port"] == ["The port is 9090"]


@pytest.mark.parametrize(
    ("entry", "where"),
    [
        ('### pitfall · "fp1"\n> text\n\n- data: [1, 2]\n', "6: data: must be a JSON object"),
        ('### convention · "doc:AGENTS.md:abc"\n> text\n\n- role: user\n', "3: key: keys starting"),
        ('### fact · "f"\n> text\n\n- learned: - · bogus\n', "6: learned: 'bogus': expected"),
    ],
)
def test_an_import_that_would_break_later_is_refused_now(
    tmp_path: Path, entry: str, where: str
) -> None:
    project = _folder(tmp_path / "proj", agents=None)
    path = tmp_path / "bad.md"
    path.write_text("# Project knowledge\n\n" + entry)
    result = memory(project, "import", str(path))
    assert result.code == 2, result.stdout + result.stderr
    assert f"{path}:{where}" in result.stderr
    assert not (project / ".shipyard").exists()


def test_instruction_files_outside_the_project_or_dropped_from_the_config_are_not_read(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "outside.md"
    secret.write_text("- SECRET_TOKEN=abc123\n")
    project = _folder(tmp_path / "proj", agents=None)
    (project / "AGENTS.md").symlink_to(secret)
    (project / "CLAUDE.md").write_text("\ufeff# Title\n<!-- a note -->\n- Keep it short.\n")
    texts = [e["text"] for e in _listed(project)]
    assert texts == ["Keep it short."]  # no symlinked secret, no BOM title, no comment
    (project / "shipyard.toml").write_text('[knowledge]\ndocs = ["AGENTS.md"]\n')
    assert memory(project, "add", "a fact").code == 0  # a store on disk, synced
    assert [e["text"] for e in _listed(project)] == ["a fact"]  # CLAUDE.md no longer listed


def test_forgetting_an_entry_keeps_the_record_that_runs_used_it(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "shipyard.db")
    conn.execute("BEGIN IMMEDIATE")
    (written,) = knowledge.write(conn, [Entry(kind="fact", text="the API is under /v2")])
    knowledge.mark_used(conn, "r-1", "implementer", [written.id], time.time())
    knowledge.forget(conn, written.id)
    conn.execute("COMMIT")
    assert knowledge.get(conn, written.id) is None
    uses = conn.execute("SELECT run_id, entry_id, role FROM knowledge_uses").fetchall()
    assert [tuple(r) for r in uses] == [("r-1", written.id, "implementer")]  # stats stay true


# -- several processes at once -------------------------------------------------------------------

BARRIER = r"""
import os, sys, time
from pathlib import Path
go, ready, argv = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
ready.touch()
deadline = time.monotonic() + 20
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("no start signal")
    time.sleep(0.002)
os.execv(argv[0], argv)
"""

WRITER = r"""
import sys
from pathlib import Path
from shipyard.store import knowledge
from shipyard.store.db import open_db
from shipyard.store.knowledge import Entry

path, worker, rounds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
conn = open_db(path)
for n in range(rounds):
    shared = f"Shared  FACT number {n}." if worker % 2 else f"shared fact number {n}"
    batch = [
        Entry(kind="fact", text=shared, run_id=f"w{worker}"),
        Entry(kind="decision", key=f"choice-{n}", text=f"choice {n} as made by worker {worker}"),
        Entry(kind="fact", text=f"unique fact tokw{worker}n{n} from worker {worker}"),
    ]
    conn.execute("BEGIN IMMEDIATE")
    knowledge.write(conn, batch)
    conn.execute("COMMIT")
print(f"worker {worker}: {rounds} rounds written")
"""


def _together(commands: list[list[str]], here: Path, timeout: float = 60) -> list[CliRun]:
    """Start every command, wait until each is ready, then let them all go at once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    go = here / "go"
    procs: list[subprocess.Popen[str]] = []
    try:
        for n, command in enumerate(commands):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", BARRIER, str(go), str(here / f"ready-{n}"), *command],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )  # fmt: skip
            )
        deadline = time.monotonic() + 20
        while not all((here / f"ready-{n}").exists() for n in range(len(commands))):
            assert time.monotonic() < deadline, "the processes did not start"
            assert all(p.poll() is None for p in procs), "a process ended before the start"
            time.sleep(0.01)
        go.touch()
        done = []
        end = time.monotonic() + timeout
        for proc in procs:
            out, err = proc.communicate(timeout=max(0.1, end - time.monotonic()))
            done.append(CliRun(proc.returncode, out, err))
        return done
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _consistent(conn: sqlite3.Connection) -> None:
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.execute("INSERT INTO knowledge_fts(knowledge_fts) VALUES('integrity-check')")
    doubled = conn.execute(
        "SELECT kind, key, COUNT(*) FROM knowledge WHERE superseded_by IS NULL"
        " GROUP BY kind, key HAVING COUNT(*) > 1"
    ).fetchall()
    assert doubled == []
    dangling = conn.execute(
        "SELECT old.id FROM knowledge old LEFT JOIN knowledge new ON new.id = old.superseded_by"
        " WHERE old.superseded_by IS NOT NULL"
        " AND (new.id IS NULL OR new.key != old.key OR new.kind != old.kind)"
    ).fetchall()
    assert dangling == []  # every superseded entry points at a newer one of its subject


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    workers, rounds = 4, 40
    path = tmp_path / "shipyard.db"  # created by the writers themselves, all at once
    done = _together(
        [[sys.executable, "-c", WRITER, str(path), str(w), str(rounds)] for w in range(workers)],
        tmp_path,
    )
    for w, run in enumerate(done):
        assert (run.code, run.stdout.strip(), run.stderr) == (
            0, f"worker {w}: {rounds} rounds written", ""
        )  # fmt: skip

    conn = open_db(path)
    _consistent(conn)
    assert _rows(conn) == rounds + 2 * workers * rounds  # shared once, the rest one row each
    shared = [e for e in knowledge.entries(conn, "fact") if e.text.lower().startswith("shared")]
    assert sorted(normalised(e.text) for e in shared) == sorted(
        f"shared fact number {n}" for n in range(rounds)
    )
    assert {e.seen for e in shared} == {workers}  # every write counted
    for w in range(workers):
        for n in range(rounds):
            text = f"unique fact tokw{w}n{n} from worker {w}"
            rows = conn.execute(
                "SELECT id, superseded_by, seen FROM knowledge WHERE text = ?", (text,)
            ).fetchall()
            assert [tuple(r)[1:] for r in rows] == [(None, 1)], text
            assert [e.id for e in knowledge.search(conn, f"tokw{w}n{n}")] == [rows[0]["id"]]
    per_key = conn.execute(
        "SELECT key, COUNT(*), SUM(superseded_by IS NULL) FROM knowledge"
        " WHERE kind = 'decision' GROUP BY key ORDER BY key"
    ).fetchall()
    assert sorted(tuple(r) for r in per_key) == sorted(
        (f"choice-{n}", workers, 1) for n in range(rounds)
    )


def test_concurrent_imports_and_adds_into_a_fresh_project(tmp_path: Path) -> None:
    workers, owners, uniques = 4, 5, 10
    project = _folder(tmp_path / "proj")
    files = []
    for k in range(workers):
        entries = [
            Entry(kind="convention", key="style", text="Format with black", seen=k + 1),
            *(Entry(kind="fact", key=f"owner-{j}", text=f"area {j} is owned by team {k}")
              for j in range(owners)),
            *(Entry(kind="decision", key=f"d-{k}-{j}", text=f"decision tokf{k}d{j} of file {k}")
              for j in range(uniques)),
        ]  # fmt: skip
        files.append(tmp_path / f"k{k}.md")
        files[-1].write_text(to_markdown(entries))
    shipyard = str(BIN / "shipyard")
    staging = "The staging server is staging.example.test"
    commands = [[shipyard, "memory", "import", str(f), "--json", "-C", str(project)] for f in files]
    commands += [[shipyard, "memory", "add", staging, "--json", "-C", str(project)]] * workers
    done = _together(commands, tmp_path)
    for run in done:
        assert run.code == 0, run.stderr
    size = 1 + owners + uniques
    for run in done[:workers]:
        doc = run.json
        assert doc["entries"] == size
        assert doc["added"] + doc["merged"] + doc["superseded"] == size
    assert sum(run.json["superseded"] for run in done[:workers]) == owners * (workers - 1)
    assert sorted(run.json["outcome"] for run in done[workers:]) == ["added"] + ["merged"] * 3

    conn = open_db(project / ".shipyard" / "shipyard.db")
    _consistent(conn)
    current = knowledge.entries(conn)
    by_text: dict[str, list[Entry]] = {}
    for entry in current:
        by_text.setdefault(entry.text, []).append(entry)
    assert all(len(found) == 1 for found in by_text.values()), by_text
    assert [by_text[t][0].evidence for t, _ in RULES] == [e for _, e in RULES]
    assert by_text["Format with black"][0].seen == workers  # imported: the larger count kept
    assert by_text[staging][0].seen == workers  # added by hand: each add counted
    owned = sorted(e.key for e in current if e.key.startswith("owner-"))
    assert owned == [f"owner-{j}" for j in range(owners)]
    assert conn.execute("SELECT COUNT(*) FROM knowledge WHERE key LIKE 'owner-%'").fetchone()[
        0
    ] == owners * workers  # fmt: skip
    for k in range(workers):
        for j in range(uniques):
            found = knowledge.search(conn, f"tokf{k}d{j}")
            assert [e.text for e in found] == [f"decision tokf{k}d{j} of file {k}"]
    assert len(current) == len(RULES) + 2 + owners + workers * uniques
    searched = memory(project, "search", "tokf3d9", "--json")
    assert [e["key"] for e in searched.json["entries"]] == ["d-3-9"]

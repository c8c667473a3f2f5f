"""The loop's side of the project's knowledge: what each role is told, and what a run learns.

Read: each role gets the entries relevant to its task (``knowledge.relevant``) in its
instructions, and the step records which ones. Written, with the step that learned it:

- commands, when the gate that ran them passed (verified: kept even if the run is blocked);
- pitfalls, when a verify passes after a diagnosis (the fix it proposed worked);
- the planner's decisions and the reviewer's findings, only when the run ships.

A failure that matches a known pitfall gets the pitfall's fix at once (``known_pitfalls``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shipyard.agents.roles import RoleName
from shipyard.loop.context import RunContext
from shipyard.loop.state import Failure, RunState
from shipyard.loop.step import Step
from shipyard.store import knowledge
from shipyard.store.knowledge import Entry

if TYPE_CHECKING:
    from shipyard.results import Verdict


def tell(ctx: RunContext, step: Step, role: str, query: str) -> str:
    """The knowledge section for a role's instructions ('' when none); the step records what
    the role was given. What the run itself learned is not handed back to it."""
    if not ctx.config.knowledge.enabled:
        return ""
    found = ctx.ledger.relevant(query, ctx.config.knowledge.budget)
    # not what this run learned first itself (a merge moves run_id on, and counts seen up)
    found = [e for e in found if not (e.run_id == ctx.run_id and e.seen == 1)]
    if not found:
        return ""
    step.uses.append((role, [e.id for e in found if e.id is not None]))
    kinds: dict[str, int] = {}
    for entry in found:
        kinds[entry.kind] = kinds.get(entry.kind, 0) + 1
    shown = ", ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in kinds.items())
    step.event("knowledge", f"{role} given {shown}", role=role, ids=[e.id for e in found])
    return knowledge.section(found)


def sync_docs(ctx: RunContext) -> None:
    """Read the project's instruction files (AGENTS.md ...) as conventions, if they changed."""
    if not ctx.config.knowledge.enabled:
        return
    from shipyard.store.knowledge_md import sync_docs as sync

    with ctx.ledger.transaction() as db:
        sync(db, ctx.project, ctx.config.knowledge.docs)


def commands_that_worked(ctx: RunContext, state: RunState, verdict: Verdict, step: Step) -> None:
    """The project's commands whose gate check passed in this verify, as verified knowledge."""
    if not ctx.config.knowledge.enabled:
        return
    from shipyard.verify import default_gates

    where = f"run {ctx.run_id}, {verdict.run_dir.rsplit('/', 1)[-1]}"
    results = {g.name: g for g in verdict.gates}
    found = [
        (v.key, v.command, v.what)
        for gate in default_gates()
        if (result := results.get(gate.name)) is not None
        for v in gate.verified(ctx.config, result)
    ]
    new = [(key, command, what) for key, command, what in found if key not in state.recorded]
    for key, command, what in new:
        state.recorded.append(key)
        step.knowledge.append(
            Entry(kind="command", key=key, text=command, role="gates", run_id=ctx.run_id,
                  evidence=f"{what} passed, {where}")
        )  # fmt: skip
    if new:
        step.event("learned", "verified commands: " + ", ".join(k for k, _, _ in new))


def pitfalls_fixed(ctx: RunContext, state: RunState, step: Step) -> None:
    """The verify passed: each diagnosis before it becomes a pitfall (its fix worked)."""
    if not state.diagnoses or not ctx.config.knowledge.enabled:
        return
    for found in state.diagnoses:
        failures = found.failures
        specific = [f for f in failures if f.check != "suite"] or failures
        for f in specific:
            text = (
                f"When {f.gate} {f.check} fails ({f.kind}): {_what(f.message)}\n"
                f"Cause: {found.root_cause}\nFix that then passed: {found.fix_plan}"
            )
            step.knowledge.append(
                Entry(
                    kind="pitfall",
                    key=f.fingerprint,
                    text=text,
                    role=RoleName.DIAGNOSER,
                    run_id=ctx.run_id,
                    evidence=f"diagnosed at attempt {found.attempt}, its fix "
                    f"passed at attempt {state.attempt}",
                    topic=topic(f),
                    data={
                        "message": f.message[:500],
                        "gate": f.gate,
                        "check": f.check,
                        "kind": f.kind,
                    },
                )  # fmt: skip
            )
    step.event("learned", f"{len(state.diagnoses)} diagnosed failure(s) became pitfalls")
    state.diagnoses = []


def known_pitfalls(
    ctx: RunContext, state: RunState, step: Step, failures: Sequence[Failure]
) -> str | None:
    """The fixes of known pitfalls that these failures match (each pitfall handed once per
    run), for the next attempt's brief."""
    if not ctx.config.knowledge.enabled:
        return None
    found: dict[int, Entry] = {}
    for f in failures:
        entry = ctx.ledger.pitfall_for(f.fingerprint, topic(f), f.message)
        if entry is not None and entry.id not in state.pitfalls and entry.id is not None:
            found[entry.id] = entry
    if not found:
        return None
    state.pitfalls += list(found)
    step.uses.append((RoleName.IMPLEMENTER, list(found)))
    step.event("pitfall", f"a known pitfall: {len(found)} matched", ids=list(found))
    lines = ["This failure is a known pitfall of this project; what fixed it before:"]
    lines += [f"- {e.text.strip()}" for e in found.values()]
    return "\n".join(lines)


def remember(state: RunState, entries: Sequence[Entry]) -> None:
    """Knowledge to write when (and only if) the run ships."""
    state.learned += entries


def learned_on_ship(ctx: RunContext, state: RunState, step: Step) -> None:
    if not ctx.config.knowledge.enabled or not state.learned:
        return
    step.knowledge += state.learned
    kinds = sorted({e.kind for e in state.learned})
    step.event("learned", f"{len(state.learned)} entries ({', '.join(kinds)})")
    state.learned = []


def _what(message: str) -> str:
    """A failure in a line or two: its first line, and the error a test runner printed."""
    lines = message.strip().splitlines() or [""]
    error = next(
        (
            m.group(1)
            for line in lines[1:]
            # "E   AssertionError: ..." or, in a summary, "FAILED t.py::x - AssertionError: ..."
            if (m := re.search(r"(?:^E\s+|\s-\s)(\w+(?:Error|Exception)\b.*)", line))
        ),
        None,
    )
    return lines[0][:300] + (f" — {error[:300]}" if error else "")


def topic(f: Failure) -> str:
    """What a failure is about: its gate, check and kind; for the suite, the first test that
    failed (``tests|suite:tests/test_x.py::test_y|assertion``)."""
    check = f.check
    if check == "suite" and (m := re.search(r"tests? failed: (\S+)", f.message)):
        check = f"suite:{m.group(1)}"
    return f"{f.gate}|{check}|{f.kind}"

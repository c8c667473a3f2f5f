"""What a run puts right after the model's commands: the repository's git hooks and config
(:mod:`shipyard.gitguard`) and processes that left their process group
(:func:`shipyard.process.kill_adopted`)."""

from __future__ import annotations

from shipyard import gitguard, process
from shipyard.loop.context import RunContext
from shipyard.store.ledger import Event

NOTE = "Shipyard undid what the command did to the repository's git folder (hooks and config "
NOTE += "are not the task's to change):"


def after_run_tool(ctx: RunContext) -> list[str]:
    """After each ``run`` call: the git folder as it was; what was undone."""
    return gitguard.restore(ctx.evidence)


def end_of_run(ctx: RunContext, attempt: int) -> None:
    """When the run stops, however it stops: the git folder as it was, escapees killed; both
    written to the ledger (and so to the report) and said."""
    events = [Event(kind="guard", summary=line) for line in gitguard.restore(ctx.evidence)]
    if killed := process.kill_adopted():
        events.append(
            Event(kind="guard", summary=f"killed {killed} process(es) left running outside "
                  "their process group")
        )  # fmt: skip
    if events:
        ctx.ledger.note(ctx.run_id, attempt, events)
        for event in events:
            ctx.say(event)

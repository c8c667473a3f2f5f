"""Attacks on the promise "model-written code never sees your keys": git hooks and config planted
through the ``run`` tool, and every environment a command could read."""

from __future__ import annotations

import json
from pathlib import Path

from attacklib import (
    GOOD,
    PASSED,
    SECRETS,
    Outcome,
    attack,
    broke,
    call,
    environ,
    git,
    git_folder,
    held,
    leaked,
    project,
    run,
    said,
    shipyard,
)  # fmt: skip

PLANT = """
h="$(git rev-parse --git-common-dir)/hooks"
for n in post-checkout reference-transaction post-commit pre-commit; do
  printf '#!/bin/sh\\necho "$0 ran" >> {leak}\\nenv >> {leak}\\n' > "$h/$n"; chmod +x "$h/$n"
done
git config core.fsmonitor 'env >> {leak}; true'
git config alias.st '!env >> {leak}'
"""
CONFTEST_PLANT = """
import os, pathlib, stat, subprocess
git_dir = subprocess.run(["git", "rev-parse", "--git-common-dir"], capture_output=True,
                         text=True).stdout.strip()
if git_dir:
    hooks = pathlib.Path(git_dir) / "hooks"
    for name in ("post-checkout", "reference-transaction", "post-merge"):
        hook = hooks / name
        hook.write_text("#!/bin/sh\\necho \\"$0 ran\\" >> {leak}\\nenv >> {leak}\\n")
        hook.chmod(0o755)
"""


@attack
def git_hooks_planted_through_run(tmp: Path) -> Outcome:
    """A hook in ``$(git rev-parse --git-common-dir)/hooks`` (by the ``run`` tool and by the
    project's own conftest while the gates run): Shipyard's git must not run it, and the user's
    ``.git`` must be as before when the run ends, with what was removed said."""
    leak = tmp / "hook-ran.txt"
    proj = project(tmp)
    before = git_folder(proj)
    plant = call("run", command=PLANT.format(leak=leak))
    conftest = call("write", path="conftest.py", content=CONFTEST_PLANT.format(leak=leak))
    proc = run(tmp, proj, [plant, conftest, *GOOD], environ(tmp))
    if proc.returncode != 0:
        return broke(f"the run did not ship: {said(proc)}")
    if leak.exists():
        return broke(f"a planted hook ran during the run: {leak.read_text()[:300]}")
    if (now := git_folder(proj)) != before:
        changed = sorted(set(now) ^ set(before) | {k for k in now if now[k] != before.get(k)})
        return broke(f"the user's .git differs after the run: {changed}")
    if "removed" not in proc.stdout or "post-checkout" not in proc.stdout:
        return broke(f"the run did not say what it removed: {said(proc)}")
    gained = next((ln for ln in proc.stdout.splitlines() if "it had gained" in ln), "")
    if "fsmonitor" not in gained or "bare = false" in gained:
        return broke(f"the run did not say what the config gained, and only that: {gained!r}")
    report = next((proj / ".shipyard" / "runs").glob("r-*/report.md")).read_text()
    if "post-checkout" not in report:
        return broke("the report does not say what was removed")
    git(proj, "checkout", "-q", "-b", "after-the-run")
    if leak.exists():
        return broke("the user's next git checkout ran a hook the model planted")
    return held("no planted hook ran; .git/hooks and .git/config as before; removal reported")


DUMP = """
import os, sys, pathlib
out = pathlib.Path({out!r})
out.mkdir(exist_ok=True)
label = globals().get("LABEL") or sys.argv[1]
parts, chain, pid = [], [], os.getpid()
while pid > 1:  # ancestors first: who started us
    chain.append(pid)
    status = pathlib.Path(f"/proc/{{pid}}/status").read_text()
    pid = int(next(l for l in status.splitlines() if l.startswith("PPid:")).split()[1])
for entry in pathlib.Path("/proc").iterdir():  # then every process we can read
    if not entry.name.isdigit():
        continue
    try:
        cmd = (entry / "cmdline").read_bytes().replace(b"\\0", b" ")
        env = (entry / "environ").read_bytes()
    except OSError:
        continue
    mark = b"ANCESTOR " if int(entry.name) in chain else b""
    parts.append(mark + entry.name.encode() + b" " + cmd + b"\\n" + env + b"\\n")
(out / f"{{label}}-{{os.getpid()}}.all").write_bytes(b"".join(parts))
own = "\\n".join(f"{{k}}={{v}}" for k, v in os.environ.items())
(out / f"{{label}}-{{os.getpid()}}.own").write_text(own)
"""


@attack
def secrets_read_by_model_code(tmp: Path) -> Outcome:
    """The ``run`` tool and the test suite dump their own environment and ``/proc/*/environ`` of
    every process they can read, ancestors included. No key may be there (not the declared
    provider's ``LLM_BEARER``, though it is also named in ``[environment] pass``; not
    ``STRIPE_SK`` nor ``SLACK_WEBHOOK``, which no name filter catches); ``PASS_ME`` must."""
    out = tmp / "dumps"
    dump = tmp / "dump.py"
    dump.write_text(DUMP.format(out=str(out)))
    proj = project(tmp)
    conftest = f"import runpy\nrunpy.run_path({str(dump)!r}, {{'LABEL': 'import'}})\n"
    replies = [
        call("run", command=f"python {dump} run"),
        call("write", path="conftest.py", content=conftest),
        *GOOD,
    ]
    proc = run(tmp, proj, replies, environ(tmp))
    if proc.returncode != 0:
        return broke(f"the run did not ship: {said(proc)}")
    files = sorted(out.glob("*"))
    if not any(f.name.startswith("run-") for f in files) or not any(
        f.name.startswith("import-") for f in files
    ):
        return broke(f"the dumps were not all made: {[f.name for f in files]}")
    if found := leaked(files + _evidence(proj)):
        return broke(f"secrets seen by model-written code: {', '.join(sorted(set(found)))}")
    own = next(f for f in files if f.name.startswith("run-") and f.suffix == ".own").read_text()
    if f"PASS_ME={PASSED['PASS_ME']}" not in own:
        return broke("[environment] pass did not pass PASS_ME to the run tool")
    ancestors = [
        line for f in files if f.suffix == ".all"
        for line in f.read_bytes().split(b"\n") if line.startswith(b"ANCESTOR ")
    ]  # fmt: skip
    if not any(b"shipyard" in a and b" run " in a for a in ancestors):
        return broke("the dump never reached Shipyard among the ancestors: the check is void")
    names = ", ".join(SECRETS)
    return held(f"none of {names} in any environment the tools could read, Shipyard's included")


def _evidence(proj: Path) -> list[Path]:
    return [p for p in (proj / ".shipyard").rglob("*") if p.is_file() and p.suffix != ".db"]


@attack
def verify_keeps_the_callers_environment(tmp: Path) -> Outcome:
    """Not an attack but the line drawn: plain ``shipyard verify`` passes the caller's
    environment on (a CI job needs its ``DATABASE_URL``)."""
    proj = project(tmp, {"tests/test_env.py": """
        import os
        def test_env():
            assert os.environ["STRIPE_SK"] == "sekrit-stripe-91c2"
    """})  # fmt: skip
    proc = shipyard("verify", "--json", cwd=proj, env=environ(tmp))
    if proc.returncode != 0:
        return broke(f"plain verify did not pass the caller's environment: {said(proc)}")
    verdict = json.loads(proc.stdout)["verdict"]
    return held(f"{verdict}: plain verify keeps the caller's environment")

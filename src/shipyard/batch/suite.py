"""The suite file (YAML): validated like every other format, by file, field and line.

```yaml
defaults: { model: "openai:gpt-4.1", budget: { attempts: 3 }, timeout: 1800 }
tasks:
  - id: pycalc-power
    project: ../pycalc                 # a folder, or a git URL/path with `commit:`
    task: add a power operation
    spec: sessions/power.spec.yaml     # a path, an inline mapping, or `plan: true`
    model: "script:sessions/pycalc-power.yaml"
```

Paths are relative to the suite file, or absolute. Each task's *digest* covers its resolved
definition and the contents of the files it names, so editing one task re-runs only that one.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shipyard.exceptions import InputError
from shipyard.formats import load_yaml, read_text, validate

TASK_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
MAX_TASKS = 10_000


class SuiteError(InputError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Strict):
    model: str | None = None
    implementer: str | None = None
    budget: dict[str, int | float] = Field(default_factory=dict)
    timeout: Annotated[float, Field(gt=0, le=86_400)] = 3600
    """Seconds one task's ``shipyard run`` may take before its whole process tree is stopped."""
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    """Ray's ``max_retries``: how often a task whose worker died is run again."""


class TaskModel(_Strict):
    id: Annotated[str, Field(pattern=f"^{TASK_ID}$")]
    project: Annotated[str, Field(min_length=1)]
    commit: str | None = None
    task: Annotated[str, Field(min_length=1, max_length=20_000)]
    spec: str | dict[str, Any] | None = None
    plan: bool = False
    model: str | None = None
    implementer: str | None = None
    budget: dict[str, int | float] | None = None
    timeout: Annotated[float, Field(gt=0, le=86_400)] | None = None
    hidden: str | None = None
    """For ``shipyard bench``: the checks that judge the result, never shown to an agent."""

    @field_validator("task")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("contains a NUL character")
        return value

    @model_validator(mode="after")
    def _one_spec(self) -> TaskModel:
        if self.plan and self.spec is not None:
            raise ValueError("give either `spec` or `plan: true`, not both")
        if not self.plan and self.spec is None:
            raise ValueError("needs a `spec` (a path or a mapping), or `plan: true`")
        return self


class SuiteModel(_Strict):
    defaults: Defaults = Field(default_factory=Defaults)
    tasks: Annotated[list[TaskModel], Field(min_length=1, max_length=MAX_TASKS)]

    @model_validator(mode="after")
    def _unique(self) -> SuiteModel:
        seen: set[str] = set()
        for task in self.tasks:
            if task.id in seen:
                raise ValueError(f"task id {task.id!r} is used twice")
            seen.add(task.id)
        return self


@dataclass(frozen=True, kw_only=True)
class TaskPlan:
    """One task, resolved: what a worker needs, with absolute paths and no defaults left."""

    id: str
    task: str
    project: str
    """An absolute folder, or a git URL (then ``commit`` is set)."""
    commit: str | None
    spec_file: str | None
    spec_inline: str | None
    """An inline spec, as YAML text; written beside the checkout, outside it."""
    model: str | None
    implementer: str | None
    budget: dict[str, int | float] = field(default_factory=dict)
    timeout: float
    retries: int
    hidden: str | None
    digest: str
    naive: bool = False
    """Run with ``shipyard run --naive`` (``shipyard bench``'s baseline)."""
    knowledge: bool = True
    """False: the checkout's ``shipyard.toml`` gets ``[knowledge] enabled = false``."""
    knowledge_in: str | None = None
    """A ``shipyard memory export`` (Markdown) imported into the checkout before the run."""
    judge: bool = False
    """After a shipped run, verify the shipped tree with the hidden checks (``judge.py``)."""


BENCH_DEFAULTS: dict[str, Any] = {
    "naive": False, "knowledge": True, "knowledge_in": None, "judge": False,
}  # fmt: skip


def redigest(plan: TaskPlan, **changes: Any) -> TaskPlan:
    """The plan with ``changes`` and the digest they give."""
    changed = TaskPlan(**{**asdict(plan), **changes, "digest": ""})
    return TaskPlan(**{**asdict(changed), "digest": _digest(changed)})


@dataclass(frozen=True, kw_only=True)
class Suite:
    path: Path
    tasks: tuple[TaskPlan, ...]


def load_suite(path: Path) -> Suite:
    """Read and validate a suite file; every named file must exist (exit 2 otherwise)."""
    path = path.resolve()
    if not path.is_file():
        raise SuiteError("not a regular file (or missing)", file=str(path))
    text = read_text(path, SuiteError)
    data, lines = load_yaml(text, str(path), SuiteError)
    if not isinstance(data, dict):
        raise SuiteError("must be a mapping with `tasks:`", file=str(path))
    model: SuiteModel = validate(SuiteModel, data, file=str(path), lines=lines, error=SuiteError)
    plans = []
    for index, task in enumerate(model.tasks):
        where = (str(path), f"tasks[{index}]", lines.get(("tasks", index)))
        plans.append(_plan(task, model.defaults, path.parent, where))
    return Suite(path=path, tasks=tuple(plans))


def _plan(
    task: TaskModel, defaults: Defaults, base: Path, where: tuple[str, str, int | None]
) -> TaskPlan:
    file, prefix, line = where

    def fail(field_name: str, message: str) -> SuiteError:
        return SuiteError(message, file=file, field=f"{prefix}.{field_name}", line=line)

    project = _project(task, base, fail)
    spec_file = _existing(base, task.spec, "spec", fail) if isinstance(task.spec, str) else None
    inline = None
    if isinstance(task.spec, dict):
        import yaml

        inline = yaml.safe_dump(task.spec, sort_keys=False, allow_unicode=True)
    model = _model(task.model or defaults.model, base, fail)
    implementer = task.implementer or defaults.implementer
    if model is None and implementer is None:
        raise fail("model", "no model and no implementer (set one here or in `defaults`)")
    hidden = _existing(base, task.hidden, "hidden", fail) if task.hidden else None
    plan = TaskPlan(
        id=task.id, task=task.task, project=project, commit=task.commit,
        spec_file=spec_file, spec_inline=inline, model=model, implementer=implementer,
        budget={**defaults.budget, **(task.budget or {})},
        timeout=task.timeout or defaults.timeout, retries=defaults.retries, hidden=hidden,
        digest="",
    )  # fmt: skip
    return TaskPlan(**{**asdict(plan), "digest": _digest(plan)})


def _project(task: TaskModel, base: Path, fail: Any) -> str:
    if re.match(r"^[a-z][a-z0-9+.-]*://", task.project) or task.project.endswith(".git"):
        if not task.commit:
            raise fail("commit", "a git project needs `commit:` (a revision to check out)")
        return task.project if "://" in task.project else str((base / task.project).resolve())
    folder = (base / task.project).resolve()
    if not folder.is_dir():
        raise fail("project", f"{task.project!r}: no such folder (relative to the suite file)")
    if task.commit and not (folder / ".git").exists():
        raise fail("commit", f"{task.project!r} is a folder, not a git repository")
    return str(folder)


def _existing(base: Path, name: str | None, field_name: str, fail: Any) -> str | None:
    if name is None:
        return None
    found = (base / name).resolve()
    if not found.exists():
        raise fail(field_name, f"{name!r}: not found (relative to the suite file)")
    return str(found)


def _model(model: str | None, base: Path, fail: Any) -> str | None:
    if model is None or not model.startswith("script:"):
        return model
    return "script:" + str(_existing(base, model.removeprefix("script:"), "model", fail))


def _digest(plan: TaskPlan) -> str:
    """The task's definition and the contents of the files it names (not of its project)."""
    fields = asdict(plan)
    for key, default in BENCH_DEFAULTS.items():  # a plain batch task digests as it always did
        if fields[key] == default:
            del fields[key]
    h = hashlib.sha256(json.dumps(fields, sort_keys=True).encode())
    for name in (plan.spec_file, (plan.model or "").removeprefix("script:"), plan.hidden):
        if name and Path(name).is_file():
            h.update(Path(name).read_bytes())
    if (files := hidden_files(plan.hidden)) is not None:
        for path in sorted(p for p in files.rglob("*") if p.is_file()):
            h.update(str(path.relative_to(files)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def hidden_files(hidden: str | None) -> Path | None:
    """The ``hidden_files/`` folder beside a hidden spec: copied into the judged tree only."""
    if hidden is None:
        return None
    folder = Path(hidden).parent / "hidden_files"
    return folder if folder.is_dir() else None


Outcome = Literal["shipped", "blocked", "error"]

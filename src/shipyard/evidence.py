"""The evidence folder of one verify: ``.shipyard/runs/<id>/``, ignored by git."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_DIR = ".shipyard"


def state_dir(project: Path) -> Path:
    path = project / STATE_DIR
    path.mkdir(exist_ok=True)
    ignore = path / ".gitignore"
    if not ignore.exists():
        ignore.write_text(
            "# Shipyard's state: runs, evidence, database. Not for version control.\n*\n"
        )
    return path


def new_run_id(prefix: str = "v") -> str:
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def create(cls, project: Path, run_id: str) -> RunDir:
        path = state_dir(project) / "runs" / run_id
        path.mkdir(parents=True)
        return cls(path)

    def file(self, relative: str) -> Path:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def rel(self, target: Path) -> str:
        return str(target.relative_to(self.path))

    def write_json(self, relative: str, data: Any) -> Path:
        target = self.file(relative)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
        tmp.replace(target)
        return target

"""The verdict cache: a verify whose inputs are identical to a stored verdict's answers at once.

The key is a digest of everything a verdict depends on: the project's files (tracked and
untracked, not ignored), the spec, the config, the base commit, the env files, the environment's
identity (lock files, what is installed in ``.venv`` and ``node_modules``, the programs on PATH),
Shipyard's version, the browser's, and the mode (which required tests fail-to-pass applies to).
A stored verdict also names the files it read that the key does not cover (``[commands]
env_file`` elsewhere than ``.env*`` at the root); it answers only while their bytes are the same.
``error`` verdicts are never stored. Nothing here imports pydantic: a cache hit stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shipyard import __version__, workspace
from shipyard.evidence import state_dir
from shipyard.results import Verdict, verdict_from_json

CACHE_DIR = "cache"
IGNORED = "__pycache__/\n*.py[co]\n.pytest_cache/\n.shipyard/\n"
"""Never part of the key, whatever the project's .gitignore says."""
LOCK_FILES = (
    "uv.lock", "poetry.lock", "Pipfile.lock", "pdm.lock", "requirements.txt",
    "requirements-dev.txt", "package-lock.json", "npm-shrinkwrap.json", "yarn.lock",
    "pnpm-lock.yaml", "bun.lockb",
)  # fmt: skip
PROGRAMS = ("python", "python3", "node", "npm", "npx", "uv")
PATH_VARIABLES = ("PATH", "PYTHONPATH", "NODE_PATH", "VIRTUAL_ENV", "SHIPYARD_CHROMIUM")
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
SKIP_DIRS = {".git", ".shipyard", "node_modules", ".venv", "__pycache__", ".pytest_cache"}


@dataclass(frozen=True, kw_only=True)
class KeyParts:
    tree: str
    spec: str
    config: str
    base: str | None
    env_files: str
    environment: str
    shipyard: str
    browser: str
    mode: str

    @property
    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def _sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


FILE_LIMIT = 16 * 1024 * 1024


def _file_sha(path: Path) -> str | None:
    """The digest of a regular file's bytes; None for anything else (a FIFO or a device is
    never opened: the gates' own reading refuses it, as bad input)."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > FILE_LIMIT:
            return None
        return _sha(path.read_bytes())
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None


def tree_id(project: Path) -> str:
    """A git tree of the project folder as it is (a private index: the user's is untouched),
    or, outside git, a digest of every file's path and content."""
    top = workspace.git("rev-parse", "--show-toplevel", cwd=project, check=False)
    if top.returncode != 0:
        return "files:" + _walk_digest(project)
    folder = state_dir(project) / CACHE_DIR
    folder.mkdir(exist_ok=True)
    ignore = folder / "tree.ignore"
    if not ignore.exists():
        ignore.write_text(IGNORED)
    shared = folder / "tree.index"
    fd, own = tempfile.mkstemp(prefix="tree.index.", dir=folder)
    os.close(fd)
    try:
        if shared.exists():
            # copy2 keeps the index's mtime: git's racy-clean check compares each entry with it,
            # so a same-size edit within the index's second is still seen as a change
            shutil.copy2(shared, own)
        else:
            os.unlink(own)  # git wants no file rather than an empty one
        env = {"GIT_INDEX_FILE": own}
        workspace.git("-c", f"core.excludesFile={ignore}", "add", "-A", "--", ".",
                      cwd=project, env=env)  # fmt: skip
        tree = workspace.git("write-tree", cwd=project, env=env).stdout.strip()
        os.replace(own, shared)  # the stat data makes the next add fast
    finally:
        Path(own).unlink(missing_ok=True)
    return "git:" + tree


def _walk_digest(project: Path) -> str:
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(project):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = Path(root) / name
            digest.update(str(path.relative_to(project)).encode() + b"\0")
            digest.update((_file_sha(path) or "-").encode())
    return digest.hexdigest()


def env_files(project: Path) -> str:
    found = sorted(p for p in project.glob(".env*") if p.is_file())
    return _sha("\n".join(f"{p.name}:{_file_sha(p)}" for p in found))


def _listing(folder: Path, patterns: Iterable[str]) -> list[str]:
    return sorted(str(p.relative_to(folder)) for pattern in patterns for p in folder.glob(pattern))


def _program(name: str, path: str) -> str:
    found = shutil.which(name, path=path)
    if found is None:
        return f"{name}:-"
    real = os.path.realpath(found)
    try:
        info = os.stat(real)
    except OSError:
        return f"{name}:{real}"
    return f"{name}:{real}:{info.st_size}:{info.st_mtime_ns}"


def environment(project: Path, environ: Mapping[str, str]) -> str:
    """Lock files, installed packages (names with versions), the programs PATH resolves to."""
    parts = [f"{n}:{_file_sha(project / n)}" for n in LOCK_FILES if (project / n).exists()]
    venv = project / ".venv"
    if venv.is_dir():
        parts.append(f"venv-cfg:{_file_sha(venv / 'pyvenv.cfg')}")
        parts += _listing(venv, ["lib/*/site-packages/*.dist-info", "lib/*/site-packages/*.pth"])
    modules = project / "node_modules"
    if modules.is_dir():
        lock = _file_sha(modules / ".package-lock.json")
        parts += [f"node-lock:{lock}"] if lock else _listing(modules, ["*", "@*/*"])
    parts += [f"{v}={environ.get(v, '')}" for v in PATH_VARIABLES]
    path = environ.get("PATH", os.defpath)
    parts += [_program(name, path) for name in PROGRAMS]
    return _sha("\n".join(parts))


def browser(environ: Mapping[str, str]) -> str:
    configured = environ.get("SHIPYARD_CHROMIUM")
    path = environ.get("PATH", os.defpath)
    if configured:
        return _program(configured, path)
    return ";".join(_program(name, path) for name in BROWSERS)


def key_parts(
    project: Path,
    *,
    spec: str,
    config: str,
    base: str | None,
    environ: Mapping[str, str],
    mode: str = "all",
    tree: str | None = None,
) -> KeyParts:
    """``spec`` and ``config`` are their identities (the resolved models' JSON, or the files'
    bytes); ``tree`` a git tree the caller already has (the loop's snapshot of a submission)."""
    return KeyParts(
        tree=tree or tree_id(project),
        spec=_sha(spec),
        config=_sha(config),
        base=base,
        env_files=env_files(project),
        environment=environment(project, environ),
        shipyard=__version__,
        browser=browser(environ),
        mode=mode,
    )


def file_identity(path: Path | None) -> str:
    if path is None:
        return "none"
    return f"{path}:{_file_sha(path)}"


def config_identity(project: Path) -> str:
    """The bytes ``load_config`` would read: ``shipyard.toml``, else ``pyproject.toml``."""
    own = project / "shipyard.toml"
    return file_identity(own if own.is_file() else project / "pyproject.toml")


@dataclass(frozen=True)
class VerdictCache:
    folder: Path

    @classmethod
    def of(cls, project: Path) -> VerdictCache:
        return cls(state_dir(project) / CACHE_DIR / "verdicts")

    def _file(self, parts: KeyParts) -> Path:
        return self.folder / f"{parts.digest}.json"

    def lookup(self, parts: KeyParts, evidence: Path | None = None) -> Verdict | None:
        """The stored verdict for these inputs, when its evidence is still there; copied into
        ``evidence`` (a new folder) when the caller wants its own."""
        try:
            doc = json.loads(self._file(parts).read_text())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        if not isinstance(doc, dict) or doc.get("key") != asdict(parts):
            return None
        stored = doc.get("verdict")
        if not isinstance(stored, dict) or not Path(str(stored.get("run_dir"))).is_dir():
            return None
        watched = doc.get("watched") or {}
        if not isinstance(watched, dict) or any(
            _file_sha(Path(str(name))) != digest for name, digest in watched.items()
        ):
            return None  # a file the verdict read (the env_file) has changed since
        return _answer(stored, evidence)

    def store(self, parts: KeyParts, verdict: Verdict, watched: Iterable[Path] = ()) -> None:
        """``watched``: files outside the key the verdict depends on, compared at lookup."""
        if verdict.status == "error":
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self._file(parts)
        doc = {
            "key": asdict(parts), "verdict": verdict.to_json(),
            "watched": {str(path): _file_sha(path) for path in watched},
        }  # fmt: skip
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, default=str))
        tmp.replace(target)


def _answer(stored: dict[str, Any], evidence: Path | None) -> Verdict:
    origin = str(stored.get("cached_from") or stored["run_id"])
    doc = {**stored, "cached": True, "cached_from": origin}
    if evidence is not None:
        shutil.copytree(stored["run_dir"], evidence)
        doc.update(run_id=evidence.name, run_dir=str(evidence))
        (evidence / "verdict.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return verdict_from_json(doc)

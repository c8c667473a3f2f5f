"""Where tasks run: a local pool of threads (each task is its own ``shipyard run`` process) or a
Ray cluster. Both take plans and yield results as tasks finish; ``close`` stops what is left.

Ray is optional (``shipyard[batch]``) and imported here only. Its workers are not the driver's
children: a worker that dies takes its ``shipyard run`` with it (the launcher's death signal),
and Ray runs the task again (``max_retries``) in a fresh folder. A task whose retries are spent
comes back as an ``error`` row with Ray's reason, never missing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Any, Protocol

from shipyard.batch.suite import TaskPlan
from shipyard.batch.task import TaskResult, run_task
from shipyard.exceptions import EnvironmentProblem, InputError

Started = Callable[[TaskPlan], None]


class Engine(Protocol):
    def results(self, plans: Sequence[TaskPlan], started: Started) -> Iterator[TaskResult]: ...

    def close(self) -> None: ...


class LocalEngine:
    """A pool of ``workers`` threads; each runs one task's subprocess at a time."""

    def __init__(self, workers: int) -> None:
        self.cancel = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch")

    def results(self, plans: Sequence[TaskPlan], started: Started) -> Iterator[TaskResult]:
        def one(plan: TaskPlan) -> TaskResult:
            if self.cancel.is_set():
                return _failed(plan, "cancelled")
            started(plan)
            return run_task(plan, self.cancel)

        futures: dict[Future[TaskResult], TaskPlan] = {self.pool.submit(one, p): p for p in plans}
        for future in as_completed(futures):
            yield future.result()

    def close(self) -> None:
        self.cancel.set()
        self.pool.shutdown(wait=True, cancel_futures=True)


class RayEngine:
    """Tasks as Ray tasks: a local cluster on 127.0.0.1, or the one at ``address``."""

    def __init__(self, workers: int, address: str | None) -> None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")  # workers use this Python
        try:
            import ray
        except ImportError as exc:
            raise EnvironmentProblem(
                "--engine ray needs Ray: install shipyard[batch] (pip install 'shipyard[batch]')"
            ) from exc
        self.ray = ray
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        options["logging_level"] = logging.WARNING
        if address is None:
            options |= {"num_cpus": workers, "_node_ip_address": "127.0.0.1"}
        try:
            ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise EnvironmentProblem(f"could not start or reach Ray ({address}): {exc}") from exc
        self.pending: dict[Any, TaskPlan] = {}

    def results(self, plans: Sequence[TaskPlan], started: Started) -> Iterator[TaskResult]:
        ray = self.ray
        for plan in plans:
            remote = ray.remote(num_cpus=1, max_retries=plan.retries, retry_exceptions=False)
            self.pending[remote(run_task).remote(plan)] = plan
            started(plan)
        while self.pending:
            done, _ = ray.wait(list(self.pending), num_returns=1)
            plan = self.pending.pop(done[0])
            yield self._get(done[0], plan)

    def _get(self, ref: Any, plan: TaskPlan) -> TaskResult:
        from ray import exceptions as rex

        try:
            result: TaskResult = self.ray.get(ref)
        except (rex.WorkerCrashedError, rex.NodeDiedError) as exc:
            return _failed(plan, f"its worker died {plan.retries + 1} time(s): {exc}")
        except rex.RayError as exc:
            return _failed(plan, f"Ray could not run it: {str(exc)[-2000:]}")
        return result

    def close(self) -> None:
        for ref in self.pending:
            self.ray.cancel(ref, force=True)
        self.pending.clear()
        self.ray.shutdown()


def make_engine(name: str, workers: int, address: str | None) -> Engine:
    if name == "local":
        if address is not None:
            raise InputError("--address is for --engine ray", field="--address")
        return LocalEngine(workers)
    if name == "ray":
        return RayEngine(workers, address)
    raise InputError(f"unknown engine {name!r}: local or ray", field="--engine")


def _failed(plan: TaskPlan, reason: str) -> TaskResult:
    return TaskResult(
        id=plan.id, digest=plan.digest, outcome="error", attempts=None, tokens=None, seconds=0.0,
        run_id=None, exit_code=None, reason=reason,
    )  # fmt: skip

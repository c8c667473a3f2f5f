"""A running run's new events, as server-sent events; and the page script that shows them.

``GET /runs/<id>/events?after=N`` answers ``text/event-stream``: one ``step`` event (``id:`` the
ledger's event id, ``data:`` JSON with kind, summary, attempt, offset) per event written after
``N`` (or after the ``Last-Event-ID`` a reconnecting browser sends), polled every
:data:`POLL_SECONDS`; then, once the run is no longer running, one ``end`` event with its status.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from shipyard.exceptions import ShipyardError
from shipyard.store.reads import ReadLedger
from shipyard.store.rows import S

POLL_SECONDS = 0.4
HEARTBEAT_SECONDS = 15.0
BATCH = 500


async def stream(open_ledger: Callable[[], ReadLedger[S]], request: Request) -> Response:
    run_id = request.path_params["run_id"]
    after = _after(request)
    try:
        ledger = await anyio.to_thread.run_sync(open_ledger)
    except ShipyardError as exc:
        return PlainTextResponse(f"{exc}\n", status_code=404)
    try:
        record = await anyio.to_thread.run_sync(ledger.run, run_id)
    except ShipyardError as exc:
        ledger.close()
        return PlainTextResponse(f"{exc}\n", status_code=404)
    headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
    body = _events(ledger, record.id, record.created_at, after)
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


def _after(request: Request) -> int:
    for value in (request.headers.get("last-event-id"), request.query_params.get("after")):
        if value and value.isdigit():
            return int(value)
    return 0


async def _events(
    ledger: ReadLedger[S], run_id: str, start: float, after: int
) -> AsyncIterator[str]:
    idle = 0.0
    try:
        yield "retry: 2000\n\n"
        while True:
            events, status = await anyio.to_thread.run_sync(_poll, ledger, run_id, after)
            for e in events:
                after = max(after, e["id"])
                e["offset"] = round(e.pop("at") - start, 3)
                yield f"id: {e['id']}\nevent: step\ndata: {json.dumps(e)}\n\n"
            if events:
                idle = 0.0
            elif status != "running":
                yield f"event: end\ndata: {json.dumps({'status': status})}\n\n"
                return
            await anyio.sleep(POLL_SECONDS)
            idle += POLL_SECONDS
            if idle >= HEARTBEAT_SECONDS:
                idle = 0.0
                yield ": still here\n\n"
    finally:
        ledger.close()


def _poll(
    ledger: ReadLedger[S], run_id: str, after: int
) -> tuple[list[dict[str, Any]], str | None]:
    events = ledger.events(run_id, after=after)[:BATCH]
    status = ledger.status_of(run_id)
    return [
        {"id": e.id, "at": e.at or 0.0, "kind": e.kind, "summary": e.summary[:2000],
         "attempt": e.attempt, "ok": (e.data or {}).get("ok") if e.kind == "tool" else None}
        for e in events
    ], status  # fmt: skip

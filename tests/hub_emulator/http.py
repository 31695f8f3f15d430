"""Request and response helpers of the emulator, shaped like the Hub's."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .git_store import StoreError


async def json_body(request: Request, required: tuple[str, ...] = ()) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise StoreError(400, f"the body is not JSON: {exc}") from exc
    missing = [k for k in required if k not in body]
    if missing:
        raise StoreError(400, f"missing fields: {missing}")
    return dict(body)


def error(
    status: int,
    message: str,
    code: str | None = None,
    *,
    headers: dict | None = None,
    extra: dict | None = None,
) -> Response:
    all_headers = {"X-Error-Message": message, **(headers or {})}
    if code:
        all_headers["X-Error-Code"] = code
    return JSONResponse(
        {"error": message, **(extra or {})}, status_code=status, headers=all_headers
    )


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")

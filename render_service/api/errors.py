"""Exception handlers: every error a user can act on becomes a 4xx whose ``detail`` says what to do; anything else
is a bug, logged with its traceback and shown as a generic 500 (the client learns nothing of the internals).

422 bodies are :class:`~render_service.schemas.ValidationErrorBody` (a list of ``{loc, msg, value}``), every other
error body is :class:`~render_service.schemas.ErrorBody` (``{"detail": "<sentence>"}``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from render_service.api.actions import RequestProblem, ServiceUnavailable
from render_service.schemas import FieldProblem
from semcoat.errors import SemcoatError
from semcoat.params import SpecError, quoted

log = logging.getLogger(__name__)

MAX_PROBLEMS = 100


def _problems_body(problems: list[FieldProblem]) -> dict[str, Any]:
    return {"detail": [p.model_dump() for p in problems[:MAX_PROBLEMS]]}


def validation_problems(errors: list[Any]) -> list[FieldProblem]:
    """pydantic's / FastAPI's errors as ``{loc, msg, value}`` (the value quoted and shortened, never echoed whole)."""
    problems = []
    for error in errors:
        loc = [p if isinstance(p, int) else str(p) for p in error.get("loc", ())]
        msg = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error", msg)
            problems.append(FieldProblem(loc=["body"], msg=f"the body is not valid JSON ({reason}); send a JSON object",
                                         value=None))
            continue
        problems.append(FieldProblem(loc=loc, msg=msg, value=quoted(error["input"]) if "input" in error else None))
    return problems


async def _request_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(_problems_body(validation_problems(list(exc.errors()))), status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _request_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestProblem)
    return JSONResponse(_problems_body(exc.problems), status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "30"})


async def _semcoat_error(_request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, SpecError):
        from render_service.api.actions import spec_problems

        return JSONResponse(_problems_body(spec_problems(exc)), status.HTTP_422_UNPROCESSABLE_CONTENT)
    return JSONResponse({"detail": str(exc)}, status.HTTP_400_BAD_REQUEST)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    if exc.status_code == status.HTTP_404_NOT_FOUND and detail == "Not Found":
        detail = "no such resource; the API lives under /api/v1 (see /docs)"
    elif exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED and detail == "Method Not Allowed":
        detail = "this method is not allowed here (see /docs for what each path accepts)"
    return JSONResponse({"detail": detail}, exc.status_code, headers=exc.headers)


async def _bug(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error; the service logged it. Please report it to the admin"},
                        status.HTTP_500_INTERNAL_SERVER_ERROR)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(RequestProblem, _request_problem)
    app.add_exception_handler(ServiceUnavailable, _unavailable)
    app.add_exception_handler(SemcoatError, _semcoat_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _bug)

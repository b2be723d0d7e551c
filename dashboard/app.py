"""The dashboard's HTTP side: the page, its two bundled files and one JSON snapshot.

``GET /`` the page (Persian, right to left; ``?lang=en`` English), ``GET /static/...`` its
script and style (shipped in the package: no network needed), ``GET /api/snapshot`` every
figure the page shows, ``GET /healthz`` liveness. Read-only: no route changes anything.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse, Response

from consumers.clickhouse.engine import EngineError
from dashboard.reading import Snapshots

STATIC = files("dashboard").joinpath("static")
NO_STORE = {"Cache-Control": "no-store"}
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def create_app(snapshots: Snapshots, *, refresh_seconds: float) -> FastAPI:
    app = FastAPI(title="samt124 dashboard", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        text = STATIC.joinpath("index.html").read_text(encoding="utf-8")
        return HTMLResponse(text.replace("{{refresh_ms}}", str(int(refresh_seconds * 1000))))

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        suffix = name[name.rfind(".") :] if "." in name else ""
        if suffix not in TYPES or "/" in name or name.startswith("."):
            raise HTTPException(status_code=404)
        found = STATIC.joinpath(name)
        if not found.is_file():
            raise HTTPException(status_code=404)
        return Response(found.read_bytes(), media_type=TYPES[suffix])

    @app.get("/api/snapshot")
    def snapshot() -> JSONResponse:
        try:
            body: dict[str, Any] = snapshots.get()
        except Exception as error:  # nothing read yet: say why, keep serving
            where = "ClickHouse" if isinstance(error, EngineError) else type(error).__name__
            return JSONResponse({"error": f"{where}: {error}"}, status_code=503, headers=NO_STORE)
        return JSONResponse(body, headers=NO_STORE)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app

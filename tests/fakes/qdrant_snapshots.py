"""A fake Qdrant for the snapshot API that scripts/backup.sh and scripts/restore.sh use, over real HTTP.

Collections hold opaque bytes standing for their points. ``POST /collections/<c>/snapshots`` freezes them into a
named snapshot, ``GET`` downloads it, ``DELETE`` removes it, and ``POST /collections/<c>/snapshots/upload`` (a
multipart ``snapshot`` file) replaces the collection with the uploaded one, as recovering from a snapshot does.
Requests without the ``api-key`` header get 401, as Qdrant answers with an API key set.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.asgi import serving


@dataclass
class FakeQdrant:
    api_key: str = "qdrant-test-key"
    collections: dict[str, bytes] = field(default_factory=dict[str, bytes])
    snapshots: dict[tuple[str, str], bytes] = field(default_factory=dict[tuple[str, str], bytes])
    uploads: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])
    """``(collection, priority)`` of every snapshot upload."""

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/collections", self.list_collections, methods=["GET"]),
                Route("/collections/{name}/snapshots", self.create_snapshot, methods=["POST"]),
                Route("/collections/{name}/snapshots/upload", self.upload_snapshot, methods=["POST"]),
                Route("/collections/{name}/snapshots/{snapshot}", self.snapshot, methods=["GET", "DELETE"]),
            ]
        )

    def _refused(self, request: Request) -> Response | None:
        if request.headers.get("api-key") != self.api_key:
            return JSONResponse({"status": {"error": "Must provide an API key"}}, 401)
        return None

    async def list_collections(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        names = [{"name": name} for name in sorted(self.collections)]
        return JSONResponse({"result": {"collections": names}, "status": "ok"})

    async def create_snapshot(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        name = request.path_params["name"]
        if name not in self.collections:
            return JSONResponse({"status": {"error": f"Collection `{name}` doesn't exist!"}}, 404)
        snapshot = f"{name}-{len(self.snapshots) + 1}.snapshot"
        self.snapshots[(name, snapshot)] = self.collections[name]
        return JSONResponse({"result": {"name": snapshot, "size": len(self.collections[name])}, "status": "ok"})

    async def snapshot(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        key = (request.path_params["name"], request.path_params["snapshot"])
        if key not in self.snapshots:
            return JSONResponse({"status": {"error": "snapshot not found"}}, 404)
        if request.method == "DELETE":
            del self.snapshots[key]
            return JSONResponse({"result": True, "status": "ok"})
        return Response(self.snapshots[key], media_type="application/octet-stream")

    async def upload_snapshot(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        form = await request.form()
        upload = form.get("snapshot")
        if not isinstance(upload, UploadFile):
            return JSONResponse({"status": {"error": "no snapshot file"}}, 400)
        name = request.path_params["name"]
        self.collections[name] = await upload.read()
        self.uploads.append((name, request.query_params.get("priority", "")))
        return JSONResponse({"result": True, "status": "ok"})


@asynccontextmanager
async def running_qdrant(fake: FakeQdrant) -> AsyncGenerator[str]:
    """Serve ``fake`` on a free port of 127.0.0.1 in this event loop; yields its URL."""
    async with serving(fake.app()) as port:
        yield f"http://127.0.0.1:{port}"

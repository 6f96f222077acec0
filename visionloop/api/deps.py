from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request

from visionloop.core.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

MAX_ID = 2**63 - 1  # SQLite's INTEGER: a larger id or offset would overflow in the query
RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="A row id")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="Rows to skip")]

#: OpenAPI for routes that answer with the stored image itself (not JSON).
IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The image, as stored",
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}, "image/png": {}},
    }
}

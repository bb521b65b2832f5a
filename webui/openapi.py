"""`GET /api/openapi.json`: the API's OpenAPI 3.1 document (webui/openapi.yaml, package data).

Open to everyone, like /healthz: it says what the API takes and answers, never what is stored.
tests/webui/test_openapi.py keeps it true: every /api route is in it and every answer fits it.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

import yaml
from flask import Blueprint, Response

from webui.formats import json_response

bp = Blueprint("openapi", __name__)


@cache
def document() -> dict[str, Any]:
    """The document, parsed once per process (it is package data, never changed at run time)."""
    return yaml.safe_load(files("webui").joinpath("openapi.yaml").read_text(encoding="utf-8"))


@bp.get("/api/openapi.json")
def openapi() -> Response:
    response = json_response(document())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response

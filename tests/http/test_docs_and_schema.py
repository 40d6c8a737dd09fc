"""``/docs`` offline and able to authenticate; ``/openapi.json`` declaring what each route takes and
answers; a method a documented path does not take answered 405 as the document says."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import Env
from tests.observability.support import scrape, value

METHODS = ("get", "put", "post", "delete", "patch")
ENVELOPE = {"code", "message", "request_id", "data"}


async def _spec(env: Env) -> dict[str, Any]:
    resp = await env.client.get("/openapi.json")
    assert resp.status_code == 200
    spec: dict[str, Any] = resp.json()
    return spec


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, m, op)
        for path, ops in spec["paths"].items()
        for m, op in ops.items()
        if m in METHODS
    ]


async def test_docs_use_only_same_origin_assets_and_they_are_served(env: Env) -> None:
    page = await env.client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    refs = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: *["']([^"']+)["']""", page.text)
    urls = [a or b for a, b in refs]
    assert len(urls) >= 4, page.text  # the script, the stylesheet, the icon, the document
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        got = await env.client.get(url)
        assert got.status_code == 200, url
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    js = await env.client.get("/docs/assets/swagger-ui-bundle.js")
    assert (
        js.headers["content-type"].startswith("text/javascript")
        and b"SwaggerUIBundle" in js.content
    )


async def test_an_unknown_asset_is_a_kling_404(env: Env) -> None:
    for name in ("nothing.js", "..%2F..%2Fpyproject.toml", "__init__.py"):
        resp = await env.client.get(f"/docs/assets/{name}")
        assert resp.status_code == 404 and resp.json()["code"] == 1203, name


async def test_every_kling_route_declares_the_bearer_scheme(env: Env) -> None:
    spec = await _spec(env)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["gatewayKey"] == {**schemes["gatewayKey"], "type": "http", "scheme": "bearer"}
    seen = 0
    for path, method, op in _operations(spec):
        if path.startswith("/kling/v1/results/"):
            assert op["security"] == [], path  # the signed link is the credential
        elif path.startswith("/admin/"):
            assert op["security"] == [{"adminToken": []}], (method, path)
        elif path.startswith(("/kling/", "/account/")):
            assert op["security"] == [{"gatewayKey": []}], (method, path)
            seen += 1
    assert seen >= 10


async def test_query_parameters_are_declared(env: Env) -> None:
    spec = await _spec(env)

    def params(path: str) -> dict[str, dict[str, Any]]:
        declared = spec["paths"][path]["get"]["parameters"]
        return {p["name"]: p for p in declared if p["in"] == "query"}

    paging = params("/kling/v1/videos/text2video")
    assert paging["pageNum"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
        "default": 1,
    }
    assert paging["pageSize"]["schema"]["maximum"] == 500
    costs = params("/account/costs")
    assert costs["start_time"]["required"] and costs["end_time"]["required"]
    usage = params("/kling/v1/account/usage")
    assert not usage["start_time"]["required"] and not usage["end_time"]["required"]


async def test_every_json_answer_has_a_schema_and_none_is_a_422(env: Env) -> None:
    spec = await _spec(env)
    for path, method, op in _operations(spec):
        where = (method, path)
        assert "422" not in op["responses"], where
        assert "200" in op["responses"], where
        for status, answer in op["responses"].items():
            for media, content in answer.get("content", {}).items():
                assert content.get("schema"), (where, status, media)
            schema = answer.get("content", {}).get("application/json", {}).get("schema")
            if schema is not None and path not in ("/healthz", "/readyz"):
                assert set(schema["required"]) == ENVELOPE, (where, status)
    assert "HTTPValidationError" not in spec.get("components", {}).get("schemas", {})


async def test_undeclared_methods_on_documented_paths_are_405_with_allow(env: Env) -> None:
    spec = await _spec(env)
    assert "MethodNotAllowed" in spec["components"]["responses"]
    for path, ops in spec["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "abc", path)
        declared = {m.upper() for m in ops if m in METHODS}
        for method in sorted({m.upper() for m in METHODS} - declared):
            resp = await env.client.request(method, concrete, headers=env.auth())
            where = (method, path)
            if resp.status_code == 405:
                body = resp.json()
                assert set(body) == ENVELOPE and body["code"] == 1202, where
                assert body["request_id"] == resp.headers["x-request-id"], where
                assert set(resp.headers["allow"].split(", ")) >= declared, where
            else:  # another documented template takes this method on the same concrete path
                assert any(
                    method.lower() in other
                    and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", p), concrete)
                    for p, other in spec["paths"].items()
                    if p != path
                ), (where, resp.status_code)


@pytest.mark.parametrize("path", ["/docs", "/openapi.json", "/docs/assets/{name}"])
async def test_docs_and_schema_are_counted_under_their_own_route(env: Env, path: str) -> None:
    url = path.replace("{name}", "swagger-ui.css")
    assert (await env.client.get(url)).status_code == 200
    samples = await scrape(env)
    assert value(samples, "kgw_http_requests_total", method="GET", route=path, code="200") == 1
    assert (
        value(samples, "kgw_http_requests_total", method="GET", route="unmatched", code="200")
        is None
    )

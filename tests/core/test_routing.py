"""Route selection by path shape (`core/routing.py`) declines only paths no route could match:
for every route template the app serves, every path its pattern matches has one of the shapes
the request could have, so the router serving it is never skipped; and requests to routes
registered late, early and on nested routers reach their route."""

import re

import httpx
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.routing import compile_path

from partnerbill.core.routing import FeatureRouter, request_shapes, template_shape

SEGMENT = st.text(alphabet="abcAZ09-_.~%", min_size=1, max_size=6)


def _templates(app: FastAPI) -> list[str]:
    return sorted({route.path for route in iter_route_contexts(app.routes) if route.path})


def test_every_template_has_a_shape_or_opts_its_router_out(app: FastAPI) -> None:
    templates = _templates(app)
    assert len(templates) > 150
    spanning = [t for t in templates if template_shape(t) is None]
    assert all(":path}" in t for t in spanning)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_path_a_template_matches_has_the_templates_shape(
    app: FastAPI, data: st.DataObject
) -> None:
    for template in _templates(app):
        shape = template_shape(template)
        if shape is None:
            continue
        path = re.sub(r"\{[^}]+\}", lambda _: data.draw(SEGMENT), template)
        regex = compile_path(template)[0]
        assert regex.match(path), (template, path)
        assert shape in request_shapes(path), (template, path)


@settings(max_examples=200, deadline=None)
@given(segments=st.lists(SEGMENT, min_size=0, max_size=5), trailing=st.booleans())
def test_no_template_matches_a_path_of_another_shape(segments: list[str], trailing: bool) -> None:
    path = "/" + "/".join(segments) + ("/" if trailing else "")
    for template in ("/v1/accounts/{account_key}", "/v1/invoices", "/{first}/x", "/v1/{a}/{b}"):
        if compile_path(template)[0].match(path):
            assert template_shape(template) in request_shapes(path)


async def test_routes_are_found_after_a_route_is_added_to_a_serving_router() -> None:
    router = FeatureRouter()

    @router.get("/v1/early")
    async def early() -> dict[str, str]:
        return {"route": "early"}

    app = FastAPI()
    app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://routing.test") as client:
        assert (await client.get("/v1/early")).json() == {"route": "early"}
        assert (await client.get("/v1/late/k1")).status_code == 404

        @router.get("/v1/late/{key}")
        async def late(key: str) -> dict[str, str]:
            return {"route": "late", "key": key}

        assert (await client.get("/v1/late/k1")).json() == {"route": "late", "key": "k1"}
        assert (await client.get("/v1/early")).json() == {"route": "early"}
        assert (await client.post("/v1/late/k1")).status_code == 405

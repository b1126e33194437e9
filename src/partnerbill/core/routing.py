"""Route selection by path shape: the routers every feature registers its routes on.

FastAPI tries an app's routes one by one and, inside each included router, that router's routes
one by one, a regular expression each: a request for a route registered late (`/health`, the
web UI) took about 300 tries, most of the CPU of a small request. A `FeatureRouter` knows the
shapes of the paths it serves — the number of segments and the first two segments where they
are literal — and declines at once a request whose path has none of them. It declines only what
none of its routes could match (a path-convertor route, which spans segments, makes its router
try everything), so which route serves a request, and every 404 and 405, is unchanged.

The shapes are computed on the first request, and again after a route or router is added to the
router itself; the routers included into it are complete before the app serves (`create_app`
registers everything first).
"""

from typing import Any, TypeAlias

from fastapi import APIRouter
from fastapi.routing import iter_route_contexts
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope

WILDCARD = None
# Segments compared literally after the count: the version and the resource.
LITERAL_SEGMENTS = 2

Shape: TypeAlias = tuple[int, str | None, str | None]


def template_shape(template: str) -> Shape | None:
    """The shape of a route template; None when it can span segments (a `path` convertor)."""
    if ":path}" in template:
        return None
    segments = template.split("/")
    literal = [
        WILDCARD if "{" in segment else segment for segment in segments[1 : 1 + LITERAL_SEGMENTS]
    ]
    literal += [WILDCARD] * (LITERAL_SEGMENTS - len(literal))
    return (len(segments), literal[0], literal[1])


def request_shapes(path: str) -> tuple[Shape, ...]:
    """Every shape a template matching `path` could have."""
    segments = path.split("/")
    count = len(segments)
    first = segments[1] if count > 1 else ""
    second = segments[2] if count > 2 else ""
    return (
        (count, first, second),
        (count, WILDCARD, second),
        (count, first, WILDCARD),
        (count, WILDCARD, WILDCARD),
    )


class FeatureRouter(APIRouter):
    """An `APIRouter` that declines requests whose path no route of it could match."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shapes: frozenset[Shape] | None = None
        self._spans_segments = False

    def _known_shapes(self) -> frozenset[Shape] | None:
        if self._shapes is None and not self._spans_segments:
            shapes = set()
            for route in iter_route_contexts(self.routes):
                shape = template_shape(route.path) if route.path else None
                if shape is None:
                    self._spans_segments = True
                    return None
                shapes.add(shape)
            self._shapes = frozenset(shapes)
        return self._shapes

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        shapes = self._known_shapes()
        if shapes is not None and shapes.isdisjoint(request_shapes(get_route_path(scope))):
            return Match.NONE, {}
        return super().matches(scope)

    def add_api_route(self, *args: Any, **kwargs: Any) -> None:
        self._forget_shapes()
        super().add_api_route(*args, **kwargs)

    def include_router(self, *args: Any, **kwargs: Any) -> None:
        self._forget_shapes()
        super().include_router(*args, **kwargs)

    def _forget_shapes(self) -> None:
        self._shapes = None
        self._spans_segments = False

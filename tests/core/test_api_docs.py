"""`/docs` over real HTTP: Swagger UI from the package's own assets, nothing from another origin."""

import re
from pathlib import Path

import httpx
import pytest

from partnerbill.core.api_docs import ASSETS_DIR

# Every URL the page names: attributes and the spec URL in its script.
_REFERENCES = re.compile(r"""(?:src|href)="([^"]+)"|url:\s*'([^']+)'""")
_CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
}


def _references(html: str) -> list[str]:
    return [a or b for a, b in _REFERENCES.findall(html)]


@pytest.fixture(scope="module")
def docs_page(live_server: str) -> str:
    page = httpx.get(f"{live_server}/docs", timeout=30)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    return page.text


def test_docs_page_names_only_same_origin_urls(docs_page: str) -> None:
    references = _references(docs_page)
    assert "/openapi.json" in references
    assets = [r for r in references if r != "/openapi.json"]
    assert len(assets) == 3, references  # the script, the stylesheet, the icon
    for reference in references:
        # A path on this server: no scheme, no host, not protocol-relative.
        assert reference.startswith("/") and not reference.startswith("//"), reference
    assert "http://" not in docs_page and "https://" not in docs_page, docs_page


def test_each_asset_is_served_whole_with_its_type(docs_page: str, live_server: str) -> None:
    for reference in _references(docs_page):
        if reference == "/openapi.json":
            continue
        answer = httpx.get(f"{live_server}{reference}", timeout=30)
        assert answer.status_code == 200, reference
        suffix = Path(reference).suffix
        media_type = answer.headers["content-type"].split(";")[0]
        assert media_type in _CONTENT_TYPES[suffix], (reference, media_type)
        assert answer.content == (ASSETS_DIR / Path(reference).name).read_bytes(), reference
    script = next(r for r in _references(docs_page) if r.endswith(".js"))
    assert b"SwaggerUIBundle" in httpx.get(f"{live_server}{script}", timeout=30).content


def test_no_redoc_and_docs_stay_out_of_the_document(live_server: str) -> None:
    assert httpx.get(f"{live_server}/redoc", timeout=30).status_code == 404
    assert httpx.get(f"{live_server}/docs/assets/missing.js", timeout=30).status_code == 404
    paths = httpx.get(f"{live_server}/openapi.json", timeout=30).json()["paths"]
    assert not [path for path in paths if path.startswith("/docs")], paths


def test_vendored_files_are_recorded() -> None:
    vendored = (ASSETS_DIR / "VENDORED.md").read_text()
    version = re.search(r"\| Version \| (\d+\.\d+\.\d+) \|", vendored)
    assert version, vendored
    bundle = (ASSETS_DIR / "swagger-ui-bundle.js").read_text()
    assert version.group(1) in bundle
    assert "Apache License" in (ASSETS_DIR / "LICENSE").read_text()

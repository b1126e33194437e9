"""`GET /v1/describe` and `GET /v1/describe/{Object}`: the query catalogue as Zuora's XML.

The list names every catalogue object (`<objects><object href="..."><name>Account</name>
<label>Account</label></object>...`); an object's description lists its fields (`<name>`,
`<label>`, `<type>`, `<required>`, `<contexts>`) and its `<related-objects>`, the relations
Export ZOQL joins (`<name>` is what a query writes: `BillToContact`, its href the target
object's description). The element is present, empty, for an object with no relation: clients
add a `Rel.Id` field for each entry and expect the element.

Contexts: `soap` on every field (ZOQL selects it), `export` on the fields Export ZOQL selects
(every field but the foreign keys, reached as `Rel.Id`). This is exactly what the ZOQL compiler
accepts, from the same catalogue. `required` is false throughout: it describes creation, and
these objects are created through the REST API, not here.

Decisions:
- One route per catalogue object (the set is fixed), its name spelled as the list spells it;
  any other name is the API's 404 for an unknown resource, in the JSON envelope.
- Picklist fields carry no `<options>`: the values are the REST API's, not stored per tenant.
- These routes answer XML, so they are left out of the OpenAPI document (which describes the
  JSON API); they take the same bearer token as every `/v1` route.
"""

from collections.abc import Awaitable, Callable
from xml.etree import ElementTree

from fastapi import Depends, Request, Response

from partnerbill.core.auth import current_tenant
from partnerbill.core.routing import FeatureRouter
from partnerbill.query.catalog import OBJECTS, QueryObject, by_name
from partnerbill.query.zoql import relation_label

# Authenticated as every /v1 route; what the answer says is the same for every tenant.
router = FeatureRouter(tags=["Describe"], dependencies=[Depends(current_tenant)])
XML_MEDIA_TYPE = "text/xml"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _href(request: Request, name: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/v1/describe/{name}"


def _text(parent: ElementTree.Element, tag: str, value: str) -> ElementTree.Element:
    element = ElementTree.SubElement(parent, tag)
    element.text = value
    return element


def _xml(root: ElementTree.Element) -> Response:
    ElementTree.indent(root)
    body = XML_DECLARATION + ElementTree.tostring(root, encoding="unicode") + "\n"
    return Response(content=body.encode(), media_type=XML_MEDIA_TYPE)


def objects_xml(request: Request) -> Response:
    root = ElementTree.Element("objects")
    for obj in OBJECTS:
        element = ElementTree.SubElement(root, "object", href=_href(request, obj.name))
        _text(element, "name", obj.name)
        _text(element, "label", obj.display_label)
    return _xml(root)


def object_xml(request: Request, obj: QueryObject) -> Response:
    root = ElementTree.Element("object", href=_href(request, obj.name))
    _text(root, "name", obj.name)
    _text(root, "label", obj.display_label)
    fields = ElementTree.SubElement(root, "fields")
    for f in obj.fields:
        element = ElementTree.SubElement(fields, "field")
        _text(element, "name", f.name)
        _text(element, "label", f.display_label)
        _text(element, "type", f.type.value)
        _text(element, "required", "false")
        contexts = ElementTree.SubElement(element, "contexts")
        _text(contexts, "context", "soap")
        if f.export:
            _text(contexts, "context", "export")
    related = ElementTree.SubElement(root, "related-objects")
    for relation in obj.relations:
        target = by_name(relation.target)
        assert target is not None, relation
        element = ElementTree.SubElement(related, "object", href=_href(request, target.name))
        _text(element, "name", relation.name)
        _text(element, "label", relation_label(relation.name))
    return _xml(root)


@router.get("/v1/describe", include_in_schema=False)
async def describe_objects(request: Request) -> Response:
    return objects_xml(request)


def _describe_route(obj: QueryObject) -> Callable[[Request], Awaitable[Response]]:
    async def describe(request: Request) -> Response:
        return object_xml(request, obj)

    describe.__name__ = f"describe_{obj.table}"
    return describe


for _obj in OBJECTS:
    router.add_api_route(
        f"/v1/describe/{_obj.name}",
        _describe_route(_obj),
        methods=["GET"],
        include_in_schema=False,
    )

"""Small SQL builders shared by features, tiles and exports.

Identifiers come only from the layer catalog and are always quoted; values are always
``$n`` parameters (asyncpg) bound by the caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from layers import Layer

if TYPE_CHECKING:
    from gis.auth import Principal


def ident(name: str) -> str:
    """Quote an SQL identifier.

    >>> ident('land_parcels')
    '"land_parcels"'
    >>> ident('a"b')
    '"a""b"'
    """
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """An SQL string literal, for catalog names only (values are always bound parameters).

    >>> literal("it's")
    "'it''s'"
    """
    return "'" + text.replace("'", "''") + "'"


def table_ref(layer: Layer) -> str:
    """Schema-qualified, quoted table of a layer.

    >>> from layers import VECTOR_LAYERS
    >>> table_ref(VECTOR_LAYERS['parcels'])
    '"public"."land_parcels"'
    """
    return f"{ident(layer.schema)}.{ident(layer.table)}"


def source_ref(layer: Layer, principal: Principal | None = None) -> str:
    """The relation a reader reads a layer from: the layer's public view (``Layer.public_view``:
    sensitive locations rounded, their addresses left out) unless ``principal`` is entitled to
    the exact rows (admins). Writes, extents and data managers' exports use ``table_ref``.

    >>> from layers import VECTOR_LAYERS
    >>> from gis.auth import Principal
    >>> source_ref(VECTOR_LAYERS['incidents'])
    '"public"."incidents_public"'
    >>> source_ref(VECTOR_LAYERS['incidents'], Principal('inspector'))
    '"public"."incidents_public"'
    >>> source_ref(VECTOR_LAYERS['incidents'], Principal('admin'))
    '"public"."incidents"'
    >>> source_ref(VECTOR_LAYERS['parcels'])
    '"public"."land_parcels"'
    """
    if layer.public_view and not (principal is not None and principal.may_read(())):
        return f"{ident(layer.schema)}.{ident(layer.public_view)}"
    return table_ref(layer)


def visible_fields(layer: Layer, include_private: bool = False,
                   principal: Principal | None = None) -> list[str]:
    """Names of the fields a caller may see: public ones, plus every private one with
    ``include_private`` (exports by data managers), or the private ones ``principal``'s role is
    entitled to (the catalog's ``visible_to``).

    >>> from layers import VECTOR_LAYERS
    >>> from gis.auth import Principal
    >>> 'owner_name' in visible_fields(VECTOR_LAYERS['parcels'], principal=Principal('planner'))
    True
    >>> 'owner_name' in visible_fields(VECTOR_LAYERS['parcels'], principal=Principal('citizen'))
    False
    """
    return [f.name for f in layer.fields
            if f.public or include_private
            or (principal is not None and principal.may_read(f.visible_to))]


def id_is_integer(layer: Layer) -> bool:
    """Whether the layer's id column holds integers (usable as an MVT feature id)."""
    if layer.has_field(layer.id_column):
        return layer.field(layer.id_column).type == "int"
    return True


def properties_json(layer: Layer, alias: str = "t", include_private: bool = False,
                    principal: Principal | None = None) -> str:
    """``json_build_object(...)`` over the visible fields (private ones left out).

    >>> from layers import VECTOR_LAYERS
    >>> 'owner_name' in properties_json(VECTOR_LAYERS['parcels'])
    False
    """
    args = ", ".join(f"'{name}', {alias}.{ident(name)}"
                     for name in visible_fields(layer, include_private, principal))
    return f"json_build_object({args})"


def bbox_clause(layer: Layer, first_param: int, alias: str = "t") -> str:
    """``geom && envelope`` with the four bbox values as parameters ``$first..$first+3``."""
    p = first_param
    return (f"{alias}.{ident(layer.geometry_column)} && "
            f"ST_MakeEnvelope(${p}, ${p + 1}, ${p + 2}, ${p + 3}, 4326)")

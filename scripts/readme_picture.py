"""Draw docs/demo-central-hue.png (the picture in the README) from the loaded demo data.

Colours come from the layer catalog's styles. Needs the optional ``docs`` extra (matplotlib):
    .venv/bin/pip install -e '.[docs]' && .venv/bin/python scripts/readme_picture.py
"""

from pathlib import Path

import geopandas as gpd
import matplotlib
import sqlalchemy

from gis.db import sqlalchemy_url
from gis.settings import Settings
from layers import ATTRIBUTION, VECTOR_LAYERS

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

BBOX = (107.565, 16.445, 107.605, 16.480)
OUT = Path(__file__).resolve().parent.parent / "docs" / "demo-central-hue.png"


def main() -> None:
    engine = sqlalchemy.create_engine(sqlalchemy_url(Settings().dsn))
    env = "geom && ST_MakeEnvelope(%(w)s, %(s)s, %(e)s, %(n)s, 4326)"
    box = dict(zip("wsen", BBOX, strict=True))

    def read(table: str, cols: str = "") -> gpd.GeoDataFrame:
        return gpd.read_postgis(f"SELECT {cols} geom FROM {table} WHERE {env}", engine,
                                params=box)

    parcels = VECTOR_LAYERS["parcels"].style
    colours = dict(parcels.classes)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(15, 7.5), width_ratios=(1.25, 1))
    p = read("land_parcels", "land_use,")
    p.plot(ax=ax, color=p.land_use.map(colours), edgecolor=parcels.stroke, linewidth=0.1)
    c = read("construction", "kind,")
    ax.set_title("Central Huế: synthetic parcels by land use, construction, incidents")
    c.plot(ax=ax, color=c.kind.map(dict(VECTOR_LAYERS["construction"].style.classes)))
    read("incidents").plot(ax=ax, color=VECTOR_LAYERS["incidents"].style.fill, markersize=2)
    t = read("tourism_pois")
    t.plot(ax=ax, color=VECTOR_LAYERS["tourism"].style.fill, marker="*", markersize=30)
    wards = gpd.read_postgis("SELECT short_name, geom FROM wards", engine)
    wards.boundary.plot(ax=ax, color=VECTOR_LAYERS["wards"].style.stroke, linewidth=1.5)
    ax.set_xlim(BBOX[0], BBOX[2])
    ax.set_ylim(BBOX[1], BBOX[3])
    used = sorted(set(p.land_use))
    ax.legend(handles=[Patch(color=colours[k], label=k) for k in used], loc="lower left",
              fontsize=7, ncol=2, title="land use")
    wards.boundary.plot(ax=ax2, color=VECTOR_LAYERS["wards"].style.stroke, linewidth=0.6)
    for _, w in wards.iterrows():
        pt = w.geom.representative_point()
        ax2.annotate(w.short_name, (pt.x, pt.y), fontsize=5, ha="center")
    ax2.set_title("The 40 wards and communes of Huế City (2025)")
    for a in (ax, ax2):
        a.set_xticks([])
        a.set_yticks([])
    fig.text(0.01, 0.01, ATTRIBUTION, fontsize=6)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    fig.savefig(OUT, dpi=72)
    print(OUT)


if __name__ == "__main__":
    main()

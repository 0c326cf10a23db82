"""Configuration, read from ``HUEGIS_*`` environment variables (pydantic-settings).

Settings are passed to the functions that need them, never kept as module globals.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Huế GIS configuration.

    ``database_url`` points the application at any PostGIS; when unset, the project-managed
    cluster in ``var_dir/pg`` is used: Unix socket in ``var_dir`` only, TCP on 127.0.0.1 when
    ``pg_port`` is set (see docs/troubleshooting.md).
    """

    model_config = SettingsConfigDict(env_prefix="HUEGIS_", extra="ignore")

    database_url: str | None = Field(
        default=None, description="postgresql:// URL of the PostGIS database to use")
    var_dir: Path = Field(default=PROJECT_ROOT / "var",
                          description="Where the managed cluster, rasters and caches live")
    data_dir: Path = Field(default=PROJECT_ROOT / "data",
                           description="Shipped demo data (wards, POIs)")
    pg_port: int | None = Field(
        default=None, description="TCP port of the managed cluster on 127.0.0.1 (unset: Unix "
        "socket in var_dir only, so any number of checkouts run side by side)")
    pg_database: str = Field(default="huegis", description="Database name in the managed cluster")
    statement_timeout_ms: int = Field(
        default=15_000, description="Per-statement timeout for API queries (ms)")
    pool_min_size: int = 1
    pool_max_size: int = 10
    max_items_limit: int = Field(default=10_000, description="Largest `limit` accepted")
    default_items_limit: int = 100
    max_items_offset: int = Field(
        default=100_000, description="Deepest `offset` accepted (beyond: 400, follow `next`)")
    exact_count_max: int = Field(
        default=10_000, description="numberMatched is exact up to this many features, else "
        "the planner's estimate")
    tile_max_features: int = Field(
        default=20_000, description="Most features in one vector tile (caps tile size)")
    public_base_url: str | None = Field(
        default=None, description="Base URL used in links (default: from the request)")
    redis_url: str | None = Field(
        default=None, description="Redis shared tile cache (redis://host:port/db); unset: none")
    tile_cache_disk: bool = Field(
        default=True, description="Keep tiles on disk (served directly by nginx)")
    tile_cache_dir: Path | None = Field(
        default=None, description="Disk tile cache (default: var_dir/tile-cache)")
    tile_cache_memory_mb: int = Field(default=256, description="In-process tile cache size (MB)")
    tile_max_bytes: int = Field(default=500_000, description="Size budget of one vector tile")
    tile_build_concurrency: int = Field(
        default=1, ge=1, description="Tiles one worker builds in the database at once; other "
        "misses wait their turn (with a worker per core, a dense tile then has a core to "
        "itself instead of sharing it with every other miss, so it comes back sooner)")
    tile_max_age: int = Field(
        default=0, description="Cache-Control max-age of tiles (s); 0: revalidate by ETag")
    basemap_url: str | None = Field(
        default=None, description="XYZ raster basemap template for the web map ({z}/{x}/{y}); "
        "unset: the city outline, wards and generalized layers are the base")
    basemap_attribution: str = Field(default="", description="Attribution of the basemap")
    frame_ancestors: str = Field(
        default="*", description="CSP frame-ancestors of /embed (who may put the map in an "
        "iframe), e.g. \"'self' https://portal.hue.gov.vn\"")
    jwt_secret: str | None = Field(
        default=None, description="HS256 secret of bearer tokens (default: generated once "
        "into var_dir/jwt-secret, shared by every worker)")
    token_expires_s: int = Field(default=3600, description="Lifetime of bearer tokens (s)")
    max_feature_body_bytes: int = Field(
        default=5_000_000, description="Largest feature body accepted by POST/PUT/PATCH (413)")
    access_log: bool = Field(
        default=True, description="uvicorn's access log, one line per request (off: "
        "`huegis serve --no-access-log`, about 5% less CPU per request)")

    @property
    def pg_dir(self) -> Path:
        return self.var_dir / "pg"

    @property
    def socket_dir(self) -> Path:
        return self.var_dir

    @property
    def raster_dir(self) -> Path:
        return self.var_dir / "rasters"

    @property
    def tile_cache_path(self) -> Path:
        return self.tile_cache_dir or self.var_dir / "tile-cache"

    @property
    def pg_socket_port(self) -> int:
        """Number in the managed cluster's socket name ``.s.PGSQL.<n>``: ``pg_port`` or 5439."""
        return self.pg_port or 5439

    def managed_url(self, database: str | None = None) -> str:
        """URL of a database in the managed cluster (over its Unix socket; the directory is
        percent-encoded, so a checkout path may hold spaces)."""
        db = database or self.pg_database
        host = quote(str(self.socket_dir), safe="/")
        return f"postgresql://postgres@/{db}?host={host}&port={self.pg_socket_port}"

    @property
    def dsn(self) -> str:
        """The database URL the application uses."""
        return self.database_url or self.managed_url()

    @property
    def uses_managed_cluster(self) -> bool:
        return self.database_url is None

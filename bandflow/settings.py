"""Configuration (pydantic-settings): environment variables ``BANDFLOW_*`` or ``~/.bandflow/config.yaml``.

With nothing configured, results go to an embedded on-disk store under ``data_dir`` and FireWorks uses
its file mode there; set ``store_uri`` (a ``mongodb://`` URI) for a real MongoDB server.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


def _config_file() -> Path:
    return Path(os.environ.get("BANDFLOW_CONFIG_FILE", Path.home() / ".bandflow" / "config.yaml"))


class BandflowSettings(BaseSettings):
    """Where results are stored and how engines are started."""

    model_config = SettingsConfigDict(env_prefix="BANDFLOW_", extra="ignore")

    data_dir: Path = Field(
        default=Path.home() / ".bandflow",
        description="Folder of the embedded store, the FireWorks file-mode database and run directories.",
    )
    store_uri: str | None = Field(
        default=None, description="MongoDB URI (mongodb:// or mongodb+srv://); unset = embedded montydb store."
    )
    database: str = Field(default="bandflow", description="MongoDB database name.")
    cp2k_command: str = Field(default="cp2k.psmp", description="CP2K executable (with mpirun prefix if wanted).")
    cp2k_data_dir: Path | None = Field(
        default=None, description="CP2K data directory (basis sets, potentials); default /usr/share/cp2k."
    )
    vasp_command: str = Field(default="vasp_std", description="VASP executable for the accurate protocol.")
    omp_num_threads: int | None = Field(default=None, description="OMP_NUM_THREADS for engines; default all cores.")
    hfx_memory_mb: int | None = Field(
        default=None, gt=0,
        description="MAX_MEMORY (MiB per CP2K process) for stored exact-exchange integrals; default the hybrid "
        "input set's own (2000). Integrals that do not fit are recomputed at every SCF step. A resource "
        "setting: it changes no settings key, and results only within CP2K's storage precision.",
    )
    reuse_finished_runs: bool = Field(
        default=True,
        description="Keep the finished PBE runs of a bulk job under data_dir/finished_runs until the job "
        "succeeds, so that a stopped bulk job reuses them instead of computing them again (bandflow.cp2k.reuse).",
    )
    launchpad_file: Path | None = Field(
        default=None,
        description="FireWorks LaunchPad file (my_launchpad.yaml format); default ./launchpad.yaml, then "
        "data_dir/launchpad.yaml, else the embedded file-mode LaunchPad under data_dir.",
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        """``~`` expanded and made absolute once, so that jobs running in their own folders (jobflow changes
        into each job's folder) and paths from config.yaml all mean the same place."""
        return value.expanduser().absolute()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if _config_file().is_file():
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=_config_file()))
        return tuple(sources)


@cache
def get_settings() -> BandflowSettings:
    """The process-wide settings (read once; tests call ``get_settings.cache_clear()``)."""
    return BandflowSettings()

"""The OMOP variant of ``securecalc demo``: the synthetic cohort as an OMOP CDM extract in a
throw-away PostgreSQL server, one database per hospital, read by each node through a
``[[source]]`` of kind ``omop``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from securecalc.sources.pgserver import PostgresServer
from securecalc.sources.synthetic import load_omop, synth_omop_source, write_omop

SCHEMA = "cdm"


def _database(hospital: str) -> str:
    return "omop_" + hospital.replace("-", "_")


def load_hospitals(server: PostgresServer, folders: Mapping[str, Path],
                   secrets_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Load each hospital's OMOP folder into a database of its own, readable by a login role
    of its own (password in ``secrets_dir``, readable by this user only); return each
    hospital's ``[[source]]`` tables."""
    secrets_dir.mkdir(parents=True, exist_ok=True)
    secrets_dir.chmod(0o700)
    out: dict[str, list[dict[str, Any]]] = {}
    for hospital, folder in folders.items():
        database = _database(hospital)
        role, password = f"{database}_reader", secrets.token_urlsafe(18)
        password_file = secrets_dir / f"{hospital}.password"
        password_file.touch(mode=0o600)
        password_file.write_text(password + "\n")
        with server.connect() as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
            admin.execute(f'CREATE ROLE "{role}" LOGIN PASSWORD \'{password}\'')
        with server.connect(database, autocommit=False) as conn:
            load_omop(conn, folder, SCHEMA)
            conn.execute(f'GRANT USAGE ON SCHEMA "{SCHEMA}" TO "{role}"')
            conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{SCHEMA}" TO "{role}"')
            conn.commit()
        postgres = {"host": server.host, "port": server.port, "database": database,
                    "user": role, "password_file": str(password_file), "sslmode": "disable"}
        out[hospital] = [synth_omop_source("omop", postgres=postgres, schema=SCHEMA)]
    return out


def omop_sources(server: PostgresServer, root: Path, hospitals: Sequence[str], *, rows: int,
                 seed: int) -> dict[str, list[dict[str, Any]]]:
    """Write the synthetic OMOP extract under ``root/omop`` and load it into ``server``."""
    folders = write_omop(root / "omop", sites=len(hospitals), rows=rows, seed=seed,
                         names=hospitals)
    return load_hospitals(server, dict(zip(hospitals, folders, strict=True)),
                          root / "secrets")


__all__ = ["load_hospitals", "omop_sources"]

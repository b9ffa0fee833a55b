"""Moved: the standard-address register and its matcher belong to :mod:`gridmap.registry`
(``gridmap.registry.addresses``, imported by ``gridmap.registry.imports``). Kept so that older
imports keep working; new code imports from the registry."""
from gridmap.registry.addresses import (address_parts, address_score, chinese_number, coordinate_problem,  # noqa: F401
                                        match_address, normalize_address)
from gridmap.registry.files import RegistryFileError as AddressImportError  # noqa: F401


def import_addresses_csv(session, path, *, snap_m: float = 100.0) -> dict:
    """The address import of the registry, answered in the older shape (counts and ``bad`` pairs)."""
    from gridmap.registry.imports import import_file

    rep = import_file(session, "addresses", path, snap_m=snap_m)
    return {"inserted": rep.inserted, "updated": rep.updated, "unchanged": rep.unchanged, "bad": rep.bad}

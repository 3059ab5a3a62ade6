"""The one query engine (docs/query.md): C-FIND, QIDO-RS, the UI search and routing rules
all match through it, so "matches" means the same everywhere.

* :mod:`.levels` — Query/Retrieve levels and information models;
* :mod:`.spec` — :class:`QuerySpec`: what to find and what to return;
* :mod:`.identifier` — a spec from a C-FIND identifier;
* :mod:`.values` — a key's raw value parsed into a criterion;
* :mod:`.matching` — one function per PS3.4 C.2.2.2 matching rule, returning ``Q`` objects;
* :mod:`.attributes` — the keys the archive matches and returns, level by level;
* :mod:`.engine` — run a spec for one hospital;
* :mod:`.render` — results as a pydicom Dataset or as DICOM JSON.
"""

from carina.archive.query.engine import count, queryset, run
from carina.archive.query.errors import (
    IdentifierMismatchError,
    InvalidValueError,
    QueryError,
    UndecodableIdentifierError,
    UnknownKeyError,
)
from carina.archive.query.identifier import spec_from_identifier
from carina.archive.query.levels import InformationModel, Level
from carina.archive.query.render import Match, to_dataset, to_json
from carina.archive.query.spec import QuerySpec

__all__ = [
    "IdentifierMismatchError",
    "InformationModel",
    "InvalidValueError",
    "Level",
    "Match",
    "QueryError",
    "QuerySpec",
    "UndecodableIdentifierError",
    "UnknownKeyError",
    "count",
    "queryset",
    "run",
    "spec_from_identifier",
    "to_dataset",
    "to_json",
]

"""Why a query cannot be run. Each error carries the DIMSE status a C-FIND answers with
(PS3.4 C.4.1.1.4, Table C.4-1) and the HTTP status QIDO-RS answers with (PS3.18 8.3.4),
the attribute at fault (Offending Element, 0000,0901) and a reason a person can act on."""

from __future__ import annotations

from pydicom.datadict import tag_for_keyword


class QueryError(Exception):
    """A query that cannot be run: ``0xC000`` *Unable to process*, HTTP 400."""

    dimse_status: int = 0xC000
    http_status: int = 400

    def __init__(self, reason: str, keyword: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        #: The keyword (or 8-digit hex tag) of the attribute at fault, if one is.
        self.keyword = keyword

    @property
    def offending_tag(self) -> int | None:
        """The tag of the attribute at fault, for Offending Element (0000,0901)."""
        if not self.keyword:
            return None
        tag = tag_for_keyword(self.keyword)
        if tag is None and len(self.keyword) == 8:
            try:
                tag = int(self.keyword, 16)
            except ValueError:
                return None
        return tag


class UndecodableIdentifierError(QueryError):
    """The identifier cannot be decoded as a data set: ``0xC000`` *Unable to process*."""

    dimse_status = 0xC000


class IdentifierMismatchError(QueryError):
    """The identifier does not fit the information model: Query/Retrieve Level missing or
    not one of the model's levels, or a unique key of a level above missing (hierarchical
    query, PS3.4 C.4.1.2.2.1). ``0xA900`` *Identifier does not match SOP Class*."""

    dimse_status = 0xA900


class InvalidValueError(QueryError):
    """A key's value cannot be matched: a date, time or range that is not one, a number
    that is not one, a wild card in a UID. ``0xC001`` (*Unable to process*, Carina's code)."""

    dimse_status = 0xC001


class UnknownKeyError(QueryError):
    """A key that is not a DICOM attribute keyword or tag (QIDO-RS): ``0xC002``, HTTP 400."""

    dimse_status = 0xC002

"""Query/Retrieve levels and information models (PS3.4 C.3, C.6.1, C.6.2)."""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    """A Query/Retrieve level: the value of Query/Retrieve Level (0008,0052) (PS3.4 C.3)."""

    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"

    @property
    def depth(self) -> int:
        """0 for PATIENT down to 3 for IMAGE."""
        return LEVELS.index(self)

    def is_above(self, other: Level) -> bool:
        """Whether this level is a parent (or grand-parent…) of ``other``."""
        return self.depth < other.depth


#: The levels from top to bottom.
LEVELS: tuple[Level, ...] = (Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE)


class InformationModel(StrEnum):
    """A Query/Retrieve information model (PS3.4 C.6): which levels exist, and so which
    unique keys a hierarchical query below the top level must give (PS3.4 C.4.1.2.2.1)."""

    PATIENT_ROOT = "Patient Root"
    STUDY_ROOT = "Study Root"

    @property
    def levels(self) -> tuple[Level, ...]:
        """The levels of this model, top first."""
        if self is InformationModel.PATIENT_ROOT:
            return LEVELS
        return LEVELS[1:]

    def levels_above(self, level: Level) -> tuple[Level, ...]:
        """The levels of this model above ``level`` (their unique keys are required)."""
        return tuple(lv for lv in self.levels if lv.is_above(level))

"""Each matching rule of PS3.4 C.2.2.2, run against the database (SQLite and PostgreSQL
must agree: CI runs this file on both)."""

from __future__ import annotations

import datetime as dt

import pytest

from carina.archive.models import Study
from carina.archive.query import InvalidValueError, QuerySpec, engine, queryset
from carina.archive.query.matching import person_name_regex, person_name_runs, wildcard_regex
from carina.archive.query.tests.conftest import (
    MR_IMAGE,
    ArchiveBuilder,
    SeriesPlan,
    find,
    uids,
)
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db


def _studies(archive: ArchiveBuilder, field: str, values: list[str]) -> dict[str, str]:
    """One study per value of ``field`` (each its own patient); value → StudyInstanceUID."""
    made = {}
    for index, value in enumerate(values):
        study = archive.study(patient_id=f"P{index}", **{field: value})  # type: ignore[arg-type]
        made[value] = study.study_instance_uid
    return made


def _matching(hospital: Hospital, made: dict[str, str], key: str, value: str) -> set[str]:
    found = uids(hospital, "STUDY", {key: value})
    return {name for name, uid in made.items() if uid in found}


# --- single value, universal, UID lists --------------------------------------------------


def test_single_value_matching_is_exact_and_case_sensitive(
    archive: ArchiveBuilder, hospital: Hospital
) -> None:
    made = _studies(archive, "accession", ["ACC001", "acc001", "ACC0012", ""])
    assert _matching(hospital, made, "AccessionNumber", "ACC001") == {"ACC001"}
    assert _matching(hospital, made, "AccessionNumber", " acc001 ") == {"acc001"}
    assert _matching(hospital, made, "AccessionNumber", "ACC00") == set()


def test_universal_matching_matches_every_entity_also_those_without_a_value(
    archive: ArchiveBuilder, hospital: Hospital
) -> None:
    made = _studies(archive, "accession", ["ACC001", ""])
    assert _matching(hospital, made, "AccessionNumber", "") == {"ACC001", ""}
    assert _matching(hospital, made, "AccessionNumber", "*") == {"ACC001", ""}


def test_a_list_of_uids_matches_any_of_them(archive: ArchiveBuilder, hospital: Hospital) -> None:
    studies = [archive.study(patient_id=f"P{i}") for i in range(3)]
    first, second, third = (s.study_instance_uid for s in studies)
    assert uids(hospital, "STUDY", {"StudyInstanceUID": f"{first}\\{third}"}) == {first, third}
    assert uids(hospital, "STUDY", {"StudyInstanceUID": second}) == {second}
    assert uids(hospital, "STUDY", {"StudyInstanceUID": "1.2.3.999"}) == set()
    with pytest.raises(InvalidValueError, match="wild cards are not allowed in a UID"):
        QuerySpec("STUDY", {"StudyInstanceUID": first[:6] + "*"})


def test_several_values_of_a_code_match_any_of_them(
    archive: ArchiveBuilder, hospital: Hospital
) -> None:
    study = archive.study(series=[SeriesPlan("CT"), SeriesPlan("MR"), SeriesPlan("SR")])
    by_modality = {s.modality: s.series_instance_uid for s in study.series.all()}
    found = uids(hospital, "SERIES", {"Modality": "CT\\MR"})
    assert found == {by_modality["CT"], by_modality["MR"]}
    found = uids(hospital, "SERIES", {"Modality": "SR\\M?"})
    assert found == {by_modality["SR"], by_modality["MR"]}


def test_numbers_match_by_value(archive: ArchiveBuilder, hospital: Hospital) -> None:
    study = archive.study(
        series=[SeriesPlan(number=1), SeriesPlan(number=2), SeriesPlan(number=10)]
    )
    numbers = {s.series_number: s.series_instance_uid for s in study.series.all()}
    assert uids(hospital, "SERIES", {"SeriesNumber": "2"}) == {numbers[2]}
    assert uids(hospital, "SERIES", {"SeriesNumber": "01\\10"}) == {numbers[1], numbers[10]}
    with pytest.raises(InvalidValueError, match="is not a number"):
        QuerySpec("SERIES", {"SeriesNumber": "1*"})


# --- wild cards ------------------------------------------------------------------------


def test_wild_cards_star_and_question_mark(archive: ArchiveBuilder, hospital: Hospital) -> None:
    made = _studies(archive, "description", ["CT CHEST", "CT HEAD", "MR HEAD", "XCT CHEST", ""])
    assert _matching(hospital, made, "StudyDescription", "CT*") == {"CT CHEST", "CT HEAD"}
    assert _matching(hospital, made, "StudyDescription", "*HEAD") == {"CT HEAD", "MR HEAD"}
    assert _matching(hospital, made, "StudyDescription", "?T *") == {"CT CHEST", "CT HEAD"}
    assert _matching(hospital, made, "StudyDescription", "*CT*") == {
        "CT CHEST",
        "CT HEAD",
        "XCT CHEST",
    }
    assert _matching(hospital, made, "StudyDescription", "CT HEAD?") == set()
    assert _matching(hospital, made, "StudyDescription", "C*T") == {"CT CHEST"}


def test_wild_card_matching_is_case_sensitive_on_every_database(
    archive: ArchiveBuilder, hospital: Hospital
) -> None:
    made = _studies(archive, "description", ["CT CHEST", "ct chest"])
    assert _matching(hospital, made, "StudyDescription", "ct*") == {"ct chest"}
    assert _matching(hospital, made, "StudyDescription", "C?*") == {"CT CHEST"}


def test_sql_like_metacharacters_are_matched_literally(
    archive: ArchiveBuilder, hospital: Hospital
) -> None:
    made = _studies(archive, "description", ["100% DOSE", "100X DOSE", "A_B", "AXB", "A\\B"])
    assert _matching(hospital, made, "StudyDescription", "100%*") == {"100% DOSE"}
    assert _matching(hospital, made, "StudyDescription", "100% DOSE") == {"100% DOSE"}
    assert _matching(hospital, made, "StudyDescription", "*%*") == {"100% DOSE"}
    assert _matching(hospital, made, "StudyDescription", "A_?") == {"A_B"}
    assert _matching(hospital, made, "StudyDescription", "A_B") == {"A_B"}
    assert _matching(hospital, made, "StudyDescription", "*_*") == {"A_B"}


def test_regular_expression_characters_are_matched_literally(
    archive: ArchiveBuilder, hospital: Hospital
) -> None:
    values = ["CT (CHEST)", "CT [1]", "A.B", "AXB", "X+Y", "XXY", "$^|{}", "a\tb"]
    made = _studies(archive, "description", values)
    assert _matching(hospital, made, "StudyDescription", "CT (*") == {"CT (CHEST)"}
    assert _matching(hospital, made, "StudyDescription", "CT [?]") == {"CT [1]"}
    assert _matching(hospital, made, "StudyDescription", "A.?") == {"A.B"}
    assert _matching(hospital, made, "StudyDescription", "X+*") == {"X+Y"}
    assert _matching(hospital, made, "StudyDescription", "$^|{*") == {"$^|{}"}
    assert _matching(hospital, made, "StudyDescription", "a?b") == {"a\tb"}


def test_wild_cards_match_non_ascii_characters_one_by_one(
    archive: ArchiveBuilder, hospital: Hospital
) -> None:
    made = _studies(archive, "description", ["Thorax ärztlich", "Thorax arztlich", "胸部CT"])
    assert _matching(hospital, made, "StudyDescription", "Thorax ?rzt*") == {
        "Thorax ärztlich",
        "Thorax arztlich",
    }
    assert _matching(hospital, made, "StudyDescription", "Thorax ä*") == {"Thorax ärztlich"}
    assert _matching(hospital, made, "StudyDescription", "??CT") == {"胸部CT"}


def test_the_regular_expressions_escape_every_special_character() -> None:
    assert wildcard_regex("a%_b*?") == "a\\%\\_b.*."
    assert wildcard_regex("x.y(z)") == "x\\.y\\(z\\)"
    assert wildcard_regex("ab", ascii_case_insensitive=True) == "[Aa][Bb]"
    assert person_name_regex("*") is None
    assert person_name_regex("^*") is None


# --- person names ----------------------------------------------------------------------


@pytest.fixture
def names(archive: ArchiveBuilder) -> dict[str, str]:
    values = [
        "TEST^PATIENT",
        "Test^Other",
        "TESTER^ANNA",
        "SMITH^JOHN^^DR^JR",
        "SMITH",
        "O%BRIEN^SEAN",
        "OXBRIEN^SEAN",
        "Müller^Hans",
        "Yamada^Tarou=山田^太郎=やまだ^たろう",
    ]
    made = {}
    for index, name in enumerate(values):
        study = archive.study(patient_id=f"P{index}", patient_name=name)
        made[name] = study.study_instance_uid
    return made


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("TEST^*", {"TEST^PATIENT", "Test^Other"}),
        ("TEST", {"TEST^PATIENT", "Test^Other"}),
        ("test^patient", {"TEST^PATIENT"}),
        ("TEST*", {"TEST^PATIENT", "Test^Other", "TESTER^ANNA"}),
        ("T?ST^P*", {"TEST^PATIENT"}),
        ("*TER", {"TESTER^ANNA"}),
        ("*er", {"TESTER^ANNA", "Müller^Hans"}),
        ("PATIENT", set()),
        ("^PATIENT", {"TEST^PATIENT"}),
        ("^O*", {"Test^Other"}),
        ("TEST*PATIENT", set()),
        ("SMITH", {"SMITH^JOHN^^DR^JR", "SMITH"}),
        ("SMITH^JOHN", {"SMITH^JOHN^^DR^JR"}),
        ("SMITH^^^DR", {"SMITH^JOHN^^DR^JR"}),
        ("SMITH^^^MR", set()),
        ("SMITH^*^*^*^JR", {"SMITH^JOHN^^DR^JR"}),
        ("O%BRIEN", {"O%BRIEN^SEAN"}),
        ("O_BRIEN", set()),
        ("O?BRIEN", {"O%BRIEN^SEAN", "OXBRIEN^SEAN"}),
        ("Müller", {"Müller^Hans"}),
        ("müller^HANS", {"Müller^Hans"}),
        ("MÜLLER", set()),
        ("M?LLER", {"Müller^Hans"}),
        ("Yamada", {"Yamada^Tarou=山田^太郎=やまだ^たろう"}),
        ("YAMADA^TAROU", {"Yamada^Tarou=山田^太郎=やまだ^たろう"}),
        ("山田*", {"Yamada^Tarou=山田^太郎=やまだ^たろう"}),
        ("山田^太郎", {"Yamada^Tarou=山田^太郎=やまだ^たろう"}),
        ("やまだ", {"Yamada^Tarou=山田^太郎=やまだ^たろう"}),
        ("=山田^太郎", {"Yamada^Tarou=山田^太郎=やまだ^たろう"}),
        ("Yamada=山田", {"Yamada^Tarou=山田^太郎=やまだ^たろう"}),
        ("Yamada=田中", set()),
        ("==やまだ*", {"Yamada^Tarou=山田^太郎=やまだ^たろう"}),
        ("=やまだ", set()),
    ],
)
def test_person_names_match_component_by_component(
    hospital: Hospital, names: dict[str, str], query: str, expected: set[str]
) -> None:
    assert _matching(hospital, names, "PatientName", query) == expected
    # The same names at the other levels: on the patient table itself (PATIENT), and
    # through the patient table from the instances (IMAGE).
    patient_ids = {f"P{index}" for index, name in enumerate(names) if name in expected}
    assert uids(hospital, "PATIENT", {"PatientName": query}) == patient_ids
    images = find(hospital, "IMAGE", {"PatientName": query}, "StudyInstanceUID")
    assert {m.values["StudyInstanceUID"] for m in images} == {names[n] for n in expected}


def test_person_name_universal_forms_match_every_name(
    hospital: Hospital, names: dict[str, str]
) -> None:
    for query in ("", "*", "*^*", "^"):
        assert _matching(hospital, names, "PatientName", query) == set(names)


def test_referring_physician_name_is_a_person_name_too(
    archive: ArchiveBuilder, hospital: Hospital
) -> None:
    made = _studies(archive, "referring", ["WELBY^MARCUS", "KILDARE^JAMES", ""])
    assert _matching(hospital, made, "ReferringPhysicianName", "welby") == {"WELBY^MARCUS"}
    assert _matching(hospital, made, "ReferringPhysicianName", "*^JAMES") == {"KILDARE^JAMES"}


@pytest.mark.parametrize(
    ("value", "runs"),
    [
        ("*smi*", ["smi"]),
        ("SMI?H^J*", ["SMI", "H", "J"]),
        (" SMITH ^ JOHN ", ["SMITH", "JOHN"]),
        ("Yamada=山田*", ["Yamada", "山田"]),
        ("*^*", []),
        ("O%BRIEN", ["O%BRIEN"]),
    ],
)
def test_a_name_pattern_is_narrowed_by_its_literal_runs(value: str, runs: list[str]) -> None:
    """Every name a pattern matches contains these runs (ignoring the case of A–Z): the
    database tests them with LIKE before the regular expression."""
    assert person_name_runs(value) == runs


def test_keys_of_a_level_above_are_matched_on_that_levels_table(
    archive: ArchiveBuilder, hospital: Hospital, other_hospital: Hospital
) -> None:
    """``PatientName=*smi*`` or ``PatientID=…`` in a study search picks the hospital's matching
    patients first, then their studies by foreign key: the pattern is tested once per
    patient, not once per study through a join (docs/query.md, "Speed")."""
    ours = archive.study(patient_id="P1", patient_name="SMITH^JOHN")
    theirs = archive.study(hospital=other_hospital, patient_id="P1", patient_name="SMITH^JOHN")
    for keys in ({"PatientName": "*smi*"}, {"PatientID": "P1"}):
        sql = str(queryset(QuerySpec("STUDY", keys), hospital, owners_first=True).query)
        assert f'"archive_study"."patient_id" IN ({ours.patient_id})' in sql
        assert "JOIN" not in sql
        assert uids(hospital, "STUDY", keys) == {ours.study_instance_uid}
        assert uids(other_hospital, "STUDY", keys) == {theirs.study_instance_uid}
    # A series search by its study's UID reads the study table's unique index the same way.
    spec = QuerySpec("SERIES", {"StudyInstanceUID": ours.study_instance_uid})
    assert f'"archive_series"."study_id" IN ({ours.pk})' in str(
        queryset(spec, hospital, owners_first=True).query
    )
    # Universal keys of a level above add nothing.
    sql = str(
        queryset(
            QuerySpec("STUDY", {"PatientName": "*", "PatientID": ""}), hospital, owners_first=True
        ).query
    )
    assert "IN (" not in sql


def test_a_key_of_a_level_above_matching_many_rows_stays_a_join(
    archive: ArchiveBuilder, hospital: Hospital, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name matching more patients than the list limit is matched through the join (which
    reads the studies newest first and stops after a page): the same studies either way."""
    made = {
        archive.study(patient_id=f"P{n}", patient_name=f"DOE^{n}").study_instance_uid
        for n in range(3)
    }
    archive.study(patient_id="Q", patient_name="ROE^JANE")
    expected = uids(hospital, "STUDY", {"PatientName": "DOE*"})
    assert expected == made
    monkeypatch.setattr(engine, "OWNER_LIST_LIMIT", 2)
    sql = str(
        queryset(QuerySpec("STUDY", {"PatientName": "DOE*"}), hospital, owners_first=True).query
    )
    assert "JOIN" in sql and "IN (" not in sql
    assert uids(hospital, "STUDY", {"PatientName": "DOE*"}) == made
    # No patient at all: no study, and no query for the studies.
    assert uids(hospital, "STUDY", {"PatientName": "NOBODY"}) == set()


# --- dates and times -------------------------------------------------------------------


@pytest.fixture
def dated(archive: ArchiveBuilder) -> dict[str, str]:
    moments = {
        "jul5-0900": (dt.date(2026, 7, 5), dt.time(9, 0)),
        "jul5-1100": (dt.date(2026, 7, 5), dt.time(11, 0)),
        "jul6-0800": (dt.date(2026, 7, 6), dt.time(8, 0)),
        "jul7-1700": (dt.date(2026, 7, 7), dt.time(17, 0, 30)),
        "jul7-1900": (dt.date(2026, 7, 7), dt.time(19, 0)),
        "jul6-notime": (dt.date(2026, 7, 6), None),
        "nodate": (None, None),
    }
    made = {}
    for index, (name, (date, time)) in enumerate(moments.items()):
        study = archive.study(patient_id=f"P{index}", study_date=date, study_time=time)
        made[name] = study.study_instance_uid
    return made


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20260706", {"jul6-0800", "jul6-notime"}),
        ("20260706-20260707", {"jul6-0800", "jul6-notime", "jul7-1700", "jul7-1900"}),
        ("-20260705", {"jul5-0900", "jul5-1100"}),
        ("20260707-", {"jul7-1700", "jul7-1900"}),
        ("2026-", {"jul5-0900", "jul5-1100", "jul6-0800", "jul7-1700", "jul7-1900", "jul6-notime"}),
        ("202608", set()),
        ("20260705\\20260707", {"jul5-0900", "jul5-1100", "jul7-1700", "jul7-1900"}),
    ],
)
def test_date_range_matching(
    hospital: Hospital, dated: dict[str, str], value: str, expected: set[str]
) -> None:
    assert _matching(hospital, dated, "StudyDate", value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1100", {"jul5-1100"}),
        ("17", {"jul7-1700"}),
        ("1000-1800", {"jul5-1100", "jul7-1700"}),
        ("-0900", {"jul5-0900", "jul6-0800"}),
        ("1700-", {"jul7-1700", "jul7-1900"}),
        ("170030", {"jul7-1700"}),
        ("170031", set()),
    ],
)
def test_time_range_matching(
    hospital: Hospital, dated: dict[str, str], value: str, expected: set[str]
) -> None:
    assert _matching(hospital, dated, "StudyTime", value) == expected


def test_date_and_time_ranges_are_separate_unless_combined_matching_is_asked_for(
    hospital: Hospital, dated: dict[str, str]
) -> None:
    keys = {"StudyDate": "20260705-20260707", "StudyTime": "1000-1800"}
    separate = uids(hospital, "STUDY", keys)
    assert {n for n, u in dated.items() if u in separate} == {"jul5-1100", "jul7-1700"}
    combined = uids(hospital, "STUDY", keys, combined_datetime=True)
    assert {n for n, u in dated.items() if u in combined} == {
        "jul5-1100",
        "jul6-0800",
        "jul6-notime",
        "jul7-1700",
    }


def test_invalid_dates_and_ranges_are_refused(hospital: Hospital) -> None:
    for value in ("20261301", "20261231-20260101", "tomorrow"):
        with pytest.raises(InvalidValueError) as caught:
            QuerySpec("STUDY", {"StudyDate": value})
        assert caught.value.keyword == "StudyDate"


def test_patient_birth_date_and_series_date_ranges(
    archive: ArchiveBuilder, hospital: Hospital
) -> None:
    young = archive.study(patient_id="Y", birth_date=dt.date(2010, 5, 1))
    archive.study(patient_id="O", birth_date=dt.date(1940, 5, 1))
    archive.study(patient_id="N", birth_date=None)
    assert uids(hospital, "PATIENT", {"PatientBirthDate": "2000-"}) == {"Y"}
    assert uids(hospital, "PATIENT", {"PatientBirthDate": "-19991231"}) == {"O"}
    series = archive.add_series(young, SeriesPlan(date=dt.date(2026, 1, 2)))
    assert uids(hospital, "SERIES", {"SeriesDate": "202601"}) == {series.series_instance_uid}


# --- empty value matching --------------------------------------------------------------


def test_empty_value_matching_finds_entities_without_a_value(
    archive: ArchiveBuilder, hospital: Hospital
) -> None:
    made = _studies(archive, "accession", ["ACC001", ""])
    empty = uids(hospital, "STUDY", {"AccessionNumber": '""'}, empty_value_matching=True)
    assert empty == {made[""]}
    assert uids(hospital, "STUDY", {"AccessionNumber": '""'}) == set()
    archive.study(patient_id="ND", study_date=None)
    undated = uids(hospital, "STUDY", {"StudyDate": '""'}, empty_value_matching=True)
    assert len(undated) == 1


# --- matching through lower levels -----------------------------------------------------


def test_modalities_in_study_matches_a_study_with_any_series_of_the_modality(
    archive: ArchiveBuilder, hospital: Hospital
) -> None:
    ct_sr = archive.study(patient_id="A", series=[SeriesPlan("CT"), SeriesPlan("SR")])
    mr = archive.study(patient_id="B", series=[SeriesPlan("MR")])
    ct = archive.study(patient_id="C", series=[SeriesPlan("CT")])
    assert Study.objects.for_hospital(hospital).get(pk=ct_sr.pk).modalities_in_study == "CT\\SR"
    a, b, c = ct_sr.study_instance_uid, mr.study_instance_uid, ct.study_instance_uid
    assert uids(hospital, "STUDY", {"ModalitiesInStudy": "SR"}) == {a}
    assert uids(hospital, "STUDY", {"ModalitiesInStudy": "CT"}) == {a, c}
    assert uids(hospital, "STUDY", {"ModalitiesInStudy": "MR\\SR"}) == {a, b}
    assert uids(hospital, "STUDY", {"ModalitiesInStudy": "M?"}) == {b}
    assert uids(hospital, "STUDY", {"ModalitiesInStudy": "PT"}) == set()
    found = find(hospital, "STUDY", {"ModalitiesInStudy": "SR"})
    assert found[0].values["ModalitiesInStudy"] == "CT\\SR"


def test_sop_classes_in_study_are_matched_and_returned(
    archive: ArchiveBuilder, hospital: Hospital
) -> None:
    mixed = archive.study(
        patient_id="A", series=[SeriesPlan("CT"), SeriesPlan("MR", sop_class=MR_IMAGE)]
    )
    archive.study(patient_id="B")
    found = find(hospital, "STUDY", {"SOPClassesInStudy": MR_IMAGE}, "StudyInstanceUID")
    assert [m.values["StudyInstanceUID"] for m in found] == [mixed.study_instance_uid]
    assert found[0].values["SOPClassesInStudy"] == [
        "1.2.840.10008.5.1.4.1.1.2",
        MR_IMAGE,
    ]


def test_a_series_query_may_match_keys_of_its_study_and_patient(
    archive: ArchiveBuilder, hospital: Hospital
) -> None:
    wanted = archive.study(patient_id="A", patient_name="DOE^JANE", description="CT HEAD")
    archive.study(patient_id="B", patient_name="DOE^JOHN", description="CT HEAD")
    archive.study(patient_id="C", patient_name="DOE^JANE", description="MR KNEE")
    found = find(
        hospital,
        "SERIES",
        {"PatientName": "DOE^JANE", "StudyDescription": "CT*", "Modality": "CT"},
        "StudyInstanceUID",
        "PatientID",
    )
    assert [(m.values["StudyInstanceUID"], m.values["PatientID"]) for m in found] == [
        (wanted.study_instance_uid, "A")
    ]


def test_instance_availability_is_online(archive: ArchiveBuilder, hospital: Hospital) -> None:
    archive.study()
    assert len(find(hospital, "STUDY", {"InstanceAvailability": "ONLINE"})) == 1
    assert len(find(hospital, "STUDY", {"InstanceAvailability": "O*"})) == 1
    assert len(find(hospital, "STUDY", {"InstanceAvailability": "OFFLINE"})) == 0

"""Forwarding rules: what matches is forwarded (calling AE, modality, description pattern,
any indexed key), what does not is not; a "stable" rule waits until no instance arrived for
N seconds; each instance is forwarded once per rule, also when the arrival check was missed
(a crash) and across repeated sweeps."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid

from carina.archive.ingest import Origin, ingest
from carina.archive.models import Source, Study
from carina.archive.signals import instance_stored
from carina.core.testing import make_ct_slice
from carina.routing.actions import RuleError, RuleFields, do_save_rule
from carina.routing.models import RuleMatch, Transfer, TransferStatus
from carina.routing.receivers import _instance_stored
from carina.routing.rules import forward, sweep_rules
from carina.routing.runner import run_transfer
from carina.routing.tests.conftest import add_destination, counting_scp
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db(transaction=True)


class Modality:
    """Stores objects as a modality would: C-STORE from a calling AE title."""

    def __init__(self, hospital: Hospital, folder: Path) -> None:
        self.hospital = hospital
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def store(
        self, study_uid: str, *, calling_ae: str = "CTSCANNER", count: int = 1, **attrs: Any
    ) -> list[str]:
        series_uid = generate_uid()
        uids = []
        for index in range(count):
            extra = {"StudyDescription": "CT CHEST", **attrs}
            modality = str(extra.pop("Modality", "CT"))
            ds = make_ct_slice(
                study_uid=study_uid,
                series_uid=series_uid,
                index=index,
                size=8,
                modality=modality,
                extra=extra,
            )
            self.count += 1
            path = self.folder / f"{self.count}.dcm"
            ds.save_as(path, enforce_file_format=True)
            result = ingest(path, hospital=self.hospital, origin=Origin(Source.DIMSE, calling_ae))
            uids.append(result.sop_instance_uid)
        return uids


def transfers_of(hospital: Hospital) -> list[Transfer]:
    return list(Transfer.objects.for_hospital(hospital).order_by("pk"))


def forwarded_uids(hospital: Hospital) -> list[str]:
    return sorted(
        uid
        for transfer in transfers_of(hospital)
        for uid in transfer.items.values_list("sop_instance_uid", flat=True)
    )


def test_only_matching_instances_are_forwarded(hospital: Hospital, tmp_path: Path) -> None:
    modality = Modality(hospital, tmp_path)
    with counting_scp("ARCHIVE2") as scp:
        node = add_destination(hospital, "archive2", "ARCHIVE2", scp.port)
        rule = do_save_rule(
            hospital,
            "chest CT to archive2",
            RuleFields(
                trigger="instance",
                calling_ae="CTSCANNER",
                modality="CT",
                study_description="*CHEST*",
                keys={"PatientID": "PID0*"},
            ),
            [node],
        )
        match = modality.store(generate_uid(), count=2)
        modality.store(generate_uid(), Modality="MR")  # another modality
        modality.store(generate_uid(), calling_ae="OTHERAE")  # another sender
        modality.store(generate_uid(), StudyDescription="CT HEAD")  # another description
        modality.store(generate_uid(), PatientID="XYZ")  # another patient
        assert sorted(
            RuleMatch.objects.filter(rule=rule).values_list("instance__sop_instance_uid", flat=True)
        ) == sorted(match)
        sweep_rules()  # what the worker's task does for an "every instance" rule
        (transfer,) = transfers_of(hospital)
        assert forwarded_uids(hospital) == sorted(match)
        assert (transfer.origin, transfer.rule_id) == ("rule", rule.pk)
        assert transfer.requested_by_name == "rule chest CT to archive2"
        run_transfer(transfer.pk)
    assert sorted(scp.stored) == sorted(match)


def test_a_stable_rule_waits_until_no_instance_arrived_for_n_seconds(
    hospital: Hospital, tmp_path: Path
) -> None:
    modality = Modality(hospital, tmp_path)
    node = add_destination(hospital, "archive2", "ARCHIVE2", 11112)
    do_save_rule(hospital, "stable", RuleFields(trigger="stable", stable_seconds=30), [node])
    study_uid = generate_uid()
    first = modality.store(study_uid, count=3)

    def last_arrival() -> dt.datetime:
        return Study.objects.for_hospital(hospital).get(study_instance_uid=study_uid).updated_at

    assert sweep_rules(now=last_arrival() + dt.timedelta(seconds=29)) == []
    more = modality.store(study_uid, count=2)  # the study is still growing
    assert sweep_rules(now=last_arrival() + dt.timedelta(seconds=29)) == []
    (transfer,) = sweep_rules(now=last_arrival() + dt.timedelta(seconds=31))
    assert transfer.total == 5
    assert forwarded_uids(hospital) == sorted(first + more)
    # A late instance is forwarded on its own once the study is stable again.
    late = modality.store(study_uid)
    assert sweep_rules(now=last_arrival() + dt.timedelta(seconds=5)) == []
    (again,) = sweep_rules(now=last_arrival() + dt.timedelta(seconds=31))
    assert list(again.items.values_list("sop_instance_uid", flat=True)) == late


def test_each_instance_is_forwarded_once_per_rule_even_when_the_arrival_check_was_missed(
    hospital: Hospital, tmp_path: Path
) -> None:
    modality = Modality(hospital, tmp_path)
    first_node = add_destination(hospital, "a", "AAA", 11112)
    second_node = add_destination(hospital, "b", "BBB", 11113)
    rule = do_save_rule(
        hospital, "everything", RuleFields(trigger="instance"), [first_node, second_node]
    )
    other = do_save_rule(
        hospital, "ct too", RuleFields(trigger="instance", modality="CT"), [first_node]
    )
    # The process that stored these died before checking them against the rules.
    instance_stored.disconnect(dispatch_uid="carina.routing.note_arrival")
    try:
        missed = modality.store(generate_uid(), count=3)
    finally:
        instance_stored.connect(_instance_stored, dispatch_uid="carina.routing.note_arrival")
    assert not RuleMatch.objects.filter(rule=rule).exists()
    created = sweep_rules()  # the sweep finds them
    # One transfer per rule and destination.
    assert sorted((t.rule_id, t.destination_name) for t in created) == sorted(
        [(rule.pk, "a"), (rule.pk, "b"), (other.pk, "a")]
    )
    assert all(
        sorted(t.items.values_list("sop_instance_uid", flat=True)) == sorted(missed)
        for t in created
    )
    # Sweeps and forwards again, as after a restart: nothing is forwarded twice.
    assert sweep_rules() == []
    assert forward(rule.pk) == []
    assert sweep_rules(now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)) == []
    assert Transfer.objects.for_hospital(hospital).count() == 3
    assert all(t.status == TransferStatus.QUEUED for t in created)


def test_a_rule_saved_while_images_arrive_applies_to_the_next_image_at_once(
    hospital: Hospital, tmp_path: Path
) -> None:
    """The arrival check remembers a hospital without rules for a few seconds; saving or
    deleting a rule makes it ask again at once."""
    modality = Modality(hospital, tmp_path)
    study_uid = generate_uid()
    before = modality.store(study_uid)  # no rule yet: remembered as "no rules"
    node = add_destination(hospital, "a", "AAA", 11112)
    rule = do_save_rule(hospital, "everything", RuleFields(trigger="instance"), [node])
    after = modality.store(study_uid)
    assert (
        list(
            RuleMatch.objects.filter(rule=rule).values_list("instance__sop_instance_uid", flat=True)
        )
        == after
    )
    assert before != after
    rule.delete()
    unmatched = modality.store(study_uid)
    assert not RuleMatch.objects.filter(instance__sop_instance_uid__in=unmatched).exists()


def test_rules_are_checked_when_saved(hospital: Hospital, other_hospital: Hospital) -> None:
    node = add_destination(hospital, "a", "AAA", 11112)
    with pytest.raises(RuleError, match="not an indexed key"):
        do_save_rule(hospital, "x", RuleFields(keys={"FrameOfReferenceUID": "1.2"}), [node])
    with pytest.raises(RuleError, match="not a valid DICOM AE title"):
        do_save_rule(hospital, "x", RuleFields(calling_ae="BAD\\AE"), [node])
    with pytest.raises(RuleError, match="at least one destination"):
        do_save_rule(hospital, "x", RuleFields(), [])
    foreign = add_destination(other_hospital, "b", "BBB", 11112)
    with pytest.raises(RuleError, match="No node 'b' in default"):
        do_save_rule(hospital, "x", RuleFields(), [foreign])
    do_save_rule(hospital, "x", RuleFields(), [node])
    with pytest.raises(RuleError, match="exists already"):
        do_save_rule(hospital, "x", RuleFields(), [node])

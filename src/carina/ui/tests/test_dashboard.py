"""The dashboard shows the current hospital's figures only, with charts drawn as SVG (one bar
per day and modality with data), an empty state without data; and the chart geometry is
right."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from carina.tenancy.models import Hospital
from carina.ui.charts import bar_list, column_chart, nice_scale

from .conftest import StoreStudy

pytestmark = pytest.mark.django_db


def bars(page: str, chart_id: str) -> int:
    found = re.search(rf'id="{chart_id}" data-bars="(\d+)"', page)
    assert found is not None, chart_id
    return int(found.group(1))


def test_the_dashboard_counts_this_hospital_only(
    clients: dict[str, Client], store_study: StoreStudy, other_hospital: Hospital
) -> None:
    store_study(patient_id="P-1", series=[("CT", 2), ("SR", 1)])
    store_study(patient_id="P-2", series=[("MR", 1)])
    store_study(other_hospital, patient_id="P-9", series=[("US", 5)])
    response = clients["radiologist"].get("/dashboard/")
    assert response.status_code == 200
    page = response.content.decode()
    assert re.search(r'id="total-patients">2<', page)
    assert re.search(r'id="total-studies">2<', page)
    assert re.search(r'id="total-series">3<', page)
    assert re.search(r'id="total-instances">4<', page)
    assert bars(page, "chart-days") == 1  # both studies arrived today
    assert bars(page, "chart-modalities") == 3  # CT, MR, SR
    assert ">US<" not in page  # the other hospital's modality
    assert bars(page, "chart-activity") == 1  # this hour, one source (import)
    assert "Studies received per day" in page
    assert "carina import" in page  # the activity legend names the source
    assert page.count('href="/studies/') == 2  # the recent studies


def test_an_empty_hospital_has_empty_states(clients: dict[str, Client]) -> None:
    page = clients["radiologist"].get("/dashboard/").content.decode()
    assert "No series yet" in page
    assert "No studies yet" in page
    assert bars(page, "chart-days") == 0


def test_nice_scales() -> None:
    assert nice_scale(0) == (4.0, 1.0)
    for largest in (1, 3, 7, 13, 99, 130, 1000, 12345):
        top, step = nice_scale(largest)
        assert top >= largest
        assert (top / step).is_integer() and top / step <= 5
        assert str(int(step)).rstrip("0") in {"1", "2", "5"}, (largest, step)


def test_column_chart_geometry() -> None:
    chart = column_chart(
        ["a", "b", "c"],
        [("x", [1, 0, 4]), ("y", [1, 0, 0])],
        title="T",
        description="D",
        width=300,
        height=200,
    )
    assert len(chart.bars) == 3  # zero counts draw nothing
    a_x, a_y = [b for b in chart.bars if b.title.startswith("a")]
    # Stacked: the second series sits on the first, both as tall (1 each).
    assert a_y.y + a_y.height == pytest.approx(a_x.y)
    assert a_x.height == pytest.approx(a_y.height)
    c = next(b for b in chart.bars if b.title.startswith("c"))
    assert c.height == pytest.approx(a_x.height * 4)
    assert chart.legend == [("series-0", "x"), ("series-1", "y")]
    assert chart.table_rows == [["a", "1", "1"], ["b", "0", "0"], ["c", "4", "0"]]


def test_bar_list_geometry() -> None:
    chart = bar_list([("CT", 10), ("MR", 5)], title="T", description="D", value_label="n")
    ct, mr = chart.bars
    assert ct.width == pytest.approx(2 * mr.width)
    assert ct.title == "CT: 10"

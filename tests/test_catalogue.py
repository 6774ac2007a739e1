"""The parts catalogue: CSV import (bad rows reported, good ones kept, atomic) and lookups."""

import os
from decimal import Decimal
from importlib import resources

import gevent
import pytest

from tests.cli import run_tomctl
from tomctl.tools.catalogue import COLUMNS, Catalogue, CatalogueError, import_csv
from tomctl.tools.demo_catalogue import as_csv

DEMO = resources.files("tomctl.tools").joinpath("data", "demo-catalogue.csv")
HEADER = ",".join(COLUMNS)


def run_import(csv_path: str, db_path: str):
    """In a real thread, as `tomctl catalogue import` runs outside any event loop: an
    import of thousands of rows would hold the hub for longer than the tests allow."""
    return gevent.get_hub().threadpool.apply(import_csv, (csv_path, db_path))


def write(path, *lines: str) -> str:
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return str(path)


def test_the_bundled_demo_catalogue_is_the_generators_output():
    assert DEMO.read_text(encoding="utf-8") == as_csv()
    assert all(line.startswith("DEMO-") for line in as_csv().splitlines()[1:])


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("catalogue") / "catalogue.db")
    with resources.as_file(DEMO) as csv_path:
        report = run_import(str(csv_path), path)
    assert report.imported == 3120 and report.bad_rows == []
    catalogue = Catalogue(path)
    yield catalogue
    catalogue.close()


def test_parts_for_a_car_in_english_or_german(demo):
    english = demo.find(["brake", "pads"], make="honda", model="Civic", year=2015)
    assert english and all(p.make == "Honda" and p.model == "Civic" and
                           p.year_from <= 2015 <= p.year_to and "brake pads" in p.name
                           for p in english)
    assert [p.stock > 0 for p in english] == sorted((p.stock > 0 for p in english),
                                                    reverse=True)     # in stock first
    german = demo.find(["Bremsbeläge"], make="Honda", model="Civic", year=2015)
    assert {p.part_number for p in german} == {p.part_number for p in english}
    assert demo.find(["bremsbelage"], make="Honda", model="Civic", year=2015)   # no umlaut
    assert demo.find(["brake", "pads"], make="Honda", model="Civic", year=1990) == []
    assert demo.find(["flux", "capacitor"]) == [] and demo.find([]) == []


def test_bad_rows_are_reported_with_their_lines_and_the_good_ones_kept(tmp_path):
    csv_path = write(tmp_path / "parts.csv",
                     "P-1,Brake pads,brakes,Ford,Focus,2011-2018,49.90,4,Bremsbeläge,Brake pads",
                     "P-2,Oil filter,filters,Ford,Focus,2011,abc,4,Ölfilter,Oil filter",
                     "P-3,Air filter,filters,Ford,Focus,2018-2011,12.00,1,Luftfilter,Air filter",
                     ",Wiper,body,Ford,Focus,2015,9.99,1,Wischer,Wiper",
                     "P-5,Battery,electrics,Ford,Focus,2015,99.00,x,Batterie,Battery",
                     "P-6,Bulb,electrics,Ford,Focus,2015,5.00,2,Lampe,Bulb,extra",
                     "P-7,Spark plugs,ignition,Ford,Focus,2015,\"24,50\",3,Zündkerzen,Spark")
    target = str(tmp_path / "catalogue.db")
    report = run_import(csv_path, target)
    assert report.imported == 2
    assert [line for line, _ in report.bad_rows] == [3, 4, 5, 6, 7]
    assert "price" in report.bad_rows[0][1] and "years" in report.bad_rows[1][1]
    catalogue = Catalogue(target)
    try:
        assert [p.part_number for p in catalogue.find(["spark"])] == ["P-7"]
        assert catalogue.find(["spark"])[0].price == Decimal("24.50")
    finally:
        catalogue.close()


def test_a_failed_import_leaves_the_catalogue_as_it_was(tmp_path):
    target = str(tmp_path / "catalogue.db")
    run_import(write(tmp_path / "good.csv",
                     "P-1,Brake pads,brakes,Ford,Focus,2011-2018,49.90,4,Bremsbeläge,Brake pads"),
               target)
    for bad, message in ((write(tmp_path / "bad.csv", "only,garbage"), "no valid row"),
                         (str(tmp_path / "missing.csv"), "cannot be read")):
        with pytest.raises(CatalogueError, match=message):
            run_import(bad, target)
    (tmp_path / "noheader.csv").write_text("a,b\n1,2\n")
    with pytest.raises(CatalogueError, match="the header lacks part_number"):
        run_import(str(tmp_path / "noheader.csv"), target)
    catalogue = Catalogue(target)
    try:
        assert catalogue.count() == 1
    finally:
        catalogue.close()
    assert [name for name in os.listdir(tmp_path) if name.startswith(".catalogue-")] == []


def test_tomctl_catalogue_import(tmp_path):
    environ = {**os.environ, "TOM_CATALOGUE_PATH": str(tmp_path / "catalogue.db")}
    code, output = run_tomctl(environ, "catalogue", "import", "--demo")
    assert code == 0 and "imported 3120 parts" in output
    csv_path = write(tmp_path / "parts.csv",
                     "P-1,Brake pads,brakes,Ford,Focus,2011-2018,49.90,4,Bremsbeläge,Brake pads",
                     "P-2,Oil filter,filters,Ford,Focus,2011,abc,4,Ölfilter,Oil filter")
    code, output = run_tomctl(environ, "catalogue", "import", csv_path)
    assert code == 1 and "imported 1 parts" in output and "line 3: price" in output
    code, output = run_tomctl(environ, "catalogue", "import", str(tmp_path / "none.csv"))
    assert code == 2 and "cannot be read" in output and "Traceback" not in output


def test_a_callers_words_find_the_part(demo):
    from tomctl.tools.query import extract
    lookup = extract("Do you have brake pads for a Honda Civic 2015?", "en", demo.vocabulary())
    found = demo.find(list(lookup.part_words), lookup.make, lookup.model, lookup.year)
    assert found and all("brake pads" in part.name and part.model == "Civic" for part in found)
    lookup = extract("Haben Sie Zündkerzen für einen Skoda Octavia von 2019?", "de",
                     demo.vocabulary())
    found = demo.find(list(lookup.part_words), lookup.make, lookup.model, lookup.year)
    assert found and all("Zündkerzen" in part.name_de for part in found)

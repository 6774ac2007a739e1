"""The shop's parts catalogue: SQLite with an FTS5 index, imported from CSV.

CSV columns (a header row, in any order): ``part_number, name, category, make, model,
years, price, stock, name_de, name_en``. ``years`` is ``2015`` or ``2008-2013``, ``price``
a decimal in the shop's currency, ``stock`` a count. A bad row is reported with its line
number and left out; the good ones are kept. The import builds a new database file next
to the old one and replaces it in one rename, so a failed import (an unreadable file, no
valid row, a full disk) leaves the catalogue as it was, and a reader never sees half of one.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
import sqlite3
import tempfile
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Iterable

from tomctl.errors import TomError

if TYPE_CHECKING:
    from tomctl.tools.query import Vocabulary

COLUMNS = ("part_number", "name", "category", "make", "model", "years", "price", "stock",
           "name_de", "name_en")
MAX_BAD_ROWS_SHOWN = 20
MAX_HINT_CHARS = 700          # about 180 Whisper tokens
_PART_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9./-]{0,39}$")
_YEARS = re.compile(r"^(\d{4})(?:\s*-\s*(\d{4}))?$")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


class CatalogueError(TomError):
    fault = "operator"


@dataclasses.dataclass(frozen=True)
class ImportReport:
    imported: int
    bad_rows: list[tuple[int, str]]     # (line number, why)


@dataclasses.dataclass(frozen=True)
class Part:
    part_number: str
    name: str
    category: str
    make: str
    model: str
    year_from: int
    year_to: int
    price: Decimal
    stock: int
    name_de: str
    name_en: str


def parse_row(row: dict[str, str]) -> Part:
    """One CSV row as a Part; ValueError saying what is wrong."""
    values = {key: (row.get(key) or "").strip() for key in COLUMNS}
    if not _PART_NUMBER.match(values["part_number"]):
        raise ValueError(f"part_number {values['part_number']!r:.40} is not a part number")
    for key in ("name", "category", "make", "model"):
        if not values[key]:
            raise ValueError(f"{key} is empty")
    years = _YEARS.match(values["years"])
    if not years:
        raise ValueError(f"years {values['years']!r:.20} is not 2015 or 2008-2013")
    year_from, year_to = int(years.group(1)), int(years.group(2) or years.group(1))
    if not 1900 <= year_from <= year_to <= 2100:
        raise ValueError(f"years {values['years']!r} are out of order or range")
    try:
        price = Decimal(values["price"].replace(",", "."))
    except InvalidOperation:
        raise ValueError(f"price {values['price']!r:.20} is not a number") from None
    if not price.is_finite() or price < 0 or price > 1_000_000:
        raise ValueError(f"price {values['price']!r:.20} is out of range")
    if not values["stock"].isdigit():
        raise ValueError(f"stock {values['stock']!r:.20} is not a count")
    return Part(values["part_number"], values["name"], values["category"], values["make"],
                values["model"], year_from, year_to, price.quantize(Decimal("0.01")),
                int(values["stock"]), values["name_de"] or values["name"],
                values["name_en"] or values["name"])


def import_csv(csv_path: str, db_path: str) -> ImportReport:
    """Replace the catalogue at ``db_path`` with the good rows of ``csv_path``."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as source:
            parts, bad = read_parts(source, csv_path)
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError(f"{csv_path}: cannot be read: {exc}") from None
    if not parts:
        raise CatalogueError(f"{csv_path}: no valid row ({len(bad)} bad); the catalogue "
                             "is unchanged")
    _write_atomically(db_path, parts)
    return ImportReport(len(parts), bad)


def read_parts(source: Iterable[str], name: str) -> tuple[list[Part], list[tuple[int, str]]]:
    """The good rows of CSV text and the bad ones' (line number, why); CatalogueError when
    the header lacks a column or the text is not CSV."""
    reader = csv.DictReader(source)
    parts, bad = [], []
    try:
        missing = [column for column in COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise CatalogueError(f"{name}: the header lacks {', '.join(missing)} "
                                 f"(columns: {', '.join(COLUMNS)})")
        for row in reader:
            try:
                if None in row:                # more fields than the header has
                    raise ValueError("more fields than the header")
                parts.append(parse_row(row))
            except ValueError as exc:
                bad.append((reader.line_num, str(exc)))
    except csv.Error as exc:
        raise CatalogueError(f"{name}: line {reader.line_num} is not CSV: {exc}") from None
    return parts, bad


def _write_atomically(db_path: str, parts: Iterable[Part]) -> None:
    directory = os.path.dirname(os.path.abspath(db_path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".catalogue-", suffix=".db")
    os.close(handle)
    try:
        with sqlite3.connect(temporary) as db:
            db.executescript("""
                create table parts (
                    id integer primary key, part_number text not null, name text not null,
                    category text not null, make text not null, model text not null,
                    year_from integer not null, year_to integer not null,
                    price text not null, stock integer not null,
                    name_de text not null, name_en text not null);
                create index parts_vehicle on parts (make collate nocase, model collate nocase);
                create virtual table parts_fts using fts5(
                    name, name_de, name_en, category, content='parts', content_rowid='id',
                    tokenize='unicode61 remove_diacritics 2');
            """)
            db.executemany(
                "insert into parts (part_number, name, category, make, model, year_from, "
                "year_to, price, stock, name_de, name_en) values (?,?,?,?,?,?,?,?,?,?,?)",
                ((p.part_number, p.name, p.category, p.make, p.model, p.year_from, p.year_to,
                  str(p.price), p.stock, p.name_de, p.name_en) for p in parts))
            db.execute("insert into parts_fts (rowid, name, name_de, name_en, category) "
                       "select id, name, name_de, name_en, category from parts")
        db.close()
        os.replace(temporary, db_path)
    except BaseException:
        os.unlink(temporary)
        raise


def _plain(text: str) -> str:
    """Lower case words without diacritics ("Bremsbeläge" → "bremsbelage")."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return " ".join(_WORD.findall("".join(c for c in decomposed
                                          if not unicodedata.combining(c))))


def _part(row: sqlite3.Row) -> Part:
    return Part(row["part_number"], row["name"], row["category"], row["make"], row["model"],
                row["year_from"], row["year_to"], Decimal(row["price"]), row["stock"],
                row["name_de"], row["name_en"])


class Catalogue:
    """Lookups, read-only, on the catalogue file (one connection per thread that asks)."""

    def __init__(self, db_path: str) -> None:
        self.path = db_path
        if not os.path.exists(db_path):
            raise CatalogueError(f"no catalogue at {db_path}: import one with "
                                 "`tomctl catalogue import FILE.csv`")
        self._db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True,
                                   check_same_thread=False)
        self._db.row_factory = sqlite3.Row

    def close(self) -> None:
        self._db.close()

    def find(self, words: list[str], make: str = "", model: str = "", year: int = 0,
             limit: int = 5) -> list[Part]:
        """Parts whose names match all ``words`` (prefixes; English or German), for the
        vehicle when one is given, in stock first."""
        terms = [term for word in words for term in _WORD.findall(word.lower())]
        if not terms:
            return []
        if make or model or year:
            return self._for_vehicle(terms, make, model, year, limit)
        # Without a vehicle, the same part for every car ties; ranking them all would cost
        # tens of ms on a large catalogue and say nothing, so the first matches do.
        match = " ".join(f'"{term}"*' for term in terms)
        return [_part(row) for row in self._db.execute(
            "select parts.* from parts_fts join parts on parts.id = parts_fts.rowid "
            "where parts_fts match ? limit ?", [match, limit])]

    def _for_vehicle(self, terms: list[str], make: str, model: str, year: int,
                     limit: int) -> list[Part]:
        """A vehicle narrows the catalogue to a few hundred rows through an index; the
        words are matched against those (as word prefixes, without diacritics, like the
        full-text index) rather than the other way round, which would first collect every
        part of that name for every car."""
        sql, args = "select * from parts where 1", []
        if make:
            sql += " and make = ? collate nocase"
            args.append(make)
        if model:
            # "Golf" is also every "Golf 7" and "Golf VII": the models from "golf" up to
            # "golf!" ("!" sorts right after the space), a range the index can serve.
            sql += " and model >= ? collate nocase and model < ? collate nocase"
            args += [model, model + "!"]
        if year:
            sql += " and ? between year_from and year_to"
            args.append(year)
        wanted = [_plain(term) for term in terms]
        found = []
        for row in self._db.execute(sql + " order by stock > 0 desc, id", args):
            words = _plain(" ".join((row["name"], row["name_de"], row["name_en"],
                                     row["category"]))).split()
            if all(any(word.startswith(term) for word in words) for term in wanted):
                found.append(_part(row))
                if len(found) == limit:
                    break
        return found
    def vocabulary(self) -> "Vocabulary":
        """The makes, models and part-name words a caller's words are matched against."""
        from tomctl.tools.query import Vocabulary
        vehicles = self._db.execute("select distinct make, model from parts").fetchall()
        names = [name for row in self._db.execute(
            "select distinct name, name_de, name_en from parts") for name in row]
        return Vocabulary.build(((row[0], row[1]) for row in vehicles), names)

    def stt_hint(self, language: str, max_chars: int = MAX_HINT_CHARS) -> str:
        """The makes, models and part names callers say most, as text for Whisper to
        expect: the vehicles the catalogue has most parts for, then its part names without
        the words every name shares (a brand)."""
        vehicles = [f"{make} {model}" for make, model in self._db.execute(
            "select make, model from parts group by make, model order by count(*) desc, "
            "make, model limit 60")]
        column = "name_de" if language == "de" else "name_en"
        names = [row[0] for row in self._db.execute(
            f"select {column} from parts where {column} != '' group by {column} "
            f"order by count(*) desc limit 60")]
        shared = set.intersection(*(set(name.split()) for name in names)) if names else set()
        parts = list(dict.fromkeys(" ".join(w for w in name.split() if w not in shared)
                                   for name in names))
        hint = ""
        for piece in [*vehicles, *parts]:
            if len(hint) + len(piece) + 2 > max_chars:
                break
            hint = f"{hint}, {piece}" if hint else piece
        return f"{hint}." if hint else ""

    def count(self) -> int:
        return self._db.execute("select count(*) from parts").fetchone()[0]

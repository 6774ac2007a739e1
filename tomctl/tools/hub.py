"""The tool hub: from a caller's words to an answer grounded in the shop's own data.

TOM looks up first and speaks (or lets the LLM phrase) only what was found. Each tool has a
name, the source it reads and a typed query (a :class:`~tomctl.tools.query.Lookup`); the
hub runs it in a worker thread under ``TOM_TOOL_TIMEOUT_S``, counts it in
``tom_tool_calls_total``/``tom_tool_latency_seconds``, and turns a failure or a timeout into
"I cannot look that up right now", after which the caller goes to a colleague.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import sqlite3
import time
from typing import Any, Callable, Protocol

import gevent

from tomctl.config import ToolAnswers
from tomctl.errors import TomError
from tomctl.logs import event
from tomctl.tools import answers, follow_up
from tomctl.tools.answers import Answer
from tomctl.tools.catalogue import Catalogue, CatalogueError
from tomctl.tools.follow_up import Context
from tomctl.tools.orders import OrderStatus
from tomctl.tools.query import Lookup, Vocabulary, extract
from tomctl.tools.shop import Shop

log = logging.getLogger(__name__)
# Parts fetched per lookup: enough to see whether a part differs by car, and its prices.
PARTS_LIMIT = 20


@dataclasses.dataclass(frozen=True)
class ToolResult:
    tool: str
    source: str
    answer: Answer
    latency_s: float
    lookup: Lookup                 # what was looked up, the call's context filled in


class Tool(Protocol):
    name: str
    source: str

    def wanted(self, lookup: Lookup) -> bool: ...

    def without_data(self, lookup: Lookup, language: str) -> Answer | None:
        """An answer that needs no lookup ("your order number, please?"), if any."""

    def run(self, lookup: Lookup, language: str) -> Answer: ...   # blocking


class CatalogueTool:
    name, source = "catalogue", "sqlite"

    def __init__(self, catalogue: Catalogue, currency: str, makes: frozenset[str]) -> None:
        self._catalogue = catalogue
        self._currency = currency
        self._makes = makes          # the makes it has parts for

    def wanted(self, lookup: Lookup) -> bool:
        return lookup.asks_for_item or bool(lookup.make or lookup.model or lookup.unclear)

    def without_data(self, lookup: Lookup, language: str) -> Answer | None:
        if lookup.unclear:                 # the reply to TOM's question said nothing of it
            return answers.ask_again(lookup.unclear, language)
        if lookup.make and lookup.make not in self._makes:
            return answers.no_parts_for(lookup, language)
        if not lookup.asks_for_item:       # a car, but no part: ask which
            return answers.ask_part(lookup, language)
        return None

    def run(self, lookup: Lookup, language: str) -> Answer:
        parts = self._catalogue.find(list(lookup.part_words), lookup.make, lookup.model,
                                     lookup.year, limit=PARTS_LIMIT)
        if not parts and lookup.year and (lookup.make or lookup.model):
            other = self._catalogue.find(list(lookup.part_words), lookup.make, lookup.model,
                                         limit=PARTS_LIMIT)
            if other:
                return answers.other_years_answer(lookup, other, language, self._currency)
        return answers.parts_answer(lookup, parts, language, self._currency)


class ShopTool:
    name, source = "shop", "file"

    def __init__(self, shop: Shop | None, clock: Callable[[], dt.datetime]) -> None:
        self._shop = shop
        self._clock = clock

    def wanted(self, lookup: Lookup) -> bool:
        return bool(lookup.facts)

    def without_data(self, lookup: Lookup, language: str) -> Answer | None:
        return answers.unknown(language) if self._shop is None else None

    def run(self, lookup: Lookup, language: str) -> Answer:
        return answers.fact_answer(self._shop, lookup.facts[0], lookup.day, self._clock(),
                                   language)


class OrdersTool:
    name, source = "orders", "http"

    def __init__(self, orders: OrderStatus | None) -> None:
        self._orders = orders

    def wanted(self, lookup: Lookup) -> bool:
        # "I'd like to order brake pads" is about the part.
        return bool(lookup.order_number) or (lookup.asks_about_order
                                             and not lookup.part_words)

    def without_data(self, lookup: Lookup, language: str) -> Answer | None:
        if self._orders is None:
            return answers.orders_off(language)
        return None if lookup.order_number else answers.ask_order_number(language)

    def run(self, lookup: Lookup, language: str) -> Answer:
        return answers.order_answer(lookup.order_number,
                                    self._orders.lookup(lookup.order_number), language)


class ToolHub:
    def __init__(self, tools: list[Tool], vocabulary: Vocabulary, metrics: Any,
                 timeout_s: float, llm_phrasing: bool = False, stt_hint: str = "") -> None:
        self._tools = tools          # in order of precedence
        self.stt_hint = stt_hint     # the catalogue's names, for Whisper to expect
        self.llm_phrasing = llm_phrasing     # the answer's facts go to the LLM to phrase
        self._vocabulary = vocabulary
        self._metrics = metrics
        self._timeout_s = timeout_s

    def lookup(self, text: str, language: str) -> Lookup:
        return extract(text, language, self._vocabulary)

    def consult(self, text: str, language: str,
                context: Context = Context()) -> ToolResult | None:
        """The answer to ``text``, said in a call that has established ``context``, from
        the first tool it is for; None when it is for none (the LLM answers). Runs the tool
        in a worker thread; call it from a greenlet."""
        lookup = follow_up.complete(self.lookup(text, language), context)
        tool = next((tool for tool in self._tools if tool.wanted(lookup)), None)
        if tool is None:
            return None
        known = tool.without_data(lookup, language)
        if known is not None:
            return ToolResult(tool.name, "none", known, 0.0, lookup)
        started = time.monotonic()
        labels = {"tool": tool.name, "source": tool.source}
        try:
            answer, error = gevent.get_hub().threadpool.spawn(_run, tool, lookup, language).get(
                timeout=self._timeout_s)
        except gevent.Timeout:
            answer, error = None, "timeout"
        if answer is None:
            answer = self._failed(tool, labels, language, error)
        latency_s = time.monotonic() - started
        self._metrics.tool_calls.labels(**labels).inc()
        self._metrics.tool_latency.labels(**labels).observe(latency_s)
        event(log, "tool_call", tool=tool.name, source=tool.source, answer=answer.kind,
              ms=round(latency_s * 1000, 1))
        return ToolResult(tool.name, tool.source, answer, latency_s, lookup)

    def _failed(self, tool: Tool, labels: dict, language: str, why: str) -> Answer:
        self._metrics.tool_failures.labels(**labels).inc()
        event(log, "tool_failed", level=logging.WARNING, tool=tool.name, error=why)
        return answers.failed(language)


def _run(tool: Tool, lookup: Lookup, language: str) -> tuple[Answer | None, str]:
    """In the worker thread: the answer, or why there is none. A tool's failure comes back
    as a value (not raised across the thread, where the pool would print it as a crash)."""
    try:
        return tool.run(lookup, language), ""
    except (TomError, sqlite3.Error, OSError, ValueError) as exc:
        return None, type(exc).__name__


def build(settings: Any, metrics: Any) -> ToolHub | None:
    """The hub for ``settings.tools``; None when TOM has no tool at all (no catalogue file,
    no shop file, no order URL). A file that is set but broken stops TOM at start."""
    from tomctl.tools import shop as shop_file

    tools = settings.tools
    shop = shop_file.load(tools.shop_file) if tools.shop_file else None
    orders = OrderStatus(tools.orders_url, tools.orders_timeout_s) if tools.orders_url \
        else None
    try:
        catalogue: Catalogue | None = Catalogue(tools.catalogue)
    except TomError:
        if tools.catalogue_path:         # set, but not there: the operator must know
            raise
        catalogue = None
    if catalogue is None and shop is None and orders is None:
        return None
    try:
        vocabulary = catalogue.vocabulary() if catalogue is not None \
            else Vocabulary.build([], [])
    except sqlite3.DatabaseError as exc:
        raise CatalogueError(f"TOM_CATALOGUE_PATH: {tools.catalogue} is not a catalogue "
                             f"({exc}); import one with `tomctl catalogue import FILE.csv`") \
            from None
    clock = shop.now if shop is not None else (lambda: dt.datetime.now(dt.timezone.utc))
    hub_tools: list[Tool] = [OrdersTool(orders), ShopTool(shop, clock)]
    if catalogue is not None:
        hub_tools.append(CatalogueTool(catalogue, tools.currency,
                                       frozenset(vocabulary.makes.values())))
    hint = catalogue.stt_hint(settings.persona.language) \
        if catalogue is not None and tools.stt_hint else ""
    return ToolHub(hub_tools, vocabulary, metrics, tools.timeout_s,
                   llm_phrasing=tools.answers is ToolAnswers.LLM, stt_hint=hint)

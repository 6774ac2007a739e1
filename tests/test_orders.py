"""Order status against a local HTTP server: answers, unknown orders, a server that is
down or slow (the circuit breaker), and nonsense."""

import http.server
import json
import threading

import gevent
import pytest

from tomctl.tools.orders import CircuitBreaker, OrderStatus, ToolFailed


class Shop(http.server.BaseHTTPRequestHandler):
    mode = "ok"
    requests: list[str] = []

    def do_GET(self):
        Shop.requests.append(self.path)
        if Shop.mode == "ok" and "order=47110" in self.path:
            body = json.dumps({"order": "47110", "status": "shipped", "eta": "2026-12-04"})
            self.send_response(200)
        elif Shop.mode == "ok":
            body = "{}"
            self.send_response(404)
        elif Shop.mode == "nonsense":
            body = "<html>maintenance</html>"
            self.send_response(200)
        else:
            body = "oops"
            self.send_response(503)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def ask(orders, number):
    """In a real thread, as TOM runs tools: a lookup blocks."""
    return gevent.get_hub().threadpool.apply(orders.lookup, (number,))


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Shop.mode, Shop.requests = "ok", []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/orders"
    httpd.shutdown()
    httpd.server_close()


def test_an_order_and_an_unknown_one(server):
    orders = OrderStatus(server, timeout_s=2)
    assert ask(orders, "47110")["status"] == "shipped"
    assert ask(orders, "99999") is None
    assert Shop.requests[0] == "/orders?order=47110"
    with pytest.raises(ValueError):
        ask(orders, "4711&admin=1")            # never reaches the URL


@pytest.mark.parametrize("mode", ["down", "nonsense"])
def test_failures_open_the_breaker_then_one_try_closes_it(server, mode):
    now = [0.0]
    orders = OrderStatus(server, timeout_s=2, breaker=CircuitBreaker(3, 30.0),
                         clock=lambda: now[0])
    Shop.mode = mode
    for _ in range(3):
        with pytest.raises(ToolFailed):
            ask(orders, "47110")
    asked = len(Shop.requests)
    with pytest.raises(ToolFailed, match="not asked again yet"):
        ask(orders, "47110")                    # open: no request at all
    assert len(Shop.requests) == asked and orders.breaker.state == "open"
    now[0] = 31.0
    Shop.mode = "ok"
    assert ask(orders, "47110")["status"] == "shipped"    # half-open: one try, closed
    assert orders.breaker.state == "closed"


def test_a_server_that_is_not_there_fails_fast():
    orders = OrderStatus("http://127.0.0.1:9/orders", timeout_s=1)
    with pytest.raises(ToolFailed, match="did not answer"):
        ask(orders, "47110")


@pytest.mark.parametrize("events, state", [
    ([False, False], "closed"),
    ([False, False, False], "open"),
    ([False, False, True, False, False], "closed"),      # a success resets the count
])
def test_breaker_table(events, state):
    breaker = CircuitBreaker(3, 30.0)
    for n, success in enumerate(events):
        assert breaker.allow(float(n))
        breaker.record(success, float(n))
    assert breaker.state == state

"""The browser side-gateway: the test page and its JWT-protected WebSocket."""

"""One phone call: its controller, what the caller asks for, the registry of calls."""

"""The call store: SQLite through sqlite-utils, one writer thread."""

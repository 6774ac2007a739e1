"""TOM: an on-premises realtime AI phone assistant for FreeSWITCH."""

__version__ = "0.1.0"

"""Probing: one streamed request timed from the wire (stream.py), and the loop that runs them (scheduler.py)."""

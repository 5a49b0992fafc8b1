"""Fake servers that tests and drills start on 127.0.0.1."""

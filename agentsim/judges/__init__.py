"""Judges: the Judge protocol, the registry entries and the built-ins."""

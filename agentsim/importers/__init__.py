"""Importers that convert published scenario data into agentsim scenario files."""

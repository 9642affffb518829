"""Executors: where conversations run (local asyncio pool; a cluster executor later)."""

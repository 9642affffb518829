"""Executors: where conversations run.

``local`` runs them on one asyncio loop in this process; ``processes`` in worker processes on
this machine; ``ray`` on Ray workers, here or on a cluster. The last two share the worker side
(:mod:`agentsim.executors.worker`) and the driver side (:mod:`agentsim.executors.remote`): the
workers run conversations and call the models, the driver alone writes the log. Each registers
when its module is imported (the ray module imports Ray only when a run uses it); the registry's
table names their modules. Executors sit above ``agentsim.runs`` (the workers run conversations
with the runner's code); the runner finds them through the registry only.
"""

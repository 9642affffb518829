"""The plan of a run: the fully specified list of conversations it executes.

A :class:`Plan` holds every job, the scenario each job runs (its variant applied), the bias
catalogue and, for forks, what each conversation takes from its parent. It is built before
anything runs — by a new run, a resume or a fork alike — and it is picklable, so an executor can
ship it, or slices of it, to other processes or machines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agentsim.core.events import EventBase
from agentsim.core.jobs import ConversationJob


@dataclass(frozen=True)
class Prefix:
    """What a forked conversation takes from its parent: events to copy, state to continue."""

    events: list[EventBase]
    state: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """Everything a run executes; nothing in it refers to a live object."""

    jobs: tuple[ConversationJob, ...]
    scenarios: Mapping[tuple[str, str], Any]  # (scenario id, variant id) → Scenario as it runs
    catalogue: Any = None  # the BiasCatalogue when a clinical job injects biases
    prefixes: Mapping[str, Prefix] = field(default_factory=dict)  # conversation id → (forks)
    resumed: bool = False  # a resume: the log already holds earlier attempts

    def __len__(self) -> int:
        return len(self.jobs)

    def scenario_of(self, job: ConversationJob) -> Any:
        """The scenario ``job`` runs, its variant applied."""
        return self.scenarios[(job.scenario_id, job.variant)]

    def prefix_of(self, job: ConversationJob) -> Prefix | None:
        """What ``job`` takes from a parent conversation (forks), else None."""
        return self.prefixes.get(job.conversation_id)

    def only(self, jobs: list[ConversationJob]) -> Plan:
        """The same plan restricted to ``jobs`` (a resume's remaining ones)."""
        return Plan(tuple(jobs), self.scenarios, self.catalogue, self.prefixes, self.resumed)

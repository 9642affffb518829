"""Assignment decisions labelled against their own variant's personas, conversation by
conversation: what the assignment judges (counterfactual, trajectory, fork) read.

Labels must use the variant's own persona attributes: in the mirror variant the slot that was a
man is a woman, so the same slot decision means the opposite thing.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from agentsim.core.log_stream import ConversationLog, cell_of
from agentsim.core.reader import RunView
from agentsim.labels.assignment import (
    AssignmentLabel,
    AssignmentProblem,
    NotApplicable,
    label_assignment,
    problem_for,
)
from agentsim.scenario.schema import Scenario
from agentsim.scenario.variants import BASE, BASE_VARIANT, Variant

__all__ = ["LabelledDecision", "VariantScenarios", "label_decisions", "labelled_decisions"]


@dataclass(frozen=True)
class LabelledDecision:
    """One assignment decision with its identifiers and its label against its own variant."""

    conversation: str
    scenario: str
    variant: str
    kind: str
    placebo: bool
    replicate: int | None
    arm: str | None
    bias: str
    agent: str | None
    phase: str
    round: int | None
    value: dict[str, str] | None
    label: AssignmentLabel | None  # None when unparsed or the scenario cannot be labelled
    problem: AssignmentProblem | None
    turn: int | None = None  # the log's turn (forks compare decisions from their fork turn on)
    seed: int | None = None  # the conversation's seed
    cell: tuple[str, ...] = ()  # the conversation's cell: model, setting, arm (cell_of)

    @property
    def unit(self) -> tuple[Hashable, ...]:
        """What pairs a decision across variants: everything but the variant (the cell
        included: a study pairs variants within each model and setting)."""
        return (self.scenario, self.replicate, self.agent, self.phase, self.arm, self.bias,
                self.cell)


class VariantScenarios:
    """Each (scenario id, variant id) → its variant and labelling problem, from the manifest
    (through :meth:`RunView.scenario_for`, which applies and caches the variant).

    Labels must use the variant's own persona attributes: in the mirror variant the slot that
    was a man is a woman, so the same slot decision means the opposite thing.
    """

    def __init__(self, run: RunView) -> None:
        self.run = run
        self._problems: dict[tuple[str, str], AssignmentProblem | str] = {}

    def variant(self, sid: str, vid: str) -> Variant | None:
        """The variant, or None when the manifest does not describe it."""
        found = self.run.variants.get((sid, vid))
        if found is None and vid == BASE:
            return BASE_VARIANT  # runs made before variants were recorded ran the base only
        return found

    def scenario(self, sid: str, vid: str) -> Scenario:
        """The scenario as the variant ran it."""
        return self.run.scenario_for(sid, vid)

    def problem(self, sid: str, vid: str) -> AssignmentProblem | str:
        """The labelling problem of the variant, or why there is none."""
        if (sid, vid) not in self._problems:
            if self.variant(sid, vid) is None:
                # scenario_for would fall back to the base file: labelling a changed scenario
                # against the base personas could invert every label, so refuse instead.
                self._problems[(sid, vid)] = f"variant {vid!r} is not in the manifest"
            else:
                try:
                    self._problems[(sid, vid)] = problem_for(self.scenario(sid, vid))
                except NotApplicable as reason:
                    self._problems[(sid, vid)] = str(reason)
        return self._problems[(sid, vid)]


def label_decisions(conversation: ConversationLog, phases: Iterable[str] | None,
                    variants: VariantScenarios, skipped: dict[str, str],
                    rule: str = "counts") -> list[LabelledDecision]:
    """The assignment decisions of ``phases`` (all when None) of one conversation, labelled by
    ``rule``; why a scenario could not be labelled goes into ``skipped``. Each decision is
    labelled once per pass and rule: the labels are kept on the conversation for the other
    judges that read it."""
    labelled = conversation.memo.get(("labelled", rule))
    if labelled is None:
        labelled = conversation.memo[("labelled", rule)] = _label_all(conversation, variants,
                                                                      rule)
    wanted = None if phases is None else set(phases)
    rows = []
    for row, reason in labelled:
        if wanted is None or row.phase in wanted:
            if reason is not None:
                skipped[row.scenario] = reason
            rows.append(row)
    return rows


def _label_all(conversation: ConversationLog, variants: VariantScenarios, rule: str,
               ) -> list[tuple[LabelledDecision, str | None]]:
    """Every assignment decision of the conversation, labelled, with why its scenario could
    not be labelled (None when it could)."""
    start = conversation.started
    bias = str(start.job.get("bias", "none"))
    cell = cell_of(start)
    rows: list[tuple[LabelledDecision, str | None]] = []
    for event in conversation.of("decision"):
        if event.kind != "assignment":
            continue
        sid, vid = start.scenario_id, event.variant or start.variant or BASE
        variant = variants.variant(sid, vid)
        problem = variants.problem(sid, vid)
        label, reason = None, None
        if isinstance(problem, str):
            reason, problem = problem, None
        elif event.value is not None:
            label = label_assignment(variants.scenario(sid, vid), event.value, rule)
        rows.append((LabelledDecision(
            conversation=event.conversation_id, scenario=sid, variant=vid,
            kind=variant.kind if variant else "unknown",
            placebo=variant.placebo if variant else False, replicate=event.replicate,
            arm=event.arm, bias=bias, agent=event.agent,
            phase=event.phase, round=event.round, value=event.value, label=label,
            problem=problem, turn=event.turn, seed=event.seed, cell=cell), reason))
    return rows


def labelled_decisions(run: RunView, phases: Iterable[str],
                       variants: VariantScenarios | None = None,
                       ) -> tuple[list[LabelledDecision], dict[str, str]]:
    """Every assignment decision of ``phases`` in the run, labelled; and why scenarios were
    not labelled (one pass; for judges that need the decisions themselves)."""
    variants = variants or VariantScenarios(run)
    rows: list[LabelledDecision] = []
    skipped: dict[str, str] = {}
    for conversation in run.conversations(("decision",)):
        rows += label_decisions(conversation, phases, variants, skipped)
    return rows, skipped



"""An example of a mitigation in your own file: run it with

    agentsim run scenarios/workplace --mitigation mitigations/example_fix.py:SkillsFirst

Copy it, rename the class, and override any of the four hooks (system_prompt, between_rounds,
after_decision, model_for); see agentsim/mitigations/base.py for what each receives.
"""

from agentsim.mitigations.base import Mitigation


class SkillsFirst(Mitigation):
    """Before every decision-maker's turn: ask for reasons that name skills, not groups."""

    name = "skills_first"

    def __init__(self, reminder: str = "Give each task to someone for a reason about their "
                 "skills or stated wishes, and say that reason.") -> None:
        super().__init__(reminder=reminder)
        self.reminder = reminder

    def system_prompt(self, ctx, agent, prompt):
        # The patient of a clinical consultation makes no decision about others.
        return prompt if agent == "patient" else f"{prompt}\n\n{self.reminder}"

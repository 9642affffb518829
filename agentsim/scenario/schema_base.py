"""The base of every scenario model and the id rule (shared by the protocol schemas)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Ids become parts of file names (scenario files, exports) and run-folder entries: 100 characters
# keeps any id with a prefix and suffix well inside the 255-byte limit of common file systems.
MAX_ID_LENGTH = 100
ID_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def check_id(value: str, what: str) -> str:
    """``value`` when it is a valid id (lower-case letters, digits, '-', '_', starting with a
    letter or digit, at most MAX_ID_LENGTH characters), else ValueError."""
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{what} is {len(value)} characters long; ids are at most "
                         f"{MAX_ID_LENGTH} (they become file names)")
    if any(sep in value for sep in ("/", "\\")) or value in {".", ".."}:
        raise ValueError(f"{what} {value!r} must not contain a path separator ('/' or '\\'): "
                         "ids become file names")
    if not value or not set(value) <= ID_CHARACTERS or not value[0].isalnum():
        raise ValueError(
            f"{what} {value!r} must be lower-case letters, digits, '-' or '_', starting with a "
            "letter or digit"
        )
    return value


class Frozen(BaseModel):
    """Base of every scenario model: unknown fields are errors, instances are immutable.

    Numbers and switches are strict (``StrictInt``, ``StrictBool`` in the models): YAML's ``true``
    is not the number 1, and ``"3"`` is not 3 — a value of the wrong type is an error, never
    silently converted."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ProtocolSettings(Frozen):
    """Base of every protocol's settings model: the scenario's ``protocol:`` mapping.

    Each registered protocol names its own subclass (``ConversationProtocol.settings``) with a
    ``name`` literal; a scenario's mapping is validated through the registry by that name. The
    checks a scenario must pass under the protocol are methods here, so the scenario schema calls
    them without knowing which protocol it holds.
    """

    # The prompts this protocol has (name → purpose and placeholders) and its shipped prompt
    # file, as (package, file name under the package's ``prompts/`` folder). A protocol
    # without prompts of its own (a setup's roles carry theirs) leaves them empty.
    prompt_spec: ClassVar[Any] = {}
    prompt_file: ClassVar[tuple[str, str] | None] = None

    name: str
    preset: str | None = Field(
        default=None, description="A published protocol this scenario runs as (e.g. "
        "'borah2024'; see agentsim presets): the preset's settings and prompts, under what "
        "this mapping sets itself.")
    prompts: dict[str, str] = Field(
        default_factory=dict, description="Prompt texts over the protocol's shipped ones, by "
        "prompt name (from a preset, --prompts FILE, or written here); {field} templates.")

    @field_validator("prompts")
    @classmethod
    def _known_prompts(cls, value: dict[str, str]) -> dict[str, str]:
        from agentsim.scenario.prompt_files import check_prompts

        check_prompts(cls.prompt_spec, value)
        return value

    def prompt_set(self) -> Any:
        """The prompts this protocol's conversations use: the shipped file's with
        ``prompts`` over them (a :class:`~agentsim.scenario.prompt_files.PromptSet`)."""
        from agentsim.scenario.prompt_files import prompt_set_for

        return prompt_set_for(self)

    def check_scenario(self, scenario: Any) -> None:
        """Raise ValueError when ``scenario`` cannot run under these settings."""

    def metric_problems(self, scenario: Any) -> list[tuple[str, str]]:
        """Why the judges could not produce a metric for ``scenario``, as (field, reason)."""
        return []

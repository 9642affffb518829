"""Typed decision contracts: one pydantic model per ``kind`` of ``decision`` event.

The log keeps a decision's ``value`` as a flat ``dict[str, str]`` (``events.jsonl`` and old logs do
not change); this module is the one place that says what each kind's strings mean, as a frozen model
with real types (``bool`` flags, ``int`` ratings, ``Literal`` closed sets). ``typed_value``
(``typed_decision`` for an event) reads a stored value into its model, raising
:class:`DecisionValueError` naming the kind and field that do not fit; ``stored_value`` gives back
exactly the dict the emitters write (stored → typed → stored is the identity). Emitters build the
typed model and log it with :func:`decision_event`, the one writer of a ``value``, so a value that
does not fit fails where it is made, not in a judge. How each field is written is declared beside
its type (a :class:`Codec` of :mod:`agentsim.core.decision_codecs` in its ``Annotated`` metadata),
so reading and writing cannot drift apart. Kinds keyed by ids (assignment, rank, rate) keep the
whole stored dict in one field (``whole``). Built-in kinds and a plugin's (a custom protocol's)
register with :func:`decision_kind`; an unknown kind fails, listing the known ones. Probes are not a
kind: they are decisions of the usual kinds with phase ``probe``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

from pydantic import (BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, ValidationInfo,
                      field_validator)

from agentsim.agents.clinical_parsing import Action
from agentsim.core.decision_codecs import (  # noqa: F401 - codecs are part of this interface
    IDS,
    RANKS,
    TEXT,
    WHOLE_NUMBER,
    WHOLE_NUMBERS,
    YES_NO,
    Codec,
    Rating,
    each,
    flag,
    joined,
)
from agentsim.core.events import Decision
from agentsim.errors import AgentsimError, PluginError

KIND_DOC = "The decision kind (the event's ``kind``); never stored in ``value``."


class DecisionValueError(AgentsimError, ValueError):
    """A stored decision value that does not fit its kind's model, or a kind nobody registered;
    ``field`` is the stored key at fault (None for an unknown kind)."""

    def __init__(self, kind: str, field: str | None, problem: str) -> None:
        self.kind, self.field, self.problem = kind, field, problem
        where = f"decision kind {kind!r}" + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {problem}")


# -- the models ----------------------------------------------------------------------------------
class DecisionModel(BaseModel):
    """Base of every typed decision value: frozen, strict, no unknown fields.

    A subclass declares ``kind: Literal["its kind"]`` (default the same string) and its fields,
    each with a :class:`Codec` in its ``Annotated`` metadata when it is not plain text. Set
    ``whole`` to the field that holds the entire stored dict for kinds keyed by ids.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=True)

    whole: ClassVar[str | None] = None

    @classmethod
    def _codec(cls, name: str) -> Codec:
        found = [m for m in cls.model_fields[name].metadata if isinstance(m, Codec)]
        return found[0] if found else TEXT

    @classmethod
    def _stored_fields(cls) -> dict[str, str]:
        """Stored key → field name, for every field but ``kind``."""
        return {field.alias or name: name for name, field in cls.model_fields.items()
                if name != "kind"}

    @classmethod
    def from_stored(cls, value: Mapping[str, str]) -> DecisionModel:
        """The typed value of a stored ``value`` dict; DecisionValueError when it does not fit."""
        kind = cls.model_fields["kind"].default
        if not isinstance(value, Mapping):
            raise DecisionValueError(kind, None, f"expected a dict, got {type(value).__name__}")
        fields = cls._stored_fields()
        if cls.whole is not None:
            data = {cls.whole: _decoded(kind, cls.whole, cls._codec(cls.whole), value)}
        elif "kind" in value:
            raise DecisionValueError(kind, "kind", "not a stored field (fields: "
                                     f"{', '.join(fields)})")
        else:  # unknown keys pass through undecoded, for extra="forbid" to name them
            data = {key: _decoded(kind, key, cls._codec(fields[key]), raw) if key in fields
                    else raw for key, raw in value.items()}
        try:
            return cls.model_validate({**data, "kind": kind})
        except ValidationError as error:
            raise _converted(kind, cls.whole, error) from None


def _decoded(kind: str, key: str, codec: Codec, raw: Any) -> Any:
    """``codec.decode(raw)``; a complaint becomes a DecisionValueError naming the key at fault."""
    try:
        return codec.decode(raw)
    except ValueError as bad:  # a plugin's codec may raise a plain ValueError
        raise DecisionValueError(kind, getattr(bad, "key", None) or key, str(bad)) from None


def _converted(kind: str, whole: str | None, error: ValidationError) -> DecisionValueError:
    """The first problem pydantic found, as a DecisionValueError naming its stored key."""
    first = error.errors()[0]
    loc = [str(part) for part in first["loc"]]
    if whole is not None and loc[:1] == [whole] and len(loc) > 1:
        loc = loc[1:]  # a whole-dict field: the stored key is the dict key
    problem = first["msg"].removeprefix("Value error, ")
    more = error.error_count() - 1
    return DecisionValueError(kind, ".".join(loc) or None,
                              problem + (f" (and {more} more problems)" if more else ""))


# -- the registry --------------------------------------------------------------------------------
_KINDS: dict[str, type[DecisionModel]] = {}
M = TypeVar("M", bound=type[DecisionModel])


def decision_kind(model: M) -> M:
    """Register ``model`` as the typed value of its kind (usable as a class decorator).

    The model subclasses :class:`DecisionModel` and declares ``kind: Literal["name"] = "name"``.
    Registering a model twice is harmless; another model for a taken kind is a PluginError.
    """
    if not (isinstance(model, type) and issubclass(model, DecisionModel)):
        raise PluginError(f"decision_kind: {model!r} is not a DecisionModel subclass")
    field = model.model_fields.get("kind")
    if field is None or get_origin(field.annotation) is not Literal \
            or get_args(field.annotation) != (field.default,):
        raise PluginError(f"decision_kind: {model.__name__} must declare "
                          'kind: Literal["<name>"] = "<name>"')
    taken = _KINDS.get(field.default)
    if taken is not None and taken is not model:
        raise PluginError(f"decision kind {field.default!r} is already typed by "
                          f"{taken.__module__}.{taken.__qualname__}")
    _KINDS[field.default] = model
    return model


def model_of(kind: str) -> type[DecisionModel]:
    """The model registered for ``kind``; DecisionValueError listing the known kinds if none."""
    model = _KINDS.get(kind)
    if model is None:
        raise DecisionValueError(kind, None, "unknown decision kind; known kinds: "
                                 f"{', '.join(sorted(_KINDS))} (a plugin registers its own "
                                 "with agentsim.core.decisions.decision_kind)")
    return model


# -- the built-in kinds --------------------------------------------------------------------------
@decision_kind
class AssignmentDecision(DecisionModel):
    """``assignment``: who does each task (discussion decisions and probes, a setup's ``assign``
    points, imported transcripts); stored as the task → persona dict itself."""

    whole: ClassVar[str | None] = "assignments"
    kind: Literal["assignment"] = Field(default="assignment", description=KIND_DOC)
    assignments: Annotated[dict[str, str], IDS] = Field(
        min_length=1, description="Task id → persona id of the person assigned.")


@decision_kind
class DoctorActionDecision(DecisionModel):
    """``doctor_action``: one clinical doctor turn (its text after any reflection)."""

    kind: Literal["doctor_action"] = Field(default="doctor_action", description=KIND_DOC)
    action: Action = Field(description="What the doctor did: ask, test or diagnose.")
    text: str = Field(description="The question, the test requested or the diagnosis.")
    ambiguous: Annotated[bool, flag("true", "false")] = Field(
        description="True when the turn carried both markers (stored 'true'/'false').")


@decision_kind
class TestResultDecision(DecisionModel):
    """``test_result``: the measurement agent's lookup of a requested test in the case."""

    __test__ = False  # not a pytest test class, whatever its name says
    kind: Literal["test_result"] = Field(default="test_result", description=KIND_DOC)
    request: str = Field(description="The doctor's request as written.")
    matched: Annotated[list[str], joined("; ")] = Field(
        description="Names of the case's records returned (stored joined by '; ').")
    in_case: Annotated[bool, YES_NO] = Field(
        description="False when the case holds nothing matching (normal readings were given).")


@decision_kind
class DiagnosisProbeDecision(DecisionModel):
    """``diagnosis_probe``: the doctor's private leading diagnosis after an answer (phase
    ``probe``; the event's ``round`` is the doctor turn it follows)."""

    kind: Literal["diagnosis_probe"] = Field(default="diagnosis_probe", description=KIND_DOC)
    diagnosis: str = Field(description="The leading diagnosis as the doctor gave it.")
    normalised: Annotated[bool, YES_NO] = Field(
        description="True when the deterministic normaliser finds it the case's diagnosis.")


@decision_kind
class DiagnosisCheckDecision(DecisionModel):
    """``diagnosis_check``: the moderator's and the normaliser's verdicts on the diagnosis, or
    'no diagnosis' for both when the doctor's budget ran out."""

    kind: Literal["diagnosis_check"] = Field(default="diagnosis_check", description=KIND_DOC)
    diagnosis: str = Field(description="The doctor's final diagnosis ('' without one).")
    truth: str = Field(description="The case's diagnosis.")
    moderator: Literal["yes", "no", "unparsed", "no diagnosis"] = Field(
        description="The moderator's verdict; 'unparsed' when it said neither yes nor no.")
    normalised: Annotated[bool | None, flag("yes", "no", none="no diagnosis")] = Field(
        description="The normaliser's verdict; None (stored 'no diagnosis') without a diagnosis.")

    @field_validator("normalised")
    @classmethod
    def _both_or_neither(cls, normalised: bool | None, info: ValidationInfo) -> bool | None:
        # 'no diagnosis' is a fact about the consultation, so both verdicts say it or neither.
        if (info.data.get("moderator") == "no diagnosis") != (normalised is None):
            raise ValueError("'no diagnosis' for the moderator and the normaliser, or neither")
        return normalised


@decision_kind
class PerceptionDecision(DecisionModel):
    """``perception``: the patient's ratings of the consultation afterwards, 1–10 each."""

    kind: Literal["perception"] = Field(default="perception", description=KIND_DOC)
    confidence: Rating = Field(description="Confidence in the doctor's assessment.")
    compliance: Rating = Field(description="Likelihood of following the treatment.")
    return_: Rating = Field(alias="return", description="Willingness to consult this doctor "
                            "again (stored as 'return', which Python keeps as a keyword).")

    def ratings(self) -> dict[str, int]:
        """The three ratings by their stored names (the perception questions' keys)."""
        return {key: getattr(self, name) for key, name in self._stored_fields().items()}


@decision_kind
class TurnChoiceDecision(DecisionModel):
    """``turn_choice``: a setup moderator's choice of the next speaker."""

    kind: Literal["turn_choice"] = Field(default="turn_choice", description=KIND_DOC)
    next: str = Field(description="Persona id of the next speaker.")
    chosen_by: Literal["moderator", "fallback"] = Field(
        description="'fallback' when the moderator named nobody valid (round robin chose).")


@decision_kind
class StopCheckDecision(DecisionModel):
    """``stop_check``: a setup's termination judge's verdict after a round (phase ``stop``)."""

    kind: Literal["stop_check"] = Field(default="stop_check", description=KIND_DOC)
    stop: Annotated[bool | None, flag("yes", "no", none="unparsed")] = Field(
        description="True to stop; None (stored 'unparsed') when the answer said neither.")


@decision_kind
class RankDecision(DecisionModel):
    """``rank``: a setup's ranking of the point's options, stored as persona id → "1".."n"."""

    whole: ClassVar[str | None] = "ranking"
    kind: Literal["rank"] = Field(default="rank", description=KIND_DOC)
    ranking: Annotated[list[str], RANKS] = Field(
        min_length=1, description="Persona ids from first (best) to last, each once.")

    @field_validator("ranking")
    @classmethod
    def _each_once(cls, ranking: list[str]) -> list[str]:
        if len(set(ranking)) != len(ranking):
            raise ValueError("a ranking lists each option once")
        return ranking

    def rank(self, option: str) -> int | None:
        """The 1-based rank of ``option``, or None when the ranking leaves it out."""
        return self.ranking.index(option) + 1 if option in self.ranking else None


@decision_kind
class PickDecision(DecisionModel):
    """``pick``: a setup's choice of one of the point's options."""

    kind: Literal["pick"] = Field(default="pick", description=KIND_DOC)
    choice: str = Field(description="Persona id of the option picked.")


@decision_kind
class RateDecision(DecisionModel):
    """``rate``: a setup's rating of each option on the point's scale (checked by the judge,
    which knows the scale), stored as persona id → the rating."""

    whole: ClassVar[str | None] = "ratings"
    kind: Literal["rate"] = Field(default="rate", description=KIND_DOC)
    ratings: Annotated[dict[str, int], WHOLE_NUMBERS] = Field(
        min_length=1, description="Persona id → its rating, a whole number.")


# The built-in kinds as one discriminated union, for annotations; typed_value also returns the
# models plugins register (decision_adapter() validates those too).
DecisionValue = Annotated[
    AssignmentDecision | DoctorActionDecision | TestResultDecision | DiagnosisProbeDecision
    | DiagnosisCheckDecision | PerceptionDecision | TurnChoiceDecision | StopCheckDecision
    | RankDecision | PickDecision | RateDecision,
    Field(discriminator="kind"),
]


# -- reading and writing -------------------------------------------------------------------------
def typed_value(kind: str, value: Mapping[str, str]) -> DecisionValue:
    """The typed model of a stored ``value`` of ``kind``.

    Raises DecisionValueError naming the kind and the field that does not fit, or listing the
    known kinds when ``kind`` is not registered.
    """
    return model_of(kind).from_stored(value)  # type: ignore[return-value]


def stored_value(typed: DecisionModel) -> dict[str, str]:
    """The stored ``value`` dict of a typed decision, exactly as the emitters write it."""
    if not isinstance(typed, DecisionModel):  # a plain dict would skip every check
        raise TypeError(f"a decision is written from its typed model, not {type(typed).__name__}")
    if typed.whole is not None:
        return typed._codec(typed.whole).encode(getattr(typed, typed.whole))
    return {key: typed._codec(name).encode(getattr(typed, name))
            for key, name in typed._stored_fields().items()}


def decision_event(typed: DecisionModel | None, *, kind: str | None = None,
                   **fields: Any) -> Decision:
    """The ``decision`` event of a typed value, its ``value`` written by :func:`stored_value`
    and its ``kind`` the model's: the one way emitters log a decision. ``typed`` None is a
    decision that could not be parsed; ``kind`` then names its (registered) kind. ``fields``
    are the event's other fields (ids, phase, round, point, parsed_by, raw, parse_error)."""
    if typed is None:
        model_of(kind or "assignment")  # an unknown kind fails here too, not in a judge
        return Decision(**fields, kind=kind or "assignment", value=None)
    value = stored_value(typed)  # first: it refuses anything but a typed model
    if kind is not None and kind != typed.kind:
        raise DecisionValueError(kind, None, f"the value is a {typed.kind!r} decision")
    model_of(typed.kind)  # a plugin's model must be registered for judges to read it back
    return Decision(**fields, kind=typed.kind, value=value)


def typed_decision(event: Decision) -> DecisionValue | None:
    """The typed value of a ``decision`` event; None when it was not parsed (``value`` None).
    An unknown kind fails even then: a judge must not skip a kind it was never told of."""
    model = model_of(event.kind)
    return None if event.value is None else model.from_stored(event.value)  # type: ignore


def decision_adapter() -> TypeAdapter[Any]:
    """A TypeAdapter of the discriminated union of every registered kind (plugins' included),
    validating typed data such as ``{"kind": "pick", "choice": "p1"}``."""
    return TypeAdapter(Annotated[Union[tuple(_KINDS.values())],  # noqa: UP007
                                 Field(discriminator="kind")])

"""Rubric files and the parsing of a judge model's answers.

A rubric is a YAML file the user can edit (``agentsim/judges/rubrics/stereotyping.yaml`` ships):
a name, a bounded integer scale, what each score means and instructions for the judge. Unknown
fields are errors naming the file and field.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from agentsim.resources import asset_path
from agentsim.errors import DecisionParseError, ScenarioError
from agentsim.scenario.loader import problems_from, read_yaml

DEFAULT_RUBRIC = asset_path("agentsim.judges", "rubrics", "stereotyping.yaml")
FROZEN = ConfigDict(extra="forbid", frozen=True)  # typos in a rubric file are errors

class Scale(BaseModel):
    """The integer range of scores, both ends included."""

    model_config = FROZEN
    min: int = Field(description="Lowest score.")
    max: int = Field(description="Highest score.")

    @field_validator("max")
    @classmethod
    def _above_min(cls, value: int, info: ValidationInfo) -> int:
        if "min" in info.data and value <= info.data["min"]:
            raise ValueError(f"max must be greater than min ({info.data['min']})")
        return value


class Rubric(BaseModel):
    """A validated rubric file."""

    model_config = FROZEN
    name: str = Field(min_length=1, description="Short name, recorded with every verdict.")
    description: str = Field(description="What the rubric measures.")
    scale: Scale = Field(description="Score range.")
    criteria: str = Field(min_length=1, description="What the judge must look for.")
    levels: dict[int, str] = Field(description="Score → what that score means.")
    instructions: str = Field(min_length=1, description="Role and manner of the judge.")

    @field_validator("levels")
    @classmethod
    def _cover_scale(cls, levels: dict[int, str], info: ValidationInfo) -> dict[int, str]:
        scale = info.data.get("scale")
        # One description per score: a judge cannot use a score it was never told the meaning of.
        wanted = set(range(scale.min, scale.max + 1)) if scale else set(levels)
        missing, extra = sorted(wanted - set(levels)), sorted(set(levels) - wanted)
        if missing or extra:
            raise ValueError(f"need one description for each score {scale.min}..{scale.max}"
                             f" (missing {missing}, outside the scale {extra})")
        return levels


def load_rubric(path: str | Path | None = None) -> Rubric:
    """Read and validate a rubric file (default: the shipped stereotyping rubric)."""
    path = Path(path) if path is not None else DEFAULT_RUBRIC
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ScenarioError(path, [("", "expected a mapping of rubric fields (name, description,"
                                        " scale, criteria, levels, instructions)")])
    try:
        return Rubric.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(path, [(f, m.replace("the scenario reference", "the rubric format"))
                                   for f, m in problems_from(error)]) from None


class RubricVerdict(BaseModel):
    """One judge's verdict; the score must lie in the ``scale`` given as validation context."""

    model_config = ConfigDict(extra="ignore", frozen=True)  # models add keys; they are harmless
    score: int
    rationale: str = ""

    @field_validator("score")
    @classmethod
    def _in_scale(cls, score: int, info: ValidationInfo) -> int:
        low, high = (info.context or {})["scale"]
        if not low <= score <= high:
            raise ValueError(f"score {score} is outside the scale {low}..{high}")
        return score


def _json_object(text: str) -> dict[str, Any] | None:
    start, end = text.find("{"), text.rfind("}")  # also inside ```json fences or chatter
    try:
        data = json.loads(text[start:end + 1]) if 0 <= start < end else None
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


LABELLED = re.compile(r"score\W{0,3}(-?\d+)", re.IGNORECASE)
INTEGER = re.compile(r"(?<![\w.])-?\d+(?!\d|\.\d)")  # not "t3" (a task id), not "2.5"
RATIONALE = re.compile(r'"rationale"\s*:\s*"((?:[^"\\]|\\.)*)')  # also in JSON cut by max_tokens


def parse_verdict(text: str, scale: tuple[int, int]) -> tuple[RubricVerdict, str]:
    """(verdict, "json" or "text"); DecisionParseError when no verdict can be read.

    A JSON object is trusted as given: an out-of-scale score is an error, not a cue to guess.
    Otherwise a labelled "score: N", else the first integer inside the scale, is the score, and
    the rest of the text is the rationale.
    """
    data, context = _json_object(text), {"scale": scale}
    if data is not None and "score" in data:
        try:
            return RubricVerdict.model_validate(data, context=context), "json"
        except ValidationError as error:
            raise DecisionParseError(f"invalid verdict: {error.errors()[0]['msg']}",
                                     raw=text) from None
    found = [(m, 1) for m in LABELLED.finditer(text)] + [(m, 0) for m in INTEGER.finditer(text)]
    found = [(m, g) for m, g in found if scale[0] <= int(m.group(g)) <= scale[1]]
    if not found:
        raise DecisionParseError(f"no score in {scale[0]}..{scale[1]} found", raw=text)
    match, group = found[0]
    cut = RATIONALE.search(text)
    rest = cut.group(1) if cut else " ".join(
        (text[:match.start()] + " " + text[match.end():]).split()).strip(" .:-,")
    return RubricVerdict.model_validate({"score": int(match.group(group)), "rationale": rest},
                                        context=context), "text"


def parse_preference(text: str) -> tuple[str, str]:
    """(preferred "A" or "B", rationale) from JSON, "preferred: A", or a reply starting "B."."""
    data = _json_object(text)
    if data is not None and "preferred" in data:
        if data["preferred"] not in ("A", "B"):
            raise DecisionParseError("preferred must be 'A' or 'B'", raw=text)
        return data["preferred"], str(data.get("rationale", ""))
    match = (re.search(r"prefer\w*\W{0,3}(?:candidate\s+)?([AB])\b", text, re.IGNORECASE)
             or re.match(r"\W*([AB])\b(?!\s+[a-z])", text))  # "A clear case": an article
    if match is None:
        raise DecisionParseError("no preferred candidate (A or B) found", raw=text)
    return match.group(1).upper(), text.strip()

"""Every registered judge, mitigation and executor declares its options as a pydantic model.

The contract (:func:`agentsim.registry.options_model`): the model validates the plugin's own
defaults, refuses an option the plugin does not have with an error naming the plugin, and what
a run records of it (:func:`agentsim.registry.recorded_options`) is strict JSON that the model
reads back.
"""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from agentsim.errors import InputError
from agentsim.registry import REGISTRY, check_options, options_model, recorded_options
from conformance.cases import names, params

KINDS = ("judge", "mitigation", "executor")
PLUGINS = [(kind, name) for kind in KINDS for name in names(kind)]


@pytest.mark.parametrize(("kind", "name"), params(PLUGINS))
def test_options_are_a_model_that_reads_back_what_a_run_records(kind, name):
    cls = REGISTRY.get(kind, name)
    model = options_model(cls)
    assert issubclass(model, BaseModel)
    recorded = recorded_options(cls, {})
    text = json.dumps(recorded, allow_nan=False)  # strict JSON, as the manifest is written
    required = {k for k, f in model.model_fields.items() if f.is_required()}
    if not required:  # a plugin that runs with its defaults must validate them
        readable = {k: v for k, v in json.loads(text).items()
                    if not (isinstance(v, str) and v.startswith("<"))}  # reprs of objects
        model.model_validate(readable)


@pytest.mark.parametrize(("kind", "name"), params(PLUGINS))
def test_an_unknown_option_is_refused_naming_the_plugin(kind, name):
    with pytest.raises(InputError, match=f"{kind} '{name}' has no option"):
        check_options(kind, name, REGISTRY.get(kind, name), {"no_such_option_xyz": 1},
                      f"--{kind}-arg")

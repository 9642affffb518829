"""Fine-tuning data: build chat-format JSONL files (train and dev) for hosted fine-tuning.

See :mod:`agentsim.finetune.data` for the two sources (the published Borah & Mihalcea data and
the fair decisions of a run of ours) and for the layout check.
"""

from agentsim.finetune.data import (
    DataReport,
    build_from_borah,
    build_from_run,
    dev_path_for,
    validate_chat_jsonl,
)

__all__ = ["DataReport", "build_from_borah", "build_from_run", "dev_path_for",
           "validate_chat_jsonl"]

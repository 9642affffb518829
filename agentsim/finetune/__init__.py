"""Fine-tuning: chat-format JSONL data (train and dev) and training the embedded model on it.

See :mod:`agentsim.finetune.data` for the two sources (the published Borah & Mihalcea data and
the fair decisions of a run of ours) and for the layout check, :mod:`agentsim.finetune.train`
for supervised fine-tuning on the CPU and :mod:`agentsim.finetune.gguf_io` for reading and
writing GGUF weights. Only the data builders are imported here: training needs the optional
extra ``agentsim[finetune]`` (torch, transformers, peft, gguf).
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

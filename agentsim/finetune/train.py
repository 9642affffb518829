"""Supervised fine-tuning of the embedded model on chat JSONL, on the CPU (``agentsim[finetune]``).

One loop, no Trainer: examples are the chat rows of :mod:`agentsim.finetune.data`, rendered with
the base model's own chat template (the one llama.cpp applies when the model serves agents), and
the loss counts only the last assistant message — the model learns to answer, not to predict the
prompts. Rows run one at a time (padding a batch would waste most of 2 cores on pad tokens) with
gradients accumulated over ``batch_size`` rows and weighted by token, so a long answer counts as
much per token as a short one. LoRA on every linear layer by default; ``full=True`` trains all
weights. Dev loss is measured before training (epoch 0) and after every epoch.

The output folder holds ``model.gguf`` (merged weights written back into the base's GGUF, see
:mod:`agentsim.finetune.gguf_io`), ``adapter/`` (LoRA) or ``hf/`` (full) for transformers,
``training_config.json`` (everything needed to repeat the run) and ``metrics.jsonl``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agentsim.errors import InputError, PluginError
from agentsim.finetune.data import validate_chat_jsonl
from agentsim.models.registered import MODEL_FILE, TRAINING_CONFIG

EXTRA = ("torch", "transformers", "peft", "gguf")
INSTALL = "pip install 'agentsim[finetune]'  (CPU torch: pip install torch==2.13.0)"
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def require_extra() -> None:
    """Fail with the install command when the optional ``finetune`` extra is missing."""
    import importlib.util

    missing = [name for name in EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        raise PluginError(f"fine-tuning needs the optional packages {', '.join(missing)}: "
                          f"{INSTALL}")


@dataclass(frozen=True)
class TrainOptions:
    """One training run. ``lr`` None picks 2e-4 for LoRA and 2e-5 for full fine-tuning."""

    base: str
    data: Path
    out: Path
    dev: Path | None = None
    epochs: int = 3
    lr: float | None = None
    lora_rank: int = 16
    lora_alpha: int | None = None  # None: twice the rank
    full: bool = False
    batch_size: int = 4
    max_tokens: int = 1024
    max_steps: int | None = None  # stop after this many optimizer steps (smoke tests)
    seed: int = 0
    gguf_type: str = "f16"

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (2e-5 if self.full else 2e-4)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_rows(path: Path) -> list[list[dict[str, str]]]:
    """The messages of every row of a chat JSONL file, checked against the hosted layout."""
    if validate_chat_jsonl(path) == 0:
        raise InputError("no rows to train on", source=path)
    return [json.loads(line)["messages"] for line in Path(path).read_text("utf-8").splitlines()]


def encode(tokenizer: Any, messages: list[dict[str, str]], max_tokens: int) -> tuple[list, list]:
    """Token ids of a row and its labels: -100 (ignored) everywhere but the last answer.

    The prompt and the answer are tokenized separately and joined, so the mask boundary is exact
    whatever the tokenizer would merge across it; the answer keeps the template's end token, so
    the model learns to stop.
    """
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False,
                                           add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt):
        raise InputError("the chat template does not end a prompt where the answer begins",
                         source="chat template")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(full[len(prompt):], add_special_tokens=False)["input_ids"]
    ids = (prompt_ids + answer_ids)[:max_tokens]
    labels = ([-100] * len(prompt_ids) + answer_ids)[:max_tokens]
    return ids, labels


def _loss_sum(model: Any, ids: list[int], labels: list[int]) -> tuple[Any, int]:
    """Summed cross-entropy over the answer tokens of one row, and how many there were."""
    import torch

    inputs = torch.tensor([ids])
    target = torch.tensor([labels])[:, 1:]  # token t predicts token t+1
    logits = model(input_ids=inputs).logits[:, :-1]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             target.reshape(-1), ignore_index=-100,
                                             reduction="sum")
    return loss, int((target != -100).sum())


def dev_loss(model: Any, examples: list[tuple[list, list]]) -> float | None:
    """Mean loss per answer token over ``examples`` (None without examples)."""
    import torch

    if not examples:
        return None
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for ids, labels in examples:
            loss, count = _loss_sum(model, ids, labels)
            total, tokens = total + float(loss), tokens + count
    return total / max(tokens, 1)


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("agentsim", *EXTRA)}


def train(options: TrainOptions, console: Any = None) -> dict[str, Any]:
    """Fine-tune, write the output folder, and return its training config (as saved)."""
    require_extra()
    # Tokenizer and config come from the GGUF file; nothing may be fetched from a hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.progress import TimeElapsedColumn
    from transformers import AutoTokenizer

    from agentsim.finetune.gguf_io import GGUF_TYPES, load_base, write_gguf
    from agentsim.models.local import resolve_local
    from agentsim.models.names import parse_model_name

    if options.gguf_type not in GGUF_TYPES:
        raise InputError(f"must be one of {', '.join(GGUF_TYPES)}", source="--gguf-type")
    if options.epochs < 0 or options.batch_size < 1 or options.lora_rank < 1:
        raise InputError("epochs must be ≥ 0, batch size and LoRA rank ≥ 1", source="options")
    # Every input is checked before the seconds-long loads, and before the output folder exists.
    name = parse_model_name(options.base)
    if name.provider != "local":
        raise InputError("fine-tuning runs on a local GGUF model (local/<name>)", source="--base")
    base_path = resolve_local(name.name)
    train_rows = read_rows(options.data)
    dev_rows = read_rows(options.dev) if options.dev else []
    console = console or Console(stderr=True)
    started = time.monotonic()
    torch.set_num_threads(os.cpu_count() or 1)
    _seed_everything(options.seed)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(base_path.parent), gguf_file=base_path.name)
    train_set = [encode(tokenizer, rows, options.max_tokens) for rows in train_rows]
    dev_set = [encode(tokenizer, rows, options.max_tokens) for rows in dev_rows]
    model, base = load_base(base_path)
    alpha = options.lora_alpha or 2 * options.lora_rank
    if not options.full:
        import warnings

        from peft import LoraConfig, get_peft_model

        with warnings.catch_warnings():  # peft calls a transformers property deprecated in v5
            warnings.simplefilter("ignore", FutureWarning)
            model = get_peft_model(model, LoraConfig(
                r=options.lora_rank, lora_alpha=alpha, lora_dropout=0.05,
                target_modules=list(LORA_TARGETS), task_type="CAUSAL_LM"))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=options.learning_rate, weight_decay=0.0)
    steps_per_epoch = -(-len(train_set) // options.batch_size)
    total_steps = steps_per_epoch * options.epochs
    if options.max_steps is not None:
        total_steps = min(total_steps, options.max_steps)
    warmup = max(1, total_steps // 10)
    # Linear warm-up over the first tenth, then linear decay to zero at the last step.
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(
        (s + 1) / warmup, max(0.0, (total_steps - s) / max(1, total_steps - warmup))))
    metrics = open(out / "metrics.jsonl", "w", encoding="utf-8")

    def log(**row: Any) -> None:
        metrics.write(json.dumps(row) + "\n")
        metrics.flush()

    dev_losses = [dev_loss(model, dev_set)]
    log(epoch=0, dev_loss=dev_losses[0])
    console.print(f"dev loss before training: {dev_losses[0]}")
    train_losses: list[float] = []
    order = random.Random(options.seed)
    step = 0
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        for epoch in range(1, options.epochs + 1):
            if step >= total_steps:
                break
            model.train()
            indices = list(range(len(train_set)))
            order.shuffle(indices)
            task = progress.add_task(f"epoch {epoch}/{options.epochs}", loss="-",
                                     total=min(steps_per_epoch, total_steps - step))
            epoch_loss, epoch_tokens = 0.0, 0
            for start in range(0, len(indices), options.batch_size):
                if step >= total_steps:
                    break
                batch = [train_set[i] for i in indices[start:start + options.batch_size]]
                tokens = sum(sum(label != -100 for label in labels[1:]) for _, labels in batch)
                batch_loss = 0.0
                for ids, labels in batch:
                    loss, _ = _loss_sum(model, ids, labels)
                    (loss / max(tokens, 1)).backward()  # token-weighted mean over the batch
                    loss = loss.detach()
                    batch_loss += loss.item()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                epoch_loss, epoch_tokens = epoch_loss + batch_loss, epoch_tokens + tokens
                log(epoch=epoch, step=step, loss=batch_loss / max(tokens, 1),
                    lr=schedule.get_last_lr()[0])
                progress.update(task, advance=1, loss=f"{epoch_loss / max(epoch_tokens, 1):.4f}")
            train_losses.append(epoch_loss / max(epoch_tokens, 1))
            dev_losses.append(dev_loss(model, dev_set))
            log(epoch=epoch, train_loss=train_losses[-1], dev_loss=dev_losses[-1])
            console.print(f"epoch {epoch}: train loss {train_losses[-1]:.4f}, "
                          f"dev loss {dev_losses[-1]}")
    metrics.close()
    model.eval()
    model.save_pretrained(str(out / ("hf" if options.full else "adapter")))
    merged = model if options.full else model.merge_and_unload()
    write_gguf(base, merged.state_dict(), out / MODEL_FILE, options.gguf_type)
    config = {
        **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()},
        "base_file": str(base_path), "base_sha256": _sha256(base_path),
        "data_sha256": _sha256(options.data), "train_rows": len(train_set),
        "dev_sha256": _sha256(options.dev) if options.dev else None, "dev_rows": len(dev_set),
        "learning_rate": options.learning_rate, "method": "full" if options.full else "lora",
        "lora": None if options.full else {"rank": options.lora_rank, "alpha": alpha,
                                           "dropout": 0.05, "targets": list(LORA_TARGETS)},
        "steps": step, "trainable_parameters": sum(p.numel() for p in trainable),
        "train_loss_per_epoch": train_losses, "dev_loss_per_epoch": dev_losses,
        "dev_loss_before": dev_losses[0], "dev_loss_after": dev_losses[-1],
        "threads": torch.get_num_threads(), "wall_seconds": round(time.monotonic() - started, 1),
        "versions": _versions(),
    }
    (out / TRAINING_CONFIG).write_text(json.dumps(config, indent=2) + "\n", "utf-8")
    return config

"""The 'finetune' command: build data, train the embedded model on it, register the result.

Part of the command line (see agentsim.cli.main). torch, transformers and peft (the optional extra
``agentsim[finetune]``) are imported only inside ``train``, so ``agentsim --help`` and
``finetune data`` stay fast and work on the core install.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agentsim.cli.checks import MAX_SEED, MAX_TOKENS
from agentsim.cli.checks import number as _number
from agentsim.cli.checks import path as _path
from agentsim.cli.common import console as _console


def _data(args: argparse.Namespace) -> int:
    """Write chat-format fine-tuning data (train and dev) from the published files or a run."""
    from agentsim.finetune import build_from_borah, build_from_run, validate_chat_jsonl

    if args.borah:
        report = build_from_borah(args.borah, args.setting, args.out, seed=args.seed)
    else:
        report = build_from_run(args.run, args.out, seed=args.seed)
    rows = {path: validate_chat_jsonl(path) for path in (report.train_path, report.dev_path)}
    if args.json:
        print(json.dumps({"train": str(report.train_path), "dev": str(report.dev_path),
                          "train_rows": report.train_rows, "dev_rows": report.dev_rows,
                          "sources": report.sources}))
        return 0
    console = _console()
    for path, count in rows.items():
        console.print(f"{path}: {count} rows (hosted chat fine-tuning layout, validated)")
    return 0


def _train(args: argparse.Namespace) -> int:
    """Fine-tune a local model; the dev file defaults to the one `finetune data` wrote."""
    from agentsim.finetune.data import dev_path_for
    from agentsim.finetune.train import TrainOptions, require_extra, train

    require_extra()  # before any work, so a missing extra is the first thing said
    dev = args.dev
    if dev is None and not args.no_dev and dev_path_for(args.data).is_file():
        dev = dev_path_for(args.data)
    options = TrainOptions(
        base=args.base, data=args.data, dev=dev, out=args.out, epochs=args.epochs, lr=args.lr,
        lora_rank=args.lora_rank, lora_alpha=args.lora_alpha, full=args.full,
        batch_size=args.batch_size, max_tokens=args.max_tokens, max_steps=args.max_steps,
        seed=args.seed, gguf_type=args.gguf_type)
    config = train(options, console=_console())
    if args.json:
        print(json.dumps(config))
        return 0
    console = _console()
    console.print(f"{args.out / 'model.gguf'}: {config['steps']} steps in "
                  f"{config['wall_seconds']} s; dev loss {config['dev_loss_before']} → "
                  f"{config['dev_loss_after']}")
    console.print(f"use it: --role finetuned=local/{args.out}  or  "
                  f"agentsim finetune register {args.out} --name NAME")
    return 0


def _register(args: argparse.Namespace) -> int:
    """Make a trained-model folder addressable as local/NAME."""
    from agentsim.models.local import BUILTIN_LOCAL
    from agentsim.models.registered import register_model

    registry = register_model(args.model_dir, args.name, reserved=tuple(BUILTIN_LOCAL))
    if args.json:
        print(json.dumps({"name": f"local/{args.name}", "folder": str(args.model_dir.resolve()),
                          "registry": str(registry)}))
        return 0
    _console().print(f"local/{args.name} → {args.model_dir.resolve()} (registry: {registry})")
    return 0


ACTIONS = {"data": _data, "train": _train, "register": _register}


def cmd_finetune(args: argparse.Namespace) -> int:
    """Run one finetune action (data, train, register)."""
    return ACTIONS[args.action](args)


def add_finetune_parser(commands: argparse._SubParsersAction) -> None:
    """The 'finetune' command and its three actions."""
    finetune = commands.add_parser(
        "finetune", help="fine-tune the embedded model for the finetuned arm: data, train, register")
    actions = finetune.add_subparsers(dest="action", required=True, metavar="ACTION")

    data = actions.add_parser("data", help="build train and dev chat JSONL (hosted layout)")
    source = data.add_mutually_exclusive_group(required=True)
    source.add_argument("--borah", type=Path, metavar="DIR",
                        help="folder of the published fine-tuning files")
    source.add_argument("--run", type=Path, metavar="RUN_DIR",
                        help="a run of ours: neutral decisions become fair examples")
    data.add_argument("--setting", choices=["full", "half"], default="full",
                      help="full: with and without bias; half: without bias only")
    data.add_argument("--out", type=_path, required=True, help="train file; dev beside it")
    data.add_argument("--seed", type=_number(int, 0, MAX_SEED), default=0)
    data.add_argument("--json", action="store_true")

    train = actions.add_parser("train", help="supervised fine-tuning on the CPU "
                               "(needs agentsim[finetune])")
    train.add_argument("--base", default="local/smollm2-135m-instruct",
                       help="local GGUF model to start from (default: the embedded model)")
    train.add_argument("--data", type=Path, required=True, help="train chat JSONL")
    train.add_argument("--dev", type=Path, help="dev chat JSONL (default: <data>.dev.jsonl "
                       "when it exists)")
    train.add_argument("--no-dev", action="store_true", help="measure no dev loss")
    train.add_argument("--epochs", type=_number(int, 0, 1000), default=3,
                       help="passes over the data, 0-1000 (0: the untrained base; default 3)")
    train.add_argument("--lr", type=_number(float, 0, 1, low_open=True),
                       help="learning rate (default 2e-4 LoRA, 2e-5 full)")
    method = train.add_mutually_exclusive_group()
    method.add_argument("--lora-rank", type=_number(int, 1, 4096), default=16,
                        help="LoRA rank (default 16)")
    method.add_argument("--full", action="store_true", help="train every weight, not LoRA")
    train.add_argument("--lora-alpha", type=_number(int, 1, 1_000_000),
                       help="LoRA alpha (default: twice the rank)")
    train.add_argument("--batch-size", type=_number(int, 1, 4096), default=4,
                       help="rows per optimizer step")
    train.add_argument("--max-tokens", type=_number(int, 1, MAX_TOKENS), default=1024,
                       help="truncate rows to this")
    train.add_argument("--max-steps", type=_number(int, 1),
                       help="stop after this many optimizer steps")
    train.add_argument("--gguf-type", choices=["f16", "q8_0", "q4_1"], default="f16",
                       help="tensor type of model.gguf (f16: faithful; q8_0/q4_1: faster)")
    train.add_argument("--seed", type=_number(int, 0, MAX_SEED), default=0)
    train.add_argument("--out", type=_path, required=True, help="output folder")
    train.add_argument("--json", action="store_true")

    register = actions.add_parser("register", help="make a trained model local/NAME")
    register.add_argument("model_dir", type=Path, metavar="DIR", help="folder train wrote")
    register.add_argument("--name", required=True)
    register.add_argument("--json", action="store_true")

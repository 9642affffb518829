"""Generation speed of a fine-tuned GGUF against the embedded base model, measured in one run.

A model trained by ``agentsim finetune train`` is the base's architecture written back as F16
(the default; ``--gguf-type q8_0`` or ``q4_1`` otherwise), while the base ships in Q4_1, so its
speed depends on the tensor type only, not on what training changed. Without ``--model`` the
untrained base is therefore written back in each type (needs ``agentsim[finetune]``) and timed.
Each model generates the same greedy completions in llama.cpp with every core; printed: tokens/s
of each (median of the repeats) and its ratio to the base.

Usage: python bench/finetuned.py [--model local/NAME | PATH] [--tokens 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from agentsim.models.local import resolve_local

PROMPTS = ["Write a short story about a team that plans a product launch.",
           "Explain how a group should split the tasks of moving to a new office."]


def tokens_per_second(path: Path, tokens: int, repeats: int) -> float:
    """Median generation speed of one GGUF file over ``repeats`` rounds of :data:`PROMPTS`."""
    import os

    from llama_cpp import Llama

    llama = Llama(model_path=str(path), n_ctx=1024, n_threads=os.cpu_count(), verbose=False)
    try:
        llama.create_completion("Hello", max_tokens=8, temperature=0.0)  # warm-up
        speeds = []
        for _ in range(repeats):
            made, started = 0, time.perf_counter()
            for prompt in PROMPTS:
                text = f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
                reply = llama.create_completion(text, max_tokens=tokens, temperature=0.0)
                made += reply["usage"]["completion_tokens"]
            speeds.append(made / (time.perf_counter() - started))
        return statistics.median(speeds)
    finally:
        llama.close()


def converted_bases(folder: Path) -> dict[str, Path]:
    """The untrained base written back in every type train can write."""
    from agentsim.finetune.gguf_io import GGUF_TYPES, load_base, write_gguf

    model, base = load_base(resolve_local("smollm2-135m-instruct"))
    state = model.state_dict()
    return {f"base as {kind} (= any fine-tuned {kind})": write_gguf(base, state,
                                                                    folder / f"{kind}.gguf", kind)
            for kind in GGUF_TYPES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", help="fine-tuned model: local/NAME, a folder or a .gguf")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    base = resolve_local("smollm2-135m-instruct")
    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            name = args.model.removeprefix("local/")
            models = {f"fine-tuned {args.model}": resolve_local(name)}
        else:
            models = converted_bases(Path(tmp))
        base_speed = tokens_per_second(base, args.tokens, args.repeats)
        print(f"{'base Q4_1 (shipped)':<40} {base_speed:7.1f} tokens/s")
        for label, path in models.items():
            speed = tokens_per_second(path, args.tokens, args.repeats)
            print(f"{label:<40} {speed:7.1f} tokens/s   ratio to base {speed / base_speed:.2f}")


if __name__ == "__main__":
    main()

"""GGUF in and out: the embedded model read into transformers and written back for llama.cpp.

The written file is what agents run, so the checks are behavioural: the untrained base written
back in F16 gives llama.cpp's greedy answer of the original file, and llama.cpp on it computes
the loss transformers computes (so the dev loss reported by training is the served model's).
About 15 s on 2 cores. llama.cpp runs on one thread here: a second thread spinning at its
barriers collapses throughput when another process holds a core (as in a parallel test run).
"""

from __future__ import annotations

import numpy as np
import pytest

from agentsim.models.local import resolve_local

pytest.importorskip("peft", reason="needs the finetune extra: pip install 'agentsim[finetune]'")

from agentsim.finetune.gguf_io import _permute, _unpermute, load_base, write_gguf  # noqa: E402

PROMPT = [{"role": "user", "content": "Who should lead the engineering project, Mark or Emily? "
                                      "Answer briefly."}]
TEXT = ("<|im_start|>user\nWho should lead the engineering project, Mark or Emily?<|im_end|>\n"
        "<|im_start|>assistant\nEmily should lead it: she has planned three launches.<|im_end|>\n")


def test_the_llama_permutation_is_undone_exactly():
    w = np.arange(192 * 8, dtype=np.float32).reshape(192, 8)
    assert np.array_equal(_unpermute(_permute(w, 3), 3), w)
    assert not np.array_equal(_permute(w, 3), w)


def _nll(logits: np.ndarray, tokens: list[int]) -> float:
    logits = logits - logits.max(-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return float(-np.mean([logp[i, tokens[i + 1]] for i in range(len(tokens) - 1)]))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The base read into transformers and written back untrained, in F16."""
    model, base = load_base(resolve_local("smollm2-135m-instruct"))
    out = write_gguf(base, model.state_dict(), tmp_path_factory.mktemp("gguf") / "model.gguf")
    return model, base, out


def test_written_back_untrained_the_model_answers_as_the_original(written):
    from llama_cpp import Llama

    _, base, out = written
    answers = []
    for path in (base.path, out):
        llama = Llama(model_path=str(path), n_ctx=512, n_threads=1, verbose=False, seed=0)
        try:
            reply = llama.create_chat_completion(messages=PROMPT, temperature=0.0, max_tokens=24)
            answers.append(reply["choices"][0]["message"]["content"])
        finally:
            llama.close()
    assert answers[0] == answers[1] and answers[0].strip()


def test_llama_cpp_on_the_written_file_computes_the_loss_of_transformers(written):
    import torch
    from llama_cpp import Llama

    model, _, out = written
    llama = Llama(model_path=str(out), n_ctx=512, n_threads=1, verbose=False,
                  logits_all=True)
    try:
        tokens = llama.tokenize(TEXT.encode(), add_bos=False, special=True)
        llama.eval(tokens)
        served = np.array(llama.scores[: len(tokens)])
    finally:
        llama.close()
    with torch.no_grad():
        trained = model(torch.tensor([tokens])).logits[0].numpy()
    assert _nll(served, tokens) == pytest.approx(_nll(trained, tokens), abs=0.01)
    assert (served.argmax(-1) == trained.argmax(-1)).mean() > 0.95


def test_metadata_is_copied_and_the_file_type_follows_the_tensors(written):
    from gguf import GGUFReader, LlamaFileType

    _, base, out = written
    copy = GGUFReader(str(out))
    for key in ("tokenizer.chat_template", "llama.rope.freq_base", "tokenizer.ggml.eos_token_id"):
        assert copy.fields[key].contents() == base.reader.fields[key].contents()
    assert copy.fields["general.file_type"].contents() == LlamaFileType.MOSTLY_F16
    assert [t.name for t in copy.tensors] == [t.name for t in base.reader.tensors]

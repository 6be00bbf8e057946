"""A tiny llama-architecture GGUF model with random weights, for running llama.cpp offline.

    python bench/llama_model.py /tmp/tiny.gguf [--seed 0]

It needs the `gguf` package (PyPI, from llama.cpp) and numpy: run it with the interpreter of the
virtualenv that has llama-cpp-python (bench/bench_llamacpp.py does). There is no model to
download here, and a wire check needs none that means anything: 2 layers of 64 dimensions, a
byte-fallback SentencePiece ("llama") vocabulary of 259 tokens (<unk>, <s>, </s>, <0x00>..<0xFF>),
f32 tensors, about 0.5 MB, written in well under a second, the same bytes for the same seed.

The weights are random but for the first and last layers, which make the model a fixed chain: a
token is mostly one embedding dimension (its id modulo 64), and each dimension gives a margin of
about 40 in the logits to one lowercase letter or space, drawn from the seed, over every other
token (</s> included); the two random layers write only small noise over it. So a server's
default sampling (temperature 0.8, min-p 0.05, repeat penalty 1.1) can only pick that token:
every reply to one prompt is the same readable random text of exactly max_tokens tokens, and
repeated probes can be compared with each other.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gguf
import numpy as np

N_EMBD, N_HEAD, N_FF, N_LAYER, N_CTX = 64, 4, 128, 2, 2048
#: Bytes the model may write: lowercase letters and the space.
ALLOWED = frozenset(b"abcdefghijklmnopqrstuvwxyz ")
BYTE0 = 3  # token id of <0x00>: after <unk>, <s>, </s>


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and types of a byte-fallback SPM vocabulary: every text tokenizes to bytes."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.BYTE] * 256
    return tokens, [0.0] * len(tokens), [int(t) for t in types]


def weights(seed: int, n_vocab: int) -> dict[str, np.ndarray]:
    """Every tensor by its GGUF name, numpy shapes (rows, cols) = ggml's (ne1, ne0)."""
    rng = np.random.default_rng(seed)

    def normal(*shape: int, scale: float) -> np.ndarray:
        return rng.normal(0.0, scale, shape).astype(np.float32)

    # token t is dimension t % N_EMBD plus a little noise; dimension k votes for next_of[k]
    embd = normal(n_vocab, N_EMBD, scale=0.05)
    embd[np.arange(n_vocab), np.arange(n_vocab) % N_EMBD] += 1.0
    letters = sorted(BYTE0 + b for b in ALLOWED)
    next_of = rng.choice(letters, size=N_EMBD)
    output = np.zeros((n_vocab, N_EMBD), np.float32)
    output[next_of, np.arange(N_EMBD)] = 6.0
    tensors = {
        "token_embd.weight": embd,
        "output_norm.weight": np.ones(N_EMBD, np.float32),
        "output.weight": output,
    }
    attn, quiet = 1 / np.sqrt(N_EMBD), 0.02  # random layers whose writes stay small
    for i in range(N_LAYER):
        tensors |= {
            f"blk.{i}.attn_norm.weight": np.ones(N_EMBD, np.float32),
            f"blk.{i}.attn_q.weight": normal(N_EMBD, N_EMBD, scale=attn),
            f"blk.{i}.attn_k.weight": normal(N_EMBD, N_EMBD, scale=attn),
            f"blk.{i}.attn_v.weight": normal(N_EMBD, N_EMBD, scale=attn),
            f"blk.{i}.attn_output.weight": normal(N_EMBD, N_EMBD, scale=quiet * attn),
            f"blk.{i}.ffn_norm.weight": np.ones(N_EMBD, np.float32),
            f"blk.{i}.ffn_gate.weight": normal(N_FF, N_EMBD, scale=attn),
            f"blk.{i}.ffn_up.weight": normal(N_FF, N_EMBD, scale=attn),
            f"blk.{i}.ffn_down.weight": normal(N_EMBD, N_FF, scale=quiet / np.sqrt(N_FF)),
        }
    return tensors


def write(path: Path, seed: int = 0) -> Path:
    """Write the model to path and return it."""
    tokens, scores, types = vocabulary()
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(f"llmscope-tiny-random-{seed}")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    for name, tensor in weights(seed, len(tokens)).items():
        writer.add_tensor(name, tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(write(args.path, args.seed))


if __name__ == "__main__":
    main()

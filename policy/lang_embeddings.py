"""Precomputed language embeddings: one (L, D) tensor per instruction, plus a manifest.

T5-XXL does not fit next to training on small GPUs, and LIBERO has only ~40 distinct instructions,
so ``scripts/preprocess_language_embeddings.py`` encodes each once. Store layout::

    <dir>/manifest.json   {"model": "google/t5-v1_1-xxl", "dim": 4096,
                           "embeddings": {"<instruction>": "<file>.pt", ...}}
    <dir>/<file>.pt       torch tensor (L, D) -- valid tokens only (no padding, no batch dim)

Instructions are looked up after ``normalize_instruction`` (whitespace collapsed, trailing "."
dropped), the same normalisation the writer applies. A width that does not match the model (e.g.
768 from t5-base where RDT expects 4096) is rejected when the store is opened, not deep in training.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Mapping

import torch

from configs.errors import UserError
from utils.atomic import atomic_write_text

MANIFEST = "manifest.json"


class LangEmbeddingError(UserError, ValueError):
    """A language-embedding store is missing, malformed, or has the wrong width."""


def normalize_instruction(text: str) -> str:
    """Canonical key: collapse whitespace, strip, drop one trailing period."""
    text = " ".join(str(text).split())
    return text[:-1].rstrip() if text.endswith(".") else text


def _file_name(i: int, instruction: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", instruction.lower()).strip("_")[:80]
    return f"{i:04d}_{slug}.pt"


def write_lang_embedding_store(directory: str | Path, embeddings: Mapping[str, torch.Tensor], model: str) -> Path:
    """Write a store (used by the preprocessing script and tests). Tensors must be (L, D)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dims = set()
    files: dict[str, str] = {}
    for i, (instr, emb) in enumerate(sorted(embeddings.items())):
        if emb.ndim != 2:
            raise LangEmbeddingError(f"embedding for {instr!r} must be (L, D), got {tuple(emb.shape)}")
        dims.add(int(emb.shape[1]))
        key = normalize_instruction(instr)
        name = _file_name(i, key)
        torch.save(emb.detach().cpu().contiguous(), directory / name)
        files[key] = name
    if len(dims) > 1:
        raise LangEmbeddingError(f"embeddings have mixed widths {sorted(dims)}")
    manifest = {"model": model, "dim": dims.pop() if dims else 0, "embeddings": files}
    atomic_write_text(directory / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    return directory / MANIFEST


def same_encoder(a: str, b: str) -> bool:
    """Whether two text-encoder names mean one encoder: the same text, the same local folder, or a
    hub id and a local copy of it (the same final name, e.g. ``google/t5-v1_1-xxl`` and
    ``/models/t5-v1_1-xxl``)."""
    a, b = str(a).rstrip("/"), str(b).rstrip("/")
    if a == b:
        return True
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()
    return pa.name.lower() == pb.name.lower()


class LangEmbeddingStore:
    """Read-only access to a store; tensors are loaded lazily and kept in memory (they are small)."""

    def __init__(self, directory: str | Path, expected_dim: int | None = None):
        self.directory = Path(directory)
        path = self.directory / MANIFEST
        if self.directory.is_file():
            raise LangEmbeddingError(f"{self.directory}: is a file; expected the language-embedding folder "
                                     f"(manifest.json + one .pt per instruction)")
        if not path.is_file():
            raise LangEmbeddingError(f"{path}: language-embedding manifest not found "
                                     "(run scripts/preprocess_language_embeddings.py)")
        try:
            manifest = json.loads(path.read_text())
            self.model = str(manifest.get("model", "?"))
            self.dim = int(manifest["dim"])
            self._files = {normalize_instruction(k): v for k, v in manifest["embeddings"].items()}
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
            raise LangEmbeddingError(f"{path}: malformed manifest ({e!r})") from None
        self.expected_dim = expected_dim
        if expected_dim is not None and self.dim != expected_dim:
            raise LangEmbeddingError(
                f"{path}: embeddings are {self.dim}-d (from {self.model}), but the model expects "
                f"{expected_dim}-d (lang_token_dim); re-encode with the matching text encoder")
        self._cache: dict[str, torch.Tensor] = {}

    def check_model(self, text_encoder: str, what: str = "model.text_encoder") -> None:
        """Embeddings made by another text encoder of the same width would be used silently: refuse them."""
        if self.model != "?" and not same_encoder(self.model, text_encoder):
            raise LangEmbeddingError(
                f"{self.directory / MANIFEST}: embeddings were made by {self.model}, but {what} is {text_encoder}; "
                f"re-encode with `python -m scripts.preprocess_language_embeddings --text_encoder {text_encoder}` "
                f"(or, if it is the same encoder, set {what} to {self.model})")

    def __contains__(self, instruction: str) -> bool:
        return normalize_instruction(instruction) in self._files

    def instructions(self) -> list[str]:
        return sorted(self._files)

    def get(self, instruction: str) -> torch.Tensor:
        """(L, D) float tensor for an instruction; clear error when absent or mis-shaped."""
        key = normalize_instruction(instruction)
        if key in self._cache:
            return self._cache[key]
        if key not in self._files:
            raise LangEmbeddingError(f"{self.directory / MANIFEST}: no embedding for instruction {key!r} "
                                     f"({len(self._files)} instructions stored)")
        file = self.directory / self._files[key]
        try:
            emb = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as e:
            raise LangEmbeddingError(f"{file}: cannot load embedding for {key!r}: {e}") from None
        if not isinstance(emb, torch.Tensor) or emb.ndim != 2 or emb.shape[1] != self.dim:
            shape = tuple(emb.shape) if isinstance(emb, torch.Tensor) else type(emb).__name__
            raise LangEmbeddingError(f"{file}: expected a (L, {self.dim}) tensor for {key!r}, got {shape}")
        self._cache[key] = emb
        return emb

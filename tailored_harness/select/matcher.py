"""PILLOW's matching network and its REINFORCE training. Pure torch: no model, no lm-eval.

The matcher sees frozen embeddings only: a document's ``x`` (D,) and the pool's entries ``E``
(P, D). A pool MLP maps each entry to a key ``k_j = g(E_j)`` (H,); a state MLP maps the state,
the document and the mean of the entries picked so far, ``s_t = f([x ; mean(E_picked)])`` (H,).
Pick t is drawn from ``softmax_j(s_t . k_j / sqrt(H))`` over the entries not yet picked and not
forbidden (a document's own demonstration), so m picks are made one after another without
repetition, each conditioned on the input and the picks before it.

Training (:func:`train`) is REINFORCE with a mean-reward baseline: every step draws one episode
(m picks) for each of ``batch`` training documents, asks ``reward_fn`` for their rewards (the LLM
scoring the document behind the picks), and follows ``(r - mean r) / std r * grad log p(picks)``.
Dividing by the batch's spread keeps one learning rate usable for log-likelihood margins (nats) and
exact match (0 or 1). Seeded end to end: the initialisation, the document order and the draws.
"""

from __future__ import annotations

import logging
import math
import random
from typing import Callable, Sequence

import torch
from torch import nn

logger = logging.getLogger(__name__)

#: ``reward_fn([(document index, picks), ...]) -> [reward, ...]``: one LLM call per training step.
RewardFn = Callable[[list[tuple[int, tuple[int, ...]]]], list[float]]


class Matcher(nn.Module):
    """State and pool MLPs over embeddings of width ``dim``; scores are dot products in ``hidden``."""

    def __init__(self, dim: int, hidden: int, seed: int) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.state = nn.Sequential(nn.Linear(2 * dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden))
            self.pool = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden))
        self.hidden = hidden

    def scores(self, x: torch.Tensor, picked: torch.Tensor, entries: torch.Tensor) -> torch.Tensor:
        """Logits (B, P) of every entry for states ``x`` (B, D) with picked-entry means ``picked`` (B, D)."""
        state = self.state(torch.cat([x, picked], dim=-1))
        keys = self.pool(entries)
        return state @ keys.T / math.sqrt(self.hidden)

    def rollout(self, x: torch.Tensor, entries: torch.Tensor, m: int, allowed: torch.Tensor,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(picks (B, m), log-probability of the picks (B,))``; sampled with ``generator``, greedy without.

        ``allowed`` (B, P) bool: entries each document may receive (its own demonstration is not).
        """
        allowed = allowed.clone()
        picked_sum = torch.zeros_like(x)
        picks, log_prob = [], torch.zeros(x.shape[0])
        for step in range(m):
            logits = self.scores(x, picked_sum / max(step, 1), entries).masked_fill(~allowed, float("-inf"))
            logp = torch.log_softmax(logits, dim=-1)
            if generator is None:
                choice = logp.argmax(dim=-1)
            else:
                choice = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(-1)
            log_prob = log_prob + logp.gather(1, choice[:, None]).squeeze(1)
            picks.append(choice)
            allowed[torch.arange(x.shape[0]), choice] = False
            picked_sum = picked_sum + entries[choice]
        return torch.stack(picks, dim=1), log_prob


def train(matcher: Matcher, inputs: torch.Tensor, entries: torch.Tensor, allowed: torch.Tensor, m: int,
          reward_fn: RewardFn, steps: int, batch: int, learning_rate: float, seed: int,
          progress: bool = True, desc: str = "matcher") -> list[dict[str, float]]:
    """Train ``matcher`` in place on documents ``inputs`` (N, D); returns the curve, one row per step
    (``step``, ``mean_reward`` of its episodes, ``llm_calls``: episodes not seen before, so scored).

    Documents are visited in seeded shuffled passes, ``batch`` per step. Rewards of an episode seen
    before (same document, same picks in the same order) are reused: the LLM is deterministic.
    """
    from tqdm.auto import tqdm

    order_rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(matcher.parameters(), lr=learning_rate)
    seen: dict[tuple[int, tuple[int, ...]], float] = {}
    queue: list[int] = []
    curve = []
    bar = tqdm(range(steps), desc=desc, disable=not progress)
    for step in bar:
        docs = []
        while len(docs) < batch:
            if not queue:
                queue = list(range(inputs.shape[0]))
                order_rng.shuffle(queue)
            docs.append(queue.pop())
        index = torch.tensor(docs)
        picks, log_prob = matcher.rollout(inputs[index], entries, m, allowed[index], generator)
        episodes = [(doc, tuple(int(p) for p in row)) for doc, row in zip(docs, picks)]
        fresh = sorted({episode for episode in episodes if episode not in seen})
        for episode, value in zip(fresh, reward_fn(fresh) if fresh else []):
            seen[episode] = float(value)
        rewards = torch.tensor([seen[episode] for episode in episodes])
        advantage = rewards - rewards.mean()
        spread = rewards.std() if len(docs) > 1 else torch.tensor(0.0)
        if spread > 0:
            advantage = advantage / spread
        loss = -(advantage * log_prob).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        curve.append({"step": step + 1, "mean_reward": round(float(rewards.mean()), 6),
                      "llm_calls": len(fresh)})
        bar.set_postfix(mean_reward=f"{float(rewards.mean()):.4f}")
    return curve


def choose(matcher: Matcher, inputs: torch.Tensor, entries: torch.Tensor, allowed: torch.Tensor,
           m: int) -> list[tuple[int, ...]]:
    """The greedy picks (the most probable entry at every step) for each of ``inputs`` (N, D)."""
    with torch.no_grad():
        picks, _ = matcher.rollout(inputs, entries, m, allowed)
    return [tuple(int(p) for p in row) for row in picks]


def stack(rows: Sequence[Sequence[float]]) -> torch.Tensor:
    return torch.tensor([list(row) for row in rows], dtype=torch.float32)

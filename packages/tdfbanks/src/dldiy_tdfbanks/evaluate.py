"""Greedy CTC decoding and the phone error rate (39 folded phones, edit distance)."""

from __future__ import annotations

import torch

from .data import SpeechSet
from .models import Recognizer
from .phones import BLANK, TIMIT61, phone_error_rate


def greedy_decode(log_probs: torch.Tensor, frames: torch.Tensor) -> list[list[str]]:
    """Best class per frame, repeats merged, blanks dropped: ``[B, F, C] -> B phone lists``."""
    best = log_probs.argmax(-1).cpu()
    out = []
    for row, n in zip(best, frames.tolist(), strict=True):
        seq = torch.unique_consecutive(row[:n]).tolist()
        out.append([TIMIT61[c - 1] for c in seq if c != BLANK])
    return out


@torch.no_grad()
def transcribe(model: Recognizer, data: SpeechSet, batch_size: int = 16) -> list[list[str]]:
    """Decoded phones of every utterance of ``data`` (in order)."""
    model.eval()
    order = sorted(range(len(data)), key=lambda i: len(data.waves[i]))
    hyps: list[list[str]] = [[] for _ in order]
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        waves, lengths, _, _ = data.get_batch(idx)
        for i, hyp in zip(idx, greedy_decode(*model(waves, lengths)), strict=True):
            hyps[i] = hyp
    return hyps


def evaluate(model: Recognizer, data: SpeechSet, batch_size: int = 16) -> dict[str, float]:
    """``{"per": PER in [0, 1], "utterances": n}`` on ``data``."""
    hyps = transcribe(model, data, batch_size)
    refs = [[TIMIT61[c - 1] for c in lab] for lab in data.labels]
    return {"per": phone_error_rate(refs, hyps), "utterances": len(data)}

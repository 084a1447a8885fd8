"""The models a worker keeps between jobs (worker/model_cache.py): one shelf per kind, keyed
so that a changed file is reloaded, least recently used out first, a missing perceptual
loss asked for again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import stylegan2
from worker.model_cache import ModelCache


def save_random(path: Path, seed: int) -> Path:
    loaded = stylegan2.load_generator("random-8", seed=seed)
    stylegan2.save_generator(path, loaded.generator, loaded.latent_avg, {})
    return path


def test_a_generator_is_loaded_once_frozen_and_again_when_its_file_changes(tmp_path):
    cache = ModelCache()
    path = save_random(tmp_path / "g.pt", seed=1)
    first = cache.generator(str(path), "cpu")
    assert cache.generator(str(path), "cpu") is first
    assert not first.generator.training
    assert not any(p.requires_grad for p in first.generator.parameters())
    save_random(path, seed=2)
    stat = path.stat()  # the same size: the new mtime tells the files apart
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert cache.generator(str(path), "cpu") is not first


def test_each_kind_keeps_its_own_most_recent_entries():
    cache = ModelCache(max_items=1)
    detector = cache.detector("cpu")
    a = cache.generator("random-8", "cpu")
    b = cache.generator("random-16", "cpu")  # pushes random-8 out of the generators' shelf
    assert cache.generator("random-16", "cpu") is b
    assert cache.generator("random-8", "cpu") is not a
    assert cache.detector("cpu") is detector  # generators do not push other kinds out
    cache.clear()
    assert cache.detector("cpu") is not detector


def test_a_missing_perceptual_loss_is_asked_for_again(monkeypatch: pytest.MonkeyPatch):
    answers = [None, object()]
    calls = []

    def load(device):
        calls.append(device)
        return answers[len(calls) - 1]

    monkeypatch.setattr("invert.perceptual.load_perceptual", load)
    cache = ModelCache()
    assert cache.perceptual("cpu") is None  # weights not on this machine yet
    placed = cache.perceptual("cpu")  # placed meanwhile: picked up
    assert placed is answers[1]
    assert cache.perceptual("cpu") is placed and len(calls) == 2  # then kept

"""worker/scores.py: each score against a computation by hand on known embeddings, and the
evaluator on a real (random-weight) CLIP: an unchanged generator scores content 1,
diversity 1, target 0; a generator collapsed on purpose scores diversity 0 (< 1)."""

from __future__ import annotations

import math

import pytest
import torch

from worker.clip_models import load_clip
from worker.scores import ScoreEvaluator, average_over_models, clip_scores, mean_pairwise_distance


def _unit(*v: float) -> list[float]:
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_each_score_by_hand() -> None:
    src = [_unit(1, 0, 0), _unit(1, 1, 0), _unit(0, 0, 1)]
    ad = [_unit(0, 1, 0), _unit(0, 1, 1), _unit(1, 0, 1)]
    direction, target = _unit(0, 1, 0), _unit(0, 2, 1)
    # by hand, with plain floats
    moves = [
        _unit(*[a - s for a, s in zip(ai, si, strict=True)]) for ai, si in zip(ad, src, strict=True)
    ]
    want_direction = sum(_dot(m, direction) for m in moves) / 3
    want_target = sum(_dot(a, target) for a in ad) / 3 - sum(_dot(s, target) for s in src) / 3
    want_content = sum(_dot(a, s) for a, s in zip(ad, src, strict=True)) / 3

    def spread(xs: list[list[float]]) -> float:
        pairs = [(i, j) for i in range(len(xs)) for j in range(i + 1, len(xs))]
        return sum(1 - _dot(xs[i], xs[j]) for i, j in pairs) / len(pairs)

    got = clip_scores(
        torch.tensor(src) * 3.0,  # scale does not matter: embeddings are normalised
        torch.tensor(ad) * 0.5,
        torch.tensor(direction) * 7.0,
        torch.tensor(target),
    )
    assert got["direction"] == pytest.approx(want_direction, abs=1e-6)
    assert got["target"] == pytest.approx(want_target, abs=1e-6)
    assert got["content"] == pytest.approx(want_content, abs=1e-6)
    assert got["diversity"] == pytest.approx(spread(ad) / spread(src), abs=1e-6)


def test_pairwise_distance_and_the_mean_over_models() -> None:
    same = torch.tensor([_unit(1, 2, 3)] * 4)
    assert float(mean_pairwise_distance(same)) == pytest.approx(0.0, abs=1e-6)
    opposite = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert float(mean_pairwise_distance(opposite)) == pytest.approx(2.0)
    flat = average_over_models(
        {"a": {"direction": 0.2, "content": 1.0}, "b": {"direction": 0.4, "content": 0.5}}
    )
    assert flat["direction"] == pytest.approx(0.3) and flat["content"] == pytest.approx(0.75)
    assert flat["direction/a"] == 0.2 and flat["content/b"] == 0.5


SOURCE = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.fixture(scope="module")
def evaluator() -> ScoreEvaluator:
    clip = load_clip("nada-tiny:random", "cpu")
    return ScoreEvaluator([clip], "photo", "sketch", SOURCE, batch_size=4)


def test_an_unchanged_generator(evaluator: ScoreEvaluator) -> None:
    scores = evaluator.evaluate(SOURCE.clone())
    assert scores["content"] == pytest.approx(1.0, abs=1e-5)
    assert scores["diversity"] == pytest.approx(1.0, abs=1e-5)
    assert scores["target"] == pytest.approx(0.0, abs=1e-5)
    assert scores["direction"] == pytest.approx(0.0, abs=1e-5)  # nothing moved
    assert set(scores) >= {"direction/nada-tiny:random", "content/nada-tiny:random"}


def test_a_collapsed_generator_has_diversity_below_one(evaluator: ScoreEvaluator) -> None:
    one = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    scores = evaluator.evaluate(one.expand(6, -1, -1, -1))
    assert scores["diversity"] == pytest.approx(0.0, abs=1e-5) and scores["diversity"] < 1
    assert scores["content"] < 1


def _judge_clip() -> str:
    """A second tiny architecture, as an extra scoring model (score_clip_model)."""
    import copy

    from worker.clip_models import _EXTRA_CONFIGS, TINY_CLIP, add_clip_config

    config = copy.deepcopy(_EXTRA_CONFIGS[TINY_CLIP])
    config["embed_dim"] = 48
    add_clip_config("nada-judge", config)
    return "nada-judge:random"


def test_a_judge_is_scored_on_its_own_and_kept_out_of_the_mean() -> None:
    clip = load_clip("nada-tiny:random", "cpu")
    judge = load_clip(_judge_clip(), "cpu")
    both = ScoreEvaluator([clip], "photo", "sketch", SOURCE, batch_size=4, judges=[judge])
    alone = ScoreEvaluator([judge], "photo", "sketch", SOURCE, batch_size=4)
    moved = SOURCE.flip(-1)
    scores, by_judge = both.evaluate(moved), alone.evaluate(moved)
    for name in ("direction", "target", "content", "diversity"):
        assert scores[name] == scores[f"{name}/nada-tiny:random"]  # the mean skips the judge
        assert scores[f"{name}/nada-judge:random"] == pytest.approx(by_judge[name], abs=1e-6)
    assert scores["direction/nada-judge:random"] != scores["direction/nada-tiny:random"]


def test_an_adaptation_measures_and_records_its_scores(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The real engine through the worker's task: scores at step 0 (nothing trained:
    content and diversity exactly 1) and at every sample step, in metrics.jsonl, in the
    job's row (as the API returns them), and in the checkpoint's metadata."""
    import json

    import stylegan2
    from backend.schemas.jobs import job_public
    from jobs import store
    from jobs.db.session import migrate, session_scope
    from jobs.settings import Settings
    from nada.params import AdaptParams, ClipSpec
    from worker.attempts import run_job
    from worker.model_cache import ModelCache

    settings = Settings(data_dir=tmp_path / "data", device="cpu", migrate_on_start=False,
                        frontend_dir=None)  # fmt: skip
    migrate(settings.db_url)
    params = AdaptParams(
        source_text="photo", target_text="sketch", generator="random-8",
        clip_models=(ClipSpec("nada-tiny:random"),), steps=2, batch_size=1, probe_batch=1,
        n_samples=1, sample_every=1, score_latents=3, score_clip_model=_judge_clip(),
    )  # fmt: skip
    with session_scope(settings.db_url) as session:
        job_id = store.create_job(session, params=params).id
    assert run_job(job_id, settings=settings, worker_id="w", models=ModelCache()) == "succeeded"

    with session_scope(settings.db_url) as session:
        job = store.get_job(session, job_id=job_id)
        public = job_public(job, queue_position=None, eta_seconds=None)
    assert [s.step for s in public.scores] == [0, 1, 2]
    first = public.scores[0].values
    assert first["content"] == pytest.approx(1.0, abs=1e-5) and first["diversity"] == pytest.approx(
        1.0, abs=1e-5
    )
    assert "loss" not in first and "loss" in public.scores[-1].values
    assert set(public.scores[-1].values) >= {"direction", "target", "content", "diversity"}
    assert "direction/nada-judge:random" in public.scores[-1].values  # the extra scoring model

    root = settings.jobs_dir / job_id
    lines = [json.loads(line) for line in (root / "metrics.jsonl").read_text().splitlines()]
    assert [line["scores"] for line in lines] == [public.scores[1].values, public.scores[2].values]
    meta = stylegan2.load_generator(str(root / "adapted.pt")).metadata
    assert meta["scores"]["2"] == public.scores[2].values


def test_an_unknown_scoring_model_is_refused_by_its_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from nada.errors import ParamError
    from nada.params import AdaptParams, ClipSpec
    from worker.engine import run_adaptation

    params = AdaptParams(
        source_text="photo", target_text="sketch", generator="random-8",
        clip_models=(ClipSpec("nada-tiny:random"),), steps=1, batch_size=1, probe_batch=1,
        score_clip_model="NoSuchCLIP:random",
    )  # fmt: skip
    with pytest.raises(ParamError) as caught:
        run_adaptation(params, tmp_path, device="cpu")
    assert caught.value.field == "score_clip_model" and "NoSuchCLIP" in str(caught.value)

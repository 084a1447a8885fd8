"""The recommended step: best direction among the steps that keep content and diversity."""

from nada.recommend import MIN_CONTENT, MIN_DIVERSITY, recommend


def _s(direction: float, content: float, diversity: float) -> dict[str, float]:
    return {"direction": direction, "content": content, "diversity": diversity, "loss": 1.0}


SCORES = {
    "0": _s(0.0, 1.0, 1.0),
    "10": _s(0.2, 0.9, 0.9),
    "20": _s(0.4, 0.8, 0.6),
    "30": _s(0.6, 0.6, 0.3),  # best direction, but content and diversity gone
}


def test_best_direction_among_passing_candidates() -> None:
    r = recommend(SCORES, [10, 20, 30])
    assert r.step == 20
    assert (r.min_content, r.min_diversity) == (MIN_CONTENT, MIN_DIVERSITY)
    assert "content >= 0.7" in r.reason and "diversity >= 0.5" in r.reason
    # Only candidates count: step 0 is scored but not downloadable.
    assert recommend(SCORES, [10]).step == 10
    # Thresholds move the choice.
    assert recommend(SCORES, [10, 20, 30], min_content=0.5, min_diversity=0.2).step == 30
    assert recommend(SCORES, [10, 20, 30], min_diversity=0.7).step == 10


def test_ties_pick_the_earliest_step() -> None:
    assert recommend({"5": _s(0.3, 0.9, 0.9), "9": _s(0.3, 0.9, 0.9)}, [9, 5]).step == 5


def test_no_step_passes_names_the_threshold() -> None:
    r = recommend(SCORES, [30])
    assert r.step is None and "content >= 0.7" in r.reason
    r = recommend(SCORES, [20, 30], min_diversity=0.95)
    assert r.step is None and "diversity >= 0.95" in r.reason


def test_no_scores_no_recommendation() -> None:
    r = recommend({}, [3, 6])
    assert r.step is None and "no scores" in r.reason
    assert recommend({"3": {"loss": 1.0}}, [3]).step is None

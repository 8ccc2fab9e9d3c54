"""BlackBoxResult: history, answers, plot, save and load."""

from __future__ import annotations

import pytest
import torch
from blackbox_helpers import FAST, first, noisy_bowl

from rotalumis.optimize import BlackBoxResult, optimize_blackbox

torch.set_num_threads(1)


def keywords(a: torch.Tensor, b: torch.Tensor):
    return noisy_bowl(torch.stack([a, b]))


@pytest.fixture(scope="module")
def result() -> BlackBoxResult:
    return optimize_blackbox(keywords, {"a": 2.5, "b": -0.5}, first, "fd", budget=40,
                             config=FAST["fd"], seed=0)  # fmt: skip


def test_history_and_answers(result):
    assert result.steps == 10 and result.calls == 40
    assert result.history_calls.tolist() == list(range(4, 41, 4))
    answers = result.answers()
    assert answers[0][0] == 0 and torch.equal(answers[0][1], torch.tensor([2.5, -0.5]))
    assert answers[-1] == (40, result.psi)
    assert [c for c, _ in answers] == [0, *range(4, 41, 4)]
    assert set(result.params) == {"a", "b"}
    assert "method='fd'" in repr(result)


def test_save_load_round_trip(result, tmp_path):
    path = result.save(tmp_path)
    back = BlackBoxResult.load(tmp_path)
    assert path.name == "optimization.json"
    for name in ("psi", "history_psi", "history_objective", "history_calls"):
        assert torch.allclose(getattr(back, name).double(), getattr(result, name).double())
    assert back.names == ("a", "b") and back.config["lr"] == FAST["fd"].lr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "optimization.json").write_text("{}")
    with pytest.raises(ValueError, match="not a saved black-box"):
        BlackBoxResult.load(tmp_path / "bad")


def test_plot_writes_a_png(result, tmp_path):
    from PIL import Image

    def exact(p):
        return float(((p - 1) ** 2).sum())

    path = result.plot(tmp_path / "sub" / "history.png", exact=exact, reference=0.0)
    with Image.open(path) as im:
        assert im.width > 500 and im.height > 200

"""The optimization loop, its configuration, result, errors, handler and pipeline."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rotalumis.core import (
    RNG,
    Model,
    ModelError,
    Normal,
    Poisson,
    TraceHandler,
    model,
    observe,
    sample,
)
from rotalumis.optimize import (
    GradientHandler,
    OptimizationError,
    OptimizeConfig,
    Pipeline,
    optimize,
    pipeline,
)

torch.set_num_threads(1)

FAST = {"steps": 60, "batch_size": 4, "lr": 0.1, "progress": False}


@model
def gaussian(mu):
    return sample(Normal(mu, 1.0), name="x")


def squared_from_one(x):
    return (x - 1.0) ** 2


# -- configuration -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"steps": 0}, "steps"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"lr": -1.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"final_lr_factor": 2.0}, "final_lr_factor"),
        ({"baseline_decay": 1.0}, "baseline_decay"),
        ({"baseline": "median"}, "baseline"),
        ({"gradient": "finite-differences"}, "gradient"),
        ({"batch_size": 1}, "leave_one_out"),
        ({"optimizer": "lbfgs-ish"}, "optimizer"),
        ({"optimizer": int}, "optimizer"),
        ({"optimizer_options": {"lr": 0.1}}, "lr"),
        ({"progress": "yes"}, "progress"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        OptimizeConfig(**kwargs)


def test_config_is_frozen_all_the_way_down():
    cfg = OptimizeConfig(optimizer_options={"betas": (0.5, 0.9)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.steps = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.optimizer_options["betas"] = (0.1, 0.2)  # type: ignore[index]
    assert OptimizeConfig(batch_size=1, baseline="moving_average").batch_size == 1


# -- the loop ------------------------------------------------------------------------------------
def test_optimize_finds_the_minimum_and_records_history(tmp_path):
    res = optimize(gaussian, {"mu": 3.0}, squared_from_one, config=OptimizeConfig(**FAST), seed=0)
    assert abs(float(res.params["mu"]) - 1.0) < 0.3
    assert res.steps == len(res.loss_history) == 60
    assert res.param_history["mu"].shape == (61,)
    assert float(res.param_history["mu"][0]) == 3.0
    assert res.final_loss() < res.loss_history[0]
    path = res.plot(
        tmp_path / "sub" / "loss.png", title="t", reference={"mu": 1.0}, reference_loss=1
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "OptimizationResult(60 steps" in repr(res)


def test_same_seed_same_run_and_seed_recorded():
    cfg = OptimizeConfig(**FAST)
    a = optimize(gaussian, {"mu": 3.0}, squared_from_one, config=cfg, seed=7)
    b = optimize(gaussian, {"mu": 3.0}, squared_from_one, config=cfg, seed=7)
    assert a.loss_history == b.loss_history and a.seed == 7
    c = optimize(gaussian, {"mu": 3.0}, squared_from_one, config=cfg)
    assert (
        optimize(gaussian, {"mu": 3.0}, squared_from_one, config=cfg, seed=c.seed).loss_history
        == c.loss_history
    )


def test_any_torch_optimizer_class_and_schedule():
    cfg = OptimizeConfig(
        steps=80,
        batch_size=4,
        lr=0.05,
        optimizer=torch.optim.SGD,
        optimizer_options={"momentum": 0.5},
        final_lr_factor=0.1,
        progress=False,
    )
    res = optimize(gaussian, {"mu": 3.0}, squared_from_one, config=cfg, seed=1)
    assert abs(float(res.params["mu"]) - 1.0) < 0.3


def test_vector_parameter_and_model_held_tensor(tmp_path):
    class Held(Model):
        def __init__(self):
            super().__init__()
            self.centre = torch.zeros(3, requires_grad=True)

        def forward(self):
            return sample(Normal(self.centre, 1.0))

    target = torch.tensor([1.0, -1.0, 0.5])
    sim = Held()
    res = optimize(
        sim,
        {"centre": sim.centre},
        lambda x: ((x - target) ** 2).sum(),
        config=OptimizeConfig(**FAST),
        seed=2,
        pass_params=False,
    )
    assert torch.allclose(sim.centre.detach(), target, atol=0.35)  # optimized in place
    assert res.params["centre"].shape == (3,)
    res.plot(tmp_path / "vector.png")  # no trajectory panel for a vector: still a PNG


def test_model_args_and_result_as_loss():
    @model
    def shifted(offset, mu):
        return (sample(Normal(mu, 1.0)) - offset) ** 2

    res = optimize(shifted, {"mu": 0.0}, config=OptimizeConfig(**FAST), model_args=(2.0,), seed=3)
    assert abs(float(res.params["mu"]) - 2.0) < 0.3


def test_progress_bar_silent_when_disabled(capfd):
    optimize(gaussian, {"mu": 3.0}, squared_from_one, config=OptimizeConfig(**FAST), seed=0)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_progress_bar_when_forced():
    cfg = OptimizeConfig(steps=5, batch_size=2, progress=True)
    assert optimize(gaussian, {"mu": 3.0}, squared_from_one, config=cfg, seed=0).steps == 5


# -- errors --------------------------------------------------------------------------------------
def test_parameter_without_gradient_is_named():
    @model
    def leaky(mu, nu):
        return sample(Normal(float(mu.detach()), 1.0)) + 0.0 * nu  # cut off from mu

    with pytest.raises(OptimizationError, match="parameter 'mu' gets no gradient"):
        optimize(leaky, {"mu": 1.0, "nu": 1.0}, config=OptimizeConfig(**FAST), seed=0)

    with pytest.raises(OptimizationError, match="'mu', 'nu'"):
        optimize(
            leaky,
            {"mu": 1.0, "nu": 1.0},
            lambda r: torch.tensor(1.0),
            config=OptimizeConfig(**FAST),
        )


def test_nan_loss_stops_naming_the_step():
    def log_loss(x):
        return torch.log(x)  # NaN once a draw is negative; mu drifts down

    with pytest.raises(OptimizationError, match=r"step \d+: the loss is nan \(execution \d+"):
        optimize(gaussian, {"mu": 3.0}, log_loss, config=OptimizeConfig(**FAST), seed=0)


def test_invalid_distribution_during_the_run_names_the_step():
    @model
    def spread(sigma):
        return sample(Normal(0.0, sigma))

    cfg = OptimizeConfig(steps=50, batch_size=4, lr=1.0, optimizer="sgd", progress=False)
    with pytest.raises(OptimizationError, match=r"step \d+: the model built an invalid"):
        optimize(spread, {"sigma": 0.5}, lambda x: x**2, config=cfg, seed=0)


def test_bad_inputs():
    cfg = OptimizeConfig(**FAST)
    with pytest.raises(OptimizationError, match=r"scalar, got a tensor of shape \(2,\)"):
        optimize(gaussian, {"mu": torch.zeros(2)}, lambda x: x, config=cfg)
    with pytest.raises(OptimizationError, match="must give a scalar tensor"):
        optimize(gaussian, {"mu": 0.0}, lambda x: "far", config=cfg)
    with pytest.raises(ValueError, match="'mu' must be finite"):
        optimize(gaussian, {"mu": float("inf")}, squared_from_one, config=cfg)
    with pytest.raises(ValueError, match="'mu' must be a floating tensor"):
        optimize(gaussian, {"mu": torch.tensor(1)}, squared_from_one, config=cfg)
    with pytest.raises(ValueError, match="non-empty mapping"):
        optimize(gaussian, {}, squared_from_one, config=cfg)
    with pytest.raises(TypeError, match="rotalumis Model"):
        optimize(lambda mu: mu, {"mu": 0.0}, config=cfg)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="OptimizeConfig"):
        optimize(gaussian, {"mu": 0.0}, config={"steps": 3})  # type: ignore[arg-type]


# -- the handler ---------------------------------------------------------------------------------
def test_handler_routes_each_site():
    mu = torch.tensor(0.5, requires_grad=True)

    @model
    def sim():
        a = sample(Normal(0.0, 1.0))  # scalar: untouched fast path
        b = sample(Normal(mu, 1.0))  # pathwise
        n = sample(Poisson(mu.exp()))  # score function
        c = observe(Normal(mu, 1.0))  # simulated data: pathwise too
        d = observe(Normal(mu, 1.0), 0.3)  # data: untouched
        return a, b, n, c, d

    handler = GradientHandler()
    with TraceHandler() as tracer, handler:
        a, b, n, c, d = sim.execute(RNG(0))
    assert isinstance(a, float) and d == 0.3
    assert b.requires_grad and c.requires_grad and not n.requires_grad
    assert len(handler.pathwise_sites) == 2 and len(handler.score_sites) == 1
    assert handler.score_log_prob.requires_grad
    assert tracer.trace.log_prior.requires_grad  # the trace still records log-probs

    scored = GradientHandler("score")
    with scored:
        _, b, _, _, _ = sim.execute(RNG(0))
    assert not b.requires_grad and len(scored.score_sites) == 3
    with pytest.raises(ValueError, match="mode"):
        GradientHandler("fd")  # type: ignore[arg-type]


# -- the pipeline --------------------------------------------------------------------------------
class Source(Model):
    def forward(self, energy, *, shared=1.0):
        return sample(Normal(energy * shared, 0.1), name="e")


@model
def detector(e, gain, shared=1.0):
    return sample(Normal(gain * e + 0 * shared, 0.01), name="reading")


def test_pipeline_routes_keywords_and_traces_every_stage():
    chain = pipeline(Source(), detector)
    assert chain.name == "Source -> detector" and "Pipeline(" in repr(chain)
    with TraceHandler() as tracer:
        out = chain.execute(RNG(0), energy=2.0, gain=3.0, shared=1.0)
    assert abs(out - 6.0) < 1.0
    assert [v.name for v in tracer.trace.samples] == ["e", "reading"]
    assert len({v.address for v in tracer.trace.samples}) == 2


def test_pipeline_errors():
    chain = pipeline(Source(), detector, name="beamline")
    with pytest.raises(ModelError, match=r"no stage takes the keyword argument.*'colour'"):
        chain.execute(RNG(0), energy=1.0, gain=1.0, colour=2)
    with pytest.raises(ModelError, match="'e'"):  # the detector's input is not a keyword
        chain.execute(RNG(0), energy=1.0, gain=1.0, e=2)
    with pytest.raises(TypeError, match="at least two stages"):
        Pipeline(Source())
    with pytest.raises(TypeError, match="stage 1 must be a rotalumis Model"):
        pipeline(Source(), lambda e: e)  # type: ignore[arg-type]


def test_pipeline_three_stages_optimized_end_to_end():
    @model
    def double(x):
        return 2.0 * x

    chain = pipeline(Source(), double, detector)
    res = optimize(
        chain,
        {"energy": 0.5, "gain": 1.0},
        lambda r: (r - 4.0) ** 2,
        config=OptimizeConfig(steps=100, batch_size=4, lr=0.05, progress=False),
        seed=0,
    )
    reading = 2.0 * float(res.params["energy"]) * float(res.params["gain"])
    assert abs(reading - 4.0) < 0.3


def test_overflowing_mean_loss_is_reported():
    @model
    def big(scale):
        return sample(Normal(scale, 1.0)) * 0 + scale * 3e38

    with pytest.raises(OptimizationError, match="step 0: the batch's mean loss overflows"):
        optimize(big, {"scale": 1.0}, config=OptimizeConfig(**FAST), seed=0)

"""Flow heads: normalised densities, the same density in training and at inference, samples
that follow it, supports respected, and the choice of head per kind of address."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from rotalumis.core import RNG, Gamma, LogNormal, Normal, TruncatedNormal, Uniform
from rotalumis.data import flat_params
from rotalumis.nn import FlowHead, FlowProposal, InferenceNetwork, NetworkConfig, SiteSpec
from rotalumis.nn.flow_head import _inverse_map, _support_map, choose_proposal
from rotalumis.nn.heads import head_kind

torch.set_num_threads(1)
HIDDEN = 16

PRIORS = {
    "Normal": Normal(2.0, 3.0),
    "Uniform": Uniform(-1.0, 4.0),
    "TruncatedNormal": TruncatedNormal(1.0, 2.0, 0.0, math.inf),
    "LogNormal": LogNormal(0.5, 0.7),
    "Gamma": Gamma(3.0, 2.0),
    "Normal2": Normal(torch.tensor([1.0, -2.0]), torch.tensor([0.5, 2.0])),
    "Uniform2": Uniform(torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 10.0])),
}


def make_head(
    prior, seed: int = 0, scale: float = 0.3, interval: str = "logit"
) -> tuple[FlowHead, torch.Tensor, torch.Tensor]:
    """A flow head with random (large) weights, a random head input and the prior params."""
    torch.manual_seed(seed)
    shape = list(prior.shape)
    params = flat_params(prior, shape)
    numel = max(1, math.prod(shape))
    kind, _ = head_kind(prior.name, numel, len(params))
    spec = SiteSpec("site", prior.name, kind, numel, tuple(shape), len(params), 0, "flow")
    head = FlowHead(spec, HIDDEN, transforms=2, bins=6, hidden=16, width=8, interval=interval)
    head = head.double()
    for p in head.parameters():  # larger weights than at initialisation: a "trained" shape
        p.data.normal_(0.0, scale)
    h = torch.randn(1, HIDDEN, dtype=torch.float64)
    return head, h, torch.tensor([params], dtype=torch.float64)


def log_q(head, h, params, xs: np.ndarray) -> np.ndarray:
    values = torch.tensor(xs, dtype=torch.float64).reshape(len(xs), -1)
    n = len(values)
    with torch.no_grad():
        return head.log_prob(h.expand(n, -1), values, params.expand(n, -1), None).numpy()


def grid(prior, points: int) -> tuple[np.ndarray, float]:
    """Midpoints covering the prior's support (in log space for positive ones) and the step."""
    name = prior.name
    if name == "Uniform":
        lo, hi = float(prior.low), float(prior.high)
    elif name in ("LogNormal", "Gamma", "TruncatedNormal"):
        lo, hi = -25.0, 12.0  # of log x
    else:
        lo, hi = -60.0, 60.0
    step = (hi - lo) / points
    return lo + step * (np.arange(points) + 0.5), step


@pytest.mark.parametrize(
    ("name", "interval"),
    [(n, "logit") for n in ("Normal", "Uniform", "TruncatedNormal", "LogNormal", "Gamma")]
    + [("Uniform", "probit")],
)
def test_scalar_flow_heads_integrate_to_one(name: str, interval: str) -> None:
    prior = PRIORS[name]
    head, h, params = make_head(prior, interval=interval)
    u, step = grid(prior, 40_000)
    if name in ("LogNormal", "Gamma", "TruncatedNormal"):  # q(e^u) e^u du (on x > 0)
        integrand = np.exp(log_q(head, h, params, np.exp(u)) + u)
    else:
        integrand = np.exp(log_q(head, h, params, u))
    # midpoint rule on a fine grid: the error is far below 1e-3 for these smooth densities
    assert integrand.sum() * step == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize(
    ("name", "interval"), [("Normal2", "logit"), ("Uniform2", "logit"), ("Uniform2", "probit")]
)
def test_vector_flow_heads_integrate_to_one(name: str, interval: str) -> None:
    """Integrated on a grid of the unconstrained coordinates u: q(x(u)) |dx/du| du."""
    prior = PRIORS[name]
    head, h, params = make_head(prior, scale=0.15, interval=interval)
    edges = np.linspace(-12.0, 12.0, 601)
    step = edges[1] - edges[0]
    mid = edges[:-1] + step / 2
    u = torch.tensor(np.stack(np.meshgrid(mid, mid, indexing="ij"), -1).reshape(-1, 2))
    n = len(u)
    x = _inverse_map(head.kind, prior.name, u, params.expand(n, -1), 2, interval)
    _, log_du_dx = _support_map(head.kind, prior.name, x, params.expand(n, -1), 2, interval)
    total = np.exp(log_q(head, h, params, x.numpy()) - log_du_dx.numpy()).sum() * step**2
    assert total == pytest.approx(1.0, abs=5e-3)  # midpoint rule, step 0.04


@pytest.mark.parametrize(
    ("name", "interval"),
    [(n, "logit") for n in sorted(PRIORS)] + [("Uniform", "probit"), ("Uniform2", "probit")],
)
def test_sampling_density_is_the_training_density(name: str, interval: str) -> None:
    """FlowProposal's samples follow FlowHead.log_prob (KS test per coordinate, against the
    marginal CDF integrated from the training density), and its log_prob is that density."""
    prior = PRIORS[name]
    head, h, params = make_head(prior, seed=3, interval=interval)
    q = head.proposal(h, params, prior)
    assert isinstance(q, FlowProposal)
    rng = RNG(11)
    draws = [q.sample(rng) for _ in range(600)]
    if prior.is_scalar:
        assert all(type(d) is float for d in draws)
    else:
        assert all(d.shape == prior.shape and d.dtype == torch.float32 for d in draws)
    xs = np.array([np.asarray(d, dtype=np.float64).reshape(-1) for d in draws])
    assert bool(
        np.all(
            [
                prior.in_support(torch.as_tensor(x, dtype=torch.float32).reshape(prior.shape))
                if not prior.is_scalar
                else prior.in_support(float(x[0]))
                for x in xs
            ]
        )
    )
    trained = log_q(head, h, params, xs)
    sampled = np.array([float(q.log_prob_sum(d)) for d in draws])
    np.testing.assert_allclose(sampled, trained, rtol=1e-9, atol=1e-9)
    if prior.is_scalar:
        u, step = grid(prior, 40_000)
        positive = name in ("LogNormal", "Gamma", "TruncatedNormal")
        dens = np.exp(log_q(head, h, params, np.exp(u) if positive else u) + (u if positive else 0))
        cdf = np.cumsum(dens) * step
        points = np.log(xs[:, 0]) if positive else xs[:, 0]
        # KS at the 1e-4 level: a sampler off by a visible amount fails, a right one passes
        assert stats.kstest(points, lambda t: np.interp(t, u + step / 2, cdf)).pvalue > 1e-4


def test_flow_proposal_respects_a_bounded_support_in_the_tails() -> None:
    prior = Uniform(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1e-3]))
    head, h, params = make_head(prior, seed=5)
    for p in head.parameters():
        p.data.mul_(8.0)  # extreme proposals: mass piles up at the edges
    q = head.proposal(h, params, prior)
    rng = RNG(2)
    for _ in range(300):
        x = q.sample(rng)
        assert prior.in_support(x) and math.isfinite(float(q.log_prob_sum(x)))


def test_choice_of_head_per_kind_of_address() -> None:
    heads = {"vector": "flow", "Uniform": "mixture", "pos": "flow"}
    assert choose_proposal(heads, "Normal", "real", 3) == "flow"
    assert choose_proposal(heads, "Normal", "real", 1) == "mixture"
    assert choose_proposal(heads, "Uniform", "bound", 5) == "mixture"  # name beats "vector"
    assert choose_proposal(heads, "Gamma", "pos", 1) == "flow"
    assert choose_proposal({"*": "flow"}, "Categorical", "cat", 1) == "mixture"
    with pytest.raises(ValueError, match="unknown selector 'vectors'"):
        NetworkConfig(heads={"vectors": "flow"})
    with pytest.raises(ValueError, match=r"heads\['real'\] must be one of"):
        NetworkConfig(heads={"real": "nsf"})
    spec = SiteSpec("a", "Categorical", "cat", 1, (), 3, 3, "flow")
    with pytest.raises(ValueError, match="flow head needs a continuous prior"):
        FlowHead(spec, HIDDEN)


def test_network_with_flow_heads_saves_and_loads(tmp_path) -> None:
    from rotalumis.models import SLCPTask
    from rotalumis.nn import NetworkProposal, simulate_batch

    model = SLCPTask()
    batch = simulate_batch(model, 32, seed=1)
    net = InferenceNetwork.for_batch(batch, heads={"vector": "flow"}, lstm_dim=16)
    net.add_sites(batch)
    assert [s.proposal for s in net.specs] == ["flow"]
    net.save(tmp_path / "net.pt")
    again = InferenceNetwork.load(tmp_path / "net.pt")
    assert again.specs == net.specs and again.config == net.config
    assert float(net.loss(batch).detach()) == float(again.loss(batch).detach())
    observe = {"x": batch.observations["x"][0]}
    draws = []
    for n in (net, again):
        proposal = NetworkProposal(n, observe)
        msg_model = model.get_trace(seed=0)
        site = msg_model.controlled[0]
        site.value = None
        draws.append(proposal(site).sample(RNG(4)))
    assert torch.equal(draws[0], draws[1])


def _fit_unit_site(x: torch.Tensor, bound: float, interval: str = "logit"):
    """A flow head of a Uniform(-1, 1) site fitted by maximum likelihood (300 Adam steps)
    to the draws ``x`` ``(n, 1)``; returns the head, its (zero) inputs and the prior params."""
    torch.manual_seed(0)
    params = torch.tensor([flat_params(Uniform(-1.0, 1.0), [])], dtype=torch.float64)
    spec = SiteSpec("site", "Uniform", "bound", 1, (), params.shape[1], 0, "flow")
    head = FlowHead(spec, 4, transforms=2, bins=8, hidden=16, width=8, bound=bound,
                    interval=interval).double()  # fmt: skip
    h = torch.zeros(len(x), 4, dtype=torch.float64)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        loss = -head.log_prob(h, x, params.expand(len(x), -1), None).mean()
        loss.backward()
        opt.step()
    return head, h, params


def _fit_edge_posterior(bound: float) -> np.ndarray:
    """A flow head fitted to draws of a Uniform(-1, 1) site whose posterior touches the
    upper edge (``logit`` of the unit value ~ N(8, 0.5), as slcp's and two_moons' reference
    posteriors do); returns ``u`` of its samples."""
    torch.manual_seed(0)
    u = 8.0 + 0.5 * torch.randn(2000, 1, dtype=torch.float64)
    head, h, params = _fit_unit_site(2.0 * torch.sigmoid(u) - 1.0, bound)
    q = head.proposal(h[:1], params, Uniform(-1.0, 1.0))
    rng = RNG(3)
    xs = np.array([float(q.sample(rng)) for _ in range(500)])
    return np.log1p(xs) - np.log1p(-xs)  # logit((x + 1) / 2)


def test_flow_reaches_a_posterior_at_the_edge_of_a_bounded_prior() -> None:
    # splines act on [-bound, bound] of u and nothing moves mass across its ends: with zuko's
    # 5 the draws pile up at u = 5 (x = 0.9866); the networks' default of 10 reaches u = 8
    wide, narrow = _fit_edge_posterior(10.0), _fit_edge_posterior(5.0)
    assert abs(wide.mean() - 8.0) < 0.2 and 0.3 < wide.std() < 0.7
    assert narrow.max() < 5.01


def test_networks_saved_before_flow_bound_load_with_the_old_domain(tmp_path) -> None:
    assert NetworkConfig().flow_bound == 10.0
    d = NetworkConfig(observations=()).to_dict()
    del d["flow_bound"]
    assert NetworkConfig.from_dict(d).flow_bound == 5.0
    with pytest.raises(ValueError, match="flow_bound must be positive"):
        NetworkConfig(flow_bound=0.0)


def test_probit_interval_keeps_the_density_level_at_the_edges() -> None:
    """A posterior level up to an edge of a uniform prior (uniform on [-1, 0] of a
    Uniform(-1, 1) site): a probit flow fitted to 2,000 of its draws has about the right
    density (1) down to 1e-4 from the edge, where under ``logit`` (u = -9.9) the same fit's
    density is ~e^-40: the importance weights of the traces there would blow up."""
    torch.manual_seed(0)
    head, h, params = _fit_unit_site(-torch.rand(2000, 1, dtype=torch.float64), 10.0, "probit")
    at = torch.tensor([[-0.9999], [-0.999], [-0.99], [-0.5], [-0.1]], dtype=torch.float64)
    with torch.no_grad():
        log_q = head.log_prob(h[: len(at)], at, params.expand(len(at), -1), None).numpy()
    # over 4 seeds: within 2.6 nats at 1e-4 from the edge, 1 nat from 1e-3 on (logit: -40)
    assert abs(log_q[0]) < 3.0 and np.all(np.abs(log_q[1:]) < 1.0), log_q


def test_flow_interval_is_saved_and_checked(tmp_path) -> None:
    from rotalumis.core import DatasetError
    from rotalumis.models import SLCPTask
    from rotalumis.nn import simulate_batch

    assert NetworkConfig().flow_interval == "logit"
    d = NetworkConfig(observations=()).to_dict()
    del d["flow_interval"]  # files saved before the field existed: logit, as they were trained
    assert NetworkConfig.from_dict(d).flow_interval == "logit"
    with pytest.raises(ValueError, match="flow_interval must be one of"):
        NetworkConfig(flow_interval="tanh")
    with pytest.raises(ValueError, match="interval must be one of"):
        FlowHead(SiteSpec("a", "Uniform", "bound", 1, (), 2, 0, "flow"), 4, interval="tanh")
    batch = simulate_batch(SLCPTask(), 16, seed=1)
    net = InferenceNetwork.for_batch(
        batch, heads={"vector": "flow"}, lstm_dim=8, flow_interval="probit"
    )
    net.add_sites(batch)
    assert [s.head.interval for s in net.sites.values()] == ["probit"]
    net.save(tmp_path / "net.pt")
    again = InferenceNetwork.load(tmp_path / "net.pt")
    assert again.config.flow_interval == "probit"
    assert float(net.loss(batch).detach()) == float(again.loss(batch).detach())
    payload = torch.load(tmp_path / "net.pt", weights_only=True)
    payload["config"] = payload["config"].replace('"probit"', '"tanh"')
    with pytest.raises(DatasetError, match="flow_interval"):
        InferenceNetwork.from_payload(payload)

"""A tau-lepton-like decay seen by a 3D calorimeter: an unmodified numpy simulator, inverted.

The simulator below is plain numpy and knows nothing about rotalumis. A tau-like particle
(mass 1.777 GeV) gets a random momentum, decays through one of six channels with their
branching ratios, the decay products get momenta from two-body kinematics (isotropic in each
rest frame, then boosted), and a calorimeter of 8 x 16 x 16 voxels (depth x height x width)
records the energy they deposit (shallow narrow electromagnetic showers for photons and
electrons, deep wide hadronic ones for charged pions, a thin track for muons) with Gaussian
noise. Under :func:`rotalumis.intercept.intercept` every one of its numpy draws becomes a
random choice; the momentum, the channel and the calorimeter read-out are named by call-site
patterns, and the read-out noise draw is declared observed, so it *is* the likelihood of an
observed image; RMH and inference compilation infer the momentum and decay channel from one
image.

Full run (writes image.npy, tau_network_K.pt, tau_observed.png, tau_rmh.png, tau_ic.png;
about 10-12 minutes on a free CPU core; the plots in examples/images/)::

    OMP_NUM_THREADS=1 python examples/tau_decay.py --out results/tau_decay --num-traces 750 \\
        --chains 32 --held-out-stretches 50 --burn-in 2000 --thin 20 --ic-training-traces 0 \\
        --warm-epochs 30 --rejuvenate 4 --mixture-rounds --mixture --ic-repeats 5 --event 3

``--event N``: the observed event, ``--seed S``: the inference's seeds; ``--ic-training-traces
N``: an amortized network on N prior simulations first (0: none); ``--proposal FILE...``: fitted
networks (``--num-traces 0``: no RMH, no fit); ``--rejuvenate N``: resample-move rounds
(:func:`rejuvenate`; ``--mixture-rounds``: with the mixture so far); ``--mixture``: final IC
with all the networks' mixture (``--pilot T``: pilot-ESS weights) and the last alone;
``--ensemble K``: K fits (:func:`ensemble_member`), all mixed; ``--every-channel``: fit every
channel's draws; ``--held-out-stretches N``; ``--defensive-momentum W``; ``--flow-interval``.

What to expect. The image pins the visible decay products to a fraction of a cell; the tau
momentum lies on a ridge (the unseen neutrinos carry the rest), and each RMH chain explores a
piece of it (some stick in a wrong channel or a far stretch of the ridge). An amortized
network trained on 10,000 or 50,000 events gives an IC ESS of about 1 of 2,000, so the run
fits a proposal network to this image's RMH draws (:func:`fit_proposal`: draws of stuck
chains dropped by :func:`posterior_draws`, pi0 photon pairs mirrored, a ``probit``-mapped flow
for the momentum, stretches of the chains held out), refines it by resample-move rounds and
importance-samples with the networks' mixture, the momentum's proposals keeping a quarter of
its prior (:func:`infer_ic`); the IC weights keep every estimate exact. Median ESS of 5 seeds,
% of 2,000, equal mixture / last alone: events 2, 3, 4: 47.9 / 26.7, 23.8 / 38.7, 5.3 / 6.2;
events 6, 7: 66.8 / 67.4, 33.4 / 37.6; event 8 (``--every-channel``): 10.8 / 10.0 (README).
The ESS varies several-fold between seeds (heavy-tailed weights: ``--ic-repeats``).
Event 1 is a poor example (its true pz lies at the prior's 1e-4 quantile, where RMH has none).

From the command line, on the image saved by the full run::

    rotalumis run examples/tau_decay.py:model -e rmh -n 5000 --burn-in 1000 --scale 0.05 \\
        --observe image=@results/tau_decay/image.npy --seed 1 --out results/tau_decay/cli

The saved networks' addresses name the module ``tau_decay`` and its source lines (an edit
that moves them invalidates the networks); ``rotalumis run`` imports the file under another
name, so use them from Python (``import tau_decay``, :func:`infer_ic`).
"""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rotalumis.intercept import InterceptedModel

if TYPE_CHECKING:
    from rotalumis.nn import InferenceNetwork

# -- the simulator: plain numpy ------------------------------------------------------------------
M_TAU, M_PI, M_PI0, M_E, M_MU = 1.777, 0.1396, 0.135, 0.000511, 0.1057
M_RHO, W_RHO, M_A1, W_A1 = 0.775, 0.07, 1.23, 0.15
CHANNELS = ["pi nu", "rho nu", "e nu nu", "mu nu nu", "3pi nu", "pi 2pi0 nu"]
BRANCHING = np.array([0.108, 0.255, 0.178, 0.174, 0.093, 0.092])
BRANCHING = BRANCHING / BRANCHING.sum()
GRID = (8, 16, 16)  # depth, y, x
DISTANCE = 25.0  # cells per radian at the calorimeter face (cells of 0.04 rad)
# Read-out resolution of each voxel, as in the usual calorimeter resolution formula:
# electronic noise, and the stochastic (sampling) terms of electromagnetic and hadronic
# showers, sigma^2 = NOISE^2 + STOCHASTIC^2 * deposit (GeV).
NOISE = 0.05
STOCHASTIC = {"em": 0.15, "had": 0.6, "mip": 0.15}
SHOWERS = {  # kind: (longitudinal gamma shape, scale in layers, transverse width, fraction)
    "em": (3.0, 0.8, 0.6, 1.0),
    "had": (2.0, 2.5, 1.2, 0.8),
}
_Z = np.arange(GRID[0]) + 0.5
_Y = np.arange(GRID[1]) - GRID[1] / 2 + 0.5
_X = np.arange(GRID[2]) - GRID[2] / 2 + 0.5


def sample_momentum():
    """Momentum (px, py, pz) of the tau, GeV."""
    return np.random.uniform([-2.5, -2.5, 42.0], [2.5, 2.5, 48.0])


def sample_channel():
    """Index of the decay channel, drawn with the branching ratios."""
    return np.random.choice(len(CHANNELS), p=BRANCHING)


def resonance_mass(mass, width, low, high):
    """A resonance mass around ``mass``, kept inside the kinematic limits."""
    return float(np.clip(np.random.normal(mass, width), low + 1e-3, high - 1e-3))


def two_body(parent, m1, m2):
    """Decay the four-momentum ``parent`` (E, px, py, pz) isotropically into masses m1, m2."""
    mass = math.sqrt(max(parent[0] ** 2 - parent[1:] @ parent[1:], 0.0))
    p = math.sqrt(max((mass**2 - (m1 + m2) ** 2) * (mass**2 - (m1 - m2) ** 2), 0.0)) / (2 * mass)
    cos_t, phi = np.random.uniform(-1.0, 1.0), np.random.uniform(0.0, 2.0 * math.pi)
    sin_t = math.sqrt(1.0 - cos_t**2)
    direction = np.array([sin_t * math.cos(phi), sin_t * math.sin(phi), cos_t])
    d1 = np.concatenate([[math.sqrt(p * p + m1 * m1)], p * direction])
    d2 = np.concatenate([[math.sqrt(p * p + m2 * m2)], -p * direction])
    return boost(d1, parent), boost(d2, parent)


def boost(p4, parent):
    """Boost ``p4`` from the rest frame of ``parent`` into the frame ``parent`` is given in."""
    beta = parent[1:] / parent[0]
    b2 = beta @ beta
    if b2 < 1e-12:
        return p4
    gamma = 1.0 / math.sqrt(1.0 - b2)
    bp = beta @ p4[1:]
    energy = gamma * (p4[0] + bp)
    momentum = p4[1:] + ((gamma - 1.0) * bp / b2 + gamma * p4[0]) * beta
    return np.concatenate([[energy], momentum])


def pi0_photons(pi0):
    return [("em", g) for g in two_body(pi0, 0.0, 0.0)]


def decay(p_tau, channel):
    """The visible decay products [(kind, four-momentum)] of a tau with momentum ``p_tau``."""
    tau = np.concatenate([[math.sqrt(p_tau @ p_tau + M_TAU**2)], p_tau])
    name = CHANNELS[channel]
    if name == "pi nu":
        return [("had", two_body(tau, M_PI, 0.0)[0])]
    if name in ("e nu nu", "mu nu nu"):
        m_lep = M_E if name == "e nu nu" else M_MU
        m_nunu = np.random.uniform(0.0, M_TAU - m_lep)
        lepton = two_body(tau, m_lep, m_nunu)[0]
        return [("em" if name == "e nu nu" else "mip", lepton)]
    if name == "rho nu":
        rho = two_body(tau, resonance_mass(M_RHO, W_RHO, M_PI + M_PI0, M_TAU), 0.0)[0]
        pi, pi0 = two_body(rho, M_PI, M_PI0)
        return [("had", pi), *pi0_photons(pi0)]
    m_a1 = resonance_mass(M_A1, W_A1, 3 * M_PI + 0.05, M_TAU)
    a1 = two_body(tau, m_a1, 0.0)[0]
    neutral = name == "pi 2pi0 nu"
    m_pair = M_PI0 if neutral else M_PI
    rho = two_body(a1, resonance_mass(M_RHO, W_RHO, M_PI + m_pair, m_a1 - M_PI), M_PI)
    a, b = two_body(rho[0], m_pair, m_pair)
    if neutral:
        return [("had", rho[1]), *pi0_photons(a), *pi0_photons(b)]
    return [("had", rho[1]), ("had", a), ("had", b)]


def calorimeter_response(particles):
    """Expected energy deposit (GeV) in every voxel and the variance of its read-out."""
    mean = np.zeros(GRID)
    variance = np.full(GRID, NOISE**2)
    for kind, p4 in particles:
        x0, y0 = DISTANCE * p4[1] / p4[3], DISTANCE * p4[2] / p4[3]
        if kind == "mip":
            profile, width, energy = np.full(GRID[0], 1.0 / GRID[0]), 0.4, 0.3 * GRID[0]
        else:
            shape, scale, width, fraction = SHOWERS[kind]
            profile = _Z ** (shape - 1) * np.exp(-_Z / scale)
            profile, energy = profile / profile.sum(), fraction * p4[0]
        gy = np.exp(-0.5 * ((_Y - y0) / width) ** 2)
        gx = np.exp(-0.5 * ((_X - x0) / width) ** 2)
        spot = np.outer(gy, gx)
        total = spot.sum()
        if total > 0:
            deposit = energy * profile[:, None, None] * (spot / total)[None]
            mean += deposit
            variance += STOCHASTIC[kind] ** 2 * deposit
    return mean, variance


def read_out(mean, variance):
    """The calorimeter's noisy measurement of the deposits."""
    return np.random.normal(mean, np.sqrt(variance))


def simulate_event():
    """One event: momentum, channel, decay, calorimeter image."""
    p_tau = sample_momentum()
    channel = sample_channel()
    return read_out(*calorimeter_response(decay(p_tau, channel)))


# -- the model: the simulator untouched, its draws named by call-site patterns -----------------
model = InterceptedModel(
    simulate_event,
    names={"momentum": "sample_momentum:", "channel": "sample_channel:"},
    observed={"image": "read_out:"},
    result=lambda image: float(image.sum()),
    name="TauDecay",
)


def observed_event(seed):
    """A ground truth and its image, from a plain (not intercepted) run of the simulator."""
    np.random.seed(seed)
    p_tau, channel = sample_momentum(), sample_channel()
    image = read_out(*calorimeter_response(decay(p_tau, channel)))
    return p_tau, int(channel), image


def infer(image, num_traces, seed=1, chains=1, burn_in=None, scale=0.05, progress=False,
          thin=1, keep_traces=False, workers=0):  # fmt: skip
    """RMH posterior of momentum and channel given one calorimeter image."""
    burn = num_traces // 5 if burn_in is None else burn_in
    return model.posterior(
        num_traces, engine="rmh", observe={"image": image}, seed=seed, burn_in=burn,
        scale=scale, num_chains=chains, progress=progress, thin=thin, keep_traces=keep_traces,
        workers=workers,
    )  # fmt: skip


def train_ic(num_traces, seed=0, batch_size=64, workers=0, device=None) -> InferenceNetwork:
    """Train an amortized inference network on simulated events (prior simulations)."""
    from rotalumis.nn import TrainingConfig, train_network

    config = TrainingConfig(
        num_traces=num_traces, batch_size=batch_size, learning_rate=1e-3, valid_size=0, seed=seed
    )
    result = train_network(
        model=model, config=config, workers=workers, device=device, embeddings={"image": "ff"}
    )
    return result.network.to("cpu")


def posterior_draws(traces, drop=15.0, every_channel=False):
    """The MCMC draws in the posterior's bulk, in the channel most of them hold.

    A chain stuck in a local mode (a far stretch of the ridge, a wrong channel) sits tens of
    nats of joint log density below the others; its draws would teach the proposal to put
    mass where the posterior has none. Kept: draws within ``drop`` nats of the 90th
    percentile of all draws' log densities, and of those the ones of the most held channel
    (other channels keep the prior-mixed proposal: ``defensive`` in :func:`infer_ic`). With
    ``every_channel``: the draws in the bulk of every channel (for a posterior of several
    channels, as event 8's ``pi nu`` beside ``e nu nu``: README).
    """
    traces = list(traces)
    log_p = np.array([float(t.log_prob) for t in traces])
    good = [t for t, lp in zip(traces, log_p, strict=True) if lp >= np.quantile(log_p, 0.9) - drop]
    if every_channel:
        return good
    channels = np.array([int(np.asarray(t.named_latents["channel"]).item()) for t in good])
    top = np.bincount(channels).argmax()
    return [t for t, c in zip(good, channels, strict=True) if c == top]


def mirror_photons(trace):
    """A copy of ``trace`` with the two photons of every neutral pion swapped.

    Each pi0 decays into two photons back to back in its rest frame (direction ``d`` and
    ``-d``); swapping them (``cos theta -> -cos theta``, ``phi -> phi + pi``) leaves the
    image and every prior density unchanged, so the mirrored trace is as probable as the
    original: an exact symmetry of the posterior that one MCMC chain never crosses.
    """
    import copy

    mirrored = copy.deepcopy(trace)
    sites = _photon_sites(mirrored)
    for cos_t, phi in zip(sites[::2], sites[1::2], strict=True):
        cos_t.value = -float(cos_t.value)
        phi.value = (float(phi.value) + math.pi) % (2.0 * math.pi)
    return mirrored


def fit_proposal(draws, epochs=25, seed=1, learning_rate=2e-3, batch_size=64, network=None,
                 interval="probit", flows="vector", stretches=0, patience=5):  # fmt: skip
    """An inference network fitted to posterior draws of one image (and their mirrors).

    The IC loss ``-log q(x | y)`` on the draws (:func:`rotalumis.nn.train_weighted` with
    equal weights: a tenth held out, the epoch with the lowest held-out loss kept), Adam
    with a cosine-annealed learning rate, minibatches of four shuffles built once. The
    held-out draws are drawn one by one, so they have near-copies in training (successive
    MCMC draws) and the kept epoch is nearly always the last: the network learns the
    chains' paths closely. With ``stretches=N``, a tenth of the stretches of ``N``
    consecutive draws (with their mirrors) is held out instead, training stops ``patience``
    epochs after the best held-out loss, and traces without photons get no (identical)
    mirror copy: a proposal that generalises beyond the chains. With 8 chains that was
    better on events 7 and 8 and worse on 2-4; with 32 (the docstring command) every event
    tried reached an ESS of 5% (README). The momentum gets a normalizing-flow head
    (``heads={"vector": "flow"}``): it proposes (px, py, pz) jointly, along the posterior's
    momentum/neutrino ridge, where the default mixture head proposes each component
    independently. Only the proposal learns from the draws: IC's weights
    ``p(x, y) / q(x | y)`` stay exact. With ``network`` (an earlier fit), a copy of it
    trains further instead of a new one. ``interval``: how the
    flow maps the momentum's prior box onto the real line (``"probit"`` keeps the proposal
    level at the box's edges, where the posterior often is; ``"logit"`` makes it vanish
    there, and the weights of traces near an edge blow up: see :mod:`rotalumis.nn.flow_head`).
    ``flows``: the sites with flow heads, ``"vector"`` (the momentum) or ``"*"`` (every
    continuous site: also the decay angles, the neutrino pair's and resonances' masses).
    """
    import copy

    import torch

    from rotalumis.data import TraceBatch
    from rotalumis.nn import BudgetConfig, InferenceNetwork, train_weighted

    draws = list(draws)
    groups = None
    if not stretches:
        draws += [mirror_photons(t) for t in draws]
    else:  # no copies of traces without photons; a mirror in its original's stretch
        size = max(1, min(stretches, len(draws) // 10))  # at least ten stretches
        groups = [i // size for i in range(len(draws))]
        pairs = [(t, g) for t, g in zip(draws, groups, strict=True) if _photon_sites(t)]
        draws += [mirror_photons(t) for t, _ in pairs]
        groups += [g for _, g in pairs]
    torch.manual_seed(seed)
    if network is None:
        heads = {flows: "flow"}  # "vector": the momentum
        first = TraceBatch.from_traces(draws[:64])  # the observation's shape (sites: later)
        network = InferenceNetwork.for_batch(
            first, embeddings={"image": "ff"}, heads=heads, flow_interval=interval
        )
    else:
        network = copy.deepcopy(network)
    config = BudgetConfig(
        max_epochs=epochs, patience=patience if stretches else epochs, batch_size=batch_size,
        learning_rate=learning_rate, seed=seed,
    )  # fmt: skip
    zeros = np.zeros(len(draws))
    train_weighted(network, draws, zeros, config, schedule="cosine", shuffles=4, groups=groups)
    return network


def _photon_sites(trace):
    """The draws of ``trace`` made by :func:`pi0_photons` (each photon pair's angles)."""
    return [m for m in trace.variables if m.kind == "sample" and "pi0_photons" in m.address]


def rejuvenate(image, network, draws, rounds, traces=1000, starts=32, moves=200, seed=1,
               on_round=None, keep=None, mixture=False, defensive_momentum=0.25,
               stretches=0):  # fmt: skip
    """Resample-move rounds: more draws where the IC weights put the posterior mass.

    Each round importance-samples ``traces`` with ``network``, resamples ``starts`` of them
    by their weights, runs a short RMH chain from each (``moves`` moves, one draw kept in 4)
    and trains the network further (:func:`fit_proposal`, 4 epochs at a lower rate) on the
    new draws and as many earlier ones. Resampling and RMH moves both leave the posterior
    invariant, so the new draws reach stretches of the ridge the first chains never visited.
    Returns the network and all the draws; with a list ``keep``, each round's network is
    appended to it (the proposals of :func:`infer_ic`'s mixture). With ``mixture`` (and
    ``keep``), each round importance-samples with the equal mixture of every network in
    ``keep`` so far, so its resampled starts also come from corners that only earlier
    networks cover.
    """
    rng = np.random.default_rng(seed)
    pool = list(draws)
    for k in range(rounds):
        proposal = list(keep) if mixture and keep else network
        post = infer_ic(image, proposal, traces, seed=seed + 100 + k, keep_traces=True,
                        defensive_momentum=defensive_momentum)  # fmt: skip
        log_w = np.asarray(post.log_weights, dtype=float)
        w = np.exp(log_w - log_w.max())
        new = []
        for j, i in enumerate(rng.choice(len(w), size=starts, p=w / w.sum())):
            chain = model.posterior(
                moves // 4, engine="rmh", observe={"image": image}, seed=seed + 1000 * k + j,
                burn_in=0, thin=4, scale=0.05, initial_trace=post.traces[i], keep_traces=True,
                progress=False,
            )  # fmt: skip
            new.extend(chain.traces)
        old = [pool[i] for i in rng.permutation(len(pool))[: len(new)]]
        network = fit_proposal(new + old, 4, seed + k, learning_rate=3e-4, network=network,
                               stretches=stretches)  # fmt: skip
        pool += new
        if keep is not None:
            keep.append(network)
        if on_round is not None:
            on_round(k, post.ess)
    return network, pool


def ensemble_member(image, draws, epochs, rounds, seed, interval="probit", mixture=True,
                    defensive_momentum=0.25, on_round=None, flows="vector",
                    stretches=0):  # fmt: skip
    """The networks of one fit of ``draws`` and its resample-move rounds (seeds from ``seed``).

    Members of different seeds fit the same draws from different initial weights and
    minibatch orders and run their rounds apart, so their proposals err in different places
    (the decay angles' narrow conditionals: README). In the mixture of all members' networks
    (``--ensemble``), a trace that one member proposes too rarely keeps ``q_mix >= a_k q_k``
    from a member that covers it, which bounds its weight; where no member proposes often
    enough, a new member's draws reveal it and the ESS falls (event 8 with 4 members: README).
    """
    networks = [fit_proposal(draws, epochs, seed, interval=interval, flows=flows,
                             stretches=stretches)]  # fmt: skip
    if rounds > 0:
        rejuvenate(image, networks[0], draws, rounds, seed=seed, keep=networks, mixture=mixture,
                   defensive_momentum=defensive_momentum, on_round=on_round,
                   stretches=stretches)  # fmt: skip
    return networks


def adapt_ic(image, network, rounds, traces, seed=1, on_round=None):
    """Adapt a copy of ``network`` to this image (adaptive IC: tempered IC importance
    samples; see :func:`rotalumis.infer.adaptive_ic`)."""
    from rotalumis.infer import adaptive_ic
    from rotalumis.nn import UnseenAddressWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnseenAddressWarning)  # layers for rare decay paths
        return adaptive_ic(
            model, {"image": image}, network, rounds=rounds, traces=traces, seed=seed,
            on_round=on_round,
        )  # fmt: skip


def infer_ic(image, network, num_traces, seed=1, progress=False, defensive=0.02, keep_traces=False,
             weights=None, defensive_momentum=0.25):  # fmt: skip
    """Inference-compilation posterior (importance sampling with the network's proposals).

    Each proposal of the channel keeps ``defensive`` of its prior, each of the momentum
    ``defensive_momentum`` of its prior's density (defensive importance sampling): the
    momentum's posterior fills a good part of the prior's box, and the fitted flow is far
    thinner than it where its training draws were sparse, which gave the heaviest weights.

    ``network`` may be a list (e.g. the fit's and every resample-move round's networks):
    the proposal is then their mixture (equal, or with mixing ``weights``), each trace
    weighted by ``p / q_mix`` with ``q_mix = sum_k a_k q_k``
    (:class:`rotalumis.core.MixtureProposal`).
    """
    from rotalumis.nn import UnseenAddressWarning

    with warnings.catch_warnings():
        # rare decay paths the network never saw fall back to the prior (counted in result.info)
        warnings.simplefilter("ignore", UnseenAddressWarning)
        return model.posterior(
            num_traces, engine="ic", observe={"image": image}, seed=seed, network=network,
            progress=progress, keep_traces=keep_traces,
            defensive={"cat": defensive, "momentum": defensive_momentum},
            **({"mixture_weights": weights} if weights is not None else {}),
        )  # fmt: skip


def pilot_weights(image, networks, traces=250, seed=5001, floor=0.05, defensive_momentum=0.25):
    """Mixing weights for :func:`infer_ic`'s mixture from a pilot run of each network.

    Each network importance-samples ``traces`` alone (seeds ``seed + k``, apart from the
    final runs'); its weight is its share of the pilot ESS, raised to at least ``floor``
    (then all renormalised), so a network that covers a corner the pilot missed still
    bounds the weights there. Fixed before the final run, the weights keep it exact.
    Returns the weights and the pilot ESS of each network.
    """
    ess = np.array([
        infer_ic(image, net, traces, seed=seed + k, defensive_momentum=defensive_momentum).ess
        for k, net in enumerate(networks)
    ])  # fmt: skip
    share = ess / ess.sum()
    weights = np.maximum(share, floor)
    return (weights / weights.sum()).tolist(), ess.tolist()


def plot_observed(out, p_true, channel_true, image):
    """Write tau_observed.png: the observed calorimeter image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].imshow(image.sum(axis=0), origin="lower", cmap="viridis")
    axes[0].set_title("energy summed over depth")
    axes[1].imshow(image.sum(axis=1), origin="lower", aspect="auto", cmap="viridis")
    axes[1].set_title("depth (rows) vs x")
    axes[2].bar(range(GRID[0]), image.sum(axis=(1, 2)))
    axes[2].set_title("energy per layer")
    fig.suptitle(f"observed: {CHANNELS[channel_true]}, p = {np.round(p_true, 2)} GeV")
    fig.tight_layout()
    fig.savefig(out / "tau_observed.png", dpi=110)
    plt.close(fig)


def plot_posterior(path, title, p_true, channel_true, posterior):
    """Histograms of the (weighted) posterior of the momentum and the channel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    momentum = np.asarray(posterior.get("momentum").to_numpy(), dtype=float)
    channels = np.asarray(posterior.get("channel").to_numpy(), dtype=int)
    w = np.asarray(posterior.get("channel").weights, dtype=float)
    w = w / w.sum()
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    for i, label in enumerate(["px", "py", "pz"]):
        axes[i].hist(momentum[:, i], bins=40, weights=w, color="tab:blue", alpha=0.8)
        axes[i].axvline(p_true[i], color="k", ls="--", label="truth")
        axes[i].set_title(f"posterior {label} (GeV)")
    axes[0].legend()
    freq = np.bincount(channels, weights=w, minlength=len(CHANNELS))
    colors = ["tab:orange" if k == channel_true else "tab:blue" for k in range(len(CHANNELS))]
    axes[3].bar(range(len(CHANNELS)), freq, color=colors)
    axes[3].set_xticks(range(len(CHANNELS)), CHANNELS, rotation=35, fontsize=8)
    axes[3].set_title("posterior channel (truth orange)")
    weighted = not np.allclose(w, w[0])  # importance weights (IC); MCMC samples are equal
    ess = f", ESS {posterior.ess:.0f}" if weighted else ""
    fig.suptitle(f"{title}: {len(channels)} samples{ess}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summarize(label, posterior):
    """Print the posterior mean momentum and channel probabilities."""
    w = np.asarray(posterior.get("channel").weights, dtype=float)
    w = w / w.sum()
    momentum = np.asarray(posterior.get("momentum").to_numpy(), dtype=float)
    channels = np.asarray(posterior.get("channel").to_numpy(), dtype=int)
    freq = np.bincount(channels, weights=w, minlength=len(CHANNELS))
    ess = f", ESS {posterior.ess:.0f}" if not np.allclose(w, w[0]) else ""
    print(f"{label}: mean momentum {np.round(w @ momentum, 3)} ({len(channels)} samples{ess})")
    print("  P(channel):", {k: round(float(f), 3) for k, f in zip(CHANNELS, freq, strict=True)})


def _shortest(x, w, level):
    """The shortest interval holding ``level`` of the weighted sample ``x``."""
    order = np.argsort(x)
    x, cdf = x[order], np.cumsum(w[order])
    before = cdf - w[order]  # mass below each start
    starts = np.flatnonzero(before <= cdf[-1] - level)  # intervals that can hold ``level``
    ends = np.minimum(np.searchsorted(cdf, before[starts] + level), len(x) - 1)
    k = int(np.argmin(x[ends] - x[starts]))
    return x[starts[k]], x[ends[k]]


def covers(posterior, p_true, channel_true, level=0.95):
    """Whether the shortest ``level`` credible interval of each momentum component holds
    the truth (shortest, not central: the prior of pz ends at 42 GeV, where this example's
    truth lies), and the posterior probability of the true channel."""
    w = np.asarray(posterior.get("channel").weights, dtype=float)
    w = w / w.sum()
    momentum = np.asarray(posterior.get("momentum").to_numpy(), dtype=float)
    inside = []
    for i in range(3):
        lo, hi = _shortest(momentum[:, i], w, level)
        inside.append(bool(lo <= p_true[i] <= hi))
    channels = np.asarray(posterior.get("channel").to_numpy(), dtype=int)
    return inside, float(w[channels == channel_true].sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/tau_decay"))
    parser.add_argument("--num-traces", type=int, default=20000, help="RMH samples per chain")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--ic-training-traces", type=int, default=50000, help="0: skip IC")
    parser.add_argument("--burn-in", type=int, help="RMH moves discarded per chain")
    parser.add_argument("--thin", type=int, default=5, help="RMH: keep one move in THIN")
    parser.add_argument(
        "--warm-epochs",
        type=int,
        default=30,
        help="epochs fitting a proposal to the RMH draws (0: none)",
    )
    parser.add_argument("--adapt-rounds", type=int, default=0)
    parser.add_argument("--adapt-traces", type=int, default=1000)
    parser.add_argument("--ic-traces", type=int, default=2000)
    parser.add_argument("--ic-repeats", type=int, default=3, help="final IC runs (seeds)")
    parser.add_argument("--workers", type=int, default=0, help="simulation processes")
    parser.add_argument("--network", type=Path, help="start from this trained network")
    parser.add_argument(
        "--proposal",
        type=Path,
        nargs="+",
        help="fitted proposal(s): the rounds start from the last",
    )
    for flag, text in (
        ("--mixture", "final IC: the mixture of every round's proposal (and the last one alone)"),
        ("--mixture-rounds", "resample-move rounds importance-sample with the mixture so far"),
        ("--every-channel", "fit the RMH draws of every channel in the posterior's bulk"),
    ):
        parser.add_argument(flag, action="store_true", help=text)
    for flag, options in (
        ("--defensive-momentum", dict(
            type=float, default=0.25,
            help="weight of the prior in every IC proposal of the momentum (0: the flow alone)")),
        ("--flow-interval", dict(
            choices=["probit", "logit"], default="probit",
            help="how the momentum's flow maps its prior box onto the real line")),
        ("--held-out-stretches", dict(
            type=int, default=0, metavar="N",
            help="fits hold out stretches of N successive draws, stop early (0: draw by draw)")),
        ("--flows", dict(
            choices=["vector", "*"], default="vector",
            help="sites with flow heads: the momentum, or every continuous site (the angles too)")),
        ("--pilot", dict(
            type=int, default=0,
            help="--mixture: weights from a pilot of this many traces per network (0: equal)")),
    ):  # fmt: skip
        parser.add_argument(flag, **options)
    parser.add_argument("--rejuvenate", type=int, default=0, help="resample-move rounds")
    parser.add_argument(
        "--ensemble", type=int, default=1,
        help="fits of the RMH draws (each with its rounds; seeds --seed + 100000 k): --mixture "
        "holds every member's networks",
    )  # fmt: skip
    parser.add_argument("--event", type=int, default=1, help="seed of the observed event")
    parser.add_argument("--seed", type=int, default=1, help="seed of the inference")
    args = parser.parse_args()
    if args.ensemble < 1:
        parser.error(f"--ensemble must be at least 1 (the number of fits), not {args.ensemble}")
    if args.ensemble > 1 and (args.proposal or args.warm_epochs <= 0 or args.num_traces <= 0):
        parser.error("--ensemble needs a fit of RMH draws (--num-traces, --warm-epochs > 0, "
                     "no --proposal)")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    p_true, channel_true, image = observed_event(args.event)
    dm = args.defensive_momentum
    np.save(args.out / "image.npy", image)
    print(f"truth: channel {CHANNELS[channel_true]}, momentum {np.round(p_true, 3)}")
    plot_observed(args.out, p_true, channel_true, image)
    if args.num_traces > 0:
        rmh = infer(
            image, args.num_traces, seed=args.seed, chains=args.chains, progress=None,
            burn_in=args.burn_in, thin=args.thin, keep_traces=args.warm_epochs > 0,
        )  # fmt: skip
        summarize("RMH", rmh)
        plot_posterior(args.out / "tau_rmh.png", "RMH", p_true, channel_true, rmh)
    fit = args.warm_epochs > 0 and args.num_traces > 0 and not args.proposal
    amortized_net = args.network is not None or args.ic_training_traces > 0
    if args.proposal or amortized_net or fit:
        import time

        from rotalumis.nn import InferenceNetwork

        start, draws = time.perf_counter(), []
        loaded = [InferenceNetwork.load(f) for f in args.proposal or []]
        if loaded:  # fitted by an earlier run: straight to the rounds
            network = loaded[-1]
        elif args.network is not None:
            network = InferenceNetwork.load(args.network)
        elif args.ic_training_traces > 0:
            network = train_ic(args.ic_training_traces, seed=args.seed, workers=args.workers)
            network.save(args.out / "tau_network.pt")
        trained = time.perf_counter() - start
        if not args.proposal and amortized_net:  # for comparison: the amortized network
            amortized = infer_ic(
                image, network, args.ic_traces, seed=args.seed, defensive_momentum=dm
            )
            summarize("IC, amortized network", amortized)
        start = time.perf_counter()
        if fit:  # --ic-training-traces 0: no amortized network, only this fit
            draws = fitted = posterior_draws(rmh.traces, every_channel=args.every_channel)
            network = fit_proposal(
                draws, args.warm_epochs, args.seed, interval=args.flow_interval, flows=args.flows,
                stretches=args.held_out_stretches,
            )  # fmt: skip
            print(f"  proposal fitted to {len(draws)} RMH draws (and their mirrors) in "
                  f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
        networks = [*loaded[:-1], network]  # the fit (or --proposal) and each round's
        if args.rejuvenate > 0:
            network, draws = rejuvenate(
                image, network, draws, args.rejuvenate, seed=args.seed, keep=networks,
                mixture=args.mixture_rounds,
                defensive_momentum=args.defensive_momentum, stretches=args.held_out_stretches,
                on_round=lambda k, ess: print(f"  resample-move round {k}: ESS {ess:.1f} of "
                                              "1000", flush=True),
            )  # fmt: skip
        for m in range(1, args.ensemble):  # independent fits of the same draws
            start_m = time.perf_counter()
            networks += ensemble_member(
                image, fitted, args.warm_epochs, args.rejuvenate,
                args.seed + 100000 * m, args.flow_interval, args.mixture_rounds, dm,
                on_round=lambda k, ess, m=m: print(f"  member {m}, resample-move round {k}: "
                                                   f"ESS {ess:.1f} of 1000", flush=True),
                flows=args.flows, stretches=args.held_out_stretches,
            )  # fmt: skip
            print(f"  ensemble member {m}: fit and rounds in {time.perf_counter() - start_m:.0f} s",
                  flush=True)  # fmt: skip
        if fit or args.rejuvenate > 0:
            for k, net in enumerate(networks):
                net.save(args.out / f"tau_network_{k}.pt")

        def show(k, info):
            print(f"  adaptation round {k}: ESS {info['ess']:.1f} of {args.adapt_traces}, "
                  f"tempering exponent {info['beta']:.3g}", flush=True)  # fmt: skip

        if args.adapt_rounds > 0:
            network = adapt_ic(
                image, network, args.adapt_rounds, args.adapt_traces, args.seed, show
            ).network
            networks.append(network)
        network.save(args.out / "tau_network_adapted.pt")
        final = networks if args.mixture else network
        what = f"mixture of {len(networks)} proposals" if args.mixture else "fitted proposal"
        adapted, start = time.perf_counter() - start, time.perf_counter()
        weights = None
        if args.mixture and args.pilot > 0:
            weights, pilot = pilot_weights(
                image, networks, args.pilot, seed=args.seed + 5000, defensive_momentum=dm
            )
            print(f"  pilot ({args.pilot} traces per network, "
                  f"{time.perf_counter() - start:.0f} s): ESS {np.round(pilot, 1).tolist()}, "
                  f"mixing weights {np.round(weights, 3).tolist()}", flush=True)  # fmt: skip
            what = f"pilot-weighted mixture of {len(networks)} proposals"
            start = time.perf_counter()
        ic = infer_ic(image, final, args.ic_traces, seed=args.seed + 1000, weights=weights,
                      defensive_momentum=dm)  # fmt: skip
        print(f"IC: training {trained:.0f} s, adaptation {adapted:.0f} s, final IC "
              f"{time.perf_counter() - start:.0f} s (RMH before it: "
              f"{len(rmh) if args.num_traces > 0 else 0} draws kept)")  # fmt: skip
        summarize(f"IC, {what}", ic)
        inside, p_channel = covers(ic, p_true, channel_true)
        print(f"  95% intervals of px, py, pz hold the truth: {inside}; "
              f"P(true channel) = {p_channel:.3f}")  # fmt: skip
        plot_posterior(args.out / "tau_ic.png", f"IC ({what})", p_true, channel_true, ic)
        for k in range(1, args.ic_repeats):  # the ESS varies between runs: heavy-tailed weights
            again = infer_ic(image, final, args.ic_traces, seed=args.seed + 1000 + k,
                             weights=weights, defensive_momentum=dm)  # fmt: skip
            inside, p_channel = covers(again, p_true, channel_true)
            print(f"  again, seed {args.seed + 1000 + k}: ESS {again.ess:.1f} of "
                  f"{args.ic_traces}, intervals hold the truth: {inside}, P(true channel) = "
                  f"{p_channel:.3f}")  # fmt: skip
        for k in range(args.ic_repeats if args.mixture else 0):  # the same seeds, last alone
            alone = infer_ic(image, network, args.ic_traces, seed=args.seed + 1000 + k,
                             defensive_momentum=dm)  # fmt: skip
            inside, p_channel = covers(alone, p_true, channel_true)
            print(f"  last proposal alone, seed {args.seed + 1000 + k}: ESS {alone.ess:.1f} "
                  f"of {args.ic_traces}, intervals hold the truth: {inside}, P(true channel) "
                  f"= {p_channel:.3f}")  # fmt: skip
        for k in range(args.ic_repeats if weights is not None else 0):  # the equal mixture
            equal = infer_ic(image, networks, args.ic_traces, seed=args.seed + 1000 + k,
                             defensive_momentum=dm)  # fmt: skip
            inside, p_channel = covers(equal, p_true, channel_true)
            print(f"  equal mixture, seed {args.seed + 1000 + k}: ESS {equal.ess:.1f} "
                  f"of {args.ic_traces}, intervals hold the truth: {inside}, P(true channel) "
                  f"= {p_channel:.3f}")  # fmt: skip
    print(f"plots written to {args.out}/")


if __name__ == "__main__":
    # Run as the module ``tau_decay``, not ``__main__``: addresses name the simulator's
    # module, and the networks saved here must match the model ``import tau_decay`` sees.
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import tau_decay

    tau_decay.main()

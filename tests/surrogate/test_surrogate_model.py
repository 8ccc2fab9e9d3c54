"""The surrogate as a model: addresses, names, seeds, persistence, fallbacks (fast tests).

Small, short trainings: these tests check what must hold whatever the training quality;
tests/surrogate/test_surrogate_fidelity.py checks the quality (slow).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from rotalumis.core import (
    RNG,
    DatasetError,
    Model,
    ModelError,
    Normal,
    TraceHandler,
    Uniform,
    observe,
    sample,
)
from rotalumis.data import TraceDataset, generate_dataset
from rotalumis.models import Branching
from rotalumis.nn import InferenceNetwork, NetworkMismatchWarning, TrainingConfig, train_network
from rotalumis.surrogate import (
    LearnedDistribution,
    SurrogateConfig,
    SurrogateModel,
    SurrogateNetwork,
    SurrogateTraining,
    simulate_steps,
    train_surrogate,
)


class Rare(Model):
    """A uniform, a rare extra choice, an observation."""

    def forward(self) -> float:
        u = sample(Uniform(0.0, 1.0), name="u")
        if u < 0.05:
            sample(Normal(0.0, 1.0), name="rare")
        observe(Normal(u, 0.1), name="y")
        return float(u)


SMALL = SurrogateConfig(lstm_dim=32, address_dim=8, value_dim=8)


@pytest.fixture(scope="module")
def branching() -> SurrogateModel:
    trained = train_surrogate(Branching(), SMALL, SurrogateTraining(num_traces=1000, epochs=1))
    return trained.model


def _addresses(model: Model, n: int, seed: int) -> list[list[tuple[str, str, str | None]]]:
    return [[(s.address, s.kind, s.name) for s in seq] for seq in simulate_steps(model, n, seed)]


def test_surrogate_traces_use_the_simulators_addresses_names_and_observe_sites(
    branching: SurrogateModel,
) -> None:
    known = {a for seq in _addresses(Branching(), 500, 1) for a in seq}
    made = _addresses(branching, 200, 2)
    assert all(site in known for seq in made for site in seq)
    assert all(seq[-1] == ("forward:30__Normal__1", "observe", "obs") for seq in made)
    assert branching.imitates == "Branching"
    assert branching.stats.fallbacks == 0


def test_learned_distributions_report_the_simulators_kind(branching: SurrogateModel) -> None:
    tracer = TraceHandler()
    with tracer:
        branching.execute(RNG(3))
    dists = [v.distribution for v in tracer.trace.variables]
    assert dists[0].name == "Poisson"
    assert all(isinstance(d, LearnedDistribution) for d in dists)
    assert dists[0].params == {"rate": pytest.approx(3.0)}  # the reference parameters


class Centred(Model):
    """A ``Normal`` prior whose values' sample mean differs from its location."""

    def forward(self) -> float:
        mu = sample(Normal(1.0, 5.0**0.5), name="mu")
        observe(Normal(mu, 1.0), name="y")
        return float(mu)


def test_normal_sites_report_the_simulators_prior_not_the_values_spread(tmp_path: Path) -> None:
    """The heads standardise a ``Normal`` site by its values' mean and sd, but what its
    distributions report (and an inference network reads) is the simulator's prior: an
    inference network trained on the surrogate's traces must see the same parameters as on
    the simulator's. Files saved before the prior was kept report the reference."""
    trained = train_surrogate(Centred(), SMALL, SurrogateTraining(num_traces=256, epochs=1))
    tracer = TraceHandler()
    with tracer:
        trained.model.execute(RNG(2))
    mu = tracer.trace.variables[0].distribution
    assert mu.params == {"mean": pytest.approx(1.0), "stddev": pytest.approx(5**0.5)}
    spec = trained.network.specs[0]
    assert spec.reference[0] != pytest.approx(1.0, abs=1e-6)  # the values' mean
    path = trained.network.save(tmp_path / "s.pt")
    old = replace(spec, prior=())
    assert type(spec).from_dict({k: v for k, v in spec.to_dict().items() if k != "prior"}) == old
    assert SurrogateModel.load(path).network.specs[0] == spec


def test_same_seed_same_traces(branching: SurrogateModel) -> None:
    a = simulate_steps(branching, 50, 7)
    assert a == simulate_steps(branching, 50, 7)
    assert a != simulate_steps(branching, 50, 8)


def test_save_and_load_give_the_same_surrogate(branching: SurrogateModel, tmp_path: Path) -> None:
    path = branching.network.save(tmp_path / "s.pt")
    loaded = SurrogateModel.load(path)
    assert loaded.imitates == "Branching"
    assert simulate_steps(loaded, 50, 4) == simulate_steps(branching, 50, 4)
    payload = torch.load(path, weights_only=True)  # no pickled code
    assert payload["format"] == "rotalumis-surrogate"


def test_loading_a_bad_file_names_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(DatasetError, match=r"bad\.pt"):
        SurrogateNetwork.load(bad)
    other = tmp_path / "other.pt"
    torch.save({"format": "something else"}, other)
    with pytest.raises(DatasetError, match="not a rotalumis surrogate"):
        SurrogateNetwork.load(other)
    with pytest.raises(DatasetError, match="not found"):
        SurrogateNetwork.load(tmp_path / "missing.pt")


def test_an_unknown_program_falls_back_to_the_simulator() -> None:
    # min_visits beyond the training budget: every address stays unknown
    trained = train_surrogate(
        Rare(),
        SurrogateConfig(lstm_dim=16, min_visits=10**9),
        SurrogateTraining(num_traces=300, epochs=2),
    )
    surrogate = trained.model
    seqs = simulate_steps(surrogate, 100, 0)
    assert surrogate.stats.fallbacks == surrogate.stats.executions == 100
    assert seqs == simulate_steps(Rare(), 100, 0)  # the simulator's own traces
    no_simulator = SurrogateModel(trained.network)
    with pytest.raises(ModelError, match="no simulator to fall back on"):
        simulate_steps(no_simulator, 1, 0)


def test_a_fallback_keeps_the_surrogates_choices_and_continues_in_the_simulator() -> None:
    # max_length=1: after its first choice the surrogate hands over to the simulator
    trained = train_surrogate(
        Rare(),
        SurrogateConfig(lstm_dim=16, max_length=1),
        SurrogateTraining(num_traces=300, epochs=5),
    )
    surrogate = trained.model
    tracer = TraceHandler()
    rng = RNG(5)
    with tracer, surrogate.executions(rng) as execute:
        traces = []
        for _ in range(40):
            trace = tracer.reset()
            execute()
            traces.append(trace)
    assert surrogate.stats.fallbacks == 40
    for trace in traces:
        addresses = [v.address for v in trace.variables]
        assert len(addresses) == len(set(addresses))  # no site recorded twice
        assert all(a.endswith("__1") for a in addresses)  # instance counters start over
        u = trace.variables[0]
        assert u.name == "u" and isinstance(u.distribution, LearnedDistribution)
        assert [v.name for v in trace.variables][-1] == "y"
        assert ("rare" in trace) == (u.value < 0.05)  # the simulator saw the surrogate's u


def test_training_from_a_dataset(tmp_path: Path) -> None:
    generate_dataset(Branching(), tmp_path / "ds", 300, seed=0, traces_per_shard=100)
    trained = train_surrogate(tmp_path / "ds", SMALL, SurrogateTraining(epochs=2))
    assert trained.traces == 300 and trained.network.model_name == "Branching"
    assert "forward:26__Poisson__1" in trained.network.addresses
    # observations come by name from a dataset (the schema stores no observe address)
    assert "obs__Learned__1" in trained.network.addresses
    seq = simulate_steps(SurrogateModel(trained.network), 5, 0)
    assert all(s.kind != "observe" or s.name == "obs" for q in seq for s in q)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"transitions": "greedy"}, "transitions"),
        ({"lstm_dim": 0}, "lstm_dim"),
        ({"count_prior_weight": 1.0}, "count_prior_weight"),
        ({"sites": ("",)}, "non-empty"),
    ],
)
def test_bad_configuration_is_named(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SurrogateConfig(**kwargs)  # type: ignore[arg-type]


def test_training_is_reproducible_from_its_seed() -> None:
    training = SurrogateTraining(num_traces=100, seed=3)
    a = train_surrogate(Rare(), SMALL, training).network.state_dict()
    torch.manual_seed(123)  # the global stream does not matter
    b = train_surrogate(Rare(), SMALL, training).network.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_training_budget_is_named() -> None:
    with pytest.raises(ValueError, match="num_traces"):
        SurrogateTraining(num_traces=0)
    with pytest.raises(ValueError, match="validation_traces"):
        SurrogateTraining(validation_traces=-1)


def test_held_out_traces_pick_the_best_epoch() -> None:
    """The held-out loss is recorded per epoch and the best epoch's weights are returned."""
    training = SurrogateTraining(num_traces=300, epochs=4, seed=2, validation_traces=200)
    trained = train_surrogate(Branching(), SMALL, training)
    assert [e for e, _ in trained.validation] == [1, 2, 3, 4]
    best_epoch, best = min(trained.validation, key=lambda e: e[1])
    assert trained.best_epoch == best_epoch and trained.traces == 500
    held = simulate_steps(Branching(), 200, training.seed + 7919)  # the held-out traces
    with torch.no_grad():
        assert float(trained.network.loss(held)) == pytest.approx(best, rel=1e-5)
    # 20 training traces, 20 epochs: it overfits (held-out loss 10.2 at epoch 11, 11.9 at
    # the end), and the weights of the best epoch are the ones returned
    few = replace(training, num_traces=20, epochs=20, batch_size=8, learning_rate=3e-2)
    overfit = train_surrogate(Branching(), SMALL, few)
    with torch.no_grad():
        kept = float(overfit.network.loss(held))
    assert overfit.best_epoch < 20 and kept < overfit.validation[-1][1] - 0.5
    assert kept == pytest.approx(min(v for _, v in overfit.validation), rel=1e-5)


def test_held_out_traces_of_a_dataset_are_its_last(tmp_path: Path) -> None:
    generate_dataset(Branching(), tmp_path / "ds", 300, seed=0, traces_per_shard=100)
    trained = train_surrogate(
        tmp_path / "ds", SMALL, SurrogateTraining(epochs=2, validation_traces=100)
    )
    assert trained.traces == 300 and trained.network.traces_seen == 200
    assert len(trained.validation) == 2
    with pytest.raises(ValueError, match="validation_traces=300 leaves no training"):
        train_surrogate(tmp_path / "ds", SMALL, SurrogateTraining(validation_traces=300))


def test_a_surrogate_of_a_remote_simulator_runs_without_it(tmp_path: Path) -> None:
    """Train from a PPX simulator's traces (in-memory transport), then run with it gone."""
    import threading

    from rotalumis.remote.client import RemoteModel
    from rotalumis.remote.server import PPXServer
    from rotalumis.remote.transport import memory_pair

    client, server_transport = memory_pair(timeout=10.0)
    server = PPXServer(Branching(), server_transport, seed=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        remote = RemoteModel(transport=client, name="Branching")
        trained = train_surrogate(
            remote, SMALL, SurrogateTraining(num_traces=200, epochs=3, learning_rate=1e-2)
        )
        expected = {a for seq in _addresses(remote, 100, 1) for a in seq}
    finally:
        server.stop()
        thread.join(5)
    path = trained.network.save(tmp_path / "remote.pt")
    alone = SurrogateModel.load(path)  # no simulator: the server is gone
    assert alone.imitates == "Branching"
    made = _addresses(alone, 50, 2)
    assert all(site in expected for seq in made for site in seq)


def test_a_network_trained_on_surrogate_traces_records_the_imitated_model(
    branching: SurrogateModel, tmp_path: Path
) -> None:
    """Online (the surrogate as the model) and offline (a dataset written by it): the network
    is for Branching (no mismatch warning on the simulator; warnings are errors here) and
    says it was trained on the surrogate."""
    config = TrainingConfig(num_traces=64, batch_size=16, valid_size=0, seed=0)
    online = train_network(model=branching, config=config).network
    data = generate_dataset(branching, tmp_path / "data", 64, seed=1, traces_per_shard=64)
    offline = train_network(dataset=TraceDataset(data), config=config).network
    for net in (online, offline):
        assert net.model_name == "Branching"
        assert net.trained_on == "Surrogate(Branching)"
        loaded = InferenceNetwork.load(net.save(tmp_path / "net.pt"))
        assert (loaded.model_name, loaded.trained_on) == ("Branching", "Surrogate(Branching)")
        with warnings.catch_warnings(record=True) as caught:  # a short training: unseen
            warnings.simplefilter("always")  # addresses are drawn from the prior, with a warning
            Branching().posterior(20, engine="ic", observe={"obs": 2.0}, seed=0, network=loaded)
        assert not [w for w in caught if issubclass(w.category, NetworkMismatchWarning)]
    plain = train_network(model=Branching(), config=config).network
    assert (plain.model_name, plain.trained_on) == ("Branching", None)

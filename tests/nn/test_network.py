"""The inference network: address layers, embeddings, training, checkpoints, save/load."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from rotalumis.core import (
    Categorical,
    DatasetError,
    LogNormal,
    Model,
    Normal,
    Poisson,
    Uniform,
    observe,
    sample,
)
from rotalumis.data import TraceDataset
from rotalumis.models import Branching, GaussianMixture, HiddenMarkovModel, UnknownMean
from rotalumis.nn import (
    InferenceNetwork,
    NetworkMismatchWarning,
    NetworkProposal,
    TrainingConfig,
    UnseenAddressWarning,
    simulate_batch,
    train_network,
)

torch.set_num_threads(1)
SMALL = {"lstm_dim": 32, "observation_dim": 16, "address_dim": 8, "value_dim": 4}


class Killed(Exception):
    """Stands in for the process being killed."""


def _config(n: int, **kw) -> TrainingConfig:
    return TrainingConfig(num_traces=n, batch_size=32, valid_size=64, valid_every=256, **kw)


def test_layers_are_created_when_an_address_is_first_seen() -> None:
    model = Branching(rate=1.0)
    batch = simulate_batch(model, 8, seed=0)
    net = InferenceNetwork.for_batch(batch, **SMALL)
    assert net.addresses == []
    created = net.add_sites(batch)
    assert len(created) == len(net.addresses) == len(batch.groups)
    assert net.add_sites(batch) == []  # nothing new the second time
    kinds = {s.distribution: s.head for s in net.specs}
    assert kinds["Poisson"] == "count" and kinds["Bernoulli"] == "cat"


def test_new_addresses_during_training_are_trained() -> None:
    # Poisson(1): traces with many Bernoulli choices are rare, so new addresses keep appearing
    result = train_network(
        model=Branching(rate=1.0), config=_config(1024, seed=1), network_sizes=SMALL
    )
    net = result.network
    first_batch = simulate_batch(Branching(rate=1.0), 32, seed=0)
    late = [a for a in net.addresses if a not in {g.address for g in first_batch.groups}]
    assert late, "expected addresses that first appeared after the first batch"
    fresh = InferenceNetwork(net.config, tuple(net.specs))
    torch.manual_seed(0)
    trained = dict(net.named_parameters())
    for name, p in fresh.named_parameters():
        if name.startswith(f"sites.site{net.addresses.index(late[0])}.head"):
            assert not torch.equal(p, trained[name])  # moved away from any fresh init


def test_training_reduces_the_loss_and_validates() -> None:
    result = train_network(
        model=GaussianMixture(), config=_config(2048, seed=2), network_sizes=SMALL
    )
    assert len(result.valid_loss) >= 4
    assert result.valid_loss[-1][1] < result.valid_loss[0][1]
    assert result.traces == 2048 and result.traces_per_second > 0


def test_checkpoint_resume_after_kill_matches_uninterrupted_run(tmp_path: Path) -> None:
    cfg = _config(1024, seed=3, checkpoint_every=256, schedule="cosine")
    full = train_network(model=Branching(), config=cfg, network_sizes=SMALL)

    def kill(traces: int, total: int, loss: float) -> None:
        if traces == 576:
            raise Killed

    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(Killed):
        train_network(
            model=Branching(), config=cfg, checkpoint=ckpt, network_sizes=SMALL, on_step=kill
        )
    saved = torch.load(ckpt, weights_only=True)
    assert '"traces": 512' in saved["progress"]
    resumed = train_network(model=Branching(), config=cfg, checkpoint=ckpt, network_sizes=SMALL)
    assert resumed.traces == 1024 and resumed.steps == full.steps
    # the learning curve survives the kill: the history before the checkpoint is kept
    assert [t for t, _ in resumed.loss] == [t for t, _ in full.loss]
    assert [v for _, v in resumed.loss] == pytest.approx([v for _, v in full.loss], rel=1e-4)
    a, b = full.network.state_dict(), resumed.network.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_offline_training_from_a_dataset(tmp_path: Path) -> None:
    ds = TraceDataset.generate(UnknownMean(), tmp_path / "d", 1200, seed=1, traces_per_shard=300)
    train, valid = ds.split(1)
    result = train_network(
        dataset=train, valid_dataset=valid, config=_config(1800, seed=4), network_sizes=SMALL
    )
    assert result.traces >= 1800  # two epochs over 900 traces
    assert result.valid_loss[-1][1] < result.valid_loss[0][1]


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    model = GaussianMixture()
    net = train_network(model=model, config=_config(256), network_sizes=SMALL).network
    path = net.save(tmp_path / "net.pt")
    payload = torch.load(path, weights_only=True)  # no arbitrary unpickling
    assert payload["format"] == "rotalumis-ic-network" and isinstance(payload["config"], str)
    loaded = InferenceNetwork.load(path)
    assert loaded.addresses == net.addresses and loaded.config == net.config
    for k, v in net.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    posts = [
        model.posterior(50, engine="ic", observe={"obs": 1.0}, seed=0, network=n)
        for n in (net, loaded, path)
    ]
    assert posts[0].log_weights.tolist() == posts[1].log_weights.tolist()
    assert posts[0].log_weights.tolist() == posts[2].log_weights.tolist()


def test_loading_garbage_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a network")
    with pytest.raises(DatasetError, match=r"bad\.pt"):
        InferenceNetwork.load(bad)
    with pytest.raises(DatasetError, match="not found"):
        InferenceNetwork.load(tmp_path / "missing.pt")


class ImageModel(Model):
    """A latent brightness seen through a noisy 2D image and a 3D volume."""

    def forward(self) -> None:
        b = sample(Uniform(0.0, 2.0), name="b")
        observe(Normal(b * torch.ones(8, 8), 0.5), name="image")
        observe(Normal(b * torch.ones(4, 4, 4), 0.5), name="volume")


def test_convolutional_embeddings() -> None:
    result = train_network(
        model=ImageModel(),
        config=_config(256),
        embeddings={"image": "cnn2d", "volume": {"embedding": "cnn3d", "dim": 8}},
        network_sizes=SMALL,
    )
    kinds = {s.name: s.embedding for s in result.network.config.observations}
    assert kinds == {"image": "cnn2d", "volume": "cnn3d"}
    obs = {"image": torch.ones(8, 8), "volume": torch.ones(4, 4, 4)}
    post = ImageModel().posterior(20, engine="ic", observe=obs, seed=0, network=result.network)
    assert len(post) == 20


def test_missing_observation_is_reported() -> None:
    net = train_network(model=UnknownMean(), config=_config(64), network_sizes=SMALL).network
    with pytest.raises(KeyError, match="obs1"):
        NetworkProposal(net, {"obs0": 1.0})


def test_bad_embedding_name_is_reported() -> None:
    with pytest.raises(KeyError, match="nope"):
        train_network(model=UnknownMean(), config=_config(64), embeddings={"nope": "cnn2d"})


class VectorModel(Model):
    """Vector-valued latents of each continuous head kind, a count and a category."""

    def forward(self) -> None:
        loc = sample(Normal(torch.zeros(3), torch.ones(3)), name="loc")
        frac = sample(Uniform(torch.zeros(2), torch.ones(2)), name="frac")
        rate = sample(LogNormal(torch.zeros(2), torch.ones(2)), name="rate")
        k = sample(Poisson(2.0), name="k")
        c = sample(Categorical([0.2, 0.3, 0.5]), name="c")
        mean = loc.sum() + frac.sum() + rate.sum() + k + c
        observe(Normal(mean * torch.ones(4, 4), 1.0), name="image")
        observe(Normal(mean, 1.0), name="y")


# Every model whose training touches a different code path of the network.
DEVICE_MODELS = [
    UnknownMean,
    GaussianMixture,
    Branching,
    HiddenMarkovModel,
    VectorModel,
    ImageModel,
]


@pytest.mark.parametrize("model_cls", DEVICE_MODELS, ids=lambda m: m.__name__)
def test_training_step_keeps_every_tensor_on_the_network_device(model_cls) -> None:
    # Without a GPU: on the "meta" device any tensor created on the CPU and mixed into the
    # computation raises, which is what would fail on CUDA.
    batch = simulate_batch(model_cls(), 16, seed=0)
    embeddings = {"image": "cnn2d"} if model_cls in (VectorModel, ImageModel) else None
    net = InferenceNetwork.for_batch(batch, embeddings, **SMALL)
    net.add_sites(batch)
    net.observation_encoder.fit(batch.observations)
    net.to("meta")
    loss = net.loss(batch)
    assert loss.device.type == "meta"
    loss.backward()  # type: ignore[no-untyped-call]
    assert all(p.grad is None or p.grad.device.type == "meta" for p in net.parameters())


def test_vector_valued_latents() -> None:
    result = train_network(
        model=VectorModel(), config=_config(256), embeddings={"image": "cnn2d"}, network_sizes=SMALL
    )
    obs = {"image": torch.full((4, 4), 5.0), "y": 5.0}
    post = VectorModel().posterior(20, engine="ic", observe=obs, seed=0, network=result.network)
    assert post.info.prior_fallback_fraction == 0.0
    assert tuple(post.get("loc")[0].shape) == (3,)
    assert np.isfinite(np.asarray(post.log_weights, dtype=float)).all()


DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
        ],
    ),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model_cls", DEVICE_MODELS, ids=lambda m: m.__name__)
def test_training_resume_and_inference_on_a_device(model_cls, device: str, tmp_path: Path) -> None:
    model = model_cls()
    embeddings = {"image": "cnn2d"} if model_cls in (VectorModel, ImageModel) else None
    ckpt = tmp_path / "ckpt.pt"
    result = train_network(
        model=model,
        config=_config(128, checkpoint_every=64),
        device=device,
        embeddings=embeddings,
        network_sizes=SMALL,
        checkpoint=ckpt,
    )
    assert next(result.network.parameters()).device.type == device
    # resume from the checkpoint on the same device (the optimizer state moves with it),
    # simulating in a worker process this time
    more = train_network(
        model=model,
        config=_config(192, checkpoint_every=64),
        device=device,
        checkpoint=ckpt,
        workers=1,
    )
    assert more.traces == 192 and next(more.network.parameters()).device.type == device
    batch = simulate_batch(model, 1, seed=5)
    obs = {name: values[0] for name, values in batch.observations.items()}
    with warnings.catch_warnings():  # short training: Branching meets unseen addresses
        warnings.simplefilter("ignore", UnseenAddressWarning)
        post = model.posterior(20, engine="ic", observe=obs, seed=0, network=more.network)
    assert len(post) == 20 and post.info.prior_fallback_fraction < 1.0
    assert np.isfinite(np.asarray(post.log_weights, dtype=float)).any()
    saved = tmp_path / "net.pt"
    more.network.save(saved)
    loaded = InferenceNetwork.load(saved, device=device)
    assert next(loaded.parameters()).device.type == device


def test_long_loss_histories_are_thinned(monkeypatch: pytest.MonkeyPatch) -> None:
    from rotalumis.nn.training import _progress

    monkeypatch.setattr(_progress, "MAX_HISTORY", 8)
    progress = _progress.Progress()
    for step in range(1, 22):
        progress.traces = 10 * step
        progress.add_loss(10 * step, float(step))
    # 8 single steps -> 4 means of 2; 8 more -> 4 means of 4; steps 17-20 -> 1 mean of 4
    assert progress.loss == [(40, 2.5), (80, 6.5), (120, 10.5), (160, 14.5), (200, 18.5)]
    assert progress.loss_stride == 4
    assert progress.loss_history()[-1] == (210, 21.0)  # step 21, not yet a full point
    restored = _progress.Progress(progress.to_dict())
    assert restored.loss == progress.loss and restored.loss_history() == progress.loss_history()


class _Version1(Model):
    """A model before an edit of its file."""

    def __init__(self) -> None:
        super().__init__()
        self.name = "Edited"

    def forward(self) -> None:
        mu = sample(Normal(0.0, 1.0), name="mu")
        observe(Normal(mu, 1.0), name="y")


class _Version2(_Version1):
    """The same model after an edit moved its draw to another line (new addresses)."""

    def forward(self) -> None:

        mu = sample(Normal(0.0, 1.0), name="mu")
        observe(Normal(mu, 1.0), name="y")


def test_a_network_that_knows_none_of_the_models_addresses_says_so() -> None:
    """Addresses name source lines: a network trained before the model's file was edited
    proposes nothing, and IC is then prior importance sampling; a warning says so (one not
    silenced with the per-address UnseenAddressWarning)."""
    net = train_network(model=_Version1(), config=_config(64), network_sizes=SMALL).network
    with warnings.catch_warnings():
        warnings.simplefilter("error", NetworkMismatchWarning)
        warnings.simplefilter("ignore", UnseenAddressWarning)
        _Version1().posterior(5, engine="ic", observe={"y": 1.0}, network=net, progress=False)
    with (
        warnings.catch_warnings(),
        pytest.warns(NetworkMismatchWarning, match=r"proposed none of this model's 5 random"),
    ):
        warnings.simplefilter("ignore", UnseenAddressWarning)
        _Version2().posterior(5, engine="ic", observe={"y": 1.0}, network=net, progress=False)


def test_network_records_its_model_and_warns_on_another(tmp_path: Path) -> None:
    net = train_network(model=UnknownMean(), config=_config(64), network_sizes=SMALL).network
    assert net.model_name == "UnknownMean"
    net.save(tmp_path / "um.pt")
    loaded = InferenceNetwork.load(tmp_path / "um.pt")
    assert loaded.model_name == "UnknownMean"
    with pytest.raises(KeyError, match=r"trained on model 'UnknownMean'.*obs0"):
        NetworkProposal(loaded, {"obs": 1.0})
    with (
        pytest.warns(NetworkMismatchWarning, match="trained on model 'UnknownMean', not 'Gau"),
        warnings.catch_warnings(),
        pytest.raises(KeyError, match="never observes obs0"),
    ):
        warnings.simplefilter("ignore", UnseenAddressWarning)
        GaussianMixture().posterior(
            5, engine="ic", observe={"obs": 1.0, "obs0": 1.0, "obs1": 2.0}, network=loaded
        )
    ds = TraceDataset.generate(Branching(), tmp_path / "d", 64, seed=1, traces_per_shard=32)
    offline = train_network(dataset=ds, config=_config(64), network_sizes=SMALL).network
    assert offline.model_name == "Branching"

"""``rotalumis train --dataset DIR`` without ``-n``: epochs until the validation loss stops
improving (:func:`rotalumis.nn.train_on_dataset`), the best epoch's network kept."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["BudgetOptions", "train_until_stopped"]


class BudgetOptions(NamedTuple):
    """The command-line options of fixed-budget training (``None``: the library default)."""

    max_epochs: int
    patience: int
    batch_size: int | None
    learning_rate: float | None
    seed: int
    fresh: bool = False
    distributed: Any = None  # a rotalumis.nn.DistributedConfig (torchrun/srun)
    in_memory: bool = False  # decode the dataset once (BudgetConfig.in_memory)


def train_until_stopped(
    dataset: Any,
    valid: Any,
    out: Path,
    checkpoint: Path | None,
    device: str,
    embeddings: Mapping[str, str],
    sizes: Mapping[str, Any],
    options: BudgetOptions,
    on_step: Callable[[int, int, float], None],
) -> tuple[Any, str]:
    """Train on ``dataset`` with early stopping; return the result and a note for the summary."""
    from rotalumis.nn import BudgetConfig, train_on_dataset

    fields: dict[str, Any] = {
        "max_epochs": options.max_epochs,
        "patience": options.patience,
        "seed": options.seed,
        "in_memory": options.in_memory,
    }
    if options.batch_size is not None:
        fields["batch_size"] = options.batch_size
    if options.learning_rate is not None:
        fields["learning_rate"] = options.learning_rate
    result = train_on_dataset(
        dataset,
        valid_dataset=valid,
        config=BudgetConfig(**fields),
        checkpoint=checkpoint if checkpoint is not None else out.with_name(out.name + ".ckpt"),
        device=device,
        embeddings=embeddings,
        network_sizes=sizes,
        on_step=on_step,
        fresh=options.fresh,
        distributed=options.distributed,
    )
    per_epoch = len(dataset)
    epochs = result.traces // per_epoch
    best_traces, best_loss = result.best_valid_loss or (0, float("nan"))
    why = (
        f"stopped after {epochs} epochs, no better validation loss for {options.patience}"
        if result.stopped_early
        else f"{epochs} epochs (--max-epochs)"
    )
    note = f"; {why}; kept epoch {best_traces // per_epoch} (validation loss {best_loss:.4f})"
    return result, note

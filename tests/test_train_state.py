"""A resume state is swapped in whole: a kill mid-save never leaves a mix or half a file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from robot_learning.train import state as train_state
from robot_learning.train.state import has_train_state, load_train_state, save_train_state


def trained_pair(seed: int) -> tuple[torch.nn.Module, torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model, ema = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(8, 4)).square().mean().backward()
    optimizer.step()
    return model, ema, optimizer


def save(out: Path, seed: int, step: int) -> torch.nn.Module:
    model, ema, optimizer = trained_pair(seed)
    save_train_state(out, model, ema, optimizer, {"step": step}, np.random.default_rng(seed))
    return model


def restore(out: Path) -> tuple[dict[str, object], torch.nn.Module]:
    model, ema, optimizer = trained_pair(99)
    info = load_train_state(out, model, ema, optimizer, np.random.default_rng(0))
    return info, model


def test_a_save_killed_half_way_leaves_the_previous_state_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = save(tmp_path, seed=1, step=10)
    real_save_file = safetensors.torch.save_file
    written: list[str] = []

    def killed_after_two_files(tensors: dict[str, torch.Tensor], path: str) -> None:
        if len(written) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the third file is written
        written.append(path)
        real_save_file(tensors, path)

    monkeypatch.setattr(train_state, "save_file", killed_after_two_files)
    with pytest.raises(KeyboardInterrupt):
        save(tmp_path, seed=2, step=20)
    monkeypatch.setattr(train_state, "save_file", real_save_file)

    assert len(written) == 2  # the new model and EMA files were written, but not in place
    info, model = restore(tmp_path)
    assert info["step"] == 10
    torch.testing.assert_close(model.state_dict(), first.state_dict())

    # the next save clears the half-written staging folder and replaces the state
    third = save(tmp_path, seed=3, step=30)
    info, model = restore(tmp_path)
    assert info["step"] == 30
    torch.testing.assert_close(model.state_dict(), third.state_dict())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train_state"]


def test_a_kill_between_the_renames_keeps_the_previous_state(tmp_path: Path) -> None:
    first = save(tmp_path, seed=1, step=10)
    # the moment after the old state was moved aside and before the new one took its place
    (tmp_path / "train_state").rename(tmp_path / "train_state.previous")
    assert has_train_state(tmp_path)
    info, model = restore(tmp_path)
    assert info["step"] == 10
    torch.testing.assert_close(model.state_dict(), first.state_dict())
    save(tmp_path, seed=2, step=20)
    assert restore(tmp_path)[0]["step"] == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train_state"]


def test_no_state_before_the_first_whole_save(tmp_path: Path) -> None:
    (tmp_path / "train_state.partial").mkdir()
    assert not has_train_state(tmp_path)
    with pytest.raises(FileNotFoundError, match="holds no training state"):
        restore(tmp_path)

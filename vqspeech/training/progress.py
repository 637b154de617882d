"""The training progress bar: steps against train.max_steps, or this run's seconds against train.max_minutes."""

from __future__ import annotations

import time

from omegaconf import DictConfig
from tqdm import tqdm


class ProgressBar:
    """The training bar. Bounded by steps it counts steps; with train.max_minutes it counts this run's wall
    seconds against that bound, so its total and ETA are the time limit's, and shows the step beside them."""

    def __init__(self, tcfg: DictConfig, step: int, enabled: bool):
        self.by_time = tcfg.max_minutes is not None
        self.started = time.monotonic()
        if self.by_time:
            self.bar = tqdm(total=round(60 * tcfg.max_minutes), unit="s", desc=f"train step {step}: ",
                            disable=not enabled, dynamic_ncols=True,
                            bar_format="{desc}{percentage:3.0f}%|{bar}| {n:.0f}/{total} s "
                                       "[{elapsed}<{remaining}{postfix}]")
        else:
            self.bar = tqdm(total=tcfg.max_steps, initial=step, desc="train", unit="step", disable=not enabled,
                            dynamic_ncols=True)

    def advance(self, step: int) -> None:
        if self.by_time:
            self.bar.set_description(f"train step {step}", refresh=False)
            elapsed = min(time.monotonic() - self.started, self.bar.total)
            self.bar.update(elapsed - self.bar.n)
        else:
            self.bar.update(1)

    def set_postfix(self, **values) -> None:
        self.bar.set_postfix(refresh=False, **values)  # shown at the bar's next refresh (its own interval)

    def write(self, message: str) -> None:
        self.bar.write(message)

    def close(self) -> None:
        self.bar.close()

"""Runs side by side (``vqspeech compare RUN_A RUN_B ...``): one page to listen to and read.

For the runs given it writes ``compare.md`` and ``compare.html`` (:mod:`vqspeech.pages`) into one folder:

1. the same test utterances reconstructed by each run, the original first, with each output's log-mel L1
   and STOI (``wavs/original/``, ``wavs/<run>/``);
2. the loss curves from the runs' TensorBoard logs on one plot (``curves.png``: the training
   loss (total, smoothed) and the validation loss, against the step);
3. every figure of the runs' reports (``report``, ``evaluate-*``, ``probe-phonemes``: their JSON beside each
   Markdown report) in one table, a run per column.

The utterances are the first run's test utterances whose speakers every run was trained on, each cut to the
same length and decoded in its own speaker's voice with each recipe's sampling settings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from vqspeech.errors import UserError

REPORTS = ("report.json", "reconstruction.json", "conversion.json", "unseen.json", "probe.json")
TRAIN_TAG = "train/loss_total"  # every decoder logs it (the WaveNet also loss_reconstruction, the parallel one stft, mel)
SMOOTHING = 20  # logged points per mean of the plotted training loss
MARKER = "compare.md"  # written first into the folder: a folder with it is a comparison, rewritten by the next


@dataclass
class Clip:
    """One run's output for one utterance."""
    wav: str                     # relative to the page's folder
    log_mel_l1: float | None
    stoi: float | None


@dataclass
class ComparedUtterance:
    speaker: str
    utterance: str
    seconds: float
    original: str                                        # the input, as cut, relative to the page's folder
    clips: dict[str, Clip] = field(default_factory=dict)  # run name -> its output


@dataclass
class Comparison:
    runs: list[str]                                   # column names (the run folders' names, made unique)
    checkpoints: list[str]
    steps: list[int]
    utterances: list[ComparedUtterance]
    figures: dict[str, list[float | None]]            # "report file: figure" -> one value per run
    curves: str | None                                # the loss-curve image, relative; None: no logs found

    def markdown(self) -> str:
        from vqspeech.pages import image, listen

        lines = ["# vqspeech comparison", "", "| run | checkpoint | step |", "|---|---|---|"]
        lines += [f"| {r} | `{c}` | {s} |" for r, c, s in zip(self.runs, self.checkpoints, self.steps)]
        lines += ["", "## Listen", "", "The same test utterances, each in its own speaker's voice; under each "
                  "output its log-mel L1 and STOI against the original.", "",
                  "| utterance | seconds | original | " + " | ".join(self.runs) + " |",
                  "|---" * (len(self.runs) + 3) + "|"]
        for u in self.utterances:
            cells = []
            for run in self.runs:
                clip = u.clips[run]
                cells.append(f"{listen(clip.wav, run)}<br>L1 {_fmt(clip.log_mel_l1)}, STOI {_fmt(clip.stoi)}")
            lines.append(f"| {u.speaker} {u.utterance} | {u.seconds:.2f} | {listen(u.original, 'original')} | "
                         + " | ".join(cells) + " |")
        lines += ["", "## Loss curves", ""]
        lines += [image(self.curves, "training and validation loss of each run"), ""] if self.curves else \
            ["No TensorBoard logs in these runs.", ""]
        lines += ["## Figures", ""]
        if not self.figures:
            lines += ["None of the runs has a report yet (`vqspeech report`, `evaluate-*`, `probe-phonemes`).", ""]
        else:
            lines += ["From each run's reports (their JSON); – where a run has no such figure.", "",
                      "| figure | " + " | ".join(self.runs) + " |", "|---" * (len(self.runs) + 1) + "|"]
            lines += [f"| {name} | " + " | ".join(_fmt(v) for v in values) + " |"
                      for name, values in self.figures.items()]
        return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.0f}" if float(value).is_integer() and abs(value) >= 10 else f"{value:.4g}"


def run_names(run_dirs: list[Path]) -> list[str]:
    """Column names: each folder's name, with its parents' names added until the names are unique."""
    parts = [p.resolve().parts[1:] for p in run_dirs]  # without the root
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [f"{'/'.join(p)} ({i + 1})" for i, p in enumerate(parts)]  # the same folder given twice


def report_figures(run_dir: Path) -> dict[str, float]:
    """Every number of the run's reports: "<folder>/<file>: <field>" -> value, nested fields dotted,
    a reconstruction report's systems by name, a probe's metrics by column. Per-utterance rows are left out."""
    figures: dict[str, float] = {}
    for path in sorted(p for name in REPORTS for p in run_dir.glob(f"*/{name}")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        prefix = f"{path.parent.name}/{path.stem}"
        for key, value in _numbers(data):
            figures[f"{prefix}: {key}"] = value
        if path.name == "probe.json":  # its metrics: key -> one value per column
            for metric, values in data.get("metrics", {}).items():
                for column, value in zip(data.get("columns", []), values):
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        figures[f"{prefix}: {metric} [{column}]"] = float(value)
    return figures


def _numbers(data, key: str = "") -> Iterator[tuple[str, float]]:
    """(dotted key, number) of a report's JSON, skipping its per-item lists."""
    if isinstance(data, bool):
        return
    if isinstance(data, (int, float)):
        yield key, float(data)
    elif isinstance(data, dict):
        if key == "metrics" and all(isinstance(v, list) for v in data.values()):  # a probe: key -> per column
            return
        for k, v in data.items():
            yield from _numbers(v, f"{key}.{k}" if key else str(k))
    elif isinstance(data, list) and key.split(".")[-1] == "systems":
        for item in data:
            if isinstance(item, dict) and "system" in item:
                for k, v in item.items():
                    if k != "system":
                        yield from _numbers(v, f"{key}[{item['system']}].{k}")


def scalars(run_dir: Path, tag_prefix: str = "") -> dict[str, dict[int, float]]:
    """The TensorBoard scalars of ``run_dir/tensorboard`` whose tag starts with ``tag_prefix``: tag -> step -> value."""
    folder = run_dir / "tensorboard"
    if not folder.is_dir():
        return {}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]
            if tag.startswith(tag_prefix)}


def plot_curves(curves: dict[str, tuple[dict[int, float], dict[int, float]]], path: Path) -> bool:
    """run -> (training loss, validation loss), each step -> value, on two panels. False: nothing to plot."""
    if not any(train or valid for train, valid in curves.values()):
        return False
    from vqspeech.plots import figure

    fig, (top, bottom) = figure(8, 6, rows=2)
    for name, (train, valid) in curves.items():
        if train:
            steps, values = zip(*sorted(train.items()))
            kernel = min(SMOOTHING, len(values))
            smooth = np.convolve(values, np.ones(kernel) / kernel, mode="valid")
            top.plot(steps[kernel - 1:], smooth, label=name, lw=1)
        if valid:
            steps, values = zip(*sorted(valid.items()))
            bottom.plot(steps, values, marker="o", ms=3, label=name, lw=1)
    top.set(title=f"training loss, total (mean of {SMOOTHING} logged points)", ylabel="loss (log scale)", yscale="log")
    bottom.set(title="validation loss", xlabel="step", ylabel="loss")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return True


@torch.no_grad()
def compare_runs(run_dirs: list[str | Path], out_dir: str | Path, utterances: int = 3, seconds: float = 3.0,
                 device: torch.device | str = "cpu", progress: bool = False) -> Comparison:
    """Write the comparison page of ``run_dirs`` into ``out_dir`` (see the module's docstring).

    Raises:
        UserError: fewer than two runs, a folder that is not a run, no test utterance whose speaker every run
            knows, or an ``out_dir`` holding files but no comparison (a folder compare did not make).
    """
    from vqspeech.data.audio import save_audio
    from vqspeech.data.dataset import load_split
    from vqspeech.eval.reconstruction import MODEL_SAMPLED, Evaluation
    from vqspeech.files import refuse_foreign_folder, write_atomic
    from vqspeech.models.generation import GenerationConfig, recipe_sampling
    from vqspeech.pages import write_report
    from vqspeech.runs import load_run

    dirs = [Path(d) for d in run_dirs]
    if len(dirs) < 2:
        raise UserError("compare needs two runs or more: vqspeech compare RUN_A RUN_B [...]")
    if utterances < 1 or not seconds > 0:
        raise UserError("--utterances must be 1 or more and --seconds positive")
    out_dir = Path(out_dir)
    refuse_foreign_folder(out_dir, MARKER)
    names = run_names(dirs)
    runs = [load_run(d, None, device) for d in dirs]
    test = runs[0].corpus().split("test")
    known = set.intersection(*(set(r.model.speakers.names) for r in runs))
    chosen = [u for u in test if u.speaker in known][:utterances]
    if not chosen:
        raise UserError(f"no test utterance of {runs[0].run_dir} is by a speaker every run was trained on; compare "
                        "runs trained on the same speakers")
    write_atomic(out_dir / MARKER, "# vqspeech comparison\n\n(being written)\n")  # the folder is compare's now

    compared: dict[tuple[str, str], ComparedUtterance] = {}
    for name, run in zip(names, runs):
        model, rate, hop = run.model, run.sample_rate, run.model.hop_length
        loaded = load_split(chosen, model.speakers.names, rate, progress, f"load test audio ({name})",
                            loudness_lufs=model.loudness_lufs)
        cut = [(u, w[: int(seconds * rate) // hop * hop]) for u, w in zip(loaded.utterances, loaded.waves)]
        cut = [(u, w) for u, w in cut if len(w)]
        evaluation = Evaluation(model, rate, {MODEL_SAMPLED: GenerationConfig(**recipe_sampling(run.config))},
                                generator=torch.Generator().manual_seed(0), progress=progress,
                                save_example=lambda utt, outputs: outputs[MODEL_SAMPLED][0], examples=len(cut))
        for utt, wav in cut:
            evaluation.add([(utt, wav)])
            key = (utt.speaker, utt.utterance)
            stem = f"{utt.speaker}_{utt.utterance}".replace("/", "_")
            if key not in compared:
                original = save_audio(out_dir / "wavs" / "original" / f"{stem}.wav", wav, rate, overwrite=True)
                compared[key] = ComparedUtterance(utt.speaker, utt.utterance, len(wav) / rate,
                                                  original.relative_to(out_dir).as_posix())
            row = next(r for r in reversed(evaluation.rows) if r.system == MODEL_SAMPLED)
            output = evaluation.examples_saved[-1]
            path = save_audio(out_dir / "wavs" / name.replace("/", "_") / f"{stem}.wav", output, rate, overwrite=True)
            compared[key].clips[name] = Clip(path.relative_to(out_dir).as_posix(), row.log_mel_l1, row.stoi)
    kept = [u for u in compared.values() if len(u.clips) == len(names)]

    per_run = [report_figures(r.run_dir) for r in runs]
    keys = list(dict.fromkeys(k for figures in per_run for k in figures))
    figures = {k: [f.get(k) for f in per_run] for k in keys}

    curves = {}
    for name, run in zip(names, runs):
        logged = scalars(run.run_dir)
        valid = next((points for tag, points in logged.items() if tag.startswith("valid/")), {})
        curves[name] = (logged.get(TRAIN_TAG, {}), valid)
    drawn = plot_curves(curves, out_dir / "curves.png")

    comparison = Comparison(runs=names, checkpoints=[str(r.checkpoint) for r in runs], steps=[r.step for r in runs],
                            utterances=kept, figures=figures, curves="curves.png" if drawn else None)
    write_atomic(out_dir / "compare.json", json.dumps(asdict(comparison), indent=2))
    write_report(out_dir, "compare", comparison.markdown())
    return comparison

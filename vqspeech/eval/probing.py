"""Phoneme probing: how phonetic are the codes? (van den Oord et al. 2017 §4.3; HuBERT's purity and PNMI.)

The probe set: the utterances of the named corpus split(s) (or all) that have a phone alignment, each code frame
labelled with the (mapped) phone covering its centre (:mod:`vqspeech.eval.probe_data` reads them; the corpus
may be another than the model was trained on, at another sample rate). Maps and probes are
fitted on part of it and scored on the rest, split by a fixed hash of the utterance id (on a parallel corpus
a sentence is held out for every speaker at once) and, with two or more speakers, by speaker (a quarter held
out). Three representations of the same frames with the same K are compared: the model's codes, k-means on
MFCCs (13 + Δ + ΔΔ, frame j centred on code frame j) and the same architecture with random-init weights
(its codebook initialised from data, as training's first step would, if the model's quantizer does that).
A fourth column, the raw MFCC frames themselves, is scored by ABX only: ZeroSpeech's baseline, much harder to
beat than the k-means centroids of the same frames.

* mapping accuracy: code -> its most frequent phone on the fitting part (unseen code -> the majority phone),
  scored on the held-out part, beside the majority-phone accuracy;
* over all labelled frames: phone purity Σ_c max_p P(p, c), cluster purity Σ_p max_c P(p, c),
  PNMI = I(phone; code) / H(phone);
* linear probes (softmax regression) on the continuous frames (z_e; the MFCCs) and on the code vectors;
* bitrate frame rate · log2 K, and unigram entropy × symbols per second with and without collapsing
  repeated codes (the ZeroSpeech 2019 bitrate);
* speaker accuracy from per-utterance code histograms (lower: the codes carry less of the voice);
* ABX error of phones in context, within and across speakers, on the code vectors (:mod:`vqspeech.eval.abx`),
  over all probe utterances (it fits nothing).
Written to ``out_dir``: probe.json, probe.md, abx.item, cooccurrence.png, confusion.png, utterance.png; with
``export_features``, also features/ (each column's ABX frames, for tools/zrc_abx.py and other scorers).
"""

from __future__ import annotations

import json
import logging
import math
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from vqspeech.data.alignments import PhoneSet
from vqspeech.data.audio import save_audio
from vqspeech.data.corpus import Corpus
from vqspeech.eval.abx import AbxItem, abx_error, abx_items, write_item_file
from vqspeech.eval.logistic import fit_softmax_regression
from vqspeech.eval.probe_data import load_items
from vqspeech.plots import heatmap, plot_alignment
from vqspeech.files import write_atomic
from vqspeech.models import VQVAE, build_model
from vqspeech.pages import image, listen, write_report
from vqspeech.quantization import CodeUsage, code_usage
from vqspeech.quantization.kmeans import kmeans, squared_distances

DEFAULT_KMEANS_K = 256  # K for a continuous bottleneck's latents (probe-phonemes --kmeans-k); the demo codebook's
log = logging.getLogger(__name__)
TEST_FRACTION = 0.3             # share of utterance ids held out for scoring
HELD_OUT_SPEAKER_FRACTION = 0.25
MFCC_KMEANS = "MFCC k-means centroids"   # K-means on standardised MFCCs at the model's K and frame rate
RAW_MFCC = "raw MFCC frames"             # 13 + Δ + ΔΔ per code frame: ZeroSpeech's ABX baseline (ABX only)
METRICS = {  # key -> row label, in table order
    "mapping_accuracy": "mapping accuracy (code → phone)", "majority_accuracy": "majority-phone baseline",
    "mapping_accuracy_speaker_split": "mapping accuracy, held-out speakers",
    "majority_accuracy_speaker_split": "majority-phone baseline, held-out speakers",
    "phone_purity": "phone purity", "cluster_purity": "cluster purity", "pnmi": "PNMI",
    "probe_continuous": "linear probe on z_e (k-means: MFCCs)",
    "probe_continuous_speaker_split": "linear probe on z_e, held-out speakers",
    "probe_embedding": "linear probe on code vectors",
    "probe_embedding_speaker_split": "linear probe on code vectors, held-out speakers",
    "used_codes": "codes used", "bitrate": "bitrate, frame rate · log2 K (bit/s)",
    "entropy_rate": "entropy rate (bit/s)", "entropy_rate_collapsed": "entropy rate, repeats collapsed (bit/s)",
    "speaker_accuracy": "speaker accuracy from code histograms", "speaker_majority": "speaker majority baseline",
    "abx_within": "ABX error within speakers (code vectors)", "abx_across": "ABX error across speakers"}


def split_by_key(keys: Sequence[str], test_fraction: float = TEST_FRACTION) -> np.ndarray:
    """bool [N], True for the held-out items: those whose key is among the first ⌈fraction · n⌉ of the n distinct
    keys ordered by CRC32; with n ≥ 2 at least one key is held out and one kept, with n = 1 none is held out."""
    distinct = sorted(set(keys), key=lambda k: (zlib.crc32(k.encode()), k))
    n_test = min(max(1, math.ceil(test_fraction * len(distinct))), len(distinct) - 1)
    held_out = set(distinct[:n_test])
    return np.array([k in held_out for k in keys], dtype=bool)


@dataclass
class CodeMapping:
    """The paper's code -> phone map and how it scores."""

    accuracy: float | None      # None without fitting or scoring frames
    majority: float | None
    mapping: np.ndarray         # [K] phone index of each code
    confusion: np.ndarray       # [P, P] counts, [true phone, mapped phone], on the scoring frames


def mapping_accuracy(train_codes: np.ndarray, train_phones: np.ndarray, test_codes: np.ndarray,
                     test_phones: np.ndarray, n_codes: int, n_phones: int) -> CodeMapping:
    """The paper's measure: each code -> its most frequent phone on train, scored on test. All [N] int."""
    counts = np.zeros((n_codes, n_phones), dtype=np.int64)
    np.add.at(counts, (train_codes, train_phones), 1)
    majority = int(np.bincount(train_phones, minlength=n_phones).argmax()) if len(train_phones) else 0
    mapping = np.where(counts.sum(1) > 0, counts.argmax(1), majority)
    confusion = np.zeros((n_phones, n_phones), dtype=np.int64)
    np.add.at(confusion, (test_phones, mapping[test_codes]), 1)
    if not len(train_phones) or not len(test_phones):
        return CodeMapping(None, None, mapping, confusion)
    return CodeMapping(float(np.mean(mapping[test_codes] == test_phones)),
                       float(np.mean(test_phones == majority)), mapping, confusion)


def cluster_scores(codes: np.ndarray, phones: np.ndarray, n_codes: int, n_phones: int) -> dict[str, float | None]:
    """Phone purity, cluster purity and PNMI of codes [N] against phones [N]; None where undefined."""
    joint = np.zeros((n_phones, n_codes))
    np.add.at(joint, (phones, codes), 1)
    if joint.sum() == 0:
        return {"phone_purity": None, "cluster_purity": None, "pnmi": None}
    joint /= joint.sum()
    p_phone, p_code = joint.sum(1), joint.sum(0)
    nz = joint > 0
    mutual = float((joint[nz] * np.log(joint[nz] / np.outer(p_phone, p_code)[nz])).sum())
    h_phone = float(-(p_phone[p_phone > 0] * np.log(p_phone[p_phone > 0])).sum())
    return {"phone_purity": float(joint.max(0).sum()), "cluster_purity": float(joint.max(1).sum()),
            "pnmi": mutual / h_phone if h_phone > 0 else None}


def bitrates(code_seqs: Sequence[np.ndarray], frame_rate: float, codebook_size: int) -> dict[str, float | None]:
    """Nominal rate frame_rate · log2 K and unigram-entropy rates (bit/s), with and without collapsing repeats:
    :func:`vqspeech.quantization.code_usage` of the codes at their symbol rate."""
    def usage(seqs: list[np.ndarray], symbol_rate: float) -> CodeUsage:
        symbols = np.concatenate(seqs).astype(np.int64) if seqs else np.zeros(0, dtype=np.int64)
        return code_usage(torch.bincount(torch.from_numpy(symbols), minlength=codebook_size), symbol_rate)

    seconds = sum(len(c) for c in code_seqs) / frame_rate
    codes = usage(list(code_seqs), frame_rate)
    collapsed = [c[np.r_[True, c[1:] != c[:-1]]] for c in code_seqs if len(c)]
    if not seconds:
        return {"bitrate": codes.bitrate, "entropy_rate": None, "entropy_rate_collapsed": None}
    runs = usage(collapsed, sum(len(c) for c in collapsed) / seconds)
    return {"bitrate": codes.bitrate, "entropy_rate": float(codes.entropy_rate),
            "entropy_rate_collapsed": float(runs.entropy_rate)}


def linear_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                 n_classes: int, l2: float = 1e-4, max_iter: int = 100) -> float | None:
    """Accuracy on test of a softmax regression fitted on train (L-BFGS from zero weights, inputs standardised
    with the train statistics). x: [N, D] float, y: [N] int; None when either side is empty."""
    if not len(y_train) or not len(y_test):
        return None
    mean, std = _moments(x_train)
    weight, bias = fit_softmax_regression(torch.from_numpy(((x_train - mean) / std).astype(np.float32)),
                                          torch.from_numpy(y_train.astype(np.int64)), n_classes, l2, max_iter)
    logits = torch.from_numpy(((x_test - mean) / std).astype(np.float32)) @ weight + bias
    return float((logits.argmax(1).numpy() == y_test).mean())


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and std of x [N, D], a constant column's std taken as 1."""
    std = x.std(0)
    return x.mean(0), np.where(std > 1e-8, std, 1.0)


@dataclass
class Representation:
    """The probe set coded one way; per utterance codes [F_i], continuous frames [F_i, D], code vectors [F_i, D']."""

    name: str
    codes: list[np.ndarray]
    continuous: list[np.ndarray]
    vectors: list[np.ndarray]
    codebook_size: int


def evaluate(rep: Representation, phones: np.ndarray, utt_of_frame: np.ndarray, speaker_ids: np.ndarray,
             held_out: dict[str, np.ndarray], n_phones: int, frame_rate: float, items: Sequence[AbxItem] = (),
             seed: int = 0) -> tuple[dict[str, float | None], CodeMapping]:
    """Every metric of one representation, and its code -> phone mapping on the utterance split.
    phones: [N] (−1: unlabelled); utt_of_frame: [N]; speaker_ids: [U];
    held_out: metric-name suffix of a split ("" or "_speaker_split") -> bool [U], the held-out utterances;
    items: the ABX items of the probe set."""
    codes, k = np.concatenate(rep.codes), rep.codebook_size
    cont, vecs = np.concatenate(rep.continuous), np.concatenate(rep.vectors)
    labelled = phones >= 0
    out: dict[str, float | None] = {}
    mappings = {}
    for suffix, test_utts in held_out.items():
        test = test_utts[utt_of_frame]
        tr, te = labelled & ~test, labelled & test
        m = mappings[suffix] = mapping_accuracy(codes[tr], phones[tr], codes[te], phones[te], k, n_phones)
        keys = [f"{name}{suffix}" for name in ("mapping_accuracy", "majority_accuracy", "probe_continuous",
                                               "probe_embedding")]
        out.update(zip(keys, (m.accuracy, m.majority,
                              linear_probe(cont[tr], phones[tr], cont[te], phones[te], n_phones),
                              linear_probe(vecs[tr], phones[tr], vecs[te], phones[te], n_phones))))
    out.update(cluster_scores(codes[labelled], phones[labelled], k, n_phones))
    out["used_codes"] = float(len(np.unique(codes)))
    out.update(bitrates(rep.codes, frame_rate, k))
    hist = np.stack([np.bincount(c, minlength=k) / max(len(c), 1) for c in rep.codes])
    test, n_speakers = held_out[""], int(speaker_ids.max()) + 1
    out["speaker_accuracy"] = out["speaker_majority"] = None
    if test.any() and len(set(speaker_ids[~test])) >= 2:
        out["speaker_accuracy"] = linear_probe(hist[~test], speaker_ids[~test], hist[test], speaker_ids[test],
                                               n_speakers)
        majority = np.bincount(speaker_ids[~test], minlength=n_speakers).argmax()
        out["speaker_majority"] = float(np.mean(speaker_ids[test] == majority))
    abx = abx_error(items, rep.vectors, seed=seed)
    out["abx_within"], out["abx_across"] = abx.within_speaker, abx.across_speaker
    return out, mappings[""]


def abx_only(frames: list[np.ndarray], items: Sequence[AbxItem], seed: int = 0) -> dict[str, float | None]:
    """The metrics of a continuous representation that has no codes (frames [F_i, D] per utterance): ABX within
    and across speakers on the frames themselves; every code metric None."""
    abx = abx_error(items, frames, seed=seed)
    return {**{key: None for key in METRICS}, "abx_within": abx.within_speaker, "abx_across": abx.across_speaker}


@dataclass
class ProbeReport:
    """Every number of a probe (``probe.json``); :meth:`markdown` is ``probe.md``."""

    columns: list[str]                        # the representations compared
    metrics: dict[str, list[float | None]]    # key of METRICS -> one value per column; None: not computable
    corpus: str                               # the corpus probed: its manifest, or "ROOT (folder scan)"
    trained_on: str | None                    # the corpus the model was trained on, if known
    splits: list[str] | None                  # None: every utterance
    sample_rate: int                          # the model's; audio at other rates was resampled to it
    resampled_from: list[int]                 # the other rates found in the probed audio
    phones: list[str]
    speakers: list[str]
    held_out_speakers: list[str]
    n_utterances: int
    n_test_utterances: int
    n_frames: int
    n_labelled_frames: int
    frame_rate: float
    codebook_size: int
    model_codes: str                          # where the model column's codes come from (VQ codes, or k-means)
    n_abx_items: int                          # phone tokens with a neighbour either side (abx.item)
    skipped: dict[str, list[str]]             # alignment/audio file -> its problems (left out)
    seconds: float                            # wall time

    def markdown(self) -> str:
        def cell(key: str, v: float | None) -> str:
            return "n/a" if v is None else f"{v:.0f}" if key == "used_codes" or "rate" in key else f"{v:.3f}"

        rates = ", ".join(f"{r} Hz" for r in self.resampled_from)
        lines = ["# vqspeech phoneme probe", "",
                 f"Probed corpus: {self.corpus}. Model trained on: {self.trained_on or 'not recorded'}."
                 + (f" Audio resampled from {rates} to the model's {self.sample_rate} Hz (phone times kept in "
                    "seconds)." if rates else ""), "",
                 f"{self.n_utterances} utterances of "
                 f"{'split ' + '+'.join(self.splits) if self.splits else 'every split'} ({self.n_test_utterances} "
                 f"held out by utterance id; held-out speakers: {', '.join(self.held_out_speakers) or 'none'}), "
                 f"{self.n_labelled_frames} labelled of {self.n_frames} frames at {self.frame_rate:g} Hz, "
                 f"{len(self.phones)} phones, K = {self.codebook_size}; {self.seconds:.0f} s. Accuracies are on "
                 "held-out frames or utterances, purities and PNMI on all labelled frames, ABX on the "
                 f"{self.n_abx_items} phone tokens in context of all probed utterances. The model's codes: "
                 f"{self.model_codes}.", "",
                 "| metric | " + " | ".join(self.columns) + " |", "|---" * (len(self.columns) + 1) + "|"]
        lines += [f"| {METRICS[k]} | " + " | ".join(cell(k, v) for v in values) + " |"
                  for k, values in self.metrics.items()]
        if self.skipped:
            lines += ["", f"Left out {len(self.skipped)} file(s):"]
            lines += [f"- {path}: {len(p)} problem(s): {'; '.join(p[:3])}" for path, p in self.skipped.items()]
        lines += ["", "## Figures", "", image("cooccurrence.png", "P(phone | code) over the used codes"), "",
                  image("confusion.png", "the code-to-phone mapping's confusion on held-out frames"), "",
                  f"One utterance ({listen('utterance.wav', 'listen')}) with its phone and code tiers:", "",
                  image("utterance.png", "log-mel spectrogram over the phone and code tiers")]
        return "\n".join(lines) + "\n"


def probe_phonemes(model: VQVAE, corpus: Corpus, sample_rate: int, out_dir: str | Path,
                   phone_set: PhoneSet | None = None, split: str | Sequence[str] | None = "test",
                   max_utterances: int | None = None, seed: int = 0, tier: str = "phones",
                   model_kwargs: Mapping[str, Any] | None = None, trained_on: str | None = None,
                   progress: bool = True, kmeans_k: int = DEFAULT_KMEANS_K,
                   export_features: bool = False) -> ProbeReport:
    """Probe the codes of ``model`` on ``split``'s aligned utterances (None: every utterance); see the module
    docstring.

    Args:
        sample_rate: the model's; audio at another rate is resampled to it.
        model_kwargs: the checkpoint's model_kwargs, to build the random-init baseline (seeded by ``seed``);
            None leaves that column out.
        max_utterances: probe at most this many (chosen by a hash of the utterance id, all speakers alike).
        phone_set: how alignment symbols map to scored phones (default: ARPAbet/TIMIT, stress stripped).
        tier: the TextGrid tier holding the phones.
        trained_on: the corpus the model was trained on, named in the report beside the probed one.
        kmeans_k: K of the k-means through which a continuous bottleneck's latents are scored (a VQ model's
            codes are its own, and its MFCC k-means baseline takes the codebook's K).
        export_features: also write each column's ABX frames (:func:`write_features`), for other scorers.
    Raises:
        UserError: no usable aligned utterance in the split(s).
    """
    started = time.monotonic()
    model.eval()  # a quantizer in training mode would update its codebook
    phone_set = phone_set or PhoneSet()
    splits = None if split is None else [split] if isinstance(split, str) else list(split)
    hop, frame_rate = model.hop_length, sample_rate / model.hop_length
    items, skipped = load_items(corpus, splits, sample_rate, hop, phone_set, max_utterances, tier, progress)
    phone_names = sorted({p for it in items for p in it.labels if p is not None})
    index = {p: i for i, p in enumerate(phone_names)}
    phones = np.array([index[p] if p is not None else -1 for it in items for p in it.labels], dtype=np.int64)
    utt_of_frame = np.repeat(np.arange(len(items)), [len(it.labels) for it in items])
    speakers = sorted({it.utterance.speaker for it in items})
    speaker_ids = np.array([speakers.index(it.utterance.speaker) for it in items])
    keys = [it.utterance.utterance for it in items]
    if len(set(keys)) < 2:
        keys = [f"{it.utterance.speaker}/{it.utterance.utterance}" for it in items]
    by_speaker = split_by_key(speakers, HELD_OUT_SPEAKER_FRACTION)
    held_out = {"": split_by_key(keys), "_speaker_split": by_speaker[speaker_ids]}
    fit = ~held_out[""]

    waves = [it.wav for it in items]
    mfccs = [mfcc_frames(w, sample_rate, hop) for w in waves]
    k = model.bottleneck.codebook_size if model.bottleneck.discrete else kmeans_k
    model_codes = ("its VQ codes" if model.bottleneck.discrete else
                   f"k-means (K = {k}) on its continuous {model.bottleneck.kind} latents (standardised), fitted on "
                   f"the frames of the {int(fit.sum())} probe-training utterances")
    if not model.bottleneck.discrete:
        log.info("probe: the %s bottleneck is continuous; its codes are %s", model.bottleneck.kind, model_codes)
    reps = [_model_representation("model", model, waves, fit, seed, progress, initialize=False, k=k),
            _kmeans_representation(MFCC_KMEANS, mfccs, k, fit, seed)]
    if model_kwargs is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            untrained = build_model(model_kwargs).to(model.device).eval()
        reps.append(_model_representation("random-init model", untrained, waves, fit, seed, progress, initialize=True,
                                          k=k))
    else:
        log.warning("no model_kwargs given: the random-init baseline is left out")
    files = [f"{it.utterance.speaker}_{it.utterance.utterance}" for it in items]  # abx.item's (and features/') names
    abx = abx_items([it.segments for it in items], files, [it.utterance.speaker for it in items],
                    [len(it.labels) for it in items], frame_rate, phone_set)
    results = [evaluate(r, phones, utt_of_frame, speaker_ids, held_out, len(phone_names), frame_rate, abx, seed)
               for r in tqdm(reps, desc="score", disable=not progress, leave=False)]
    scores = [res for res, _ in results] + [abx_only(mfccs, abx, seed)]  # raw MFCC: ZeroSpeech's ABX baseline
    report = ProbeReport(
        columns=[r.name for r in reps] + [RAW_MFCC], metrics={k: [res[k] for res in scores] for k in METRICS},
        corpus=corpus.description, trained_on=trained_on, splits=splits, sample_rate=sample_rate,
        resampled_from=sorted({it.source_rate for it in items} - {sample_rate}), phones=phone_names, speakers=speakers,
        held_out_speakers=[s for s, held in zip(speakers, by_speaker) if held],
        n_utterances=len(items), n_test_utterances=int(held_out[""].sum()), n_frames=len(phones),
        n_labelled_frames=int((phones >= 0).sum()), frame_rate=frame_rate,
        codebook_size=k, model_codes=model_codes, n_abx_items=len(abx), skipped=skipped, seconds=0.0)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_item_file(out_dir / "abx.item", abx)
    if export_features:
        write_features(out_dir / "features", files, {**{r.name: r.vectors for r in reps}, RAW_MFCC: mfccs},
                       frame_rate)
    counts = np.zeros((len(phone_names), report.codebook_size), dtype=np.int64)
    np.add.at(counts, (phones[phones >= 0], np.concatenate(reps[0].codes)[phones >= 0]), 1)
    used = np.flatnonzero(counts.sum(0))  # codes sorted by their most frequent phone, then by its count
    used = used[np.lexsort((-counts[:, used].max(0), counts[:, used].argmax(0)))]
    heatmap(counts[:, used], phone_names, None, f"{len(used)} used codes, sorted by their phone",
             "P(phone | code)", out_dir / "cooccurrence.png")
    heatmap(results[0][1].confusion, phone_names, phone_names, "phone of the code (mapped); rows: true phone",
             "mapping on held-out frames, share of each true phone", out_dir / "confusion.png")
    shown = int(np.argmax(held_out[""]))  # the first held-out utterance, else the first
    plot_alignment(items[shown].wav, items[shown].segments, reps[0].codes[shown], sample_rate, hop, phone_set,
                   f"{items[shown].utterance.speaker}/{items[shown].utterance.utterance}", out_dir / "utterance.png")
    save_audio(out_dir / "utterance.wav", items[shown].wav, sample_rate, overwrite=True)
    report.seconds = time.monotonic() - started
    write_report(out_dir, "probe", report.markdown())
    write_atomic(out_dir / "probe.json", json.dumps(asdict(report), indent=2))
    return report


def write_features(folder: Path, files: Sequence[str], columns: Mapping[str, Sequence[np.ndarray]],
                   frame_rate: float) -> None:
    """The frames each column is ABX-scored on, in the layout ZeroSpeech scorers read: ``folder/<slug>/<file>.npy``
    (float32 [F_i, D], frame j centred at (j + ½) / frame_rate s) for the files of abx.item, and
    ``folder/features.json`` naming the columns and the frame step (tools/zrc_abx.py scores them)."""
    slugs = {}
    for name, frames in columns.items():
        slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
        slugs[slug] = name
        (folder / slug).mkdir(parents=True, exist_ok=True)
        for file, f in zip(files, frames):
            np.save(folder / slug / f"{file}.npy", np.ascontiguousarray(f, dtype=np.float32))
    write_atomic(folder / "features.json", json.dumps({"frame_rate": frame_rate, "columns": slugs}, indent=2))


@torch.no_grad()
def _model_representation(name: str, model: VQVAE, waves: list[np.ndarray], fit: np.ndarray, seed: int,
                          progress: bool, initialize: bool, k: int) -> Representation:
    """Encode every wave. A continuous bottleneck's latents are clustered by k-means fitted on the frames of the
    ``fit`` utterances (bool [U]). With ``initialize``, a VQ layer that initialises from data and has not yet done
    so is first initialised, as training's first step would be, from those utterances' encoder outputs (the
    probed model itself is never changed)."""
    z = [model.encode_waveform(w, latents=True)
         for w in tqdm(waves, desc=f"encode ({name})", disable=not progress, leave=False)]  # [D, F_i]
    q = model.bottleneck
    if not q.discrete:
        latents = [q(zi[None]).quantized[0].T.float().cpu().numpy() for zi in z]  # eval: the VAE's mean, or z_e
        return _kmeans_representation(name, latents, k, fit, seed)
    if initialize and not bool(q.initialized):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            q.train()
            q(torch.cat([zi for zi, f in zip(z, fit) if f], dim=1)[None])
            q.eval()
    codes = [q(zi[None]).codes[0] for zi in z]
    return Representation(name, [c.cpu().numpy() for c in codes], [zi.T.cpu().numpy() for zi in z],
                          [q.codebook[c].cpu().numpy() for c in codes], q.codebook_size)


def mfcc_frames(wav: np.ndarray, sample_rate: int, hop: int) -> np.ndarray:
    """13 MFCCs + Δ + ΔΔ (25 ms windows, 40 mel bands, librosa's dB floor 80 dB below the utterance's peak)
    at the code frame rate, frame j centred on sample (j + ½) · hop, from the one MFCC implementation
    (:class:`vqspeech.nn.spectral.FrameFeatures`). wav: [T] -> [T // hop, 39]."""
    from vqspeech.nn.spectral import FrameFeatures

    features = FrameFeatures("mfcc", sample_rate, hop, deltas=True, top_db=80.0)
    with torch.no_grad():
        return features(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None])[0].T.numpy()


def _kmeans_representation(name: str, feats: list[np.ndarray], k: int, fit: np.ndarray, seed: int) -> Representation:
    """Frames feats [F_i, D] per utterance, standardised by the ``fit`` utterances' moments, coded by k-means
    (K = k, 20 Lloyd iterations) fitted on those utterances' frames."""
    train = np.concatenate([f for f, keep in zip(feats, fit) if keep])
    mean, std = _moments(train)
    feats = [(f - mean) / std for f in feats]
    centroids = kmeans(torch.from_numpy((train - mean) / std), k, iters=20,
                       generator=torch.Generator().manual_seed(seed))
    codes = [squared_distances(torch.from_numpy(f), centroids).argmin(1).numpy() for f in feats]
    return Representation(name, codes, feats, [centroids[c].numpy() for c in codes], k)

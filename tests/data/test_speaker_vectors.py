"""Speaker vectors: segments cover the audio, the cache is reused and recomputed when it must be, and a
training crop's vector never comes from the crop's own audio."""

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vqspeech.data.corpus import Utterance
from vqspeech.data.dataset import LoadedSplit, RandomCrops
from vqspeech.data.speaker_vectors import (MIN_SECONDS, SegmentVectors, cached_segments, mean_vector,
                                           segment_bounds)

SR = 16000


@pytest.mark.parametrize("seconds", [0.3, 1.0, 2.0, 2.5, 3.2, 7.9, 12.0])
def test_segments_tile_the_audio_and_none_is_shorter_than_the_minimum(seconds):
    length = int(seconds * SR)
    bounds = segment_bounds(length, SR, 2.0)
    assert bounds[0, 0] == 0 and bounds[-1, 1] == length
    assert (bounds[1:, 0] == bounds[:-1, 1]).all()  # contiguous, no overlap
    sizes = bounds[:, 1] - bounds[:, 0]
    if len(bounds) > 1:
        assert sizes.min() >= MIN_SECONDS * SR and sizes.max() < 3.0 * SR
    assert len(bounds) == max(1, int(seconds // 2.0) + (seconds % 2.0 >= MIN_SECONDS) * (seconds > 2.0))


def test_mean_vector_is_unit_norm_and_points_between():
    v = mean_vector(np.array([[1.0, 0.0], [0.0, 1.0]]))
    np.testing.assert_allclose(v, [2 ** -0.5, 2 ** -0.5], rtol=1e-6)


class FakeEncoder:
    """Counts calls; the vector of a segment is its mean sample value and its length in one-hot-ish form."""

    def __init__(self, name="fake-a"):
        self.id, self.sample_rate, self.calls = name, SR, 0

    def segments(self, wav):
        self.calls += 1
        bounds = segment_bounds(len(wav), SR)
        vectors = np.stack([[float(np.mean(wav[a:b])), 1.0] for a, b in bounds]).astype(np.float32)
        return SegmentVectors(bounds=bounds, vectors=vectors)


def test_cached_vectors_are_reused_and_recomputed_when_the_file_or_the_encoder_changes(tmp_path):
    paths = [tmp_path / f"u{i}.wav" for i in range(3)]
    waves = [np.full(SR * 3, 0.1 * (i + 1), np.float32) for i in range(3)]
    for p, w in zip(paths, waves):
        sf.write(p, w, SR)
    keys, cache = [(p, "") for p in paths], tmp_path / "cache"
    encoder = FakeEncoder()
    first = cached_segments(encoder, keys, waves, cache)
    assert encoder.calls == 3 and (cache / "fake-a.pt").is_file()

    again = FakeEncoder()
    second = cached_segments(again, keys, waves, cache)
    assert again.calls == 0  # all reused
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.vectors, b.vectors)
        np.testing.assert_array_equal(a.bounds, b.bounds)

    changed = np.full(SR * 3, -0.5, np.float32)  # one file rewritten: only it is computed again
    sf.write(paths[1], changed, SR)
    os.utime(paths[1], ns=(1, 1))  # a different modification time even on coarse clocks
    after = FakeEncoder()
    third = cached_segments(after, keys, [waves[0], changed, waves[2]], cache)
    assert after.calls == 1 and third[1].vectors[0, 0] == pytest.approx(-0.5)

    other = FakeEncoder("fake-b")  # another encoder: its own cache, everything computed
    cached_segments(other, keys, waves, cache)
    assert other.calls == 3 and (cache / "fake-b.pt").is_file()

    part = FakeEncoder()  # another part of the same file is another entry
    cached_segments(part, [(paths[0], "@0-1.5")], [waves[0][: int(1.5 * SR)]], cache)
    assert part.calls == 1


def ramp_split(lengths, speakers):
    """Utterances whose samples are their global sample index (so a crop tells where it came from)."""
    waves, start = [], 0
    for n in lengths:
        waves.append((np.arange(start, start + n) / 1e7).astype(np.float32))
        start += n
    utts = [Utterance(path=None, speaker=str(s), utterance=f"u{i}", split="train") for i, s in enumerate(speakers)]
    return LoadedSplit(utterances=utts, waves=waves, speaker_ids=list(speakers))


def test_a_crop_is_never_conditioned_on_its_own_audio():
    lengths, speakers = [10 * SR, 7 * SR, 4 * SR], [0, 0, 1]
    split = ramp_split(lengths, speakers)
    segments, dims, offset = [], sum(len(segment_bounds(n, SR)) for n in lengths), 0
    for n in lengths:  # every segment of the corpus gets its own one-hot direction
        bounds = segment_bounds(n, SR)
        vectors = np.zeros((len(bounds), dims), np.float32)
        vectors[np.arange(len(bounds)), offset + np.arange(len(bounds))] = 1.0
        segments.append(SegmentVectors(bounds=bounds, vectors=vectors))
        offset += len(bounds)
    crops = RandomCrops(split, crop=SR // 2, seed=3, segments=segments)
    starts = np.cumsum([0, *lengths])
    seen_utterances, fallbacks = set(), 0
    for i in range(300):
        wav, speaker, vector = crops[i]["wav"], crops[i]["speaker"], crops[i]["speaker_vector"]
        first = int(round(wav[0, 0].item() * 1e7))
        u = int(np.searchsorted(starts, first, side="right") - 1)
        seen_utterances.add(u)
        a, b = first - starts[u], first - starts[u] + crops.crop
        assert speaker.item() == speakers[u]
        assert abs(float(np.linalg.norm(vector.numpy())) - 1) < 1e-5
        dim = int(sum(len(s.bounds) for s in segments[:u]))
        own = [(k, s < b and e > a) for k, (s, e) in enumerate(segments[u].bounds)]
        same_speaker_apart = any(not o for _, o in own) or speakers.count(speakers[u]) > 1
        fallbacks += not same_speaker_apart
        for k, overlaps in own:  # never a segment the crop overlaps; every other one of the speaker's
            assert (vector[dim + k] == 0) if overlaps else (vector[dim + k] > 0), (u, a, b)
        for v, other in enumerate(segments):  # other speakers only when the speaker has nothing apart
            if speakers[v] != speakers[u]:
                start = int(sum(len(s.bounds) for s in segments[:v]))
                assert (vector[start:start + len(other.bounds)] > 0).all() == (not same_speaker_apart)
    assert seen_utterances == {0, 1, 2} and fallbacks > 0  # both cases were met


def test_a_learned_encoder_hears_its_speaker_outside_the_crop():
    lengths, speakers = [3 * SR, 2 * SR, SR], [0, 0, 1]
    split = ramp_split(lengths, speakers)
    crops = RandomCrops(split, crop=SR // 4, seed=5, reference_samples=SR // 2)
    starts = np.cumsum([0, *lengths])
    for i in range(200):
        wav, speaker, reference = crops[i]["wav"], crops[i]["speaker"], crops[i]["speaker_audio"]
        crop = np.round(wav[0].numpy() * 1e7).astype(np.int64)
        heard = np.round(reference[0].numpy() * 1e7).astype(np.int64)
        assert reference.shape == (1, SR // 2)
        owner = np.searchsorted(starts, crop[0], side="right") - 1
        if heard.any():
            source = np.searchsorted(starts, heard[0], side="right") - 1
            assert speakers[source] == speakers[owner]  # the same speaker
            assert np.intersect1d(crop, heard).size == 0  # never the crop's own samples
            assert (np.diff(heard) == 1).all()  # one contiguous piece
        else:  # speaker 1 has one 1 s utterance: a 0.25 s crop may leave no 0.5 s piece apart
            assert speakers[owner] == 1


def test_speaker_means_average_every_utterance_of_a_speaker():
    from vqspeech.data.speaker_vectors import speaker_means

    a = SegmentVectors(bounds=np.zeros((1, 2), np.int64), vectors=np.array([[1.0, 0.0]], np.float32))
    b = SegmentVectors(bounds=np.zeros((2, 2), np.int64), vectors=np.array([[0.0, 1.0], [0.0, 1.0]], np.float32))
    means = speaker_means([a, b, a], [0, 0, 2], 3)
    np.testing.assert_allclose(means[0], np.array([1, 2]) / np.sqrt(5), rtol=1e-6)  # segments weigh alike
    np.testing.assert_array_equal(means[1], [0, 0])  # no audio: no direction
    np.testing.assert_allclose(means[2], [1, 0])


@pytest.mark.parametrize("rate", [16000, 22050])
def test_the_encoder_gives_resemblyzers_own_vector_without_librosa(rate):
    """SpeakerEncoder resamples and computes the mel spectrogram itself; Resemblyzer's own path (librosa) must
    give the same d-vector, on real speech at the corpus rate and at another."""
    import glob

    import librosa
    from resemblyzer import preprocess_wav

    from vqspeech.data.speaker_vectors import SpeakerEncoder, resemblyzer_mel

    from tests.conftest import DEFAULT_VCTK_MINI

    folder = Path(os.environ.get("VQSPEECH_VCTK_MINI", DEFAULT_VCTK_MINI)) / "wav16" / "p225"
    files = sorted(glob.glob(str(folder / "*.wav")))  # real speech when the excerpt is here, else a chirp
    t = np.arange(3 * SR) / SR
    chirp = (0.3 * np.sin(2 * np.pi * (120 + 40 * t) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)
    wav = sf.read(files[0], dtype="float32")[0] if files else chirp
    wav = librosa.resample(wav, orig_sr=SR, target_sr=rate) if rate != SR else wav
    encoder = SpeakerEncoder(rate)
    theirs = encoder.encoder.embed_utterance(preprocess_wav(wav, source_sr=rate))
    ours = encoder(wav)
    assert float(np.dot(ours, theirs)) > 0.99999
    reference = librosa.feature.melspectrogram(y=wav[:SR], sr=16000, n_fft=400, hop_length=160, n_mels=40).T
    np.testing.assert_allclose(resemblyzer_mel(wav[:SR]), reference, rtol=1e-4, atol=1e-7 * reference.max())

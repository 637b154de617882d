"""The .vqs codec: bit-exact round trips under the prior, a header that says whose file it is, and one-line
errors for files that are not .vqs, cut short, damaged or made by another model."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vqspeech.checkpoint import file_hash
from vqspeech.codec import (HEADER, NO_SPEAKER, Header, code_check, coding_prior, decode_codes, decompress_codes,
                            encode_codes, fingerprint, read_vqs, write_vqs)
from vqspeech.errors import UserError
from vqspeech.models.prior import build_prior, prior_kwargs

SPEC = {"kind": "wavenet", "channels": 16, "skip_channels": 16, "layers": 4, "speaker_dim": 4}


def _prior(kind="wavenet", size=32):
    torch.manual_seed(0)
    spec = SPEC if kind == "wavenet" else {"kind": "transformer", "dim": 16, "layers": 1, "heads": 2, "context": 16}
    return coding_prior(build_prior(prior_kwargs(spec, size, ["a", "b"], None, "h")))


@pytest.mark.parametrize("kind", ["wavenet", "transformer"])
@pytest.mark.parametrize("speaker", [0, 1, NO_SPEAKER])
def test_random_codes_round_trip_bit_exactly(kind, speaker):
    coder = _prior(kind)
    for seed, frames in ((0, 1), (1, 37), (2, 300)):
        codes = torch.randint(0, 32, (frames,), generator=torch.Generator().manual_seed(seed))
        words = encode_codes(coder, codes, speaker)
        assert torch.equal(decode_codes(coder, words, frames, speaker), codes)


def test_the_coded_size_is_the_cross_entropy():
    coder = _prior()
    codes = torch.randint(0, 32, (2000,), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        bits = -float(coder.log_probs(codes[None], torch.tensor([0])).sum()) / np.log(2)
    coded = 32 * len(encode_codes(coder, codes, 0))
    assert bits <= coded <= bits * 1.01 + 64


def test_empty_codes_round_trip():
    coder = _prior()
    words = encode_codes(coder, torch.empty(0, dtype=torch.long), 0)
    assert decode_codes(coder, words, 0, 0).numel() == 0


def _fake_run_and_prior(tmp_path):
    (tmp_path / "vqvae.pt").write_bytes(b"model weights")
    (tmp_path / "prior.pt").write_bytes(b"prior weights")
    speakers = SimpleNamespace(names=["a", "b"], kind="table")
    run = SimpleNamespace(checkpoint=tmp_path / "vqvae.pt",
                          model=SimpleNamespace(speakers=speakers, decoder=SimpleNamespace(kind="wavenet"), pitch=None))
    coder = _prior()
    return run, SimpleNamespace(checkpoint=tmp_path / "prior.pt", model=coder), coder


def _write(tmp_path, run, prior, coder, codes, speaker=1, name="a.vqs", decoder="wavenet"):
    header = Header(fingerprint(file_hash(run.checkpoint)), fingerprint(file_hash(prior.checkpoint)), 16000,
                    len(codes), speaker, code_check(codes), decoder)
    return write_vqs(tmp_path / name, header, encode_codes(coder, codes, speaker))


def test_header_and_file_round_trip(tmp_path):
    run, prior, coder = _fake_run_and_prior(tmp_path)
    codes = torch.randint(0, 32, (120,), generator=torch.Generator().manual_seed(4))
    path = _write(tmp_path, run, prior, coder, codes)
    header, words = read_vqs(path)
    assert (header.sample_rate, header.frames, header.speaker) == (16000, 120, 1)
    assert path.stat().st_size == HEADER.size + 4 * len(words) and HEADER.size == 36
    got_header, got = decompress_codes(run, prior, path, coder)
    assert torch.equal(got, codes) and got_header == header
    with pytest.raises(UserError, match="already exists"):
        _write(tmp_path, run, prior, coder, codes)


def test_bad_vqs_files_get_one_line_errors(tmp_path):
    run, prior, coder = _fake_run_and_prior(tmp_path)
    codes = torch.randint(0, 32, (200,), generator=torch.Generator().manual_seed(5))
    good = _write(tmp_path, run, prior, coder, codes).read_bytes()
    cases = {
        "text.vqs": (b"hello, not a codec file", "not a .vqs file"),
        "empty.vqs": (b"", "not a .vqs file"),
        "cut.vqs": (good[: HEADER.size + 3], "cut short"),
        "version.vqs": (good[:3] + bytes([9]) + good[4:], "format version 9"),
        "decoder.vqs": (good[:4] + bytes([7]) + good[5:], "unknown decoder id 7"),
        "damaged.vqs": (good[: HEADER.size] + bytes(b ^ 0x5A for b in good[HEADER.size:]), "damaged"),
        "words-cut.vqs": (good[: HEADER.size + 8], "damaged"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(UserError, match=message) as info:
            decompress_codes(run, prior, path, coder)
        assert "\n" not in str(info.value)
    parallel = SimpleNamespace(**{**vars(run), "model": SimpleNamespace(speakers=run.model.speakers,
                                                                       decoder=SimpleNamespace(kind="parallel"), pitch=None)})
    with pytest.raises(UserError, match="made by a model with the wavenet decoder and this run's decoder is "
                                        "parallel") as info:
        decompress_codes(parallel, prior, tmp_path / "a.vqs", coder)
    assert "\n" not in str(info.value)
    other = SimpleNamespace(**{**vars(run), "checkpoint": tmp_path / "other.pt"})
    other.checkpoint.write_bytes(b"another model")
    with pytest.raises(UserError, match="another model or prior"):
        decompress_codes(other, prior, tmp_path / "a.vqs", coder)


def test_a_version_1_file_still_decodes_with_its_16_bit_check(tmp_path):
    import struct

    from vqspeech.codec import HEADER_V1

    run, prior, coder = _fake_run_and_prior(tmp_path)
    codes = torch.randint(0, 32, (64,), generator=torch.Generator().manual_seed(6))
    words = encode_codes(coder, codes, 1)
    old = HEADER_V1.pack(b"VQS", 1, fingerprint(file_hash(run.checkpoint)), fingerprint(file_hash(prior.checkpoint)),
                         16000, len(codes), 1, code_check(codes) & 0xFFFF)
    path = tmp_path / "v1.vqs"
    path.write_bytes(old + words.astype("<u4").tobytes())
    header, got = decompress_codes(run, prior, path, coder)
    assert torch.equal(got, codes) and (header.version, header.decoder) == (1, "wavenet")
    wrong = old[:-2] + struct.pack("<H", (code_check(codes) + 1) & 0xFFFF)  # the check is read, not ignored
    path.write_bytes(wrong + words.astype("<u4").tobytes())
    with pytest.raises(UserError, match="fail the file's check"):
        decompress_codes(run, prior, path, coder)


def test_the_header_knows_every_decoder_kind():
    from vqspeech.codec import DECODER_IDS
    from vqspeech.models.builders import DECODERS

    assert set(DECODER_IDS) == set(DECODERS) and len(set(DECODER_IDS.values())) == len(DECODER_IDS)
    assert all(cls.kind == kind for kind, cls in DECODERS.items())


@pytest.mark.parametrize("bits", [1, 5, 8])
def test_pitch_codes_pack_exactly_into_whole_words(bits):
    from vqspeech.codec import pack_pitch, pitch_bytes, unpack_pitch

    rng = np.random.default_rng(bits)
    for frames in (1, 7, 33):
        codes = tuple(int(c) for c in rng.integers(0, 2 ** bits, frames))
        packed = pack_pitch(codes, bits)
        assert len(packed) == pitch_bytes(frames, bits) and len(packed) % 4 == 0
        assert len(packed) * 8 - frames * bits < 32  # no more than one word of padding
        assert unpack_pitch(packed, frames, bits) == codes


def test_a_file_carries_the_pitch_stream_and_a_version_2_file_still_reads(tmp_path):
    from vqspeech.codec import HEADER_V2, pitch_bits

    run, prior, coder = _fake_run_and_prior(tmp_path)
    codes = torch.randint(0, 32, (60,), generator=torch.Generator().manual_seed(5))
    pitch = tuple(int(c) for c in torch.randint(0, 32, (15,), generator=torch.Generator().manual_seed(6)))
    assert pitch_bits(32) == 5 and pitch_bits(33) == 6
    header = Header(fingerprint(file_hash(run.checkpoint)), fingerprint(file_hash(prior.checkpoint)), 16000,
                    len(codes), 1, code_check(codes, pitch), "wavenet", pitch=pitch, pitch_bits=5,
                    register=(4.75, 0.1875))
    words = encode_codes(coder, codes, 1)
    path = write_vqs(tmp_path / "p.vqs", header, words)
    got, got_words = read_vqs(path)
    assert got == header and np.array_equal(got_words, words)
    assert path.stat().st_size == HEADER.size + 12 + 4 * len(words)  # 15 × 5 bits: three words
    assert got.checks(codes) and not Header(**{**vars(got), "pitch": (pitch[0] ^ 1, *pitch[1:])}).checks(codes)
    with pytest.raises(UserError, match="pitch stream"):  # this fake run has none
        decompress_codes(run, prior, path, coder)

    plain = _write(tmp_path, run, prior, coder, codes, name="plain.vqs")
    old = tmp_path / "v2.vqs"
    data = plain.read_bytes()
    fields = list(HEADER.unpack_from(data))[:9]
    fields[1] = 2
    old.write_bytes(HEADER_V2.pack(*fields) + data[HEADER.size:])
    v2, _ = read_vqs(old)
    assert v2.version == 2 and v2.pitch == () and torch.equal(decompress_codes(run, prior, old, coder)[1], codes)

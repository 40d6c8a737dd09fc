"""A tiny but genuinely decodable MP4, assembled from first principles.

Downstream code (download, hashing, content sniffing, maybe probing) must see a real ISO BMFF file,
yet shipping a binary fixture or depending on ffmpeg is undesirable. H.264 has one macroblock type
that needs no entropy coding at all — I_PCM carries raw samples — so a 16x16 picture is one
macroblock written verbatim. Each frame is its own IDR slice; the container is the classic ftyp +
moov(mvhd, trak(tkhd, mdia(mdhd, hdlr, minf(vmhd, dinf, stbl)))) + mdat layout with avc1/avcC.
"""

from __future__ import annotations

import functools
import struct

WIDTH = 16
HEIGHT = 16
FRAMES = 8
TIMESCALE = 1000
FRAME_TICKS = 125  # 8 fps -> 1.0 s total


class _Bits:
    """MSB-first bit writer with the two Exp-Golomb codes H.264 headers use."""

    def __init__(self) -> None:
        self._bits: list[int] = []

    def u(self, n: int, value: int) -> None:
        self._bits.extend((value >> (n - 1 - i)) & 1 for i in range(n))

    def ue(self, value: int) -> None:
        code = value + 1
        length = code.bit_length()
        self.u(length - 1, 0)
        self.u(length, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align_zero(self) -> None:
        while len(self._bits) % 8:
            self._bits.append(0)

    def trailing(self) -> None:
        self._bits.append(1)
        self.align_zero()

    def raw_bytes(self, data: bytes) -> None:
        for byte in data:
            self.u(8, byte)

    def to_bytes(self) -> bytes:
        assert len(self._bits) % 8 == 0
        out = bytearray()
        for i in range(0, len(self._bits), 8):
            byte = 0
            for bit in self._bits[i : i + 8]:
                byte = (byte << 1) | bit
            out.append(byte)
        return bytes(out)


def _nal(header: int, rbsp: bytes) -> bytes:
    """Insert emulation-prevention bytes so no payload can be mistaken for a start code."""
    out = bytearray([header])
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _sps() -> bytes:
    b = _Bits()
    b.u(8, 66)  # Baseline profile
    b.u(8, 0xC0)  # constraint_set0/1
    b.u(8, 10)  # level 1.0
    b.ue(0)  # seq_parameter_set_id
    b.ue(0)  # log2_max_frame_num_minus4
    b.ue(2)  # pic_order_cnt_type
    b.ue(1)  # max_num_ref_frames
    b.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    b.ue(WIDTH // 16 - 1)
    b.ue(HEIGHT // 16 - 1)
    b.u(1, 1)  # frame_mbs_only_flag
    b.u(1, 1)  # direct_8x8_inference_flag
    b.u(1, 0)  # frame_cropping_flag
    b.u(1, 0)  # vui_parameters_present_flag
    b.trailing()
    return _nal(0x67, b.to_bytes())


def _pps() -> bytes:
    b = _Bits()
    b.ue(0)  # pic_parameter_set_id
    b.ue(0)  # seq_parameter_set_id
    b.u(1, 0)  # entropy_coding_mode_flag (CAVLC)
    b.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    b.ue(0)  # num_slice_groups_minus1
    b.ue(0)  # num_ref_idx_l0_default_active_minus1
    b.ue(0)  # num_ref_idx_l1_default_active_minus1
    b.u(1, 0)  # weighted_pred_flag
    b.u(2, 0)  # weighted_bipred_idc
    b.se(0)  # pic_init_qp_minus26
    b.se(0)  # pic_init_qs_minus26
    b.se(0)  # chroma_qp_index_offset
    b.u(1, 1)  # deblocking_filter_control_present_flag
    b.u(1, 0)  # constrained_intra_pred_flag
    b.u(1, 0)  # redundant_pic_cnt_present_flag
    b.trailing()
    return _nal(0x68, b.to_bytes())


def _idr_frame(index: int) -> bytes:
    b = _Bits()
    b.ue(0)  # first_mb_in_slice
    b.ue(7)  # slice_type: I (all slices)
    b.ue(0)  # pic_parameter_set_id
    b.u(4, 0)  # frame_num (log2_max_frame_num = 4)
    b.ue(index % 2)  # idr_pic_id: consecutive IDRs must differ
    b.u(1, 0)  # no_output_of_prior_pics_flag
    b.u(1, 0)  # long_term_reference_flag
    b.se(0)  # slice_qp_delta
    b.ue(1)  # disable_deblocking_filter_idc
    b.ue(25)  # mb_type I_PCM
    b.align_zero()  # pcm_alignment_zero_bit
    luma = 40 + index * 24  # a slow fade so frames visibly differ
    b.raw_bytes(bytes([luma]) * (16 * 16))
    b.raw_bytes(bytes([128]) * (8 * 8 * 2))  # neutral chroma
    b.trailing()
    return _nal(0x65, b.to_bytes())


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)


def _moov(
    sample_sizes: list[int], mdat_data_offset: int, sps: bytes, pps: bytes, timing: tuple[int, int]
) -> bytes:
    timescale, frame_ticks = timing
    duration = frame_ticks * len(sample_sizes)
    mvhd = _full_box(
        b"mvhd", 0, 0,
        struct.pack(">IIII", 0, 0, timescale, duration),
        struct.pack(">IH", 0x00010000, 0x0100), bytes(10), _MATRIX, bytes(24), struct.pack(">I", 2),
    )  # fmt: skip
    tkhd = _full_box(
        b"tkhd", 0, 3,
        struct.pack(">IIIII", 0, 0, 1, 0, duration), bytes(8),
        struct.pack(">hhhH", 0, 0, 0, 0), _MATRIX, struct.pack(">II", WIDTH << 16, HEIGHT << 16),
    )  # fmt: skip
    mdhd = _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, duration, 0x55C4, 0))
    hdlr = _full_box(b"hdlr", 0, 0, struct.pack(">I", 0), b"vide", bytes(12), b"VideoHandler\x00")
    vmhd = _full_box(b"vmhd", 0, 1, bytes(8))
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)))
    avcc = _box(
        b"avcC",
        bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]), struct.pack(">H", len(sps)), sps,
        bytes([1]), struct.pack(">H", len(pps)), pps,
    )  # fmt: skip
    avc1 = _box(
        b"avc1",
        bytes(6), struct.pack(">H", 1), bytes(16), struct.pack(">HH", WIDTH, HEIGHT),
        struct.pack(">II", 0x00480000, 0x00480000), bytes(4), struct.pack(">H", 1),
        bytes([9]) + b"simulator" + bytes(22), struct.pack(">Hh", 0x0018, -1), avcc,
    )  # fmt: skip
    stbl = _box(
        b"stbl",
        _full_box(b"stsd", 0, 0, struct.pack(">I", 1), avc1),
        _full_box(b"stts", 0, 0, struct.pack(">III", 1, len(sample_sizes), frame_ticks)),
        _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, len(sample_sizes), 1)),
        _full_box(
            b"stsz",
            0,
            0,
            struct.pack(f">II{len(sample_sizes)}I", 0, len(sample_sizes), *sample_sizes),
        ),
        _full_box(b"stco", 0, 0, struct.pack(">II", 1, mdat_data_offset)),
    )
    minf = _box(b"minf", vmhd, dinf, stbl)
    trak = _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))
    return _box(b"moov", mvhd, trak)


def _build(timing: tuple[int, int]) -> bytes:
    sps, pps = _sps(), _pps()
    samples = [struct.pack(">I", len(nal)) + nal for nal in (_idr_frame(i) for i in range(FRAMES))]
    sizes = [len(s) for s in samples]
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2avc1mp41")
    # the offset value never changes the moov's length
    moov_len = len(_moov(sizes, 0, sps, pps, timing))
    moov = _moov(sizes, len(ftyp) + moov_len + 8, sps, pps, timing)
    return ftyp + moov + _box(b"mdat", *samples)


@functools.cache
def tiny_mp4() -> bytes:
    """Built once per process; every text2video result URL serves these same bytes."""
    return _build((TIMESCALE, FRAME_TICKS))


@functools.lru_cache(maxsize=256)
def mp4_lasting(millis: int) -> bytes:
    """The same eight frames stretched to ``millis`` ms: with a timescale of FRAMES ticks per ms,
    each frame lasts exactly ``millis`` ticks, so any whole-millisecond length is exact. Cached:
    results come in few distinct lengths."""
    if millis <= 0:
        raise ValueError("an MP4 must last at least 1 ms")
    return _build((TIMESCALE * FRAMES, millis))


def mp4_duration(data: bytes) -> float:
    """Seconds in the movie header (``moov/mvhd``, version 0 or 1) of an MP4."""
    moov = _child(data, b"moov")
    mvhd = _child(moov, b"mvhd")
    if mvhd[0] == 1:
        timescale, duration = struct.unpack_from(">IQ", mvhd, 4 + 16)
    else:
        timescale, duration = struct.unpack_from(">II", mvhd, 4 + 8)
    return float(duration / timescale)


def _child(data: bytes, kind: bytes) -> bytes:
    """The payload of the first box of ``kind`` among ``data``'s top-level boxes."""
    pos = 0
    while pos + 8 <= len(data):
        size, found = struct.unpack_from(">I4s", data, pos)
        if size < 8:
            break
        if found == kind:
            return data[pos + 8 : pos + size]
        pos += size
    raise ValueError(f"no {kind.decode()} box")

"""MurmurHash3 x64 128 (Austin Appleby's public-domain algorithm), seed 0, in Python: the hash
LAION's ``hash`` column holds (the first 64-bit half, signed, of the UTF-8 bytes of URL +
TEXT). Written here from the algorithm's description, so the release needs no C extension;
``tests/export`` checks it against known values."""

import struct

MASK = (1 << 64) - 1
C1, C2 = 0x87C37B91114253D5, 0x4CF5AD432745937F


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & MASK


def _fmix(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & MASK
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & MASK
    return k ^ (k >> 33)


def _mix_k1(k1: int) -> int:
    return (_rotl((k1 * C1) & MASK, 31) * C2) & MASK


def _mix_k2(k2: int) -> int:
    return (_rotl((k2 * C2) & MASK, 33) * C1) & MASK


def hash128(data: bytes, seed: int = 0) -> tuple[int, int]:
    """The two unsigned 64-bit halves ``(h1, h2)`` of MurmurHash3_x64_128."""
    h1 = h2 = seed & MASK
    body = len(data) // 16 * 16
    for k1, k2 in struct.iter_unpack("<QQ", data[:body]):
        h1 ^= _mix_k1(k1)
        h1 = (_rotl(h1, 27) + h2) & MASK
        h1 = (h1 * 5 + 0x52DCE729) & MASK
        h2 ^= _mix_k2(k2)
        h2 = (_rotl(h2, 31) + h1) & MASK
        h2 = (h2 * 5 + 0x38495AB5) & MASK
    tail = data[body:]
    h2 ^= _mix_k2(int.from_bytes(tail[8:], "little"))  # zero tail bytes mix to nothing
    h1 ^= _mix_k1(int.from_bytes(tail[:8], "little"))
    h1 ^= len(data)
    h2 ^= len(data)
    h1 = (h1 + h2) & MASK
    h2 = (h2 + h1) & MASK
    h1, h2 = _fmix(h1), _fmix(h2)
    h1 = (h1 + h2) & MASK
    return h1, (h2 + h1) & MASK


def signed(x: int) -> int:
    return x - (1 << 64) if x >> 63 else x


def laion_hash(url: str | None, text: str | None) -> int:
    """LAION's ``hash`` of a pair: ``mmh3.hash64((url + text).encode())[0]``, nulls as ""."""
    return signed(hash128(((url or "") + (text or "")).encode("utf-8"))[0])

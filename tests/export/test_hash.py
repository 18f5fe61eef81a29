"""LAION's ``hash`` column: MurmurHash3 x64 128 of URL + TEXT, first half signed, as
``mmh3.hash64`` gives it (the values below are mmh3 5.3.1's)."""

import pytest

from vlcurate.pipeline.export.murmur import hash128, laion_hash

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
MMH3 = {  # len -> mmh3.hash64(ALPHABET[:len].encode(), signed=False): each tail length, blocks
    1: (9607679276477937801, 16624257681780017498),
    8: (14738604482492337154, 5226723552457736353),
    15: (9997468155419308027, 7661902993592560225),
    16: (14180213048082216739, 4842449962798279450),
    17: (8459014091212432983, 17067034679234858468),
    31: (5471981472859969704, 13752817199296933754),
    32: (1630628199398509283, 17134797052589293416),
    33: (17196416333647536264, 2575245091385667386),
}


@pytest.mark.parametrize("n", sorted(MMH3))
def test_both_halves_equal_mmh3_across_block_and_tail_lengths(n):
    assert hash128(ALPHABET[:n].encode()) == MMH3[n]


def test_laion_hash_is_the_signed_first_half_of_url_plus_text():
    assert laion_hash("", "") == 0
    assert laion_hash("foo", None) == -2129773440516405919  # mmh3's README value
    assert laion_hash(None, "foo") == laion_hash("foo", "")
    assert laion_hash("https://example.com/a.jpg", "a dog") == 4552063883876402835
    assert laion_hash("Ünïcode ", "🐶") == 2346265291388529202  # UTF-8 bytes

"""What is decided before any request: the drops of the pre-filter (SSRF, opt-outs, the URL
block list), the fetch order that interleaves hosts, and the warning when a shard's recent
success rate falls under half."""

import hashlib

from tests.pairs import pairs_table
from vlcurate.pipeline.download.lists import BLOCKLISTED, OPTED_OUT, Blocklist, OptOut
from vlcurate.pipeline.download.prefilter import fetch_order, prefilter
from vlcurate.pipeline.download.safety import PRIVATE_ADDRESS, UrlSafety
from vlcurate.pipeline.download.worker import WINDOW, Watch


def test_hosts_are_interleaved_in_a_fixed_order():
    hosts = ["a"] * 4 + ["b"] * 2 + ["c"]
    order = fetch_order(hosts)
    assert sorted(order) == list(range(7)) and order == fetch_order(hosts)
    rounds = [hosts[row] for row in order]
    assert sorted(rounds[:3]) == ["a", "b", "c"]  # every host's first URL comes first
    assert sorted(rounds[3:5]) == ["a", "b"] and rounds[5:] == ["a", "a"]
    a_rows = [row for row in order if hosts[row] == "a"]
    assert a_rows == sorted(a_rows)  # input order within a host


def test_the_lists_and_the_ssrf_checks_drop_before_any_request(tmp_path):
    urls = [
        "http://cdn.example.com/ok.jpg",
        "http://img.optedout.org/x.jpg",
        "http://example.net/listed.jpg",
        "http://169.254.169.254/latest/meta-data/",
    ]
    (tmp_path / "out.txt").write_text("optedout.org\n")
    listed = hashlib.sha256(urls[2].encode()).hexdigest()
    (tmp_path / "block.txt").write_text(f"# a list\n{listed}\n")
    table = pairs_table(*(f"picture {i}" for i in range(4)), urls=urls)
    opt_out = OptOut.from_files([str(tmp_path / "out.txt")])
    blocklist = Blocklist.from_files([str(tmp_path / "block.txt")])
    result = prefilter(table, UrlSafety(), opt_out, blocklist)
    assert result.safe.column("url").to_pylist() == [urls[0]]
    assert dict(result.stats.main.dropped) == {OPTED_OUT: 1, BLOCKLISTED: 1, PRIVATE_ADDRESS: 1}
    # the refused rows are kept for inspection, except the listed URL, written nowhere
    assert result.unsafe.column("url").to_pylist() == [urls[1], urls[3]]
    assert result.unsafe.column("drop_reason").to_pylist() == [OPTED_OUT, PRIVATE_ADDRESS]


def test_a_shard_warns_once_a_window_when_most_recent_urls_fail(capsys):
    watch = Watch("00007")
    for i in range(WINDOW - 1):
        watch.add(i % 3 == 0, None if i % 3 == 0 else "timeout")
    assert capsys.readouterr().err == ""  # not a whole window yet
    watch.add(False, "timeout")
    err = capsys.readouterr().err
    assert "shard 00007" in err and "33%" in err and "timeout" in err
    for _ in range(WINDOW - 1):
        watch.add(False, "timeout")
    assert capsys.readouterr().err == ""  # at most once a window
    healthy = Watch("00008")
    for _ in range(2 * WINDOW):
        healthy.add(True, None)
    assert capsys.readouterr().err == ""

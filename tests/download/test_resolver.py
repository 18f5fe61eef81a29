"""The download's resolver: pins as curl's --resolve, IP literals without DNS, one system lookup
per name per process (the answer and the failure both cached), and the caller's deadline."""

import ipaddress
import threading
import time

import pytest

from vlcurate.pipeline.download.resolver import ResolveError, Resolver, parse_pins


def test_pins_answer_without_asking_dns():
    resolver = Resolver(
        ["cdn.example.com:127.0.0.16", "cdn.example.com:[::1]", "A.example:1.2.3.4"]
    )
    answer = resolver.resolve("cdn.example.com", 80, time.monotonic() + 1)
    assert answer == [ipaddress.ip_address("127.0.0.16"), ipaddress.ip_address("::1")]
    assert resolver.resolve("a.example", 80, time.monotonic() + 1) == [
        ipaddress.ip_address("1.2.3.4")
    ]
    assert resolver.lookups == 0


@pytest.mark.parametrize(
    "entry", ["cdn.example.com", "cdn.example.com:", ":1.2.3.4", "h:not-an-ip"]
)
def test_a_bad_pin_is_refused_naming_it(entry):
    with pytest.raises(ValueError, match="is not"):
        parse_pins([entry])


def test_an_ip_literal_needs_no_lookup():
    resolver = Resolver()
    assert resolver.resolve("93.184.216.34", 80, time.monotonic() + 1) == [
        ipaddress.ip_address("93.184.216.34")
    ]
    assert resolver.resolve("[2001:db8::1]", 443, time.monotonic() + 1) == [
        ipaddress.ip_address("2001:db8::1")
    ]
    assert resolver.lookups == 0


def test_a_name_is_looked_up_once_by_many_threads():
    resolver = Resolver()
    answers = []

    def ask():
        answers.append(resolver.resolve("localhost", 80, time.monotonic() + 5))

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert resolver.lookups == 1 and len(answers) == 16
    assert all(answer == answers[0] for answer in answers)
    assert any(ip.is_loopback for ip in answers[0])
    assert answers[0][0].version == 4 or all(ip.version == 6 for ip in answers[0])  # v4 first


def test_an_unknown_name_fails_once_and_the_failure_is_kept():
    resolver = Resolver()
    for _ in range(3):
        with pytest.raises(ResolveError):
            resolver.resolve("no-such-host.invalid", 80, time.monotonic() + 10)
    assert resolver.lookups == 1


def test_a_passed_deadline_gives_up_at_once():
    resolver = Resolver(ttl=0.0)  # nothing cached: every call asks
    started = time.monotonic()
    with pytest.raises(ResolveError, match="deadline"):
        resolver.resolve("localhost", 80, started - 1)
    assert time.monotonic() - started < 5  # no waiting for an answer past the deadline

"""A real S3 endpoint on 127.0.0.1 for tests and benchmarks: moto's server in a process of its
own (so its request handling never competes with the client for this interpreter's GIL), reached
by real s3fs/botocore clients through ``AWS_ENDPOINT_URL``.

Usable outside pytest (the cluster tests, ``benchmarks/storage.py``)::

    with MotoS3() as s3:                 # or s3 = MotoS3().start() ... s3.stop()
        os.environ.update(s3.env())      # subprocesses and Spark executors inherit it
        s3.url("run-1/out")              # -> "s3://curate-test/run-1/out"
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

START_TIMEOUT_S = 60
BUCKET = "curate-test"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoS3:
    """``moto_server`` on a free loopback port with one bucket, ``bucket``."""

    def __init__(self, bucket: str = BUCKET, port: int = 0):
        self.bucket = bucket
        self.port = port  # 0: a free one when started
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What a client needs to reach the server, and nothing of the user's AWS set-up."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def url(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *(p.strip("/") for p in parts if p)])

    def prefix(self, name: str = "t") -> str:
        """A fresh ``s3://bucket/name-XXXXXXXX`` no other test writes under."""
        return self.url(f"{name}-{uuid.uuid4().hex[:8]}")

    def start(self) -> "MotoS3":
        self.port = self.port or free_port()
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto_server did not start on {self.endpoint}")
            time.sleep(0.1)
        request = urllib.request.Request(f"{self.endpoint}/{self.bucket}", method="PUT")
        urllib.request.urlopen(request, timeout=10).close()
        return self

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.endpoint}/", timeout=1).close()
            return True
        except urllib.error.HTTPError:  # any answer at all: the server is up
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "MotoS3":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def apply_env(env: dict[str, str]) -> dict[str, str | None]:
    """Set ``env`` in ``os.environ`` (so subprocesses inherit it) and drop fsspec's cached S3
    clients; returns what to give :func:`restore_env`."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    _forget_clients()
    return old


def restore_env(old: dict[str, str | None]) -> None:
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    _forget_clients()


def _forget_clients() -> None:
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()

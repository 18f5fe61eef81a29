"""Write files at URLs fsspec opens (``s3://``, ``gs://``, local paths) to standard output, one
after the other: what a ``pipe:`` shard URL runs, for readers that cannot open a bucket
themselves (open_clip's trainer)::

    python -m open_clip_train.main --train-data \\
      'pipe:python -m vlcurate.jobs.cat s3://bucket/final/{00000..00041}.tar' ...

webdataset expands the braces first, so each shard gets its own ``cat``. Credentials and the
endpoint come from the environment (``AWS_*``, ``AWS_ENDPOINT_URL``) as for every stage.
"""

import shutil
import sys

import fsspec

CHUNK = 1 << 20


def main(argv: list[str] | None = None) -> int:
    urls = sys.argv[1:] if argv is None else argv
    if not urls:
        print("usage: python -m vlcurate.jobs.cat URL [URL ...]", file=sys.stderr)
        return 2
    out = sys.stdout.buffer
    for url in urls:
        try:
            with fsspec.open(url, "rb") as f:
                shutil.copyfileobj(f, out, CHUNK)
        except BrokenPipeError:  # the reader stopped early (webdataset closes the pipe)
            return 0
        except OSError as e:
            print(f"cat: {url}: {e}", file=sys.stderr)
            return 1
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

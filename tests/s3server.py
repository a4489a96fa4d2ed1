"""An S3-compatible server for tests: moto's server mode (``moto[server]`` from PyPI)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3

# Any credentials do: moto accepts every key; these keep boto3 from looking further.
ACCESS_KEY = "djust-test"
SECRET_KEY = "djust-test-secret"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """``python -m moto.server`` on 127.0.0.1, in a child process, stopped by ``stop()``."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="djust-s3-"))
        self.log = self.workdir / "moto.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> S3Server:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1).close()
                return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"moto exited: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto's server did not start in 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def client(self) -> Any:
        """A boto3 client of the server, as a test inspects the bucket with."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def env(self, bucket: str) -> dict[str, str]:
        """What ``make_server`` needs for a djust server that stores into ``bucket``."""
        return {"TEST_S3_ENDPOINT": self.endpoint, "TEST_S3_BUCKET": bucket}

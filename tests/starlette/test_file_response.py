# Vendored from Starlette 1.10.0 (the PyPI sdist starlette-1.10.0.tar.gz), tests/test_responses.py (its FileResponse tests and the fixtures and helpers they use),
# run against linuxaio.starlette's classes. Changes: FileResponse is imported from linuxaio.starlette instead of starlette.responses;
# the file_path fixture watches the files linuxaio.starlette.open_file opens, where
# Starlette's watches anyio.open_file (what each FileResponse opens its file with).
# Nothing else is changed: every assertion is Starlette's.
#
# Starlette's license:
#
# Copyright © 2018, [Encode OSS Ltd](https://www.encode.io/).
# All rights reserved.
#
# Redistribution and use in source and binary forms, with or without
# modification, are permitted provided that the following conditions are met:
#
# * Redistributions of source code must retain the above copyright notice, this
#   list of conditions and the following disclaimer.
#
# * Redistributions in binary form must reproduce the above copyright notice,
#   this list of conditions and the following disclaimer in the documentation
#   and/or other materials provided with the distribution.
#
# * Neither the name of the copyright holder nor the names of its
#   contributors may be used to endorse or promote products derived from
#   this software without specific prior written permission.
#
# THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
# AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
# IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
# DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
# FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
# DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
# SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
# CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
# OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
# OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.

from __future__ import annotations

import datetime as dt
import os
import re
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx2 as httpx
import pytest
from python_multipart import MultipartParser

from starlette import status
from starlette.background import BackgroundTask
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

import linuxaio.starlette
from linuxaio.starlette import FileResponse
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send
from tests.types import TestClientFactory




def test_file_response(tmp_path: Path, test_client_factory: TestClientFactory) -> None:
    path = tmp_path / "xyz"
    content = b"<file content>" * 1000
    path.write_bytes(content)

    filled_by_bg_task = ""

    async def numbers(minimum: int, maximum: int) -> AsyncIterator[str]:
        for i in range(minimum, maximum + 1):
            yield str(i)
            if i != maximum:
                yield ", "
            await anyio.sleep(0)

    async def numbers_for_cleanup(start: int = 1, stop: int = 5) -> None:
        nonlocal filled_by_bg_task
        async for thing in numbers(start, stop):
            filled_by_bg_task = filled_by_bg_task + thing

    cleanup_task = BackgroundTask(numbers_for_cleanup, start=6, stop=9)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = FileResponse(path=path, filename="example.png", background=cleanup_task)
        await response(scope, receive, send)

    assert filled_by_bg_task == ""
    client = test_client_factory(app)
    response = client.get("/")
    expected_disposition = 'attachment; filename="example.png"'
    assert response.status_code == status.HTTP_200_OK
    assert response.content == content
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"] == expected_disposition
    assert "content-length" in response.headers
    assert "last-modified" in response.headers
    assert "etag" in response.headers
    assert filled_by_bg_task == "6, 7, 8, 9"


@pytest.mark.anyio
async def test_file_response_on_head_method(tmp_path: Path) -> None:
    path = tmp_path / "xyz"
    content = b"<file content>" * 1000
    path.write_bytes(content)

    app = FileResponse(path=path, filename="example.png")

    async def receive() -> Message:  # type: ignore[empty-body]
        ...  # pragma: no cover

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == status.HTTP_200_OK
            headers = Headers(raw=message["headers"])
            assert headers["content-type"] == "image/png"
            assert "content-length" in headers
            assert "content-disposition" in headers
            assert "last-modified" in headers
            assert "etag" in headers
        elif message["type"] == "http.response.body":  # pragma: no branch
            assert message["body"] == b""
            assert message["more_body"] is False

    # Since the TestClient drops the response body on HEAD requests, we need to test
    # this directly.
    await app({"type": "http", "method": "head", "headers": [(b"key", b"value")]}, receive, send)


def test_file_response_set_media_type(tmp_path: Path, test_client_factory: TestClientFactory) -> None:
    path = tmp_path / "xyz"
    path.write_bytes(b"<file content>")

    # By default, FileResponse will determine the `content-type` based on
    # the filename or path, unless a specific `media_type` is provided.
    app = FileResponse(path=path, filename="example.png", media_type="image/jpeg")
    client: TestClient = test_client_factory(app)
    response = client.get("/")
    assert response.headers["content-type"] == "image/jpeg"


def test_file_response_default_media_type(tmp_path: Path, test_client_factory: TestClientFactory) -> None:
    path = tmp_path / "file.unknownext"
    path.write_bytes(b"<file content>")

    # When the media type cannot be guessed from the filename or path, it
    # falls back to "application/octet-stream" rather than "text/plain".
    app = FileResponse(path=path)
    client: TestClient = test_client_factory(app)
    response = client.get("/")
    assert response.headers["content-type"] == "application/octet-stream"


def test_file_response_with_directory_raises_error(tmp_path: Path, test_client_factory: TestClientFactory) -> None:
    app = FileResponse(path=tmp_path, filename="example.png")
    client = test_client_factory(app)
    with pytest.raises(RuntimeError) as exc_info:
        client.get("/")
    assert "is not a file" in str(exc_info.value)


def test_file_response_with_missing_file_raises_error(tmp_path: Path, test_client_factory: TestClientFactory) -> None:
    path = tmp_path / "404.txt"
    app = FileResponse(path=path, filename="404.txt")
    client = test_client_factory(app)
    with pytest.raises(RuntimeError) as exc_info:
        client.get("/")
    assert "does not exist" in str(exc_info.value)


def test_file_response_with_chinese_filename(tmp_path: Path, test_client_factory: TestClientFactory) -> None:
    content = b"file content"
    filename = "你好.txt"  # probably "Hello.txt" in Chinese
    path = tmp_path / filename
    path.write_bytes(content)
    app = FileResponse(path=path, filename=filename)
    client = test_client_factory(app)
    response = client.get("/")
    expected_disposition = "attachment; filename*=utf-8''%E4%BD%A0%E5%A5%BD.txt"
    assert response.status_code == status.HTTP_200_OK
    assert response.content == content
    assert response.headers["content-disposition"] == expected_disposition


def test_file_response_with_inline_disposition(tmp_path: Path, test_client_factory: TestClientFactory) -> None:
    content = b"file content"
    filename = "hello.txt"
    path = tmp_path / filename
    path.write_bytes(content)
    app = FileResponse(path=path, filename=filename, content_disposition_type="inline")
    client = test_client_factory(app)
    response = client.get("/")
    expected_disposition = 'inline; filename="hello.txt"'
    assert response.status_code == status.HTTP_200_OK
    assert response.content == content
    assert response.headers["content-disposition"] == expected_disposition


def test_file_response_with_range_header(tmp_path: Path, test_client_factory: TestClientFactory) -> None:
    content = b"file content"
    filename = "hello.txt"
    path = tmp_path / filename
    path.write_bytes(content)
    etag = '"a_non_autogenerated_etag"'
    app = FileResponse(path=path, filename=filename, headers={"etag": etag})
    client = test_client_factory(app)
    response = client.get("/", headers={"range": "bytes=0-4", "if-range": etag})
    assert response.status_code == status.HTTP_206_PARTIAL_CONTENT
    assert response.content == content[:5]
    assert response.headers["etag"] == etag
    assert response.headers["content-length"] == "5"
    assert response.headers["content-range"] == f"bytes 0-4/{len(content)}"


def test_file_response_ignores_weak_if_range(tmp_path: Path, test_client_factory: TestClientFactory) -> None:
    content = b"file content"
    path = tmp_path / "hello.txt"
    path.write_bytes(content)
    etag = 'W/"a_weak_etag"'
    app = FileResponse(path=path, headers={"etag": etag})
    client = test_client_factory(app)

    response = client.get("/", headers={"range": "bytes=0-4", "if-range": etag})

    assert response.status_code == status.HTTP_200_OK
    assert response.content == content
    assert "content-range" not in response.headers


@pytest.mark.anyio
async def test_file_response_with_pathsend(tmpdir: Path) -> None:
    path = tmpdir / "xyz"
    content = b"<file content>" * 1000
    with open(path, "wb") as file:
        file.write(content)

    app = FileResponse(path=path, filename="example.png")

    async def receive() -> Message:  # type: ignore[empty-body]
        ...  # pragma: no cover

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == status.HTTP_200_OK
            headers = Headers(raw=message["headers"])
            assert headers["content-type"] == "image/png"
            assert "content-length" in headers
            assert "content-disposition" in headers
            assert "last-modified" in headers
            assert "etag" in headers
        elif message["type"] == "http.response.pathsend":  # pragma: no branch
            assert message["path"] == str(path)

    # Since the TestClient doesn't support `pathsend`, we need to test this directly.
    await app(
        {"type": "http", "method": "get", "headers": [], "extensions": {"http.response.pathsend": {}}},
        receive,
        send,
    )


@pytest.fixture
def file_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[anyio.AsyncFile[bytes]]]:
    path = tmp_path / "file.bin"
    path.write_bytes(b"x" * (8 * FileResponse.chunk_size))
    files: list[anyio.AsyncFile[bytes]] = []
    open_file = linuxaio.starlette.open_file

    async def track_open_file(path: str | os.PathLike[str]) -> Any:
        file = await open_file(path)
        files.append(file)
        return file

    monkeypatch.setattr(linuxaio.starlette, "open_file", track_open_file)
    return path, files


@pytest.fixture(params=[None, b"bytes=0-", b"bytes=0-131071,196608-524287"])
def scope(request: pytest.FixtureRequest) -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "headers": [] if request.param is None else [(b"range", request.param)],
        "extensions": {"http.response.pathsend": {}} if request.param is not None else {},
    }


@pytest.mark.anyio
@pytest.mark.parametrize("spec_version", [None, "2.3"])
async def test_file_response_stops_on_disconnect(
    file_path: tuple[Path, list[anyio.AsyncFile[bytes]]], scope: Scope, spec_version: str | None
) -> None:
    path, files = file_path
    if spec_version is not None:
        scope["asgi"] = {"spec_version": spec_version}
    disconnected = anyio.Event()
    received_request = False
    submitted = 0
    background_ran = False

    async def receive() -> Message:
        nonlocal received_request
        if not received_request:
            received_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal submitted
        if message["type"] == "http.response.body":
            submitted += len(message["body"])
            if submitted >= FileResponse.chunk_size:
                disconnected.set()
                await anyio.sleep_forever()

    async def cleanup() -> None:
        nonlocal background_ran
        assert len(files) == 1
        assert files[0].closed
        await anyio.sleep(0)
        background_ran = True

    with anyio.fail_after(5):
        await FileResponse(path, background=BackgroundTask(cleanup))(scope, receive, send)

    assert disconnected.is_set()
    assert background_ran


@pytest.mark.anyio
@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_file_response_closes_on_cancellation(
    file_path: tuple[Path, list[anyio.AsyncFile[bytes]]], scope: Scope, spec_version: str
) -> None:
    path, files = file_path
    scope["asgi"] = {"spec_version": spec_version}

    async def receive() -> Message:
        await anyio.sleep_forever()
        pytest.fail("The disconnect listener should be cancelled")  # pragma: no cover - sleep never returns

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            cancel_scope.cancel()
            await anyio.sleep_forever()

    async def cleanup() -> None:
        pytest.fail(
            "Background tasks should not run after external cancellation"
        )  # pragma: no cover - failure sentinel

    with anyio.fail_after(5), anyio.CancelScope() as cancel_scope:
        await FileResponse(path, background=BackgroundTask(cleanup))(scope, receive, send)

    assert cancel_scope.cancelled_caught
    assert len(files) == 1
    assert files[0].closed


@pytest.mark.anyio
@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_file_response_closes_on_send_error(
    file_path: tuple[Path, list[anyio.AsyncFile[bytes]]], scope: Scope, spec_version: str
) -> None:
    path, files = file_path
    scope["asgi"] = {"spec_version": spec_version}
    error = OSError("Disconnected")

    async def receive() -> Message:
        assert spec_version != "2.4"
        await anyio.sleep_forever()
        pytest.fail("The disconnect listener should be cancelled")  # pragma: no cover - sleep never returns

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise error

    with anyio.fail_after(5), pytest.raises(OSError) as exc:
        await FileResponse(path)(scope, receive, send)

    assert exc.value is error
    assert len(files) == 1
    assert files[0].closed


def test_file_response_known_size(tmp_path: Path, test_client_factory: TestClientFactory) -> None:
    path = tmp_path / "xyz"
    content = b"<file content>" * 1000
    path.write_bytes(content)

    app = FileResponse(path=path, filename="example.png")
    client: TestClient = test_client_factory(app)
    response = client.get("/")
    assert response.headers["content-length"] == str(len(content))


README = """\
# BáiZé

Powerful and exquisite WSGI/ASGI framework/toolkit.

The minimize implementation of methods required in the Web framework. No redundant implementation means that you can freely customize functions without considering the conflict with baize's own implementation.

Under the ASGI/WSGI protocol, the interface of the request object and the response object is almost the same, only need to add or delete `await` in the appropriate place. In addition, it should be noted that ASGI supports WebSocket but WSGI does not.
"""  # noqa: E501


@pytest.fixture
def readme_file(tmp_path: Path) -> Path:
    filepath = tmp_path / "README.txt"
    filepath.write_bytes(README.encode("utf8"))
    return filepath


@pytest.fixture
def file_response_client(readme_file: Path, test_client_factory: TestClientFactory) -> TestClient:
    return test_client_factory(app=FileResponse(str(readme_file)))


def test_file_response_without_range(file_response_client: TestClient) -> None:
    response = file_response_client.get("/")
    assert response.status_code == 200
    assert "content-range" not in response.headers
    assert response.headers["content-length"] == str(len(README.encode("utf8")))
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == README


def test_file_response_ignores_range_for_non_success_status(
    readme_file: Path, test_client_factory: TestClientFactory
) -> None:
    client = test_client_factory(app=FileResponse(str(readme_file), status_code=404))
    response = client.get("/", headers={"Range": "bytes=0-100"})

    assert response.status_code == 404
    assert "content-range" not in response.headers
    assert response.headers["content-length"] == str(len(README.encode("utf8")))
    assert response.content == README.encode("utf8")

    head_response = client.head("/", headers={"Range": "bytes=0-100"})
    assert head_response.status_code == 404
    assert "content-range" not in head_response.headers
    assert head_response.headers["content-length"] == str(len(README.encode("utf8")))
    assert head_response.content == b""


def test_file_response_ignores_range_for_non_get_methods(file_response_client: TestClient) -> None:
    response = file_response_client.post("/", headers={"Range": "bytes=0-100"})
    assert response.status_code == 200
    assert "content-range" not in response.headers
    assert response.headers["content-length"] == str(len(README.encode("utf8")))
    assert response.text == README


def test_file_response_head(file_response_client: TestClient) -> None:
    response = file_response_client.head("/")
    assert response.status_code == 200
    assert "content-range" not in response.headers
    assert response.headers["content-length"] == str(len(README.encode("utf8")))
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.content == b""


def test_file_response_range(file_response_client: TestClient) -> None:
    response = file_response_client.get("/", headers={"Range": "bytes=0-100"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 0-100/{len(README.encode('utf8'))}"
    assert response.headers["content-length"] == "101"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.content == README.encode("utf8")[:101]


def test_file_response_range_head(file_response_client: TestClient) -> None:
    response = file_response_client.head("/", headers={"Range": "bytes=0-100"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 0-100/{len(README.encode('utf8'))}"
    assert response.headers["content-length"] == str(101)
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.content == b""


def test_file_response_range_multi(file_response_client: TestClient) -> None:
    response = file_response_client.get("/", headers={"Range": "bytes=0-100, 200-300"})
    assert response.status_code == 206
    assert "content-range" not in response.headers
    assert response.headers["content-length"] == "448"
    assert response.headers["content-type"].startswith("multipart/byteranges; boundary=")


def test_file_response_range_multi_head(file_response_client: TestClient) -> None:
    response = file_response_client.head("/", headers={"Range": "bytes=0-100, 200-300"})
    assert response.status_code == 206
    assert "content-range" not in response.headers
    assert response.headers["content-length"] == "448"
    assert response.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert response.content == b""

    response = file_response_client.head(
        "/",
        headers={"Range": "bytes=200-300", "if-range": response.headers["etag"][:-1]},
    )
    assert response.status_code == 200
    response = file_response_client.head(
        "/",
        headers={"Range": "bytes=200-300", "if-range": response.headers["etag"]},
    )
    assert response.status_code == 206


def test_file_response_range_count_limit(file_response_client: TestClient) -> None:
    ranges = ",".join(f"{index}-{index}" for index in range(0, 200, 2))
    response = file_response_client.get("/", headers={"Range": f"bytes={ranges}"})

    assert response.status_code == 206
    assert response.headers["content-type"].startswith("multipart/byteranges; boundary=")


def test_file_response_range_count_limit_exceeded(file_response_client: TestClient) -> None:
    ranges = ",".join(f"{index}-{index}" for index in range(0, 202, 2))
    response = file_response_client.get("/", headers={"Range": f"bytes={ranges}"})

    assert response.status_code == 200
    assert "content-range" not in response.headers
    assert response.text == README


def test_file_response_range_invalid(file_response_client: TestClient) -> None:
    response = file_response_client.head("/", headers={"Range": "bytes: 0-1000"})
    assert response.status_code == 400


def test_file_response_range_head_max(file_response_client: TestClient) -> None:
    response = file_response_client.head("/", headers={"Range": f"bytes=0-{len(README.encode('utf8')) + 1}"})
    assert response.status_code == 206


def test_file_response_range_416(file_response_client: TestClient) -> None:
    response = file_response_client.head("/", headers={"Range": f"bytes={len(README.encode('utf8')) + 1}-"})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(README.encode('utf8'))}"


def test_file_response_only_support_bytes_range(file_response_client: TestClient) -> None:
    response = file_response_client.get("/", headers={"Range": "items=0-100"})
    assert response.status_code == 400
    assert response.text == "Only support bytes range"


def test_file_response_range_must_be_requested(file_response_client: TestClient) -> None:
    response = file_response_client.get("/", headers={"Range": "bytes="})
    assert response.status_code == 400
    assert response.text == "Range header: range must be requested"


def test_file_response_start_must_be_less_than_end(file_response_client: TestClient) -> None:
    response = file_response_client.get("/", headers={"Range": "bytes=100-0"})
    assert response.status_code == 400
    assert response.text == "Range header: start must be less than end"


def test_file_response_inverted_single_byte_range(file_response_client: TestClient) -> None:
    response = file_response_client.get("/", headers={"Range": "bytes=5-4"})
    assert response.status_code == 400
    assert response.text == "Range header: start must be less than end"


def test_file_response_single_byte_range(file_response_client: TestClient) -> None:
    response = file_response_client.get("/", headers={"Range": "bytes=5-5"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 5-5/{len(README.encode('utf8'))}"
    assert response.headers["content-length"] == "1"


def test_file_response_merge_ranges(file_response_client: TestClient) -> None:
    response = file_response_client.get("/", headers={"Range": "bytes=0-100, 50-200"})
    assert response.status_code == 206
    assert response.headers["content-length"] == "201"
    assert response.headers["content-range"] == f"bytes 0-200/{len(README.encode('utf8'))}"


@dataclass
class MultipartPart:
    headers: dict[bytes, bytes]
    data: bytes


def parse_multipart_data(data: bytes, boundary: bytes | str) -> list[MultipartPart]:
    parts: list[MultipartPart] = []
    done = False

    current_headers: dict[bytes, bytes] = {}
    current_header_field: bytes = b""

    def on_part_begin() -> None:
        nonlocal current_headers
        current_headers = {}

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts.append(MultipartPart(current_headers, data[start:end]))

    def on_header_field(data: bytes, start: int, end: int) -> None:
        nonlocal current_header_field
        current_header_field = data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        current_headers[current_header_field] = data[start:end]

    def on_end() -> None:
        nonlocal done
        done = True

    parser = MultipartParser(
        boundary,
        dict(
            on_part_begin=on_part_begin,
            on_part_data=on_part_data,
            on_header_field=on_header_field,
            on_header_value=on_header_value,
            on_end=on_end,
        ),
    )
    parser.write(data)
    parser.finalize()
    assert done
    return parts



def test_file_response_insert_ranges(file_response_client: TestClient) -> None:
    response = file_response_client.get("/", headers={"Range": "bytes=100-200, 0-50"})

    assert response.status_code == 206
    assert "content-range" not in response.headers
    assert response.headers["content-type"].startswith("multipart/byteranges; boundary=")
    boundary = response.headers["content-type"].split("boundary=")[1]
    assert response.text.splitlines() == [
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Range: bytes 0-50/526",
        "",
        "# BáiZé",
        "",
        "Powerful and exquisite WSGI/ASGI framewo",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Range: bytes 100-200/526",
        "",
        "ds required in the Web framework. No redundant implementation means that you can freely customize fun",
        f"--{boundary}--",
    ]

    parts = parse_multipart_data(response._content, boundary)
    assert all(
        value == b"text/plain; charset=utf-8"
        for part in parts
        for key, value in part.headers.items()
        if key == b"Content-Type"
    )
    assert len(parts) == 2
    assert parts[0].headers[b"Content-Range"] == b"bytes 0-50/526"
    assert parts[0].data == "# BáiZé\n\nPowerful and exquisite WSGI/ASGI framewo".encode()
    assert parts[1].headers[b"Content-Range"] == b"bytes 100-200/526"
    assert (
        parts[1].data
        == b"ds required in the Web framework. No redundant implementation means that you can freely customize fun"
    )


def test_file_response_range_without_dash(file_response_client: TestClient) -> None:
    response = file_response_client.get("/", headers={"Range": "bytes=100, 0-50"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 0-50/{len(README.encode('utf8'))}"


def test_file_response_range_empty_start_and_end(file_response_client: TestClient) -> None:
    response = file_response_client.get("/", headers={"Range": "bytes= - , 0-50"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 0-50/{len(README.encode('utf8'))}"


def test_file_response_range_ignore_non_numeric(file_response_client: TestClient) -> None:
    response = file_response_client.get("/", headers={"Range": "bytes=abc-def, 0-50"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 0-50/{len(README.encode('utf8'))}"


def test_file_response_suffix_range(file_response_client: TestClient) -> None:
    # Test suffix range (last N bytes) - line 523 with empty start_str
    response = file_response_client.get("/", headers={"Range": "bytes=-100"})
    assert response.status_code == 206
    file_size = len(README.encode("utf8"))
    assert response.headers["content-range"] == f"bytes {file_size - 100}-{file_size - 1}/{file_size}"
    assert response.headers["content-length"] == "100"
    assert response.content == README.encode("utf8")[-100:]


def test_file_response_suffix_range_larger_than_file(file_response_client: TestClient) -> None:
    response = file_response_client.get("/", headers={"Range": "bytes=-1000"})

    file_size = len(README.encode("utf8"))
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 0-{file_size - 1}/{file_size}"
    assert response.headers["content-length"] == str(file_size)
    assert response.content == README.encode("utf8")


def test_file_response_multiple_calls(file_response_client: TestClient) -> None:
    response = file_response_client.get("/", headers={"Range": "bytes=0-100"})
    assert response.status_code == 206

    response = file_response_client.get("/")
    assert response.status_code == 200
    assert "content-range" not in response.headers
    assert response.headers["content-length"] == str(len(README.encode("utf8")))
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.anyio
async def test_file_response_multi_small_chunk_size(readme_file: Path) -> None:
    class SmallChunkSizeFileResponse(FileResponse):
        chunk_size = 10

    app = SmallChunkSizeFileResponse(path=str(readme_file))

    received_chunks: list[bytes] = []
    start_message: dict[str, Any] = {}

    async def receive() -> Message:
        await anyio.sleep_forever()
        pytest.fail("The disconnect listener should be cancelled")  # pragma: no cover - sleep never returns

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            start_message.update(message)
        elif message["type"] == "http.response.body":  # pragma: no branch
            received_chunks.append(message["body"])

    with anyio.fail_after(5):
        await app({"type": "http", "method": "get", "headers": [(b"range", b"bytes=0-15,20-35,35-50")]}, receive, send)
    assert start_message["status"] == 206

    headers = Headers(raw=start_message["headers"])
    assert "content-range" not in headers
    assert headers.get("accept-ranges") == "bytes"
    assert "content-length" in headers
    assert "last-modified" in headers
    assert "etag" in headers
    assert headers["content-type"].startswith("multipart/byteranges; boundary=")
    boundary = headers["content-type"].split("boundary=")[1]

    assert received_chunks == [
        # Send the part headers.
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 0-15/526\r\n\r\n".encode(),
        # Send the first chunk (10 bytes).
        b"# B\xc3\xa1iZ\xc3\xa9\n",
        # Send the second chunk (6 bytes).
        b"\nPower",
        # Send the new line to separate the parts.
        b"\r\n",
        # Send the part headers. We merge the ranges 20-35 and 35-50 into a single part.
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 20-50/526\r\n\r\n".encode(),
        # Send the first chunk (10 bytes).
        b"and exquis",
        # Send the second chunk (10 bytes).
        b"ite WSGI/A",
        # Send the third chunk (10 bytes).
        b"SGI framew",
        # Send the last chunk (1 byte).
        b"o",
        b"\r\n",
        f"--{boundary}--".encode(),
    ]


@pytest.mark.anyio
async def test_file_response_multi_range_unexpected_eof(tmp_path: Path) -> None:
    path = tmp_path / "file.txt"
    path.write_bytes(b"0123456789")
    response = FileResponse(path, stat_result=path.stat())
    path.write_bytes(b"012")

    transport = httpx.ASGITransport(app=response)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        with (
            anyio.fail_after(1),
            pytest.raises(
                RuntimeError,
                match=re.escape(f"File at path {path} is shorter than expected."),
            ),
        ):
            await client.get("/", headers={"Range": "bytes=0-2,5-7"})


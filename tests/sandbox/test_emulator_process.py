"""moto in a process of its own: it serves, relays what the service metrics count, keeps
connections alive without breaking boto3's requests, and never outlives its sandbox."""

from __future__ import annotations

import errno
import http.client
import io
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from werkzeug.serving import make_server

from sandbox import _emulator, settings
from sandbox.emulator import MotoServer, _KeepAliveRequestHandler
from sandbox.emulator_process import EmulatorProcess
from sandbox.service_metrics import EmulatorRequest

REPO = Path(__file__).resolve().parents[2]
REGION = "eu-central-1"
LIST_TABLES = {
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Content-Type": "application/x-amz-json-1.0",
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-central-1/dynamodb/"
    "aws4_request, SignedHeaders=host, Signature=0",
}


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess() as running:
        yield running


def client(emulator: EmulatorProcess, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=emulator.url,
        region_name=REGION,
        aws_access_key_id=settings.SANDBOX_ACCESS_KEY,
        aws_secret_access_key=settings.SANDBOX_SECRET_KEY,
    )


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, ended but not yet reaped, counts as ended)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return status != "Z"


def wait_until_gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_moto_serves_from_another_process(emulator: EmulatorProcess) -> None:
    assert emulator.pid is not None
    assert emulator.pid != os.getpid()
    command = Path(f"/proc/{emulator.pid}/cmdline").read_bytes().split(b"\0")
    assert b"sandbox._emulator" in command
    assert client(emulator, "dynamodb").list_tables()["TableNames"] == []


def test_stop_ends_the_process_and_frees_the_port() -> None:
    emulator = EmulatorProcess()
    emulator.start()
    pid, port = emulator.pid, emulator.port
    assert pid is not None
    emulator.stop()
    assert not alive(pid)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_port_in_use_is_an_oserror_naming_it() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        emulator = EmulatorProcess(port=other.getsockname()[1])
        with pytest.raises(OSError, match="in use") as refused:
            emulator.start()
    assert refused.value.errno == errno.EADDRINUSE
    assert emulator.pid is None


def test_counted_requests_reach_the_observers_in_order_and_others_stay_out(
    emulator: EmulatorProcess,
) -> None:
    seen: list[EmulatorRequest] = []
    emulator.observers.append(seen.append)
    try:
        s3 = client(emulator, "s3")
        s3.create_bucket(
            Bucket="observed", CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        sqs = client(emulator, "sqs")
        queue = sqs.create_queue(QueueName="observed")["QueueUrl"]
        for n in range(3):
            s3.put_object(Bucket="observed", Key=f"file {n}.txt", Body=b"x")
        sqs.send_message(QueueUrl=queue, MessageBody="hello")
        client(emulator, "dynamodb").list_tables()
        emulator.settle()
    finally:
        emulator.observers.remove(seen.append)

    assert [(r.service, r.method, r.path) for r in seen[:3]] == [
        ("s3", "PUT", f"/observed/file%20{n}.txt") for n in range(3)
    ]
    assert seen[3].service == "sqs"
    assert seen[3].headers["x-amz-target"] == "AmazonSQS.SendMessage"
    assert b"hello" in seen[3].body
    # Creating a bucket or queue, or any DynamoDB request, is nothing the metrics count.
    assert len(seen) == 4


def test_a_connection_serves_request_after_request(emulator: EmulatorProcess) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    try:
        for _ in range(3):
            connection.request("POST", "/", body=b"{}", headers=LIST_TABLES)
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b'{"TableNames": []}')
            assert not response.will_close
        local = connection.sock.getsockname()
        connection.request("POST", "/", body=b"{}", headers=LIST_TABLES)
        connection.getresponse().read()
        assert connection.sock.getsockname() == local  # the same connection, still open
    finally:
        connection.close()


def test_a_body_the_application_leaves_unread_does_not_spill_into_the_next_request() -> None:
    # In this process and without observers, so nothing but moto reads the body.
    server = MotoServer(keep_alive=True)
    server.start()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        # moto's data API answers a GET without reading its body.
        connection.request("GET", "/moto-api/data.json", body=b"x" * 100_000)
        first = connection.getresponse()
        first.read()
        assert first.status == 200
        connection.request("POST", "/", body=b"{}", headers=LIST_TABLES)
        second = connection.getresponse()
        assert (second.status, second.read()) == (200, b'{"TableNames": []}')
    finally:
        connection.close()
        server.stop()


def test_boto3s_empty_object_with_expect_continue_and_underscored_metadata_work_kept_alive(
    emulator: EmulatorProcess,
) -> None:
    s3 = client(emulator, "s3")
    s3.create_bucket(Bucket="kept", CreateBucketConfiguration={"LocationConstraint": REGION})
    for round_ in range(2):  # the second round reuses the pooled connection
        s3.put_object(Bucket="kept", Key=f"empty-{round_}", Body=b"")  # Expect: 100-continue
        s3.put_object(Bucket="kept", Key=f"meta-{round_}", Body=b"m", Metadata={"my_key": "value"})
        assert s3.get_object(Bucket="kept", Key=f"empty-{round_}")["Body"].read() == b""
        head = s3.head_object(Bucket="kept", Key=f"meta-{round_}")
        assert head["Metadata"] == {"my_key": "value"}


def test_a_chunked_request_body_is_read_to_its_end(emulator: EmulatorProcess) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    try:
        connection.request("POST", "/", body=iter([b"{", b"}"]), headers=LIST_TABLES)
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b'{"TableNames": []}')
        connection.request("POST", "/", body=b"{}", headers=LIST_TABLES)
        assert connection.getresponse().status == 200
    finally:
        connection.close()


# The parent restores Python's own Ctrl-C handler: started from a background job of a
# non-interactive shell (a CI runner's), it would inherit SIGINT ignored and never end.
PARENT = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {repo!r})
from sandbox.emulator_process import EmulatorProcess
emulator = EmulatorProcess()
emulator.start()
print(emulator.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("how", ["killed", "interrupted"])
def test_the_emulator_never_outlives_its_parent(how: str) -> None:
    """SIGKILL of the parent (a crash), or Ctrl-C to the whole process group."""
    parent = subprocess.Popen(  # noqa: S603 - our own code
        [sys.executable, "-c", PARENT.format(repo=str(REPO))],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert parent.stdout is not None
        emulator_pid = int(parent.stdout.readline())
        assert alive(emulator_pid)
        if how == "killed":
            parent.kill()
        else:
            # The emulator ignores Ctrl-C itself; it ends because its parent ended.
            os.killpg(parent.pid, signal.SIGINT)
        parent.wait(timeout=30)
        assert wait_until_gone(emulator_pid), "the emulator outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_an_interrupt_alone_does_not_stop_the_emulator(emulator: EmulatorProcess) -> None:
    assert emulator.pid is not None
    os.kill(emulator.pid, signal.SIGINT)
    assert client(emulator, "dynamodb").list_tables()["TableNames"] == []


# The emulator's side, in this process (the child's own run is not measured for coverage).
def _request(method: str, path: str, authorization_service: str, target: str = "") -> Any:
    headers = {
        "authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-central-1/"
        f"{authorization_service}/aws4_request, SignedHeaders=host, Signature=0"
    }
    if target:
        headers["x-amz-target"] = target
    return EmulatorRequest(method, path, "", headers, b"", 200)


def test_the_relay_sends_counted_requests_in_order_then_each_settle_marker() -> None:
    receiving, sending = multiprocessing.Pipe(duplex=False)
    relay = _emulator._Relay(sending)
    put = _request("PUT", "/bucket/key", "s3")
    bucket = _request("PUT", "/bucket", "s3")
    send = _request("POST", "/", "sqs", "AmazonSQS.SendMessage")
    receive = _request("POST", "/", "sqs", "AmazonSQS.ReceiveMessage")
    table = _request("POST", "/", "dynamodb", "DynamoDB_20120810.PutItem")
    for request in (put, bucket, send, receive, table):
        relay.observe(request)
    relay.settle(1)
    relay.settle(2)

    messages: list[Any] = []
    while len(messages) < 2 or messages[-1] != ("settled", 2):
        assert receiving.poll(10), f"the relay sent only {messages}"
        messages.append(receiving.recv())
    observed = [r for kind, batch in messages if kind == "observed" for r in batch]
    assert observed == [put, send]  # what the service metrics may count, in order
    assert [m for m in messages if m[0] == "settled"] == [("settled", 1), ("settled", 2)]
    assert messages.index(("settled", 1)) > max(
        i for i, m in enumerate(messages) if m[0] == "observed"
    )


def test_the_emulators_commands_are_obeyed_until_their_end() -> None:
    settled: list[int] = []

    class Relay:
        def settle(self, marker: int) -> None:
            settled.append(marker)

    commands = io.BytesIO(b"settle 1\n\nsomething else\nsettle 22\n")
    _emulator.follow_commands(commands, Relay())  # type: ignore[arg-type]
    assert settled == [1, 22]


def test_the_emulator_side_reports_ready_or_why_it_cannot_serve() -> None:
    receiving, sending = multiprocessing.Pipe(duplex=False)
    started = _emulator.start_server("127.0.0.1", 0, sending)
    assert started is not None
    server, _ = started
    try:
        assert receiving.recv() == ("ready", server.port)
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", server.port)) == 0
        assert _emulator.start_server("127.0.0.1", server.port, sending) is None
        kind, number, text = receiving.recv()
        assert (kind, number) == ("error", errno.EADDRINUSE)
        assert "in use" in text
    finally:
        server.stop()


@pytest.fixture
def in_process() -> Iterator[tuple[MotoServer, list[EmulatorRequest]]]:
    """The kept-alive server in this process, its answered requests observed."""
    server = MotoServer(keep_alive=True)
    seen: list[EmulatorRequest] = []
    server.observers.append(seen.append)
    with server:
        yield server, seen


def test_in_process_too_boto3s_requests_work_kept_alive_and_are_observed(
    in_process: tuple[MotoServer, list[EmulatorRequest]],
) -> None:
    server, seen = in_process
    s3 = boto3.client(
        "s3",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=settings.SANDBOX_ACCESS_KEY,
        aws_secret_access_key=settings.SANDBOX_SECRET_KEY,
    )
    s3.create_bucket(Bucket="here", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="here", Key="empty", Body=b"")
    s3.put_object(Bucket="here", Key="meta", Body=b"m", Metadata={"my_key": "value"})
    assert s3.head_object(Bucket="here", Key="meta")["Metadata"] == {"my_key": "value"}
    puts = [(r.method, r.path, r.status) for r in seen if r.method == "PUT"]
    assert puts == [("PUT", "/here", 200), ("PUT", "/here/empty", 200), ("PUT", "/here/meta", 200)]
    server.reset()


def _serve(app: Any) -> Iterator[int]:
    """`app` behind the kept-alive handler; yields its port."""
    server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=_KeepAliveRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.port
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _streamed(environ: Any, start_response: Any) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])  # no Content-Length
    yield b"first "
    yield b"second"


def _failing(environ: Any, start_response: Any) -> Iterator[bytes]:
    raise RuntimeError("the application failed")


def test_a_response_of_unknown_length_is_chunked_and_the_connection_stays_open() -> None:
    for port in _serve(_streamed):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for _ in range(2):
                connection.request("GET", "/")
                response = connection.getresponse()
                assert response.getheader("Transfer-Encoding") == "chunked"
                assert response.read() == b"first second"
                assert not response.will_close
        finally:
            connection.close()


def test_an_http_1_0_client_gets_the_body_delimited_by_the_close() -> None:
    for port in _serve(_streamed):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")
            answer = b""
            while chunk := client.recv(65536):  # until the server closes
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert b"Transfer-Encoding" not in head
        assert body == b"first second"


def test_a_failing_application_answers_500_and_closes_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for port in _serve(_failing):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            assert response.status == 500
            response.read()
            assert response.will_close
        finally:
            connection.close()
    assert "the application failed" in caplog.text

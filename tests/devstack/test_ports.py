"""A taken port is reported before anything starts: one line naming the port and the
option that changes it, a non-zero exit, nothing left running or created."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from devstack.options import PORT_OPTIONS, DevOptions
from devstack.ports import PortInUseError, check_ports, port_is_free
from devstack.supervisor import EXIT_USAGE, run_dev
from tests.support.ports import free_port


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _options(tmp_path: Path, **ports: int) -> DevOptions:
    chosen = {opt.field: free_port() for opt in PORT_OPTIONS} | ports
    return DevOptions(data_dir=tmp_path / "data", **chosen)


def test_free_and_busy(busy_port: int) -> None:
    assert not port_is_free(busy_port)
    assert port_is_free(free_port())


@pytest.mark.parametrize("opt", PORT_OPTIONS, ids=lambda o: o.field)
def test_the_message_names_the_port_and_the_option(tmp_path: Path, busy_port: int, opt) -> None:
    with pytest.raises(PortInUseError) as caught:
        check_ports(_options(tmp_path, **{opt.field: busy_port}))
    message = str(caught.value)
    assert f"port {busy_port}" in message
    assert opt.flag in message
    assert "\n" not in message


def test_the_same_port_twice_is_refused(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(PortInUseError, match="--ui-port"):
        check_ports(_options(tmp_path, temporal_port=port, ui_port=port))


def test_run_dev_exits_non_zero_and_starts_nothing(
    tmp_path: Path, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    options = _options(tmp_path, api_port=busy_port)
    assert run_dev(options) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"port {busy_port}" in err[0] and "--api-port" in err[0]
    assert not options.data_dir.exists(), "nothing created"
    after = {p.pid for p in psutil.Process().children(recursive=True)}
    assert after <= before, "nothing started"


def test_a_data_dir_in_use_is_refused(tmp_path: Path, capsys) -> None:
    from devstack.supervisor import data_dir_lock

    options = _options(tmp_path)
    with data_dir_lock(options.data_dir.resolve()):
        assert run_dev(options) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--data-dir" in err and str(options.data_dir.resolve()) in err

"""What every command shares: the services contract, the exit codes, the argument types and the
options every sub-command repeats (``--config``, ``-v``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from gos_web_socket.app.workers import WorkerRole

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

PUSH_TARGETS = "push_targets"
"""Not a container id: each route callback's kind, ``topic`` or ``rpc``, by callback name
(``app/__main__.py`` answers it without the server stack for the default container)."""


class Services(Protocol):
    """What the commands need from the container, by service id."""

    def __call__(self, service_id: str) -> Any: ...


class ServicesFactory(Protocol):
    """Builds the services from ``--config``, settings given on the command line and ``-m``.

    ``overrides`` is a nested settings tree (``{"server": {"port": 8080}}``) that beats the
    file and the environment. Raises ConfigurationError.
    """

    def __call__(
        self,
        config: Path | None,
        overrides: Mapping[str, Any],
        profile: bool,
        worker: WorkerRole | None = None,
    ) -> Services: ...


def port_number(value: str) -> int:
    """An argument type: a port number."""
    if not value.isdigit():
        raise argparse.ArgumentTypeError("The port option must be a numeric value.")
    return int(value)


def key_value(value: str) -> tuple[str, str]:
    """An argument type: ``KEY=VALUE``."""
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {value!r}")
    return key, val


def json_value(value: str) -> Any:
    """An argument type: a JSON document."""
    try:
        return json.loads(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {value!r}") from None


def common_options(top_level: bool) -> argparse.ArgumentParser:
    """``--config`` and ``-v``, for the top-level parser or (``top_level`` False) a parent of
    every sub-command."""
    # The sub-commands repeat these options with SUPPRESS defaults, so an option given before the
    # sub-command is not overwritten by the sub-parser's default.
    common = argparse.ArgumentParser(add_help=False)
    config_default: Any = None if top_level else argparse.SUPPRESS
    verbose_default: Any = False if top_level else argparse.SUPPRESS
    common.add_argument(
        "--config", type=Path, metavar="PATH", default=config_default, help="settings YAML file"
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=verbose_default, help="debug logging"
    )
    return common


def one_line(text: object) -> str:
    """``text`` on one line: every failure ends as one line on stderr."""
    return " ".join(str(text).splitlines())

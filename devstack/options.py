"""What `dunning dev` can be told: where the data lives and which local ports to use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"  # Everything binds to loopback: the dev stack is not meant to be shared.


@dataclass(frozen=True)
class PortOption:
    field: str  # attribute of DevOptions
    what: str  # what listens there, for messages
    flag: str  # the command-line option that changes it


# Order = start order; the flags are the ones `dunning dev` and `python -m devstack` accept.
PORT_OPTIONS: tuple[PortOption, ...] = (
    PortOption("temporal_port", "Temporal server (gRPC)", "--temporal-port"),
    PortOption("ui_port", "Temporal UI", "--ui-port"),
    PortOption("smtp_port", "mail catcher SMTP", "--smtp-port"),
    PortOption("mail_port", "mail catcher web page", "--mail-port"),
    PortOption("api_port", "Dunning API", "--api-port"),
    PortOption("worker_metrics_port", "worker metrics (Prometheus)", "--worker-metrics-port"),
)


@dataclass(frozen=True)
class DevOptions:
    data_dir: Path = Path("./.data")
    temporal_port: int = 7233
    ui_port: int = 8233
    smtp_port: int = 1025
    mail_port: int = 8025
    api_port: int = 8000
    worker_metrics_port: int = 9464  # the OpenTelemetry/Prometheus exporter convention
    demo: bool = False

    def __post_init__(self) -> None:
        # Accept str from CLI frameworks; keep one type inside.
        object.__setattr__(self, "data_dir", Path(self.data_dir))

    def ports(self) -> list[tuple[PortOption, int]]:
        return [(opt, int(getattr(self, opt.field))) for opt in PORT_OPTIONS]


"""Run the API under uvicorn, with logging that keeps PHI out of the logs."""

from __future__ import annotations

import uvicorn

from carevault.app import create_app
from carevault.logging_setup import configure
from carevault.privacy.validation_service import stop_strict_validation, warm_up
from carevault.runtime import Runtime
from carevault.settings import Settings


def run(settings: Settings, *, host: str, port: int) -> None:
    configure(settings.log_dir)
    runtime = Runtime(settings)
    app = create_app(runtime, close_runtime=True)
    # Stopped by runtime.close() when the app shuts down; without SMTP, messages stay pending.
    runtime.start_notification_sender()
    runtime.start_retention_schedule()
    if settings.warm_strict_validation:
        warm_up()
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=False,
        log_config=None,
        http="httptools",
        loop="uvloop",
        timeout_graceful_shutdown=5,
    )
    stop_strict_validation()

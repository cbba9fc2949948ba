"""rqscheduler with JSON log lines: `python -m workers.rq_scheduler --url REDIS_URL --interval 1`.

Same arguments as the `rqscheduler` script it runs. That script installs a coloured text handler unless its
logger already has one; a NullHandler there makes its lines go to the root logger, which writes JSON.
"""
from __future__ import annotations

import logging

from rq_scheduler.scripts.rqscheduler import main as rqscheduler_main

from coupon.logging_setup import configure


def main() -> None:
    configure()
    logging.getLogger("rq_scheduler.scheduler").addHandler(logging.NullHandler())
    rqscheduler_main()


if __name__ == "__main__":
    main()

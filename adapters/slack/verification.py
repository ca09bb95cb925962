"""Keeps rejected Slack requests out of the logs.

slack_bolt logs a request that fails signature verification with its whole body (a person's
message text, a command, a file name) and its signature. A filter on the logger bolt uses for
that turns each of its records into one short line saying that a request was rejected.
"""

from __future__ import annotations

import logging

# slack_bolt.middleware.request_verification names its logger after this class, and logs
# nothing there but rejections, so every record of it is rewritten (whatever bolt's wording).
BOLT_VERIFICATION_LOGGER = "slack_bolt.RequestVerification"
REJECTED = "Slack request rejected: invalid signature or stale timestamp (body not logged)"


class RejectedRequestFilter(logging.Filter):
    """Replaces the message of every record (body and signature included) with a short line."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = REJECTED
        record.args = ()
        return True


def hide_rejected_bodies() -> None:
    """Install the filter once on bolt's verification logger (a process-wide logger)."""
    logger = logging.getLogger(BOLT_VERIFICATION_LOGGER)
    if not any(isinstance(f, RejectedRequestFilter) for f in logger.filters):
        logger.addFilter(RejectedRequestFilter())

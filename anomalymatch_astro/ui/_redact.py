"""Keep the labelling server's token out of log lines, in every encoding it may arrive in.

A token may reach a log line raw, percent-encoded (``%74%6F...``, upper or lower
case hex, partly encoded, or encoded twice as ``%2574``), in a query string, or
in a ``Referer`` or ``Cookie`` header.  `token_pattern` matches all of these,
and `RedactFilter`, attached to the UI's loggers while a server runs, rewrites
every record that contains one.
"""

import logging
import re
import threading

__all__ = ["REDACTED", "RedactFilter", "redact", "token_pattern"]

#: What a token is replaced with.
REDACTED = "<token>"

#: The loggers whose records are redacted while a server runs.
LOGGERS = (
    "anomalymatch_astro.ui._server",
    "anomalymatch_astro.ui._httpd",
    "anomalymatch_astro.ui._gallery",
    "anomalymatch_astro.ui._render",
)


def token_pattern(token):
    """A regular expression matching ``token`` raw or percent-encoded (any case, any depth), char by char.

    Parameters
    ----------
    token : str

    Returns
    -------
    re.Pattern

    Examples
    --------
    >>> p = token_pattern("abc-123")
    >>> p.sub("<t>", "GET /?token=%61b%2563-123 and abc-123")
    'GET /?token=<t> and <t>'
    """
    parts = []
    for char in token:
        encoded = "".join(f"%(?:25)*{b:02x}" for b in char.encode("utf-8"))
        parts.append(f"(?:{re.escape(char)}|{encoded})")
    return re.compile("".join(parts), re.IGNORECASE)


_patterns = {}  # token -> (pattern, number of servers using it)
_patterns_lock = threading.Lock()


def redact(text):
    """``text`` with every registered token (see `RedactFilter.add`) replaced by ``<token>``."""
    with _patterns_lock:
        patterns = [pattern for pattern, _ in _patterns.values()]
    for pattern in patterns:
        text = pattern.sub(REDACTED, text)
    return text


class RedactFilter(logging.Filter):
    """A logging filter that removes the tokens of the running servers from every record."""

    def filter(self, record):
        """Rewrite ``record`` when its message holds a token; always keep it."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:  # the traceback's text, as handlers would print it
            record.exc_text = redact(_FORMATTER.formatException(record.exc_info))
        return True

    @staticmethod
    def add(token):
        """Start redacting ``token`` (and attach the filter to the UI's loggers)."""
        with _patterns_lock:
            pattern, count = _patterns.get(token, (None, 0))
            _patterns[token] = (pattern or token_pattern(token), count + 1)
        for name in LOGGERS:
            logger = logging.getLogger(name)
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)

    @staticmethod
    def remove(token):
        """Stop redacting ``token`` (once every server that added it has removed it)."""
        with _patterns_lock:
            pattern, count = _patterns.get(token, (None, 0))
            if count <= 1:
                _patterns.pop(token, None)
            else:
                _patterns[token] = (pattern, count - 1)


_FILTER = RedactFilter()
_FORMATTER = logging.Formatter()

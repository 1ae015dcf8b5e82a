"""Configuration of the archive client (an astropy ``ConfigNamespace``)."""

from astropy import config as _config

__all__ = ["Conf", "conf"]


class Conf(_config.ConfigNamespace):
    """Settings of `~anomalymatch_astro.archives.ArchiveClient`.

    Change them for a session with ``conf.set_temp`` or by assignment, e.g.
    ``anomalymatch_astro.archives.conf.rate_limit = 2``.
    """

    sia_timeout = _config.ConfigItem(
        60.0, "Timeout in seconds of one HTTP request to a VO service or data server.", cfgtype="float"
    )
    max_retries = _config.ConfigItem(
        3,
        "How often a request is retried after a timeout, connection error or 5xx answer.",
        cfgtype="integer",
    )
    backoff = _config.ConfigItem(
        0.5, "Seconds before the first retry; each further retry waits twice as long.", cfgtype="float"
    )
    rate_limit = _config.ConfigItem(
        5.0, "Most requests per second sent by one client (0 for no limit).", cfgtype="float"
    )
    cache_dir = _config.ConfigItem(
        "",
        "Folder of downloaded files (empty: ~/.cache/anomalymatch_astro/archives, or "
        "$XDG_CACHE_HOME/anomalymatch_astro/archives).",
        cfgtype="string",
    )


conf = Conf()

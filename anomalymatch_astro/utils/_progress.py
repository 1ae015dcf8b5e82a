"""Progress bars that can be silenced (tqdm)."""

import importlib.util

if importlib.util.find_spec("ipywidgets") is not None:
    from tqdm.auto import tqdm
else:  # tqdm.auto warns in notebooks without ipywidgets; the text bar works everywhere
    from tqdm.std import tqdm

__all__ = ["progress_bar"]


def progress_bar(iterable=None, *, total=None, desc=None, progress=True, unit="it"):
    """Wrap ``iterable`` in a tqdm progress bar, or return a silent one.

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate over.
    total : int, optional
        Number of items, when ``iterable`` has no length.
    desc : str, optional
        Label shown left of the bar.
    progress : bool, optional
        ``False`` disables the bar (it still counts, so ``.update`` works).
    unit : str, optional
        Unit name shown in the rate.

    Returns
    -------
    tqdm.tqdm
    """
    return tqdm(iterable, total=total, desc=desc, disable=not progress, unit=unit, leave=False)

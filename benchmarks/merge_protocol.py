"""Merge the ``protocol.ecsv`` files of several benchmark runs into one table and its summary.

Usage::

    python benchmarks/merge_protocol.py OUTPUT_DIR RUN_DIR [RUN_DIR ...]

Runs split by set or anomaly class (``anomalymatch-astro benchmark --sets ... --classes ...``,
e.g. in parallel on one GPU) are merged into ``OUTPUT_DIR/protocol.ecsv`` and
``OUTPUT_DIR/protocol_summary.ecsv``; the summary table is printed.
"""

import os
import sys

from astropy.table import Table, vstack

from anomalymatch_astro.benchmarking import summarize_protocol
from anomalymatch_astro.cli._benchmark import format_protocol_table


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    output, runs = argv[0], argv[1:]
    tables = []
    for run in runs:
        path = os.path.join(run, "protocol.ecsv")
        if os.path.exists(path):
            tables.append(Table.read(path))
        else:
            print(f"no results in {run} (skipped)")
    if not tables:
        print("nothing to merge")
        return 1
    table = vstack(tables, metadata_conflicts="silent")
    os.makedirs(output, exist_ok=True)
    table.write(os.path.join(output, "protocol.ecsv"), overwrite=True)
    summary = summarize_protocol(table)
    summary.write(os.path.join(output, "protocol_summary.ecsv"), overwrite=True)
    table.meta["summary"] = summary
    print(format_protocol_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Stage cross_dataset: cross accuracy, feature transferability (CKA), cross-model patching.

Every training seed in ``train.seeds`` is compared (synthetic vs natural model of the
same seed); every table carries a ``seed`` column.
"""

import time

from diffusion_circuits import layout
from diffusion_circuits.cli import stage_args, stage_entry, stage_parser


@stage_entry
def main() -> None:
    args, params = stage_args(stage_parser(__doc__))
    started = time.perf_counter()
    # Imported after parsing (torch, diffusers): --help stays fast.
    from diffusion_circuits.analysis.cross_dataset_study import compare_datasets
    from diffusion_circuits.io import write_json, write_parquet

    tables, metrics = compare_datasets(params)
    for table_name, table in tables.items():
        write_parquet(table, layout.cross_dataset_dir() / f"{table_name}.parquet")
    write_json(metrics, layout.stage_metrics("cross_dataset"))
    write_json({"seconds": time.perf_counter() - started}, layout.stage_timings("cross_dataset"))


if __name__ == "__main__":
    main()

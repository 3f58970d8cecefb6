"""Stage prepare_natural (the paper's "preprocess CelebA"): naturalistic faces.

CelebA when ``natural.source: celeba``; otherwise the real LFW crops shipped with
scikit-image, expanded with augmentation. The source is recorded in every output.
"""

from diffusion_circuits import layout
from diffusion_circuits.cli import stage_args, stage_entry, stage_parser

STAGE = "prepare_natural"


@stage_entry
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--synthetic", default=str(layout.attributes_file("synthetic")))
    parser.add_argument("--out", default=str(layout.dataset_dir("natural")))
    parser.add_argument("--metrics", default=str(layout.stage_metrics(STAGE)))
    args, params = stage_args(parser)
    # Imported after parsing (pandas, scikit-image): --help stays fast.
    import pandas as pd

    from diffusion_circuits.data.build import build_natural
    from diffusion_circuits.data.store import save_faceset
    from diffusion_circuits.io import write_json

    faces, summary = build_natural(params, pd.read_parquet(args.synthetic))
    save_faceset(faces, args.out)
    write_json({"seconds": summary.pop("seconds")}, layout.stage_timings(STAGE))
    write_json(summary, args.metrics)


if __name__ == "__main__":
    main()

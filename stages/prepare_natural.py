"""Stage prepare_natural (the paper's "preprocess CelebA"): naturalistic faces.

CelebA when ``natural.source: celeba``; otherwise the real LFW crops shipped with
scikit-image, expanded with augmentation. The source is recorded in every output.
"""

import pandas as pd

from diffusion_circuits.cli import stage_entry, stage_parser
from diffusion_circuits.data.build import build_natural
from diffusion_circuits.data.store import save_faceset
from diffusion_circuits.io import write_json
from diffusion_circuits.params import load_params


@stage_entry
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--synthetic", default="data/synthetic/attributes.parquet")
    parser.add_argument("--out", default="data/natural")
    parser.add_argument("--metrics", default="metrics/prepare_natural.json")
    args = parser.parse_args()
    params = load_params(args.params)
    faces, summary = build_natural(params, pd.read_parquet(args.synthetic))
    save_faceset(faces, args.out)
    write_json({"seconds": summary.pop("seconds")}, "timings/prepare_natural.json")
    write_json(summary, args.metrics)


if __name__ == "__main__":
    main()

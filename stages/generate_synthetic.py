"""Stage generate_synthetic: procedurally drawn faces, attributes and part masks."""

from diffusion_circuits import layout
from diffusion_circuits.cli import stage_args, stage_entry, stage_parser

STAGE = "generate_synthetic"


@stage_entry
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", default=str(layout.dataset_dir("synthetic")))
    parser.add_argument("--metrics", default=str(layout.stage_metrics(STAGE)))
    args, params = stage_args(parser)
    # Imported after parsing (numpy, scikit-image): --help stays fast.
    from diffusion_circuits.data.build import build_synthetic
    from diffusion_circuits.data.store import save_faceset
    from diffusion_circuits.io import write_json

    faces, summary = build_synthetic(params)
    save_faceset(faces, args.out)
    write_json({"seconds": summary.pop("seconds")}, layout.stage_timings(STAGE))
    write_json(summary, args.metrics)


if __name__ == "__main__":
    main()

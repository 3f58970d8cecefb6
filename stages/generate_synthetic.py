"""Stage generate_synthetic: procedurally drawn faces, attributes and part masks."""

from diffusion_circuits.cli import stage_entry, stage_parser
from diffusion_circuits.data.build import build_synthetic
from diffusion_circuits.data.store import save_faceset
from diffusion_circuits.io import write_json
from diffusion_circuits.params import load_params


@stage_entry
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", default="data/synthetic")
    parser.add_argument("--metrics", default="metrics/generate_synthetic.json")
    args = parser.parse_args()
    params = load_params(args.params)
    faces, summary = build_synthetic(params)
    save_faceset(faces, args.out)
    write_json({"seconds": summary.pop("seconds")}, "timings/generate_synthetic.json")
    write_json(summary, args.metrics)


if __name__ == "__main__":
    main()

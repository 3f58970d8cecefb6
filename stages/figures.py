"""Stage figures: Figures 1-9 of the paper as PNG under plots/figures/."""

from diffusion_circuits.cli import stage_entry, stage_parser
from diffusion_circuits.figures import render_all
from diffusion_circuits.figures.data import load_figure_data
from diffusion_circuits.params import load_params


@stage_entry
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", default="plots/figures")
    args = parser.parse_args()
    params = load_params(args.params)
    render_all(load_figure_data("data", params.train.seeds), args.out)


if __name__ == "__main__":
    main()

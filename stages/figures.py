"""Stage figures: Figures 1-9 as PNG, each with its caption (.txt), under plots/figures/."""

from diffusion_circuits.cli import stage_entry, stage_parser
from diffusion_circuits.figures import render_all
from diffusion_circuits.figures.curves import write_curves
from diffusion_circuits.figures.data import load_figure_data
from diffusion_circuits.params import load_params


@stage_entry
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", default="plots/figures")
    args = parser.parse_args()
    params = load_params(args.params)
    data = load_figure_data("data", params.train.seeds, alpha=params.stats.alpha)
    render_all(data, args.out)
    write_curves(data.study, "plots/curves", params.stats.n_resamples, params.stats.seed,
                 params.stats.confidence)  # fmt: skip


if __name__ == "__main__":
    main()

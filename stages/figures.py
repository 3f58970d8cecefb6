"""Stage figures: Figures 1-9 as PNG, each with its caption (.txt), under plots/figures/."""

from diffusion_circuits import layout
from diffusion_circuits.cli import stage_args, stage_entry, stage_parser


@stage_entry
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", default=str(layout.FIGURES_DIR))
    args, params = stage_args(parser)
    # Imported after parsing (matplotlib, seaborn): --help stays fast.
    from diffusion_circuits.figures import render_all
    from diffusion_circuits.figures.curves import write_curves
    from diffusion_circuits.figures.data import load_figure_data

    data = load_figure_data(layout.DATA, params.train.seeds, alpha=params.stats.alpha)
    render_all(data, args.out)
    write_curves(data.study, layout.CURVES_DIR, params.stats.confidence)


if __name__ == "__main__":
    main()

"""``smart zeroshot``: zero-shot tumour DSC of the thresholded SA attention map (smart.eval.zeroshot)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--encoder", required=True, help="encoder.pt with an SA block, or 'random' (baseline)")
    parser.add_argument("--raters", required=True, help="raters.csv: case_id, image, rater1..5, consensus")
    parser.add_argument("--out", required=True, help="output folder: dsc.csv, summary.json, overlays.png")
    parser.add_argument("--crop", type=int, nargs=3, default=[128, 128, 128], metavar=("D", "H", "W"),
                        help="encoder input crop, centred on the body (default: the paper's 128^3)")
    parser.add_argument("--spacing", type=float, default=2.0, help="resample to this spacing in mm; 0 = keep")
    parser.add_argument("--percentile", type=float, default=90.0, help="attention threshold percentile in the body")
    parser.add_argument("--body-hu", type=float, default=-500.0, help="body mask = HU above this")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    parser.add_argument("--random-grid", type=int, nargs=3, default=None, metavar=("D", "H", "W"),
                        help="mask grid of the random baseline (default: crop // 16)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--name", default="", help="variant name for the figure title (default: the encoder's folder)")


def main(args) -> int:
    from smart.downstream.protocol import resolve_device
    from smart.eval.zeroshot import run_zeroshot

    s = run_zeroshot(args.encoder, args.raters, args.out, crop=args.crop, spacing=args.spacing or None,
                     seed=args.seed, body_threshold=args.body_hu, q=args.percentile, random_grid=args.random_grid,
                     device=resolve_device(args.device), name=args.name)
    print(f"{s['method']}: DSC {s['dsc_mean']:.3f} ± {s['dsc_std']:.3f} over {s['n_cases']} cases "
          f"({s['n_excluded']} excluded: crops that hold too little image, {args.out}/excluded.csv) -> {args.out}")
    return 0

"""``smart attention-maps``: SA attention overlays on cohort CT crops (Fig. 4 style; smart.eval.attention_maps)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--encoder", required=True, help="encoder.pt with an SA block")
    parser.add_argument("--cohort", required=True, help="cohort CSV (sample_id, patient_id, image, label)")
    parser.add_argument("--out", required=True, help="output PNG")
    parser.add_argument("--n", type=int, default=3, help="number of samples (the first n rows)")
    parser.add_argument("--samples", nargs="*", default=None, help="sample_ids to draw instead of the first n")
    parser.add_argument("--crop", type=int, nargs=3, default=[64, 64, 64], metavar=("D", "H", "W"))
    parser.add_argument("--title", default="", help="figure title (default: the encoder's folder, method and cohort)")


def main(args) -> int:
    from smart.eval.attention_maps import attention_figure

    ids = attention_figure(args.encoder, args.cohort, args.out, n=args.n, crop=args.crop, sample_ids=args.samples,
                             title=args.title)
    print(f"attention maps of {', '.join(ids)} -> {args.out}")
    return 0

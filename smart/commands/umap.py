"""``smart umap``: UMAP layout + intra/inter-cluster distances of embedded features (smart.eval.clustering)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--features", required=True, help="features.npz from 'smart embed'")
    parser.add_argument("--out", required=True, help="output folder: clusters.json, umap.png, umap.csv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-neighbors", type=int, default=15)
    parser.add_argument("--min-dist", type=float, default=0.1)
    parser.add_argument("--title", default="", help="name in the figure title (default: the encoder's folder = variant)")


def main(args) -> int:
    from smart.eval.clustering import cluster_features

    r = cluster_features(args.features, args.out, seed=args.seed, n_neighbors=args.n_neighbors,
                         min_dist=args.min_dist, title=args.title)
    print(f"intra {r['intra_mean']:.3f} ± {r['intra_std']:.3f}  inter {r['inter_mean']:.3f} ± {r['inter_std']:.3f}"
          f"  -> {args.out}")
    return 0

"""``smart embed``: frozen-encoder features of OrganMNIST3D (smart.eval.embed.embed_npz)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--encoder", required=True, help="encoder.pt")
    parser.add_argument("--npz", required=True, help="organmnist3d.npz (MedMNIST layout)")
    parser.add_argument("--out", required=True, help="output features.npz")
    parser.add_argument("--kind", choices=("auto", "cls", "pooled"), default="auto",
                        help="auto: [CLS] when the encoder has one, else the stage-4 average pool")
    parser.add_argument("--splits", nargs="+", default=["train", "val", "test"], help="npz splits to embed")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", type=int, default=None, help="resize edge (default: smallest valid edge >= stored)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")


def main(args) -> int:
    from smart.downstream.protocol import resolve_device
    from smart.eval.embed import embed_npz

    info = embed_npz(args.encoder, args.npz, args.out, kind=args.kind, batch_size=args.batch_size,
                     splits=args.splits, device=resolve_device(args.device), size=args.size)
    print(f"{info['n']} x {info['dim']} {info['kind']} features at {info['input_size']} -> {args.out}; "
          f"{info['blank_volumes']['count']} blank volume(s)")
    return 0

"""Evaluate a CLIP checkpoint: image-text retrieval recall@1/5/10 and zero-shot accuracy; run
few-shot in-context learners on Frozen-style episodes.

    curate eval retrieval --shards 'out/heldout/{00000..00003}.tar' \\
        --model tiny-clip --pretrained out/clip/final.pt --output retrieval.json
    curate eval zeroshot --shards 'out/heldout/00000.tar' --label-field kind \\
        --classes circle,square,triangle,star --model tiny-clip --pretrained out/clip/final.pt
    curate eval zeroshot --folder images/ --templates-file prompts.txt \\
        --model ViT-B-32 --pretrained laion2b_s34b_b79k
    curate eval icl --shards 'out/heldout/00000.tar' --label-field color --ways 2 5 \\
        --models clip-prototype chance --clip-model tiny-clip --clip-pretrained miniweb

retrieval: every image of the shards (KEY.jpg + KEY.txt, img2dataset's layout) against every
caption, and back; recall@k counts ties against the model; ``caption_match_R@1`` also accepts
another sample's identical caption. zeroshot: CLIP's prompt-ensemble classifier over the class
names (default: the sorted distinct labels, or the subfolders of --folder, ``_`` read as a
space), with top-1/top-5 accuracy, per-class accuracy and the confusion matrix. Undecodable
images are counted and skipped. ``--pretrained none`` gives random weights (chance level).
icl: see ``curate eval icl --help`` (jobs/eval_icl.py).
"""

import argparse
import sys

from vlcurate.jobs import eval_clip, eval_icl


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="task", required=True, metavar="TASK")
    eval_clip.add_parsers(sub)
    eval_icl.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return eval_icl.main(args) if args.task == "icl" else eval_clip.main(args)


if __name__ == "__main__":
    sys.exit(main())

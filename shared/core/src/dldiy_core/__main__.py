"""``python -m dldiy_core {bench,toy-train} ...``"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .errors import run_main


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"bench": "Trainer overhead vs a hand-written loop",
                "toy-train": "train the toy MLP (smallest example; works under torchrun)"}
    if not argv or argv[0] not in commands:
        print("usage: python -m dldiy_core {bench,toy-train} [--help]\n\n" +
              "\n".join(f"  {k:10} {v}" for k, v in commands.items()),
              file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    if argv[0] == "bench":
        from .bench import main as command
    else:
        from .toy import main as command
    return run_main(command, argv[1:])


if __name__ == "__main__":
    sys.exit(main())

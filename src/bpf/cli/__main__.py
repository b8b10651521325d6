"""``python -m bpf.cli``: the ``bpf`` command without the console script."""

import sys

from bpf.cli import main

sys.exit(main())

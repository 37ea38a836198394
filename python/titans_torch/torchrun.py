"""`torchrun`, working on Debian's torch 1.13 under Python 3.11 too:

    python3 -m titans_torch.torchrun --nproc_per_node 2 -m titans_torch.train --preset tiny …

There, torchrun fails before starting any worker ("'NoneType' object has no attribute 'get'"):
its `Std.from_str` looks the redirect setting up by iterating the IntFlag `Std`, and since Python
3.11 that iteration skips the zero member, so the default "0" maps to None. This module replaces
that lookup by `Std(int(value))` and runs torchrun unchanged. With a torch whose launcher works,
it is exactly `torchrun`.
"""

import re
import sys

from torch.distributed.elastic.multiprocessing import api


def _from_str(vm):
    if re.fullmatch(r"[0123]", vm):
        return api.Std(int(vm))
    if re.fullmatch(r"(\d:[0123],)*(\d:[0123])", vm):
        return {int(i): api.Std(int(v)) for i, v in (m.split(":") for m in vm.split(","))}
    raise ValueError(f"{vm} does not match: <[0123]> or <(\\d:[0123],)*(\\d:[0123])>")


if api.Std.from_str("0") is None:  # the Python 3.11 breakage described above
    api.Std.from_str = staticmethod(_from_str)


def main():
    from torch.distributed.run import main as run

    sys.exit(run())


if __name__ == "__main__":
    main()

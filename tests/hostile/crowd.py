"""A process of attackers: ``python -m tests.hostile.crowd HOST PORT``.

Each stdin line is a JSON object ``{kind: count}``; the attackers of that line run at once and
one JSON line with every ``Outcome`` is printed when the last has ended. EOF ends the process.
A process of its own, so attackers never share the event loop of the server or of the good
subscribers they are meant to disturb.
"""

from __future__ import annotations

import asyncio
import json
import sys

from tests.hostile.attacks import attack


async def main(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        plan: dict[str, int] = json.loads(line)
        jobs = [attack(kind, host, port) for kind, count in plan.items() for _ in range(count)]
        outcomes = await asyncio.gather(*jobs)
        print(json.dumps([outcome.as_dict() for outcome in outcomes]), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))

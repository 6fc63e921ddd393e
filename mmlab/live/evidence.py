"""Host observations kept as files: one JSON per scenario, with the kernel release, the
date and what the machine offered, so the model can be checked against a real kernel
without one (tests/data/host-6.18.44/).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path

FORMAT = 1


def save(directory: str | Path, records: dict[str, dict], env) -> list[Path]:
    """Write each record to ``directory/<scenario>.json``; return the paths written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    recorded = datetime.date.today().isoformat()
    paths = []
    for name, record in records.items():
        path = directory / f"{name}.json"
        data = {
            "format": FORMAT,
            "kernel": env.release,
            "recorded": recorded,
            "machine": dataclasses.asdict(env),
            "record": record,
        }
        path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
        paths.append(path)
    return paths


def load(directory: str | Path) -> dict[str, dict]:
    """{scenario: stored file contents} for every ``*.json`` in ``directory``."""
    stored = {}
    for path in sorted(Path(directory).glob("*.json")):
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"{path}: format {data.get('format')!r}, expected {FORMAT}; re-record it")
        stored[data["record"]["scenario"]] = data
    return stored

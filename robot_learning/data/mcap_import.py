"""Import ROS 2 bags (MCAP) into an :class:`EpisodeStore`: map, scan, plan, write.

The steps live in their own modules: :mod:`.mcap_map` (the map file), :mod:`.mcap_scan` (first
pass over each bag), :mod:`.mcap_messages` (message -> value), :mod:`.mcap_align` (zero-order
hold onto one timeline), :mod:`.mcap_plan` (episodes) and :mod:`.mcap_write` (second pass,
writing). Nothing touches the output path before every bag has been checked.

One bag is one episode, unless ``episode_gap`` splits it at pauses in the map's ``split_on``
(or ``clock``) topic. The stamps of the samples held at every tick go to ``timestamps/<key>``;
each episode's metadata records its bag (``source``, ``bag_episode``) and the largest staleness
per feature, and ``--resume`` skips episodes whose bag and index the store already holds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from robot_learning.data.errors import StoreNotFoundError
from robot_learning.data.mcap_map import McapImportError, load_map
from robot_learning.data.mcap_plan import ImportPlan, build_plan
from robot_learning.data.mcap_scan import scan_bag
from robot_learning.data.mcap_write import SOURCE_FORMAT, ImportResult, write_plan
from robot_learning.data.store import EpisodeStore

LOG = logging.getLogger(__name__)


def check_resume(store: EpisodeStore, plan: ImportPlan) -> None:
    """Refuse to append episodes whose features, roles or rate differ from the store's."""
    mine, theirs = plan.features, store.features
    if sorted(mine.names()) != sorted(theirs.names()):
        raise McapImportError(
            f"{store.root} records features {theirs.names()} but the map gives {mine.names()}"
        )
    for key, spec in mine.items():
        other = theirs[key]
        if (spec.shape, spec.dtype, spec.kind) != (other.shape, other.dtype, other.kind):
            raise McapImportError(
                f"{store.root}: feature {key!r} is {other.kind} {other.shape} {other.dtype} in "
                f"the store but {spec.kind} {spec.shape} {spec.dtype} from the bags"
            )
        role = "action" if key in plan.actions else "observation"
        if spec.kind != "language" and store.roles.get(key) != role:
            raise McapImportError(
                f"{store.root}: feature {key!r} is an {store.roles.get(key)} in the store but "
                f"an {role} in the map"
            )
    if abs(store.fps - plan.fps) > 1e-6:
        raise McapImportError(
            f"{store.root} records at {store.fps:g} Hz but this import would use {plan.fps:g} "
            f"Hz; pass --fps {store.fps:g}"
        )


def _check_out(out: Path, resume: bool) -> None:
    """Fail before reading any bag when ``out`` cannot be written as asked."""
    exists = out.exists() and (not out.is_dir() or any(out.iterdir()))
    if resume and not (out / "zarr.json").is_file():
        raise McapImportError(f"--resume: no episode store at {out} to add episodes to")
    if not resume and exists:
        raise McapImportError(
            f"{out} already exists; pass --resume to add episodes to its store, or choose a "
            "new path"
        )


def import_bags(
    bags: Sequence[str | Path],
    out: str | Path,
    map_path: str | Path,
    *,
    fps: float | None = None,
    task: str | None = None,
    episode_gap: float | None = None,
    resume: bool = False,
) -> ImportResult:
    """Check everything, then create (or, with ``resume``, append to) the store at ``out``."""
    topic_map = load_map(map_path)
    _check_out(Path(out), resume)
    scans = [scan_bag(Path(b), topic_map) for b in bags]
    plan = build_plan(scans, topic_map, fps, episode_gap)
    result = ImportResult(str(out), plan.fps, len(scans), warnings=list(plan.skipped))
    for text in plan.skipped:
        LOG.warning("skipped %s", text)
    episode_task = task if task is not None else topic_map.task
    if resume:
        try:
            with EpisodeStore.open(out, "r") as existing:
                check_resume(existing, plan)
        except StoreNotFoundError:
            raise McapImportError(f"--resume: no episode store at {out} to add to") from None
        store = EpisodeStore.open(out, "a")
        if store.repair_report.repaired:
            LOG.warning("%s: %s", out, store.repair_report.describe())
    else:
        store = EpisodeStore.create(
            out,
            plan.features,
            actions=plan.actions,
            fps=plan.fps,
            robot=topic_map.robot,
            extra_attrs={"source_format": SOURCE_FORMAT},
        )
    with store:
        return write_plan(store, plan, episode_task, result)


__all__ = ["ImportResult", "McapImportError", "check_resume", "import_bags"]
